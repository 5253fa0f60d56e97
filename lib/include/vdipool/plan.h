/* vdipool/plan.h: the planner, a pure function (desired, observed) -> plan; no I/O at all. */
#ifndef VDIPOOL_PLAN_H
#define VDIPOOL_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One clone the spec asks for. */
typedef struct vp_desired_clone {
	const char *name;
	unsigned index;
	const char *base_ref;  /* "name@version" this clone should be on; NULL: vp_desired.base_ref
				* (a rollback gives each clone its own) */
} vp_desired_clone;

/* What the pool should be, resolved from a spec (base `latest` already
 * resolved to a version). Plain data: every pointer is borrowed. */
typedef struct vp_desired {
	const char *pool;
	const char *base_ref;  /* "name@version" */
	const char *spec_hash; /* hash of what shapes a domain definition */
	bool start;            /* clones should run */
	bool data_disk;        /* clones have a persistent data disk */
	size_t count;
	const vp_desired_clone *clones;
	uint64_t delta_bytes;  /* bytes a new delta writes to disk */
	uint64_t data_bytes;   /* bytes a new data disk writes to disk */
	uint64_t base_bytes;   /* the base image's size: what one full copy costs */
	unsigned max_unavailable; /* rollout wave size (clones down at once); 0: all at once */
	bool full;             /* clones.mode full: a clone's disk is a standalone copy of its base */
	/* Optional: the MAC of clone `name` at attempt n = 0, 1, ... (a deterministic
	 * hash). The planner gives each clone that has none yet the first attempt no
	 * other clone on the host uses. NULL: no MACs are assigned. */
	void (*mac_of)(void *ctx, const char *name, unsigned attempt, char mac[18]);
	void *mac_ctx;
	/* Claimed clones (vp_observed_clone.claimed_by) are left alone: no rebase, update,
	 * repair, start, stop or removal until released. True: they are planned like the
	 * others (destroy). */
	bool claimed_too;
} vp_desired;

/* What exists, merged by clone name from libvirt and the storage backend. */
enum vp_obs_flags {
	VP_OBS_DOMAIN = 1 << 0,  /* a libvirt domain of this name exists */
	VP_OBS_OURS = 1 << 1,    /* it carries vdipool metadata naming this pool */
	VP_OBS_RUNNING = 1 << 2, /* it is running (or paused) */
	VP_OBS_DELTA = 1 << 3,   /* the pool's delta for this name exists */
	VP_OBS_DATA = 1 << 4,    /* the pool's data disk for this name exists */
	VP_OBS_ELSEWHERE = 1 << 5, /* its metadata names this pool, but its delta lies on
				    * another tier: a namesake pool's, never ours to change */
	VP_OBS_STANDALONE = 1 << 6, /* its delta has no backing file (a full clone) */
	VP_OBS_DETACHED = 1 << 7,   /* its domain's metadata marks it detached (`vdipool detach`):
				     * its disk and definition are left alone (start/stop only) */
};

typedef struct vp_observed_clone {
	const char *name;
	unsigned index;        /* from metadata or the delta's name; 0 when unknown */
	unsigned flags;        /* vp_obs_flags */
	const char *pool;      /* pool named by the domain's metadata; NULL: none */
	const char *base_ref;  /* "name@version" from metadata; NULL: unknown */
	const char *spec_hash; /* from metadata; NULL: unknown */
	uint64_t delta_bytes;  /* bytes the delta uses on disk */
	uint64_t data_bytes;   /* bytes the data disk uses on disk */
	/* The base its delta really backs onto ("name@version"; "" when that is no
	 * version of the base); NULL: not known. A crash between a delta swap and the
	 * redefine leaves it differing from base_ref: then the clone is rebased. */
	const char *disk_base_ref;
	const char *mac;       /* the MAC its domain has ("52:54:00:..."); NULL: unknown */
	const char *claimed_by; /* its domain's metadata records a claim by this holder; NULL: none */
} vp_observed_clone;

typedef struct vp_observed {
	size_t count;
	const vp_observed_clone *clones;
	const char *const *macs_taken; /* MACs of the host's other vdipool domains */
	size_t nmacs_taken;
} vp_observed;

/* Steps of one clone. The executor runs them in increasing bit order, which is
 * the order that keeps every moment safe: a domain is stopped before it is
 * undefined and undefined before its delta goes; a delta is complete before
 * a domain is defined on it. */
enum vp_step {
	VP_STEP_STOP = 1 << 0,
	VP_STEP_UNDEFINE = 1 << 1,
	VP_STEP_DELETE_DELTA = 1 << 2,
	VP_STEP_DELETE_DATA = 1 << 3,  /* only when asked (destroy --purge-data) */
	VP_STEP_REBASE = 1 << 4,       /* fresh delta on the desired base, atomically replacing the old */
	VP_STEP_CREATE_DELTA = 1 << 5, /* replaces an existing delta atomically (reset) */
	VP_STEP_CREATE_DATA = 1 << 6,
	VP_STEP_DEFINE = 1 << 7,
	VP_STEP_START = 1 << 8,
};

typedef enum vp_change {
	VP_CHANGE_NONE = 0, /* matches the spec */
	VP_CHANGE_CREATE,   /* nothing exists yet */
	VP_CHANGE_REPAIR,   /* half made: delta or domain missing */
	VP_CHANGE_UPDATE,   /* domain definition differs from the spec */
	VP_CHANGE_REBASE,   /* on another base version than the spec's */
	VP_CHANGE_START,
	VP_CHANGE_STOP,
	VP_CHANGE_REMOVE,   /* surplus: beyond the spec's count */
	VP_CHANGE_MAX
} vp_change;

typedef struct vp_plan_item {
	const char *name;   /* borrowed from the desired or observed input */
	unsigned index;
	vp_change change;
	unsigned steps;     /* vp_step bits */
	const char *reason; /* static text saying why, "" when unchanged */
	bool keeps_data;    /* REMOVE: the persistent data disk stays */
	unsigned wave;      /* REBASE, UPDATE, REPAIR: wave, from 1 (at most max_unavailable
			     * clones each); 0: outside the waves */
	const char *from_base; /* REBASE: the base it leaves ("name@version"); borrowed */
	const char *to_base;   /* wanted clones: the base it is (to be) on; borrowed */
	char mac[18];          /* wanted clones: its MAC when vp_desired.mac_of is set; "" else */
} vp_plan_item;

typedef struct vp_plan {
	size_t count;
	vp_plan_item *items;            /* removals (highest index first), then the spec's clones */
	size_t counts[VP_CHANGE_MAX];   /* items per change */
	uint64_t bytes_to_write;        /* new deltas and data disks */
	uint64_t pool_bytes;            /* disk the pool uses after apply (deltas + data + base) */
	uint64_t full_copy_bytes;       /* what full copies of the base would use instead */
	unsigned waves;                 /* waves (0: nothing that takes a clone down) */
} vp_plan;

/* Builds the plan. A domain that has the name of a wanted clone but is not
 * ours (no vdipool metadata, another pool's, or a namesake pool's on another
 * tier) is a conflict: VP_ECONFLICT, naming it, and no plan. Rebases, updates
 * and repairs go in waves of at most max_unavailable clones, in index order.
 * No two clones on the host get one MAC: existing clones keep theirs unless it
 * collides with one assigned earlier (index order), then they are updated. The
 * inputs must outlive the plan. Cost is linear in the number of clones. */
VP_API int vp_plan_build(vp_plan **out, const vp_desired *desired, const vp_observed *observed);

VP_API void vp_plan_free(vp_plan *plan);

/* True when applying the plan would change anything. */
VP_API bool vp_plan_has_changes(const vp_plan *plan);

/* "create", "repair", ...: static strings. */
VP_API const char *vp_change_name(vp_change change);
VP_API const char *vp_step_name(unsigned step);

#ifdef __cplusplus
}
#endif
#endif
