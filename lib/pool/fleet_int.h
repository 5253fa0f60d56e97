/* fleet_int.h: the fleet's private state, shared by fleet.c (inventory, plan, apply) and
 * fleet_move.c (rebalance: moving clones between hosts). */
#ifndef VP_FLEET_INT_H
#define VP_FLEET_INT_H

#include "pool/pool_int.h"
#include "vdipool/fleet.h"
#include "vdipool/ssh.h"

typedef struct fleet_clone {
	char name[64];
	unsigned index;
	long host;          /* current host (spec index); -1: none yet */
	bool seen;          /* found on a reachable host */
	bool recorded;      /* only the placement record knows it (its host is unreachable) */
	bool remove;        /* picked for removal (scaling down) */
	long from;          /* moving (rebalance): the host it leaves, whose data disk is the real one; -1: none */
} fleet_clone;

struct vp_fleet {
	const vp_spec *spec;
	size_t n;
	vp_fleet_host *hosts;
	vp_store *src;                /* the controller's store: where bases come from */
	bool base_ok;
	vp_base_info base;
	char base_ref[REF_MAX];
	int lock_fd;
	long want_count;
	size_t wanted;            /* clones the last inventory wants (clones.spares may raise count) */

	fleet_clone *clones;          /* existing and wanted, this inventory */
	size_t nclones, capclones;
	vp_placement *placement;
	vp_placement_host *phosts;
	vp_placement_clone *pclones;
	size_t npclones;
	char **unplaced_why;

	int *rcs;                     /* per host: the last member call's return */

	/* the canary of a rollout (rollout.canary), per target version */
	bool canary_phase;            /* this plan rolls only the canary */
	bool reset_plan;              /* the plans are resets (vp_fleet_plan_reset), not the spec's */
	bool canary_waiting;          /* the canary passed; the rest waits for its pause or continue */
	char note[512];               /* what the plan says about the canary */

	vp_placement_moves *moves;    /* the last rebalance plan */

	void (*push_progress)(void *ctx, const char *host, uint64_t done, uint64_t total);
	void *push_ctx;
	void (*push_done)(void *ctx, size_t host, const vp_fleet_push_host *r);
	void *push_done_ctx;
};

/* fleet.c */
/* Records the thread's last error as host h's reason, after `what`. */
void fleet_host_error(vp_fleet_host *h, const char *what);
fleet_clone *fleet_clone_get(vp_fleet *f, const char *name);
int fleet_write_record(vp_fleet *f, bool after);
/* Lists host i again and gives it the clones placed on it (after clones moved). */
int fleet_refresh_host(vp_fleet *f, size_t i);
/* An SSH session to remote host i, as its storage is reached. */
int fleet_ssh_connect(vp_fleet *f, size_t i, vp_ssh **out);
/* Pushes ref from the controller's store into host i's store (vp_store_push), with the
 * fleet's push progress. */
int fleet_push_from_controller(vp_fleet *f, size_t i, const char *ref, vp_store_push_result *pr);
/* The rollout budget (rollout.max_unavailable as a clone count over the pool). */
unsigned fleet_budget(const vp_fleet *f);
/* Pushes the fleet's base to remote host i now (one host, this thread). */
int fleet_push_base(vp_fleet *f, size_t i);

/* claim.c: is the listed domain a clone of this pool on its tier; the pool's lock, tried until
 * the deadline (fd -1 when the caller holds it already). */
bool fleet_ours(const vp_pool *p, const vp_virt_domain *d);
/* The pool's unclaimed clones that run or are parked, on every reachable host (unsorted); *out is
 * the caller's (free()). */
typedef struct fleet_spare {
	size_t host;
	unsigned index;
	bool parked;
	char name[64];
} fleet_spare;
int fleet_list_spares(vp_fleet *f, fleet_spare **out, size_t *n);
int fleet_lock_until(vp_fleet *f, double deadline, int *fd);

/* fleet_push.c: the base of the plan to the hosts where need[i], in fan-out rounds
 * (distribution.fanout); sets each host's base_present or error, adds the bytes sent. */
int fleet_push_fanout(vp_fleet *f, const bool *need, uint64_t *sent);

/* fleet_move.c: before an apply, clones an interrupted move left without their data disk on
 * their new host get it from the old one. */
int fleet_finish_moves(vp_fleet *f);
/* After the hosts applied: the old host's data disk of each clone that arrived goes. */
int fleet_moves_after(vp_fleet *f);

#endif
