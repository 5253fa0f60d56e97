/* vdipool/pool.h: a pool as the CLI sees it: spec + world (libvirt, storage, bases) -> plan, apply,
 * status, destroy, reset. Ties the pure planner and the executor to the real parts. */
#ifndef VDIPOOL_POOL_H
#define VDIPOOL_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/accel.h"
#include "vdipool/common.h"
#include "vdipool/exec.h"
#include "vdipool/plan.h"
#include "vdipool/spec.h"
#include "vdipool/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_pool vp_pool;

/* Opens the pool of a loaded spec: connects to its host and opens its
 * storage tiers. The spec must outlive the pool. Multi-host specs are
 * VP_ENOTSUP for now. */
VP_API int vp_pool_open(vp_pool **out, const vp_spec *spec);
VP_API void vp_pool_free(vp_pool *pool);

/* The store of the spec's host `host` as that host sees it: the spec's tiers
 * through the dir backend on a local host, through the ssh backend (SFTP, on
 * the host's own paths) on a remote one. For gc and base verify per host. */
VP_API int vp_pool_host_store_open(vp_store **out, const vp_spec *spec, size_t host);

/* The spec's store as this machine (the controller) reaches it: its bases
 * tier and the tiers of its clones' disks, each through its driver (dir
 * locally, rbd straight to the cluster). What `vdipool base ... --spec` and
 * gc of a shared store work on. */
VP_API int vp_pool_store_open(vp_store **out, const vp_spec *spec);
/* Does the spec's host `host` have a libvirt URI naming another machine? */
VP_API bool vp_pool_host_remote(const vp_spec *spec, size_t host);

/* Takes the pool's lock (one changer at a time). Take it before
 * vp_pool_inventory when you mean to apply: a plan made before the lock was
 * held may be stale by the time it runs. VP_EBUSY when another vdipool holds
 * it and wait is false. Released by vp_pool_free. */
VP_API int vp_pool_lock(vp_pool *pool, bool wait);

/* Reads the world: the pool's domains (by metadata) and any domain holding a
 * wanted name, the pool's deltas and data disks. need_base: also resolve the
 * spec's base (`latest` -> newest version) and fail when it is missing. */
VP_API int vp_pool_inventory(vp_pool *pool, bool need_base);

/* The plan that makes the inventoried world match the spec (vp_plan_build on
 * the inventory). want_count: clones wanted; pass -1 for the spec's count and
 * 0 for destroy (everything of the pool is surplus). While an interrupted
 * rollback is recorded, the plan continues that rollback instead. */
VP_API int vp_pool_plan(vp_pool *pool, long want_count, vp_plan **out);

/* A plan that gives the named clones fresh deltas on the base version each
 * is on (stopping and restarting running ones). Unknown names are VP_EINVAL,
 * naming them; a clone whose delta backs onto no version of the base is
 * VP_ECONFLICT (apply repairs it). */
VP_API int vp_pool_plan_reset(vp_pool *pool, const char *const *names, size_t n, vp_plan **out);

/* `vdipool detach`: turns one clone of the (locked, inventoried) pool into a standalone one:
 * its domain's metadata is marked detached first (so it no longer pins its base, and apply
 * leaves its disk and definition alone: no rebase, update or re-link; start/stop still
 * follow the spec), then its disk is flattened by the backend (a running clone on a file
 * backend is shut down for it and started again; a shared one, rbd, flattens in place). *already: it was detached and standalone, nothing done.
 * Unknown names are VP_EINVAL; a backend that cannot flatten is VP_ENOTSUP, nothing changed.
 * Killed half-way, the clone is usable (marked, its disk still linked) and the next call
 * finishes it. `vdipool reset` links a detached clone again (a fresh delta). */
VP_API int vp_pool_detach(vp_pool *pool, const char *name, bool *already);

/* Rollback: a plan that returns each clone on the spec's base version (or,
 * continuing an interrupted rollback, on the version that rollback undoes)
 * to the version its own metadata records as previous, in waves like a
 * rollout; every other clone stays where it is. vp_pool_apply records the
 * rollback durably before the first clone moves and drops the record when
 * it is complete. VP_ENOENT when there is nothing to roll back. */
VP_API int vp_pool_plan_rollback(vp_pool *pool, vp_plan **out);

/* Makes `version` of the spec's base the desired one for vp_pool_plan (as if
 * the spec named it). VP_ENOENT when it is not in the store. */
VP_API int vp_pool_use_base_version(vp_pool *pool, const char *version);

/* Also delete data disks of removed clones (destroy --purge-data). */
VP_API void vp_pool_plan_purge_data(vp_plan *plan);

typedef struct vp_apply_opts {
	vp_exec_opts exec;
	bool wait_lock;       /* wait for a concurrent apply instead of failing */
	void (*progress)(void *ctx, size_t done, size_t total, const vp_plan_item *item, int rc,
			 const char *message);
	void *progress_ctx;
	/* Optional: a rollout wave begins (healthy false) or passed its health
	 * gate (healthy true). Called from the applying thread. */
	void (*wave)(void *ctx, const vp_plan *plan, unsigned wave, bool healthy);
} vp_apply_opts;

/* Executes the plan: first everything outside the waves (creations, starts,
 * stops, removals), then the rebases, updates and repairs wave by wave; after each wave the health gate (clones that should run are
 * running, and the spec's health command passes for each within its
 * timeout) must pass before the next wave starts. A failed wave or gate
 * stops the rollout there: later waves are untouched, the pool stays mixed,
 * and the next apply continues. Takes the pool's lock if vp_pool_lock was not called
 * (VP_EBUSY when another apply holds it and wait_lock is false). Refuses to
 * clone from a base whose size or mtime no longer match its manifest (every
 * base the plan puts a clone on is checked). */
VP_API int vp_pool_apply(vp_pool *pool, const vp_plan *plan, const vp_apply_opts *opts,
			 vp_exec_result *result);

/* ---- status ----------------------------------------------------------------- */

typedef struct vp_clone_status {
	char name[64];
	const char *host;          /* the spec's host name */
	const char *state;         /* "running", "shut off", "paused", "parked" (saved to disk: clones.parked),
				    * "missing", "no domain", "conflict" */
	char base[160];            /* "name@version" from metadata; "" when unknown */
	uint64_t delta_bytes;      /* on disk */
	uint64_t data_bytes;
	unsigned chain_depth;      /* images in the delta's backing chain (2 = delta + base); 0 unknown */
	bool has_data;
	/* Running (or paused) clones only, else 0: */
	size_t naddrs;             /* addresses known (vp_virt_addresses), at most 4 kept */
	char addrs[4][64];         /* IPv4 first */
	double since;              /* when its QEMU started, seconds since the epoch; 0 unknown
				    * (vp_virt_started_at: the local system daemon only) */
	char claimed_by[208];      /* its claim's holder (vdipool claim); "" when not claimed */
	int64_t claimed_until;     /* seconds since the epoch; 0 no expiry */
} vp_clone_status;

typedef struct vp_pool_status {
	size_t count;
	vp_clone_status *clones;   /* the spec's clones, then surplus ones of the pool */
	size_t running, stopped, missing, other;
	uint64_t delta_bytes;      /* deltas and data disks on disk */
	uint64_t base_bytes;       /* the base(s) they share, counted once */
	uint64_t full_copy_bytes;  /* what full copies would use */
	size_t parked;             /* clones parked (saved to disk), not counted in running or stopped */
} vp_pool_status;

VP_API int vp_pool_status_get(vp_pool *pool, vp_pool_status **out);
VP_API void vp_pool_status_free(vp_pool_status *st);

/* ---- readiness ---------------------------------------------------------------
 * A clone is ready when its domain runs, it has an address (vp_virt_addresses)
 * and the spec's readiness.command exits 0 (no command: running with an
 * address suffices). */

typedef enum vp_ready_state {
	VP_READY_YES = 0,
	VP_READY_NOT_RUNNING,      /* no domain, shut off, paused */
	VP_READY_NO_ADDRESS,       /* running, no lease (nor agent address) yet */
	VP_READY_CHECK_FAILED,     /* the readiness command did not exit 0 */
	VP_READY_UNREACHABLE,      /* its host cannot be reached */
} vp_ready_state;

typedef struct vp_ready_clone {
	char name[64];
	const char *host;          /* the spec's host name */
	vp_ready_state state;
	char address[64];          /* its first address, "" none */
	char why[512];             /* not ready: why (a failed check: the tail of its output) */
	double seconds;            /* ready: seconds from the start of the wait until it was seen ready */
	bool claimed;              /* its domain records a claim (its holder's business) */
	bool parked;               /* shut off with its saved state (clones.parked): a claim resumes it */
} vp_ready_clone;

/* "ready", "not running", "no address", "check failed", "unreachable". */
VP_API const char *vp_ready_state_name(vp_ready_state s);

/* One look at one clone of the pool (no retry): its domain's state, its
 * addresses, then one run of readiness.command (at most readiness.timeout)
 * with VDIPOOL_CLONE, VDIPOOL_ADDRESS (the first address), VDIPOOL_UUID,
 * VDIPOOL_POOL and VDIPOOL_HOST in its environment. Not being ready is not an
 * error: it is out->state and out->why. */
VP_API int vp_pool_ready_check(vp_pool *pool, const char *name, vp_ready_clone *out);

/* Decides, once per pool handle, whether the clones run under KVM or TCG
 * (domain.accel; vdipool/accel.h). vp_pool_plan (except for destroy) and
 * vp_pool_apply call it. *out (optional) is borrowed from the pool.
 * VP_EHOST when the spec says kvm and the host cannot run KVM guests. */
VP_API int vp_pool_accel(vp_pool *pool, const vp_accel **out);
/* When auto chose TCG: one sentence naming the host and why; NULL otherwise. */
VP_API const char *vp_pool_accel_warning(const vp_pool *pool);

/* ---- snapshots of a clone ------------------------------------------------------
 * External, disk-only snapshots of one clone of a one-host pool on a dir deltas tier: the
 * clone's disk CLONE.qcow2 becomes snapshot NAME (CLONE.snap/NAME.qcow2, beside it) and a
 * fresh overlay on it takes its place, so the domain keeps its definition. The clone must be
 * shut off for create, revert and remove (VP_EBUSY otherwise). A snapshot adds one image
 * under the disk: refused (VP_ECONFLICT) past delta.max_depth. The images stay the clone's
 * until it is destroyed; gc and base rm see the base under them through the disk's chain, and
 * vp_pool_apply refuses to replace the disk of a clone that has snapshots (a rollout,
 * a reset). Call vp_pool_inventory (under vp_pool_lock) first. */

typedef struct vp_snapshot {
	char name[64];
	char path[4096];           /* its image */
	uint64_t bytes;            /* allocated on disk: what the clone wrote before the next one */
	double taken;              /* the image's ctime (seconds since the epoch): when it was taken */
} vp_snapshot;

VP_API int vp_pool_snapshot_create(vp_pool *pool, const char *clone, const char *name);
/* The clone's snapshots, oldest first; free with vp_snapshot_list_free. */
VP_API int vp_pool_snapshot_list(vp_pool *pool, const char *clone, vp_snapshot **out, size_t *n);
VP_API void vp_snapshot_list_free(vp_snapshot *list);
/* The clone's disk becomes what it was when `name` was taken (a fresh overlay on it); the
 * snapshots taken after it are removed, which needs drop_later (VP_EINVAL naming them
 * otherwise). *dropped: how many were removed. */
VP_API int vp_pool_snapshot_revert(vp_pool *pool, const char *clone, const char *name, bool drop_later,
				   size_t *dropped);
/* Removes snapshot `name`; the image above it takes over its data (qemu-img rebase), so the
 * clone's disk reads the same. */
VP_API int vp_pool_snapshot_remove(vp_pool *pool, const char *clone, const char *name);

/* The resolved base of the last inventory ("name@version"), or "" when not resolved. */
VP_API const char *vp_pool_base_ref(const vp_pool *pool);

#ifdef __cplusplus
}
#endif
#endif
