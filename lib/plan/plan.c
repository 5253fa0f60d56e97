/* plan.c: the pure planner: compares the desired pool with the observed one, clone by clone. */
#include <stdlib.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/plan.h"
#include "util/strmap.h"
#include "util/util.h"

const char *vp_change_name(vp_change change)
{
	static const char *const names[VP_CHANGE_MAX] = {
		[VP_CHANGE_NONE] = "unchanged", [VP_CHANGE_CREATE] = "create",
		[VP_CHANGE_REPAIR] = "repair",  [VP_CHANGE_UPDATE] = "update",
		[VP_CHANGE_REBASE] = "rebase",  [VP_CHANGE_START] = "start",
		[VP_CHANGE_STOP] = "stop",      [VP_CHANGE_REMOVE] = "remove",
	};
	return (unsigned)change < VP_CHANGE_MAX ? names[change] : "?";
}

const char *vp_step_name(unsigned step)
{
	switch (step) {
	case VP_STEP_STOP: return "stop";
	case VP_STEP_UNDEFINE: return "undefine";
	case VP_STEP_DELETE_DELTA: return "delete delta";
	case VP_STEP_DELETE_DATA: return "delete data disk";
	case VP_STEP_CREATE_DELTA: return "create delta";
	case VP_STEP_CREATE_DATA: return "create data disk";
	case VP_STEP_DEFINE: return "define";
	case VP_STEP_START: return "start";
	case VP_STEP_REBASE: return "rebase";
	default: return "?";
	}
}

static bool streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* A domain with a wanted name is ours only if its metadata names this pool. */
static bool foreign(const vp_observed_clone *o, const char *pool)
{
	return (o->flags & VP_OBS_DOMAIN) && !((o->flags & VP_OBS_OURS) && streq(o->pool, pool));
}

static int conflict_error(const vp_observed_clone *o, const char *pool)
{
	if (o->flags & VP_OBS_OURS)
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "domain '%s' belongs to pool '%s', not '%s'; change one pool's name pattern",
				    o->name, o->pool ? o->pool : "?", pool);
	return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
			    "domain '%s' exists and is not managed by vdipool (no vdipool metadata); "
			    "vdipool never overwrites it: rename or remove it, or change the name pattern",
			    o->name);
}

/* Decides what one wanted clone needs, given what exists of it (o may be NULL). */
static void plan_wanted(vp_plan_item *it, const vp_desired *d, const vp_observed_clone *o)
{
	unsigned f = o ? o->flags : 0;
	bool has_dom = f & VP_OBS_DOMAIN, has_delta = f & VP_OBS_DELTA;
	bool running = f & VP_OBS_RUNNING;

	it->change = VP_CHANGE_NONE;
	it->reason = "";
	if (!has_dom && !has_delta) {
		it->change = VP_CHANGE_CREATE;
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE;
		it->reason = "new clone";
	} else if (!has_delta) {
		/* The domain points at a missing disk: stop it, give it a delta. */
		it->change = VP_CHANGE_REPAIR;
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | (running ? VP_STEP_STOP : 0);
		it->reason = "delta missing";
		running = false;
	} else if (!has_dom) {
		it->change = VP_CHANGE_REPAIR;
		it->steps = VP_STEP_DEFINE;
		it->reason = "domain missing";
	} else if (!streq(o->base_ref, d->base_ref)) {
		/* Stopped for the swap, defined anew (metadata: new and previous
		 * version), started again below when the spec wants it running. */
		it->change = VP_CHANGE_REBASE;
		it->steps = VP_STEP_REBASE | VP_STEP_DEFINE | (running ? VP_STEP_STOP : 0);
		it->reason = "on another base version";
		it->from_base = o->base_ref;
		running = false;
	} else if (!streq(o->spec_hash, d->spec_hash)) {
		it->change = VP_CHANGE_UPDATE;
		it->steps = VP_STEP_DEFINE;
		it->reason = "definition differs from the spec";
	}
	if (d->data_disk && !(f & VP_OBS_DATA)) {
		it->steps |= VP_STEP_CREATE_DATA;
		if (it->change == VP_CHANGE_NONE) {
			it->change = VP_CHANGE_REPAIR;
			it->reason = "data disk missing";
		}
	}
	if (d->start && !running) {
		it->steps |= VP_STEP_START;
		if (it->change == VP_CHANGE_NONE) {
			it->change = VP_CHANGE_START;
			it->reason = "not running";
		}
	} else if (!d->start && running) {
		it->steps |= VP_STEP_STOP;
		if (it->change == VP_CHANGE_NONE) {
			it->change = VP_CHANGE_STOP;
			it->reason = "running, spec says start: false";
		}
	}
}

static void plan_surplus(vp_plan_item *it, const vp_observed_clone *o)
{
	it->name = o->name;
	it->index = o->index;
	it->change = VP_CHANGE_REMOVE;
	it->reason = "beyond the spec's count";
	it->steps = ((o->flags & VP_OBS_RUNNING) ? VP_STEP_STOP : 0) |
		    ((o->flags & VP_OBS_DOMAIN) ? VP_STEP_UNDEFINE : 0) |
		    ((o->flags & VP_OBS_DELTA) ? VP_STEP_DELETE_DELTA : 0);
	it->keeps_data = o->flags & VP_OBS_DATA;
}

static int cmp_index_desc(const void *a, const void *b)
{
	const vp_plan_item *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? 1 : -1;
	return strcmp(y->name, x->name);
}

/* Surplus = observed things of this pool (our domains, or deltas in the pool's
 * directory) whose names the spec no longer asks for. */
static bool is_surplus(const vp_observed_clone *o, const vp_desired *d, const vp_strmap *wanted)
{
	bool ours = (o->flags & VP_OBS_DOMAIN) ? ((o->flags & VP_OBS_OURS) && streq(o->pool, d->pool))
					       : (o->flags & VP_OBS_DELTA) != 0;
	return ours && !vp_strmap_get(wanted, o->name);
}

static void account(vp_plan *p, const vp_desired *d, const vp_plan_item *it, const vp_observed_clone *o)
{
	p->counts[it->change]++;
	if (it->change == VP_CHANGE_REMOVE) {
		return;
	}
	if (it->steps & (VP_STEP_CREATE_DELTA | VP_STEP_REBASE))
		p->bytes_to_write += d->delta_bytes;
	if (it->steps & VP_STEP_CREATE_DATA)
		p->bytes_to_write += d->data_bytes;
	p->pool_bytes += (it->steps & (VP_STEP_CREATE_DELTA | VP_STEP_REBASE)) || !o ? d->delta_bytes
										       : o->delta_bytes;
	if (d->data_disk)
		p->pool_bytes += (it->steps & VP_STEP_CREATE_DATA) || !o ? d->data_bytes : o->data_bytes;
	p->full_copy_bytes += d->base_bytes + (d->data_disk ? d->data_bytes : 0);
}

/* Rebases go in waves of at most max_unavailable clones, in index order, so
 * that no more than that many clones are down at once. */
static void assign_waves(vp_plan *p, unsigned max_unavailable)
{
	size_t k = 0;

	for (size_t i = 0; i < p->count; i++) {
		vp_plan_item *it = &p->items[i];
		if (it->change != VP_CHANGE_REBASE)
			continue;
		it->wave = max_unavailable ? (unsigned)(k / max_unavailable) + 1 : 1;
		p->waves = it->wave;
		k++;
	}
}

int vp_plan_build(vp_plan **out, const vp_desired *d, const vp_observed *obs)
{
	vp_strmap by_name = VP_STRMAP_INIT, wanted = VP_STRMAP_INIT;
	vp_plan *p = NULL;
	size_t nsurplus = 0, n = 0;
	int rc = VP_ENOMEM;

	*out = NULL;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->items = calloc(d->count + obs->count + 1, sizeof(*p->items))))
		goto nomem;
	for (size_t i = 0; i < obs->count; i++)
		if (vp_strmap_put(&by_name, obs->clones[i].name, (void *)&obs->clones[i]) < 0)
			goto out;
	for (size_t i = 0; i < d->count; i++) {
		const vp_observed_clone *o = vp_strmap_get(&by_name, d->clones[i].name);
		if (o && foreign(o, d->pool)) {
			rc = conflict_error(o, d->pool);
			goto out;
		}
		if (vp_strmap_put(&wanted, d->clones[i].name, (void *)&d->clones[i]) < 0)
			goto out;
	}
	for (size_t i = 0; i < obs->count; i++)
		if (is_surplus(&obs->clones[i], d, &wanted))
			plan_surplus(&p->items[nsurplus++], &obs->clones[i]);
	qsort(p->items, nsurplus, sizeof(*p->items), cmp_index_desc);
	for (size_t i = 0; i < nsurplus; i++)
		account(p, d, &p->items[i], NULL);
	n = nsurplus;
	for (size_t i = 0; i < d->count; i++) {
		const vp_observed_clone *o = vp_strmap_get(&by_name, d->clones[i].name);
		vp_plan_item *it = &p->items[n++];

		it->name = d->clones[i].name;
		it->index = d->clones[i].index;
		plan_wanted(it, d, o);
		account(p, d, it, o);
	}
	p->count = n;
	p->pool_bytes += d->base_bytes;
	assign_waves(p, d->max_unavailable);
	*out = p;
	p = NULL;
	rc = 0;
	goto out;
nomem:
	rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
out:
	vp_strmap_release(&by_name);
	vp_strmap_release(&wanted);
	vp_plan_free(p);
	return rc;
}

void vp_plan_free(vp_plan *plan)
{
	if (!plan)
		return;
	free(plan->items);
	free(plan);
}

bool vp_plan_has_changes(const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++)
		if (plan->items[i].steps)
			return true;
	return false;
}
