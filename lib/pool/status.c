/* status.c: per-clone and per-pool status from the last inventory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool_int.h"

static const char *state_name(const vp_observed_clone *o, const vp_pool *p)
{
	if (!o || !(o->flags & (VP_OBS_DOMAIN | VP_OBS_DELTA)))
		return "missing";
	if ((o->flags & VP_OBS_DOMAIN) &&
	    (!((o->flags & VP_OBS_OURS) && !strcmp(o->pool, p->spec->pool)) || (o->flags & VP_OBS_ELSEWHERE)))
		return "conflict";
	if (!(o->flags & VP_OBS_DOMAIN))
		return "no domain";
	if (!(o->flags & VP_OBS_DELTA))
		return "no delta";
	return (o->flags & VP_OBS_RUNNING) ? "running" : "shut off";
}

/* Where a running clone can be reached and since when it runs; what libvirt cannot say stays
 * empty (status shows what it knows). */
static void fill_live(const vp_pool *p, const char *name, vp_clone_status *c)
{
	vp_virt_addr *addrs = NULL;
	size_t n = 0;

	if (vp_virt_addresses(p->virt, name, &addrs, &n) == 0)
		for (size_t i = 0; i < n && c->naddrs < VP_ARRAY_SIZE(c->addrs); i++)
			snprintf(c->addrs[c->naddrs++], sizeof(c->addrs[0]), "%s", addrs[i].addr);
	free(addrs);
	if (vp_virt_started_at(p->virt, name, &c->since) < 0)
		c->since = 0;
	vp_error_clear();
}

static void fill_clone(const vp_pool *p, const char *name, vp_clone_status *c)
{
	const vp_observed_clone *o = pool_find_obs(p, name);
	const vp_virt_domain *d = pool_dom_of(p, name);
	const disk_entry *delta = vp_strmap_get(&p->delta_by_name, name);
	vp_qcow2_chain chain = { 0 };

	snprintf(c->name, sizeof(c->name), "%s", name);
	c->host = p->spec->hosts[p->host_index].name;
	c->state = state_name(o, p);
	if (d && d->state == VP_DOM_PAUSED && !strcmp(c->state, "running"))
		c->state = "paused";
	if (d && d->saved && !strcmp(c->state, "running"))
		c->state = "parked"; /* shut off with its saved state: a claim resumes it */
	if (d && (d->state == VP_DOM_RUNNING || d->state == VP_DOM_PAUSED))
		fill_live(p, name, c);
	if (d && d->has_meta && d->meta.claimed_by) {
		snprintf(c->claimed_by, sizeof(c->claimed_by), "%s", *d->meta.claimed_by ? d->meta.claimed_by : "?");
		c->claimed_until = d->meta.claimed_until;
	}
	if (d && d->has_meta)
		snprintf(c->base, sizeof(c->base), "%s@%s", d->meta.base_name ? d->meta.base_name : "?",
			 d->meta.base_version ? d->meta.base_version : "?");
	if (delta) {
		c->delta_bytes = delta->allocated;
		if (vp_qcow2_read_chain(&chain, delta->location) == 0)
			c->chain_depth = (unsigned)chain.depth;
		vp_qcow2_chain_release(&chain);
		vp_error_clear();
	}
	if (o && (o->flags & VP_OBS_DATA)) {
		c->has_data = true;
		c->data_bytes = o->data_bytes;
	}
}

int vp_pool_status_get(vp_pool *p, vp_pool_status **out)
{
	vp_pool_status *st = calloc(1, sizeof(*st));
	vp_strmap wanted = VP_STRMAP_INIT;
	size_t n = 0;

	*out = NULL;
	if (!st || !(st->clones = calloc(p->nwant + p->nobs + 1, sizeof(*st->clones))))
		goto nomem;
	for (size_t i = 0; i < p->nwant; i++) {
		if (vp_strmap_put(&wanted, p->want[i].name, &p->want[i]) < 0)
			goto nomem;
		fill_clone(p, p->want[i].name, &st->clones[n++]);
	}
	for (size_t i = 0; i < p->nobs; i++) {
		const vp_observed_clone *o = &p->obs[i];
		bool ours = (o->flags & VP_OBS_OURS) ? !strcmp(o->pool, p->spec->pool) : (o->flags & VP_OBS_DELTA);
		if (ours && !vp_strmap_get(&wanted, o->name))
			fill_clone(p, o->name, &st->clones[n++]);
	}
	st->count = n;
	for (size_t i = 0; i < n; i++) {
		const vp_clone_status *c = &st->clones[i];
		if (!strcmp(c->state, "running") || !strcmp(c->state, "paused"))
			st->running++;
		else if (!strcmp(c->state, "shut off"))
			st->stopped++;
		else if (!strcmp(c->state, "parked"))
			st->parked++;
		else if (!strcmp(c->state, "missing"))
			st->missing++;
		else
			st->other++;
		st->delta_bytes += c->delta_bytes + c->data_bytes;
	}
	if (p->base_resolved) {
		st->base_bytes = p->base.allocated;
		st->full_copy_bytes = (uint64_t)(n - st->missing) * p->base.allocated;
	}
	vp_strmap_release(&wanted);
	*out = st;
	return 0;
nomem:
	vp_strmap_release(&wanted);
	vp_pool_status_free(st);
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

void vp_pool_status_free(vp_pool_status *st)
{
	if (!st)
		return;
	free(st->clones);
	free(st);
}
