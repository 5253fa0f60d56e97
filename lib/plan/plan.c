/* plan.c: the pure planner: compares the desired pool with the observed one, clone by clone. */
#include <stdio.h>
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

/* A domain with a wanted name is ours only if its metadata names this pool
 * and its delta lies on our tier. */
static bool foreign(const vp_observed_clone *o, const char *pool)
{
	return (o->flags & VP_OBS_DOMAIN) &&
	       (!((o->flags & VP_OBS_OURS) && streq(o->pool, pool)) || (o->flags & VP_OBS_ELSEWHERE));
}

static int conflict_error(const vp_observed_clone *o, const char *pool)
{
	if ((o->flags & VP_OBS_OURS) && (o->flags & VP_OBS_ELSEWHERE))
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "domain '%s' belongs to another pool named '%s' whose deltas lie on another "
				    "storage tier; vdipool never takes it over: give this pool another name, or "
				    "destroy the other pool with its own spec",
				    o->name, pool);
	if (o->flags & VP_OBS_OURS)
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "domain '%s' belongs to pool '%s', not '%s'; change one pool's name pattern",
				    o->name, o->pool ? o->pool : "?", pool);
	return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
			    "domain '%s' exists and is not managed by vdipool (no vdipool metadata); "
			    "vdipool never overwrites it: rename or remove it, or change the name pattern",
			    o->name);
}

/* The base the delta is really on: what its backing file says, else what the
 * domain records. */
static const char *real_base(const vp_observed_clone *o)
{
	return o->disk_base_ref ? o->disk_base_ref : o->base_ref;
}

/* Decides what one wanted clone needs, given what exists of it (o may be NULL). */
static void plan_wanted(vp_plan_item *it, const vp_desired *d, const vp_desired_clone *dc,
			const vp_observed_clone *o)
{
	unsigned f = o ? o->flags : 0;
	bool has_dom = f & VP_OBS_DOMAIN, has_delta = f & VP_OBS_DELTA;
	bool running = f & VP_OBS_RUNNING;
	/* A detached clone (`vdipool detach`) is its user's now: its disk and definition are
	 * left alone (no rebase, no update, no re-link); only start/stop follow the spec. */
	bool detached = (f & VP_OBS_DETACHED) && has_dom && has_delta && o->base_ref;
	/* A linked delta where clones.mode is full. (A standalone disk where it is linked
	 * names no base, so it is already made again below: its disk_base_ref is "".) */
	bool other_mode = has_delta && d->full && !(f & VP_OBS_STANDALONE);
	const char *want = dc->base_ref ? dc->base_ref : d->base_ref;

	it->change = VP_CHANGE_NONE;
	it->reason = "";
	it->to_base = want;
	if (detached) {
		it->to_base = o->base_ref;
	} else if (!has_dom && !has_delta) {
		it->change = VP_CHANGE_CREATE;
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE;
		it->reason = "new clone";
	} else if (!has_delta) {
		/* The domain points at a missing disk: stop it, give it a delta. */
		it->change = VP_CHANGE_REPAIR;
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | (running ? VP_STEP_STOP : 0);
		it->reason = "delta missing";
		running = false;
	} else if (!has_dom && ((o->disk_base_ref && !streq(o->disk_base_ref, want)) || other_mode)) {
		/* An old delta without its domain: the domain comes back on the wanted base. */
		it->change = VP_CHANGE_REBASE;
		it->steps = VP_STEP_REBASE | VP_STEP_DEFINE;
		it->reason = other_mode ? "domain missing, disk of the other clones.mode"
					: "domain missing, delta on another base version";
		it->from_base = o->disk_base_ref && *o->disk_base_ref ? o->disk_base_ref : NULL;
	} else if (!has_dom) {
		it->change = VP_CHANGE_REPAIR;
		it->steps = VP_STEP_DEFINE;
		it->reason = "domain missing";
	} else if (!streq(o->base_ref, want) || !streq(real_base(o), o->base_ref) || other_mode) {
		/* Stopped for the swap, defined anew (metadata: new and previous
		 * version), started again below when the spec wants it running. A
		 * delta that backs onto another base than the domain records (a crash
		 * between the swap and the redefine) is made again the same way. */
		it->change = VP_CHANGE_REBASE;
		it->steps = VP_STEP_REBASE | VP_STEP_DEFINE | (running ? VP_STEP_STOP : 0);
		it->reason = other_mode && streq(o->base_ref, want) ? "a linked delta; clones.mode is full"
			     : streq(real_base(o), o->base_ref) ? "on another base version"
			     : !d->full && (f & VP_OBS_STANDALONE) ? "a disk without backing file (a full copy); "
								     "clones.mode is linked"
								   : "delta backs onto another base than its domain records";
		/* Back onto the base its domain records: no version is left, so the
		 * recorded previous version stays. */
		it->from_base = streq(o->base_ref, want) ? NULL : o->base_ref;
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

/* A clone beyond the spec's count. One that left only its data disk behind
 * (a plain destroy, a scale-down) is listed too, unchanged, so that destroy
 * --purge-data can remove that disk. */
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
	if (!it->steps) {
		it->change = VP_CHANGE_NONE;
		it->reason = "only its data disk is left";
	}
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
	bool ours = (o->flags & VP_OBS_DOMAIN) ? ((o->flags & VP_OBS_OURS) && streq(o->pool, d->pool) &&
						  !(o->flags & VP_OBS_ELSEWHERE))
					       : (o->flags & (VP_OBS_DELTA | VP_OBS_DATA)) != 0;
	return ours && !vp_strmap_get(wanted, o->name);
}

static void account(vp_plan *p, const vp_desired *d, const vp_plan_item *it, const vp_observed_clone *o)
{
	if (!it->to_base && it->change == VP_CHANGE_NONE)
		return; /* a leftover data disk, not a clone */
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

/* What takes an existing clone down or changes it under its user: rebases,
 * updates and repairs. These go in waves of at most max_unavailable clones,
 * in index order, so that no more than that many clones are down at once. */
static bool disruptive(const vp_plan_item *it)
{
	return it->change == VP_CHANGE_REBASE || it->change == VP_CHANGE_UPDATE ||
	       it->change == VP_CHANGE_REPAIR;
}

static void assign_waves(vp_plan *p, unsigned max_unavailable)
{
	size_t k = 0;

	for (size_t i = 0; i < p->count; i++) {
		vp_plan_item *it = &p->items[i];
		if (!disruptive(it))
			continue;
		it->wave = max_unavailable ? (unsigned)(k / max_unavailable) + 1 : 1;
		p->waves = it->wave;
		k++;
	}
}

static const char taken[] = "";

/* Gives every wanted clone a MAC no other clone on the host has: first the
 * existing clones keep theirs (in index order; a later one that collides is
 * updated), then the others take the first free attempt of their hash. */
static int assign_macs(vp_plan *p, size_t first, const vp_desired *d, const vp_observed *obs,
		       const vp_strmap *by_name)
{
	vp_strmap used = VP_STRMAP_INIT;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < obs->nmacs_taken; i++)
		rc = vp_strmap_put(&used, obs->macs_taken[i], (void *)taken);
	for (size_t i = 0; rc == 0 && i < first; i++) { /* removals keep theirs until they go */
		const vp_observed_clone *o = vp_strmap_get(by_name, p->items[i].name);
		if (o && o->mac)
			rc = vp_strmap_put(&used, o->mac, (void *)taken);
	}
	for (size_t i = first; rc == 0 && i < p->count; i++) {
		vp_plan_item *it = &p->items[i];
		const vp_observed_clone *o = vp_strmap_get(by_name, it->name);

		if (!o || !(o->flags & VP_OBS_DOMAIN) || !o->mac || vp_strmap_get(&used, o->mac))
			continue;
		snprintf(it->mac, sizeof(it->mac), "%s", o->mac);
		rc = vp_strmap_put(&used, it->mac, (void *)taken);
	}
	for (size_t i = first; rc == 0 && i < p->count; i++) {
		vp_plan_item *it = &p->items[i];
		const vp_observed_clone *o = vp_strmap_get(by_name, it->name);

		if (it->mac[0])
			continue;
		for (unsigned n = 0; !it->mac[0] || vp_strmap_get(&used, it->mac); n++)
			d->mac_of(d->mac_ctx, it->name, n, it->mac);
		rc = vp_strmap_put(&used, it->mac, (void *)taken);
		if (o && (o->flags & VP_OBS_DOMAIN) && o->mac) {
			/* Its MAC is another clone's: it gets a new one. */
			it->steps |= VP_STEP_DEFINE;
			if (it->change == VP_CHANGE_NONE || it->change == VP_CHANGE_START ||
			    it->change == VP_CHANGE_STOP) {
				it->change = VP_CHANGE_UPDATE;
				it->reason = "its MAC address is another clone's";
			}
		}
	}
	vp_strmap_release(&used);
	return rc;
}

/* A claimed clone belongs to its holder until released: whatever the spec says (a new base,
 * definition, the count), it is not touched; the next apply after its release catches up. */
static void leave_claimed(vp_plan *p, const vp_strmap *by_name)
{
	for (size_t i = 0; i < p->count; i++) {
		vp_plan_item *it = &p->items[i];
		const vp_observed_clone *o = vp_strmap_get(by_name, it->name);

		if (!o || !o->claimed_by || it->change == VP_CHANGE_NONE)
			continue;
		it->reason = it->change == VP_CHANGE_REMOVE ? "claimed: stays until released"
			     : it->change == VP_CHANGE_REBASE ? "claimed: rebased once released"
							       : "claimed: left alone until released";
		if (it->change == VP_CHANGE_REMOVE)
			it->to_base = NULL;
		it->change = VP_CHANGE_NONE;
		it->steps = 0;
		it->from_base = NULL;
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
	n = nsurplus;
	for (size_t i = 0; i < d->count; i++) {
		vp_plan_item *it = &p->items[n++];

		it->name = d->clones[i].name;
		it->index = d->clones[i].index;
		plan_wanted(it, d, &d->clones[i], vp_strmap_get(&by_name, d->clones[i].name));
	}
	p->count = n;
	if (d->mac_of && (rc = assign_macs(p, nsurplus, d, obs, &by_name)) < 0)
		goto out;
	if (!d->claimed_too)
		leave_claimed(p, &by_name);
	for (size_t i = 0; i < nsurplus; i++)
		account(p, d, &p->items[i], NULL);
	for (size_t i = nsurplus; i < n; i++)
		account(p, d, &p->items[i], vp_strmap_get(&by_name, p->items[i].name));
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
