/* reset.c: a plan that gives named clones fresh deltas on their base. */
#include <stdlib.h>
#include <string.h>

#include "pool/pool_int.h"

int vp_pool_plan_reset(vp_pool *p, const char *const *names, size_t n, vp_plan **out)
{
	vp_plan *plan = calloc(1, sizeof(*plan));

	*out = NULL;
	if (!plan || !(plan->items = calloc(n + 1, sizeof(*plan->items)))) {
		vp_plan_free(plan);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const vp_observed_clone *o = pool_find_obs(p, names[i]);
		vp_plan_item *it = &plan->items[i];

		if (!o || !(o->flags & VP_OBS_OURS) || strcmp(o->pool, p->spec->pool)) {
			vp_plan_free(plan);
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is not a clone of pool '%s'",
					    names[i], p->spec->pool);
		}
		it->name = o->name;
		it->index = o->index;
		it->change = VP_CHANGE_REPAIR;
		it->reason = "reset: fresh delta";
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE;
		if (o->flags & VP_OBS_RUNNING)
			it->steps |= VP_STEP_STOP | VP_STEP_START;
		plan->counts[it->change]++;
	}
	plan->count = n;
	p->reset_mode = true;
	*out = plan;
	return 0;
}
