/* reset.c: a plan that gives named clones fresh deltas on the base version each is on. */
#include <stdio.h>
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
		/* Its own base version, as its delta really has it: a reset in the
		 * middle of a rollout must not move a clone outside the waves. */
		it->to_base = o->disk_base_ref && *o->disk_base_ref ? o->disk_base_ref : o->base_ref;
		if (!it->to_base || !*it->to_base || *it->to_base == '@') {
			vp_plan_free(plan);
			return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
					    "cannot reset '%s': its delta backs onto no known version of base "
					    "'%s'; run 'vdipool apply' to repair it",
					    names[i], p->spec->base.name);
		}
		if (o->mac)
			snprintf(it->mac, sizeof(it->mac), "%s", o->mac);
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
