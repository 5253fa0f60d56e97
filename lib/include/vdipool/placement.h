/* vdipool/placement.h: which host each clone of a pool runs on; pure and deterministic, no I/O. */
#ifndef VDIPOOL_PLACEMENT_H
#define VDIPOOL_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The rules (README.md, "Placement", says the same with an example):
 *
 * 1. A clone that has a host keeps it, always: even when that host is now
 *    over capacity, over its max_clones, unreachable or no longer in the
 *    spec. Placement never moves a clone on its own; only
 *    vp_placement_rebalance() proposes moves, when asked. A host over its
 *    capacity or limit is reported as a warning.
 * 2. New clones (no current host) are placed one by one in index order
 *    (ties by name), each on a host that is reachable and has room for it:
 *      - fewer of this pool's clones than max_clones (0: no new clones,
 *        i.e. drained or cordoned; VP_PLACEMENT_UNLIMITED: no limit);
 *      - memory: committed + clone memory <= memory_bytes x memory ratio;
 *      - vCPUs:  committed + clone vCPUs  <= cpus x cpu ratio;
 *    where "committed" is what other domains use (other_*) plus this pool's
 *    clones on that host, kept and newly placed so far.
 *      spread: the host with the largest free fraction of its capacity,
 *              the free fraction being the smaller of free memory/memory
 *              capacity and free vCPUs/vCPU capacity (the scarcer one);
 *              ties go to the earlier host in the input (spec) order.
 *      pack:   the first host in input order with room.
 * 3. A new clone no host has room for is not dropped: it is reported with
 *    status VP_PLACED_NONE and a reason naming each host and why not.
 * 4. Same inputs, same output: clones may come in any order (they are
 *    sorted by index, then name); hosts' order is the spec's and breaks
 *    ties. No randomness, no floating point (ratios are fixed point in
 *    thousandths, fractions are compared by exact cross-multiplication).
 * 5. Cost: O(clones x hosts) time, O(clones + hosts) memory; 10,000 clones
 *    over 100 hosts take milliseconds.
 *
 * Clones that were made before hosts were recorded carry no host: the
 * caller gives them the pool's single host before calling.
 */

/* The spec's values carry over as they are: VP_SPEC_UNLIMITED is this
 * value, vp_spec_policy has these numbers, and the spec's ratios are in
 * thousandths too (a unit test holds them together). */
#define VP_PLACEMENT_UNLIMITED 0xffffffffu /* max_clones: no limit but capacity */
#define VP_PLACEMENT_NO_HOST ((size_t)-1)  /* not one of the input hosts */

typedef enum vp_placement_policy {
	VP_PLACEMENT_SPREAD = 0, /* the host with the largest free fraction */
	VP_PLACEMENT_PACK        /* the first host with room */
} vp_placement_policy;

/* One libvirt host, in spec order. Plain data; strings are borrowed. */
typedef struct vp_placement_host {
	const char *name;            /* unique among hosts */
	bool reachable;              /* connected: an unreachable host gets nothing new */
	uint64_t memory_bytes;       /* physical memory (libvirt node info) */
	unsigned cpus;               /* physical CPUs (libvirt node info) */
	unsigned cpu_overcommit_milli;    /* vCPUs per CPU in thousandths: 4000 = 4.0 */
	unsigned memory_overcommit_milli; /* memory per byte of RAM in thousandths: 1000 = 1.0 */
	unsigned max_clones;         /* of this pool; 0: drain; VP_PLACEMENT_UNLIMITED */
	uint64_t other_memory_bytes; /* committed by domains that are not this pool's clones */
	uint64_t other_vcpus;        /* the same, in vCPUs */
} vp_placement_host;

/* One clone the pool wants (or has). Plain data; strings are borrowed. */
typedef struct vp_placement_clone {
	const char *name;     /* unique among clones */
	unsigned index;
	uint64_t memory_bytes; /* from the spec (an existing clone: as defined) */
	unsigned vcpus;
	const char *host;     /* its current host (domain metadata); NULL: a new clone */
} vp_placement_clone;

typedef struct vp_placement_input {
	vp_placement_policy policy;
	size_t host_count;
	const vp_placement_host *hosts;   /* spec order: it breaks ties */
	size_t clone_count;
	const vp_placement_clone *clones; /* any order */
} vp_placement_input;

typedef enum vp_placement_status {
	VP_PLACED_KEPT = 0, /* stays on its current host (rule 1) */
	VP_PLACED_NEW,      /* a new clone, given a host */
	VP_PLACED_NONE      /* a new clone no host has room for; see why */
} vp_placement_status;

typedef struct vp_placement_assignment {
	const char *clone;     /* borrowed from the input */
	unsigned index;
	vp_placement_status status;
	size_t host;           /* into input hosts; VP_PLACEMENT_NO_HOST for NONE, or
				* when a kept clone's host is not among them */
	const char *host_name; /* borrowed from the input; NULL for NONE */
	const char *why;       /* NONE: "hv1: unreachable; hv2: ..." (one entry per
				* host, in order); NULL otherwise; owned by the result */
} vp_placement_assignment;

/* Each input host after placement. Capacities are physical x ratio;
 * vCPUs are counted in thousandths so that 3 CPUs x 1.5 is exactly 4.5. */
typedef struct vp_placement_usage {
	const char *name;             /* borrowed */
	unsigned clones;              /* this pool's, kept + new */
	unsigned new_clones;
	uint64_t memory_committed;    /* other + this pool's */
	uint64_t memory_capacity;
	uint64_t vcpus_committed_milli;
	uint64_t vcpus_capacity_milli;
	bool over_capacity;           /* kept clones exceed memory, vCPUs or max_clones */
} vp_placement_usage;

typedef struct vp_placement {
	size_t count;
	vp_placement_assignment *clones; /* every input clone, by index (then name) */
	size_t host_count;
	vp_placement_usage *hosts;       /* input order */
	size_t placed, kept, unplaced;   /* clones per status */
	size_t warning_count;
	const char *const *warnings;     /* host order, then hosts not in the input by name:
					  * over capacity, unreachable with clones, unknown host */
} vp_placement;

/* Computes where every clone runs (rules above). VP_EINVAL for input that
 * cannot be right (two hosts or two clones with one name, a clone without a
 * name): no placement then. Clones that cannot be placed are not an error.
 * *out is the caller's: vp_placement_free() it; the inputs must outlive it. */
VP_API int vp_placement_compute(vp_placement **out, const vp_placement_input *in);

/* Accepts NULL. */
VP_API void vp_placement_free(vp_placement *placement);

/* Scaling down: picks `remove` of in->clones to remove, one at a time, each
 * from the reachable input host that holds the most of them (ties: the later
 * host in input order), taking that host's highest-index clone (ties: the
 * greater name). Clones on unreachable hosts, on hosts not in the input or
 * without a host are never picked (they are left alone). *out gets the names
 * in the order picked (borrowed from the input; the array is the caller's,
 * free() it), *nout how many: fewer than `remove` when no more can be taken.
 * O(remove x hosts + clones log clones). VP_EINVAL as for compute. */
VP_API int vp_placement_surplus(const char ***out, size_t *nout, const vp_placement_input *in, size_t remove);

typedef struct vp_placement_move {
	const char *clone;      /* borrowed */
	unsigned index;
	size_t from, to;        /* input host indexes */
	const char *from_name, *to_name; /* borrowed */
} vp_placement_move;

typedef struct vp_placement_moves {
	size_t count;
	vp_placement_move *moves; /* in the order to carry them out */
	size_t pending;  /* moves still needed to reach the target beyond max_moves
			  * (0: balanced, or nothing more can move) */
	size_t *target;  /* per input host: this pool's clones the target gives it */
} vp_placement_moves;

/* Rebalancing, only when asked. The target is what the policy gives when
 * every movable clone (one on a reachable input host) is placed from scratch,
 * with the others (on unreachable or unknown hosts) kept where they are:
 * with spread (the default) that evens hosts out, with pack it consolidates
 * clones onto the first hosts. Then, at
 * most max_moves times: the host furthest above its target (ties: the later
 * host) gives its highest-index movable clone to the host furthest below its
 * target (ties: the earlier host) that is reachable and has room for it
 * after the moves before (capacity and max_clones as in compute). Each move
 * so brings one host closer to its target from above and one from below;
 * nothing moves onto an unreachable, drained or full host; a clone moves at
 * most once. Clones without a host are ignored and do not count: rebalance a
 * pool whose clones all exist (after apply). *out is the caller's:
 * vp_placement_moves_free(). VP_EINVAL as for compute. */
VP_API int vp_placement_rebalance(vp_placement_moves **out, const vp_placement_input *in, size_t max_moves);

/* Accepts NULL. */
VP_API void vp_placement_moves_free(vp_placement_moves *moves);

/* "spread", "pack". */
VP_API const char *vp_placement_policy_name(vp_placement_policy policy);

#ifdef __cplusplus
}
#endif
#endif
