/* pool_int.h: the pool subsystem's private state, shared by its files (open, inventory,
 * planning, reset, lock, apply, rollout, status). Nothing outside lib/pool/ includes it. */
#ifndef VP_POOL_INT_H
#define VP_POOL_INT_H

#include <pthread.h>
#include <stdbool.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/pool.h"
#include "vdipool/qcow2.h"
#include "vdipool/store.h"
#include "vdipool/virt.h"
#include "util/strmap.h"
#include "util/util.h"

/* A disk the storage listing showed, reduced to what the planner needs. */
typedef struct disk_entry {
	char name[VP_PLUGIN_NAME_MAX];
	int kind;
	uint64_t allocated;
	char *location;
	char *backing;            /* deltas: what the delta really backs onto ("" none) */
} disk_entry;

#define REF_MAX (2 * VP_PLUGIN_NAME_MAX + 2)  /* "name@version" */

/* An opened storage tier for per-clone disks; plugin calls on it may run in parallel. */
typedef struct disk_tier {
	const vp_plugin_ops *ops;
	void *handle;
	const vp_spec_tier *spec;
} disk_tier;


struct vp_pool {
	const vp_spec *spec;
	vp_virt *virt;
	vp_store *store;
	disk_tier deltas;
	disk_tier data;           /* same handle as deltas when the tiers are one */
	bool data_separate;
	char spec_hash[VP_SPEC_HASH_LEN]; /* of the domain definition, accelerator included once decided */
	bool accel_done;
	vp_accel accel;
	/* How this host's QEMU reaches the Ceph cluster of the pool's rbd disk tiers (a libvirt
	 * secret holds the key); rbd_ready once vp_virt_rbd_auth made it. */
	vp_rbd_auth rbd;
	bool rbd_ready;

	/* the last inventory */
	bool base_resolved;
	vp_base_info base;
	char base_ref[2 * VP_PLUGIN_NAME_MAX + 2];
	char *names;              /* count names of 64 bytes each */
	vp_desired_clone *want;
	size_t nwant;
	vp_virt_domain *doms;
	size_t ndoms;
	vp_strmap dom_by_name;    /* name -> vp_virt_domain in doms */
	vp_strmap dom_by_uuid;    /* UUID string -> vp_virt_domain in doms (every domain) */
	disk_entry *disks;
	size_t ndisks, capdisks;
	vp_observed_clone *obs;
	vp_strmap obs_by_name;    /* name -> entry of obs */
	vp_strmap delta_by_name;  /* clone name -> its delta in disks */
	char (*obs_base)[2 * VP_PLUGIN_NAME_MAX + 2];
	size_t nobs;
	char (*disk_base)[REF_MAX];  /* per disk: the base ref its backing file names */
	char (*macs)[18];            /* per domain with metadata: its MAC */
	const char **macs_taken;     /* MACs of the host's vdipool domains not of this pool */
	size_t nmacs_taken;
	char (*want_base)[REF_MAX];  /* per wanted clone: its own target (rollback) */
	vp_base_info *known;         /* versions of the spec's base, listed when needed */
	size_t nknown;
	bool known_listed;

	/* the bases a plan being applied puts clones on, resolved before it runs */
	vp_base_info *targets;
	char (*target_refs)[REF_MAX];
	size_t ntargets;

	char tier_real[4096];     /* the deltas tier's path, resolved */
	bool rollback;            /* plans return clones on rollback_from to their previous version */
	bool rollback_recorded;   /* an interrupted rollback's record was found */
	bool rollback_cmd;        /* planning for `rollback` (not apply) */
	size_t rollback_moves;    /* clones that still have to move back */
	char rollback_from[VP_PLUGIN_NAME_MAX];
	bool destroying;          /* the last plan removes the whole pool */

	bool reset_mode;          /* CREATE_DELTA replaces an existing delta */
	bool stop_now;            /* STOP forces the domain off at once (release of a claim) */

	/* One host of a pool (lib/pool/fleet.c opens one member per spec host). */
	size_t host_index;        /* into spec->hosts */
	bool remote;              /* its storage is reached over SSH (the "ssh" backend) */
	bool fleet_locked;        /* the fleet holds the pool's lock: vp_pool_lock takes only the store's */
	unsigned max_unavailable; /* the fleet's share of rollout.max_unavailable; 0: the spec's */
	bool want_given;          /* the fleet set the wanted clones (pool_set_want) */
	pthread_mutex_t validate_lock;
	bool validated;           /* one domain of this apply passed libvirt's schema check */
	int lock_fd;
	bool locked;              /* vp_pool_lock succeeded */

	/* clones.warm_base: what the last apply read of the base before its starts */
	bool warmed;
	uint64_t warmed_bytes;
	double warm_seconds;
	char warm_error[256];     /* why warming was skipped or failed; "" none */
};

/* pool.c */
/* Opens the pool's member on spec->hosts[host]: its libvirt connection, and its store and tiers
 * (the dir backend for a local host, the ssh backend on the host's own paths for a remote one). */
int pool_open_host(vp_pool **out, const vp_spec *spec, size_t host);
/* True when the host's libvirt URI names a remote machine (it has a host part). */
/* The domain params' rbd auth for this pool's disks: NULL when no disk tier is rbd; made
 * (the libvirt secret defined) on first use. */
int pool_rbd_auth(vp_pool *p, const vp_rbd_auth **out);

/* The controller's store of the spec's bases tier alone (no delta tiers). */
int pool_base_store_open(vp_store **out, const vp_spec *spec);
bool pool_host_is_remote(const vp_spec_host *h);
/* The address and port to SSH to for the host's storage (from its ssh mapping or URI). */
int pool_host_ssh_target(const vp_spec_host *h, char *addr, size_t len, unsigned *port, const char **user);
/* delta.size against a base the pool's disks are made from: VP_EINVAL with the
 * key's position in the spec when it is smaller than the base. */
int pool_check_size(const vp_pool *p, const vp_base_info *b);

/* Resolves the spec's base (or `version` of it) in the store into p->base. */
int pool_resolve_base(vp_pool *p, const char *version);

/* lock.c: the pool's own lock (one changer at a time), into *fd. */
int pool_lock_file(const vp_spec *spec, bool wait, int *fd);

/* inventory.c */
void pool_clear_inventory(vp_pool *p);
/* The listing half of vp_pool_inventory: domains and disks, nothing merged yet. */
int pool_inventory_list(vp_pool *p);
/* Calls fn for each clone of this pool that exists on the host (a domain of the pool on its
 * tier, or a delta), once per name, with its index (0 when unknown) and recorded host. */
/* Clones of the pool whose domain records a claim (the last listing). */
size_t pool_count_claimed(const vp_pool *p);
int pool_each_existing(vp_pool *p, int (*fn)(void *ctx, const char *name, unsigned index,
					     const char *meta_host), void *ctx);
/* The clones wanted on this host (copied), then the merge: the fleet's half of vp_pool_inventory. */
int pool_set_want(vp_pool *p, const vp_desired_clone *want, size_t n);
/* Makes `b` (the controller's copy) the pool's base; the host's own copy, when it has one,
 * must hold the same bytes (VP_ECONFLICT otherwise). *present says whether the host has it. */
int pool_adopt_base(vp_pool *p, const vp_base_info *b, bool *present);
/* The base that the plan item puts its clone on (resolved by vp_pool_apply). */
const vp_base_info *pool_target(const vp_pool *p, const vp_plan_item *it);
/* Does the domain's metadata put its delta on this pool's deltas tier? */
bool pool_on_our_tier(const vp_pool *p, const vp_domain_meta *m);
const vp_observed_clone *pool_find_obs(const vp_pool *p, const char *name);
const vp_virt_domain *pool_dom_of(const vp_pool *p, const char *name);

/* apply.c: the executor's context, and one wave run as a plan of its own. */
typedef struct apply_ctx {
	vp_pool *pool;
	const vp_apply_opts *opts;
} apply_ctx;

/* crypt.c: LUKS disks. _create: a fresh key into a memory file, the backend's delta_create with
 * VP_DELTA_ENCRYPT_LUKS, then the libvirt secret (UUID of the disk's LUKS header, usage volume =
 * the disk's path). _secret: what a disk needs to be opened: LUKS_PLAIN (not encrypted),
 * LUKS_OK (uuid: its secret), LUKS_NO_SECRET (uuid: the secret it needs, which libvirt lacks:
 * nobody can open it). _forget: removes a clone's disk, then the secret of its path. */
enum { LUKS_PLAIN = 0, LUKS_OK = 1, LUKS_NO_SECRET = 2 };
int pool_luks_create(vp_pool *p, disk_tier *t, vp_delta_request *req, vp_image_info *info);
int pool_luks_secret(vp_pool *p, const char *location, char uuid[37]);
int pool_luks_forget(vp_pool *p, disk_tier *t, int kind, const char *clone);

int pool_run_wave(const vp_plan *plan, unsigned wave, const vp_exec_ops *ops, apply_ctx *ctx,
		  const vp_exec_opts *eo, vp_exec_result *acc);

/* snapshot.c: does the clone's disk have snapshots (CLONE.snap/ holds an image)? first: one's name. */
bool pool_has_snapshots(const vp_pool *p, const char *clone, char *first, size_t len);

/* rollout.c: the durable record of a rollback in progress, beside the pool's deltas. */
int pool_rollback_read(vp_pool *p);
int pool_rollback_record(vp_pool *p);
int pool_rollback_clear(vp_pool *p);
/* Each wanted clone's target while rolling back (p->rollback_from set). */
int pool_rollback_targets(vp_pool *p);

/* rollout.c: one run of a check command (rollout.health, readiness) with env added, killed
 * with its process group after timeout seconds: 0 passed, 1 failed (tail: the end of its
 * stderr, else stdout, or how it ended), <0 it could not be run. */
int pool_run_check(const vp_spec_health *h, const char *const *env, double timeout, char *tail, size_t len);

/* rollout.c: waves 1..n of a plan, each behind the health gate. */
int pool_rollout(vp_pool *p, const vp_plan *plan, const vp_apply_opts *opts, const vp_exec_ops *ops,
		 apply_ctx *ctx, const vp_exec_opts *eo, vp_exec_result *res);

#endif
