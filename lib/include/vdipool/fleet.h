/* vdipool/fleet.h: a pool over all the hosts of its spec: one member pool per libvirt host,
 * clones placed on hosts, bases pushed to hosts before deltas need them, hosts worked in parallel. */
#ifndef VDIPOOL_FLEET_H
#define VDIPOOL_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"
#include "vdipool/placement.h"
#include "vdipool/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_fleet vp_fleet;

/* One host of the fleet, as the last open/inventory/plan left it. Borrowed from the fleet. */
typedef struct vp_fleet_host {
	const char *name;          /* the spec's host name */
	const char *uri;           /* its libvirt URI */
	bool remote;               /* storage reached over SSH */
	bool reachable;            /* connected and listed */
	char error[512];           /* why not reachable, or why its apply failed */
	vp_pool *pool;             /* the member pool; NULL when unreachable */
	vp_plan *plan;             /* its part of the last plan; NULL when none */
	bool base_present;         /* the plan's base is in the host's store */
	uint64_t push_bytes;       /* base bytes to send before its deltas (0: none) */
	size_t clones;             /* this pool's clones placed on the host (kept and new) */
	size_t new_clones;         /* of which new */
	size_t removed;            /* clones the plan removes from it (scaling down) */
	uint64_t memory_bytes;     /* node info: physical memory */
	unsigned cpus;             /* node info: physical CPUs */
	bool over_capacity;        /* its kept clones exceed its capacity or max_clones */
	size_t failed;             /* clones whose steps failed in the last apply */
} vp_fleet_host;

/* Connects to every host of the spec in parallel. A host that cannot be
 * reached is not an error: it is marked unreachable with the reason. Errors
 * are for the fleet as a whole (out of memory, the controller's store). */
VP_API int vp_fleet_open(vp_fleet **out, const vp_spec *spec);
VP_API void vp_fleet_free(vp_fleet *f);

/* Takes the pool's lock (one changer at a time, on this machine) and a
 * shared hold on every reachable host's store. */
VP_API int vp_fleet_lock(vp_fleet *f, bool wait);
/* Lets go of the pool's lock before the fleet is freed (the stores' shared holds stay): for
 * what only reads after an apply, such as waiting for readiness, so claims need not wait. */
VP_API void vp_fleet_unlock_pool(vp_fleet *f);

/* Reads every reachable host (in parallel), resolves the base in the
 * controller's store (need_base: it must be there), then decides which
 * clones the pool wants and where each runs (vdipool/placement.h's rules):
 * clones keep their host; a clone recorded on an unreachable host is left
 * alone and still counts; new clones take the lowest free indexes; scaling
 * down removes from the fullest host first. want_count: -1 the spec's
 * count, 0 everything goes (destroy). */
VP_API int vp_fleet_inventory(vp_fleet *f, bool need_base, long want_count);

/* Clones the last inventory wants: clones.count, or claimed + clones.spares when that is more. */
VP_API size_t vp_fleet_wanted(const vp_fleet *f);

/* Builds each reachable host's plan (vp_fleet_host.plan) from the last inventory. */
VP_API int vp_fleet_plan(vp_fleet *f);
VP_API void vp_fleet_plan_purge_data(vp_fleet *f);
/* Plans fresh deltas for the named clones, each on its own host (vp_pool_plan_reset there);
 * hosts without one of them get no plan. VP_EINVAL naming unknown clones, VP_EIO when a clone's
 * host cannot be reached. */
VP_API int vp_fleet_plan_reset(vp_fleet *f, const char *const *names, size_t n);

VP_API size_t vp_fleet_host_count(const vp_fleet *f);
VP_API const vp_fleet_host *vp_fleet_host_at(const vp_fleet *f, size_t i);
/* Does any host's plan change something (or a base need pushing)? */
VP_API bool vp_fleet_has_changes(const vp_fleet *f);
/* Hosts that cannot be reached. */
VP_API size_t vp_fleet_unreachable(const vp_fleet *f);
/* New clones no host has room for: name and why, i < count. */
VP_API size_t vp_fleet_unplaced_count(const vp_fleet *f);
VP_API const char *vp_fleet_unplaced(const vp_fleet *f, size_t i, const char **why);
/* Placement warnings (over capacity, clones on an unreachable host). */
VP_API size_t vp_fleet_warning_count(const vp_fleet *f);
VP_API const char *vp_fleet_warning(const vp_fleet *f, size_t i);
/* "name@version" of the resolved base, "" when none. */
VP_API const char *vp_fleet_base_ref(const vp_fleet *f);
VP_API vp_placement_policy vp_fleet_policy(const vp_fleet *f);

typedef struct vp_fleet_result {
	vp_exec_result exec;       /* over all hosts */
	size_t hosts_failed;       /* hosts whose push or apply failed */
	uint64_t pushed_bytes;     /* base bytes sent to hosts */
	uint64_t resumed_bytes;    /* base bytes an interrupted push had delivered already */
} vp_fleet_result;

/* Runs the last plan: first the base goes to each host that lacks it (at
 * most distribution.max_parallel_hosts at once; checked on the host against
 * the manifest's SHA-256; with distribution.fanout in vp_fleet_push's rounds,
 * hosts seeding hosts), then the hosts apply their plans in parallel;
 * rollout waves count `max_unavailable` over the whole pool. A host that
 * fails (or cannot be reached) never stops the others; its reason is in its
 * vp_fleet_host.error. Returns 0 when every reachable host was worked on;
 * the caller turns failures and unreachable hosts into its exit code. */
VP_API int vp_fleet_apply(vp_fleet *f, const vp_apply_opts *opts, vp_fleet_result *res);

/* ---- waiting for the pool to be ready (`apply --wait ready`) ---------------------- */

typedef struct vp_ready_opts {
	double timeout;            /* seconds in all; 0: one look */
	/* Optional, from the waiting thread: a clone was seen ready (c), or a round of looks
	 * ended (c NULL); ready of total clones are ready now. */
	void (*progress)(void *ctx, const vp_ready_clone *c, size_t ready, size_t total);
	void *ctx;
} vp_ready_opts;

typedef struct vp_ready_report {
	size_t count;              /* the clones waited for: those the spec wants running */
	size_t ready;
	vp_ready_clone *clones;    /* count of them, in host then clone order */
	double seconds;            /* how long it waited */
	size_t claimed;            /* of count: claimed, not waited for (their holders' business) */
	size_t parked;             /* of count: parked spares (saved to disk when ready), not waited for */
} vp_ready_report;

/* Waits until every clone the last inventory wants on each host is ready
 * (vp_pool_ready_check), looking again with a growing pause (0.5 s up to 5 s)
 * until opts->timeout; a clone once ready is not looked at again. A clone
 * seen claimed (its holder may stop or change it) or parked is settled at
 * once: counted in claimed or parked, not waited for. Clones
 * recorded on an unreachable host are never ready. With domain.start false
 * there is nothing to wait for (count 0). Returns 0 when all are ready;
 * VP_EIO at the timeout, the error naming each clone that is not and why
 * (the report says the same per clone); VP_EINVAL at once when the spec's
 * clones can never have an address (domain.network: none). *out (set in every
 * case but out of memory) is the caller's: vp_ready_report_free(). */
VP_API int vp_fleet_wait_ready(vp_fleet *f, const vp_ready_opts *opts, vp_ready_report **out);
VP_API void vp_ready_report_free(vp_ready_report *r);

/* ---- claims (`vdipool claim`, `vdipool release`) -------------------------------------------
 * A claim is recorded in the clone's domain metadata (vp_domain_meta.claimed_*), in its
 * persistent and live definitions: it outlives vdipool, and no file holds it. Claimed clones are
 * left alone by apply, rollouts and rollback (vp_desired.claimed_too); destroy takes them. */

typedef struct vp_claim_opts {
	const char *who;           /* the holder, recorded (a CI job id, a user) */
	int64_t ttl;               /* seconds until the claim expires (apply releases it); 0: never */
	double timeout;            /* seconds to wait for a ready, unclaimed clone; 0: one look */
	const char *spec_path;     /* recorded with the claim (absolute), so `release CLONE` finds its
				    * pool; NULL: none */
	/* Optional: a parked spare could not be restored (why); it is stopped, its saved state
	 * discarded and it is marked for a rebuild by the next apply (VP_CLAIM_REBUILD). */
	void (*broken)(void *ctx, const char *name, const char *why);
	void *ctx;
} vp_claim_opts;

/* The holder recorded on a parked spare whose saved state could not be restored, with a claim
 * that has expired already: never handed out; the next apply releases it (a fresh delta, a cold
 * boot) as it releases expired claims. */
#define VP_CLAIM_REBUILD "vdipool-rebuild"

/* ---- parked spares (clones.parked) ------------------------------------------------------ */

typedef struct vp_park_opts {
	double timeout;            /* seconds to wait for spares to be ready before they are parked */
	/* Optional: a clone was parked (saved to disk) or resumed (parked one too many). */
	void (*progress)(void *ctx, const char *name, const char *host, bool parked, double seconds);
	void *ctx;
} vp_park_opts;

typedef struct vp_park_report {
	size_t parked;             /* parked now, in all */
	size_t saved;              /* of which saved by this call */
	size_t resumed;            /* parked clones started again (more parked than clones.parked) */
	double seconds;
} vp_park_report;

/* Keeps clones.parked of the pool's unclaimed clones parked: running, unclaimed clones (the
 * highest indexes first) are waited for until ready (vp_pool_ready_check, without the pool's
 * lock), then saved with libvirt's managed save holding the pool's lock just for the save, after
 * reading the clone again (still running and unclaimed: a claim never loses its clone to a
 * park). Parked clones beyond clones.parked are started (restored). Returns 0 when the count was
 * reached, or when no running unclaimed clone is left to park (claims took them: out->parked
 * says how many are); VP_EIO at the timeout naming the spare looked at last. */
VP_API int vp_fleet_park(vp_fleet *f, const vp_park_opts *opts, vp_park_report *out);

typedef struct vp_claim {
	char name[64];
	const char *host;          /* the spec's host name (borrowed from the fleet) */
	const char *uri;           /* its libvirt URI (borrowed) */
	size_t naddrs;
	char addrs[4][64];         /* IPv4 first */
	char base[160];            /* "name@version" from its metadata */
	int64_t at, until;         /* seconds since the epoch; until 0: no expiry */
	double seconds;            /* from the call until it was claimed */
	bool resumed;              /* it was a parked spare, restored from its saved state */
} vp_claim;

/* Hands out one ready clone: prefers running spares; when none of them is ready, a parked one
 * (clones.parked): it is claimed under the pool's lock while still parked, then restored
 * (vp_virt_resume_parked: libvirt deletes the saved image once restored) and waited for until
 * ready (at most 60 s more than opts->timeout); one that cannot be restored or gets no address
 * is stopped, its saved state dropped, marked VP_CLAIM_REBUILD (opts->broken is told) and the
 * next clone is tried. The running ones: looks at the running, unclaimed clones of the pool on every
 * reachable host (index order, each claimer starting at another one), checks readiness
 * (vp_pool_ready_check) without the pool's lock, then, holding the pool's lock for the few
 * milliseconds it takes (tried until the timeout: an apply holds it for its run), reads the
 * clone again and writes the claim only when it is still running and unclaimed: no clone is ever
 * handed out twice, by any number of claimers on this machine. Looks again with a growing pause
 * until opts->timeout. Needs vp_fleet_open only (no inventory). VP_ENOENT at the timeout, naming
 * why the last clone looked at was not taken. */
VP_API int vp_fleet_claim(vp_fleet *f, const vp_claim_opts *opts, vp_claim *out);

typedef struct vp_claim_info {
	const char *name, *host, *by;  /* borrowed from the last inventory */
	int64_t at, until;
} vp_claim_info;

/* The claimed clones of the last inventory; *out is the caller's (free()). */
VP_API size_t vp_fleet_claims(vp_fleet *f, vp_claim_info **out);

/* Plans the release of the named clones: vp_fleet_plan_reset (a fresh delta on the version each
 * is on, identity and data disk kept; the redefinition records no claim), stopped at once
 * instead of gracefully, and started again when the spec starts clones, as a spare. Take the
 * lock; run it with vp_fleet_apply. */
VP_API int vp_fleet_plan_release(vp_fleet *f, const char *const *names, size_t n);

/* What the last plan says about a rollout's canary (rollout.canary): the canary rolls first,
 * or it passed and the rest waits for its pause or for vp_fleet_rollout_continue; NULL when
 * there is none. */
VP_API const char *vp_fleet_rollout_note(const vp_fleet *f);
/* Lets a rollout whose canary passed go on (`vdipool rollout continue`): recorded on the
 * controller, so the next plan rolls the rest. VP_ENOENT when no canary waits. Take the lock. */
VP_API int vp_fleet_rollout_continue(vp_fleet *f);

/* ---- rebalance: moving clones between hosts, only when asked ----------------------
 * The moves vp_placement_rebalance() proposes for the last inventory (at most max_moves),
 * refused (VP_ECONFLICT) while the pool does not match its spec. */
VP_API int vp_fleet_rebalance_plan(vp_fleet *f, size_t max_moves);
VP_API size_t vp_fleet_move_count(const vp_fleet *f);
VP_API const vp_placement_move *vp_fleet_move_at(const vp_fleet *f, size_t i);
/* Moves still needed beyond max_moves. */
VP_API size_t vp_fleet_moves_pending(const vp_fleet *f);
/* Carries the moves out in waves of rollout.max_unavailable: each clone is stopped and
 * undefined on its old host, its data disk copied to the new one (checked by SHA-256 there),
 * then it is made there with its own UUID, MAC and data, on a fresh delta; the old data disk
 * goes once the clone is defined on the new host. Recorded first, so an interruption is
 * finished by the next apply. Stops at the first failing host. */
VP_API int vp_fleet_rebalance(vp_fleet *f, const vp_apply_opts *opts, vp_fleet_result *res);

/* Progress of base pushes (host, bytes done of total); optional. */
VP_API void vp_fleet_set_push_progress(vp_fleet *f,
				       void (*fn)(void *ctx, const char *host, uint64_t done, uint64_t total),
				       void *ctx);

/* ---- pushing a base version to hosts ahead of a rollout (`vdipool base push --spec`) ------
 * The round plan: which source serves which target in one round. state[i] per host:
 * VP_FANOUT_NONE not part of it, VP_FANOUT_WANTS lacks the version (any source),
 * VP_FANOUT_WANTS_DIRECT lacks it and only the controller may serve it (a seeded push to it
 * failed), VP_FANOUT_HOLDS has it. seed[i]: a holder that may push on (fan-out). Each seed,
 * in host order, serves the next wanting target (not a direct-only one); then the controller
 * serves up to `width` of the targets left, in host order. src[i] gets -1 for the controller,
 * the seed's index, or VP_FANOUT_NO_SOURCE. Returns the number of pushes in the round;
 * deterministic, so with every push succeeding the hosts that hold the version grow from h to
 * 2h + width a round: rounds grow with log(hosts), not with hosts. */
enum { VP_FANOUT_NONE, VP_FANOUT_WANTS, VP_FANOUT_WANTS_DIRECT, VP_FANOUT_HOLDS };
#define VP_FANOUT_NO_SOURCE (-2L)
VP_API size_t vp_fanout_round(size_t n, const unsigned char *state, const bool *seed, unsigned width,
			      long *src);

typedef enum vp_fleet_push_state {
	VP_FLEET_PUSH_NOT_ASKED,   /* not one of the hosts asked for (or this machine itself) */
	VP_FLEET_PUSH_PUSHED,      /* the version arrived this time (hash checked on the host) */
	VP_FLEET_PUSH_ALREADY,     /* it was there with the same SHA-256 */
	VP_FLEET_PUSH_FAILED,      /* see error */
} vp_fleet_push_state;

typedef struct vp_fleet_push_host {
	vp_fleet_push_state state;
	long source;               /* who sent it: -1 the controller, else the seeding host's index */
	unsigned round;            /* the round it arrived in (1...); 0 when not pushed */
	uint64_t sent;             /* image bytes sent this time */
	uint64_t resumed;          /* bytes an interrupted earlier push had left there */
	double seconds;
	bool seed_failed;          /* a seeded push to it failed first (then the controller's was tried) */
	char error[512];           /* why it failed (also the seed's failure, when seed_failed) */
} vp_fleet_push_host;

typedef struct vp_fleet_push_report {
	unsigned rounds;           /* rounds run */
	size_t pushed, already, failed;
	size_t from_controller;    /* pushes the controller made */
	size_t from_seeds;         /* pushes hosts made (fan-out) */
	uint64_t sent;             /* bytes sent, over all hosts */
} vp_fleet_push_report;

/* Pushes base version `ref` (NAME@VERSION, the controller's store: the spec's bases tier) to
 * the remote hosts of the spec where which[i] (NULL: all of them), checking first which hold it
 * already. In rounds (vp_fanout_round): the controller pushes to at most
 * distribution.max_parallel_hosts hosts at once; with distribution.fanout each host that holds
 * the version runs `vdipool base push REF --to TARGET` itself (over an SSH exec channel, with
 * distribution.seed_identity and seed_known_hosts on the host), one target a round. A seeded
 * push that fails is tried once more from the controller, and that seed seeds no more.
 * Per host results in out[0..n) (the caller's, vp_fleet_host_count entries). Returns 0 when
 * every host was worked on (failures are in out and report), <0 when nothing could be (the
 * version is not in the controller's store). Needs no libvirt: works on a fleet from
 * vp_fleet_open_push too. */
VP_API int vp_fleet_push(vp_fleet *f, const char *ref, const bool *which, vp_fleet_push_host *out,
			 vp_fleet_push_report *report);
/* A fleet for vp_fleet_push only: the controller's store and the spec's hosts, no libvirt
 * connections (every host reads unreachable to the other vp_fleet calls). */
VP_API int vp_fleet_open_push(vp_fleet **out, const vp_spec *spec);
/* Called as each push of vp_fleet_push ends (host index, its result); optional. */
VP_API void vp_fleet_set_push_done(vp_fleet *f, void (*fn)(void *ctx, size_t host, const vp_fleet_push_host *r),
				   void *ctx);

#ifdef __cplusplus
}
#endif
#endif
