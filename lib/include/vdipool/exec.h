/* vdipool/exec.h: the executor: runs a plan's per-clone steps with bounded parallelism. */
#ifndef VDIPOOL_EXEC_H
#define VDIPOOL_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "vdipool/common.h"
#include "vdipool/plan.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_exec_ops {
	/* Runs one step of one clone; 0 or a negative VP_E* with the error
	 * recorded. Called from worker threads, several at once. */
	int (*step)(void *ctx, const vp_plan_item *item, unsigned step);
	/* Optional: a clone finished (rc 0) or failed (rc < 0, message given).
	 * Calls are serialised. */
	void (*progress)(void *ctx, size_t done, size_t total, const vp_plan_item *item, int rc,
			 const char *message);
} vp_exec_ops;

typedef struct vp_exec_opts {
	unsigned parallel;   /* clones worked on at once; 0: 8 */
	unsigned max_starts; /* domain starts in flight at once (boot storms); 0: 4 */
} vp_exec_opts;

typedef struct vp_exec_result {
	size_t done;    /* clones whose steps all succeeded */
	size_t failed;  /* clones with a failed step (their later steps were skipped) */
	char first_error[512]; /* "name: message" of the first failure */
	size_t skipped; /* clones not attempted: a step failed for the whole host (VP_EHOST) */
} vp_exec_result;

/* Runs every item with steps: removals first (they free space and names),
 * then the rest; within a clone the steps run in increasing bit order and
 * stop at the first failure. A failed clone does not stop the others, so one
 * bad clone does not hold back a pool; the next apply retries it. Except when
 * a step fails with VP_EHOST (a cause that holds for every clone of the host,
 * such as KVM that cannot run guests): then no further step is attempted and
 * the error says why once. Returns 0 when everything succeeded, VP_EHOST or
 * VP_EGENERIC (error set to a summary) otherwise. */
VP_API int vp_exec_run(const vp_plan *plan, const vp_exec_ops *ops, void *ctx,
		       const vp_exec_opts *opts, vp_exec_result *result);

#ifdef __cplusplus
}
#endif
#endif
