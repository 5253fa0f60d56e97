/* planning.c: the pool's desired state (names, base, spec hash, costs, wave size) handed to the
 * pure planner. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"

/* Bytes a new delta writes, from the qcow2 layout: a header cluster, L1,
 * refcount table and blocks, and with preallocation an L2 entry and a
 * refcount for every cluster of the base; each piece rounded to 4 KiB
 * blocks, because the writer leaves the rest of each cluster a hole. */
static uint64_t round4k(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

/* A full clone writes a copy of the base: its allocated bytes (a reflink
 * shares them instead, which the planner cannot know in advance). */
static uint64_t delta_cost(const vp_pool *p)
{
	const vp_spec_delta *d = &p->spec->delta;
	uint64_t clusters, l2_entry = d->extended_l2 ? 16 : 8, l1;
	uint64_t vsize = d->size > p->base.virtual_size ? d->size : p->base.virtual_size;
	bool pre = d->preallocation == VP_SPEC_PREALLOC_METADATA;

	if (!p->base_resolved)
		return 0;
	if (p->spec->clones.mode == VP_CLONE_FULL)
		return p->base.allocated;
	clusters = (vsize + d->cluster_size - 1) / d->cluster_size;
	l1 = (clusters * l2_entry + d->cluster_size - 1) / d->cluster_size * 8;
	return round4k(512) + round4k(l1) + round4k(8) + round4k(pre ? clusters * 2 : 64) +
	       (pre ? round4k(clusters * l2_entry) : 0);
}

static uint64_t data_cost(const vp_pool *p)
{
	return p->spec->data_disk.size ? 4 * 65536 : 0;
}

static int plan_build(vp_pool *p, long want_count, vp_plan **out);

int pool_check_size(const vp_pool *p, const vp_base_info *b)
{
	uint64_t want = p->spec->delta.size;

	if (!want || want >= b->virtual_size)
		return 0;
	return vp_spec_error(p->spec, "delta.size",
			     "must be at least the base's virtual size: '%s@%s' is %llu bytes, got %llu "
			     "(a clone's disk is never smaller than its base)",
			     b->name, b->version, (unsigned long long)b->virtual_size, (unsigned long long)want);
}

/* rollout.max_unavailable as a clone count: a percentage of the pool, at least 1. */
static unsigned max_unavailable(const vp_spec *s)
{
	const vp_spec_rollout *r = &s->rollout;
	unsigned n = r->max_unavailable_percent
			     ? (unsigned)(((uint64_t)s->clones.count * r->max_unavailable + 99) / 100)
			     : r->max_unavailable;

	return n ? n : 1;
}

/* MACs come from the clone's (pool, name), rehashed while taken. */
static void mac_of(void *ctx, const char *name, unsigned attempt, char mac[18])
{
	const vp_pool *p = ctx;

	vp_domain_mac(p->spec->pool, name, attempt, mac);
}

int vp_pool_plan(vp_pool *p, long want_count, vp_plan **out)
{
	int rc;

	/* The accelerator shapes the definitions (and so their hash); destroy needs none. */
	if (want_count != 0 && (rc = vp_pool_accel(p, NULL)) < 0)
		return rc;
	return plan_build(p, want_count, out);
}

static int plan_build(vp_pool *p, long want_count, vp_plan **out)
{
	vp_desired d = {
		.pool = p->spec->pool,
		.base_ref = p->base_ref,
		.spec_hash = p->spec_hash,
		.start = p->spec->domain.start,
		.data_disk = p->spec->data_disk.size != 0,
		.count = want_count < 0 ? p->nwant : (size_t)want_count,
		.clones = p->want,
		.delta_bytes = delta_cost(p),
		.data_bytes = data_cost(p),
		.base_bytes = p->base_resolved ? p->base.allocated : 0,
		.max_unavailable = p->max_unavailable ? p->max_unavailable : max_unavailable(p->spec),
		.full = p->spec->clones.mode == VP_CLONE_FULL,
		.mac_of = mac_of,
		.mac_ctx = p,
		.claimed_too = want_count == 0, /* destroy takes claimed clones too */
	};
	vp_observed o = { p->nobs, p->obs, p->macs_taken, p->nmacs_taken };
	int rc;

	*out = NULL;
	p->destroying = want_count == 0;
	if (!p->destroying && p->base_resolved && (rc = pool_check_size(p, &p->base)) < 0)
		return rc;
	for (size_t i = 0; i < p->nwant; i++)
		p->want[i].base_ref = NULL;
	/* An interrupted rollback is carried on until every clone is back; a
	 * finished one's record is stale (apply drops it). */
	if (!p->destroying && !p->rollback_cmd && (rc = pool_rollback_read(p)) < 0)
		return rc;
	if (!p->destroying && p->rollback && (rc = pool_rollback_targets(p)) < 0)
		return rc;
	if (p->rollback && !p->rollback_moves && !p->rollback_cmd) {
		p->rollback = false;
		for (size_t i = 0; i < p->nwant; i++)
			p->want[i].base_ref = NULL;
	}
	if (d.count > p->nwant)
		d.count = p->nwant;
	rc = vp_plan_build(out, &d, &o);
	if (rc == 0 && want_count == 0)
		for (size_t i = 0; i < (*out)->count; i++)
			(*out)->items[i].reason = "destroy";
	if (rc == 0 && p->rollback && !p->destroying)
		for (size_t i = 0; i < (*out)->count; i++)
			if ((*out)->items[i].change == VP_CHANGE_REBASE &&
			    !strcmp((*out)->items[i].reason, "on another base version") &&
			    strcmp((*out)->items[i].to_base, p->base_ref))
				(*out)->items[i].reason = "rollback: back to the version it left";
	return rc;
}

int vp_pool_plan_rollback(vp_pool *p, vp_plan **out)
{
	int rc;

	*out = NULL;
	if ((rc = pool_rollback_read(p)) < 0)
		return rc;
	p->rollback_cmd = true;
	if (!p->rollback_recorded) {
		/* A fresh rollback undoes the rollout to the spec's version. */
		if (!p->base_resolved)
			return vp_error_set(VP_ERR_PLAN, VP_ENOENT,
					    "pool '%s': nothing to roll back: the spec's base '%s' is not in the "
					    "store",
					    p->spec->pool, p->spec->base.name);
		snprintf(p->rollback_from, sizeof(p->rollback_from), "%s", p->base.version);
		p->rollback = true;
	}
	if ((rc = pool_rollback_targets(p)) < 0)
		return rc;
	if (!p->rollback_moves && !p->rollback_recorded)
		return vp_error_set(VP_ERR_PLAN, VP_ENOENT,
				    "pool '%s': nothing to roll back: no clone on '%s@%s' records a previous "
				    "base version",
				    p->spec->pool, p->spec->base.name, p->rollback_from);
	return vp_pool_plan(p, -1, out);
}

void vp_pool_plan_purge_data(vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++) {
		vp_plan_item *it = &plan->items[i];
		if ((it->change == VP_CHANGE_REMOVE || it->change == VP_CHANGE_NONE) && it->keeps_data) {
			/* Also clones that left only their data disk behind. */
			if (it->change == VP_CHANGE_NONE) {
				it->change = VP_CHANGE_REMOVE;
				plan->counts[VP_CHANGE_REMOVE]++;
			}
			it->steps |= VP_STEP_DELETE_DATA;
			it->keeps_data = false;
		}
	}
}
