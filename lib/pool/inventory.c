/* inventory.c: reads the world (the pool's domains by metadata, its deltas and data disks) and
 * merges it into the planner's observed clones, with name lookups kept as hash maps. */
#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"

void pool_clear_inventory(vp_pool *p)
{
	free(p->names);
	free(p->want);
	vp_virt_domains_free(p->doms, p->ndoms);
	vp_strmap_release(&p->dom_by_name);
	for (size_t i = 0; i < p->ndisks; i++)
		free(p->disks[i].location);
	free(p->disks);
	free(p->obs);
	free(p->obs_base);
	vp_strmap_release(&p->obs_by_name);
	vp_strmap_release(&p->delta_by_name);
	p->names = NULL;
	p->want = NULL;
	p->doms = NULL;
	p->disks = NULL;
	p->obs = NULL;
	p->obs_base = NULL;
	p->nwant = p->ndoms = p->ndisks = p->capdisks = p->nobs = 0;
	p->base_resolved = false;
	p->base_ref[0] = '\0';
}

static int build_names(vp_pool *p)
{
	const vp_spec_clones *c = &p->spec->clones;

	p->names = calloc(c->count, 64);
	p->want = calloc(c->count, sizeof(*p->want));
	if (!p->names || !p->want)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (unsigned i = 0; i < c->count; i++) {
		char *name = p->names + (size_t)i * 64;
		int rc = vp_spec_clone_name(p->spec, c->start_index + i, name, 64);
		if (rc < 0)
			return rc;
		p->want[i] = (vp_desired_clone){ name, c->start_index + i };
	}
	p->nwant = c->count;
	return 0;
}

static int add_disk(void *ctx, const vp_image_info *info)
{
	vp_pool *p = ctx;
	disk_entry *d;

	if (p->ndisks == p->capdisks) {
		size_t cap = p->capdisks ? p->capdisks * 2 : 64;
		disk_entry *n = realloc(p->disks, cap * sizeof(*n));
		if (!n)
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		p->disks = n;
		p->capdisks = cap;
	}
	d = &p->disks[p->ndisks];
	snprintf(d->name, sizeof(d->name), "%s", info->name);
	d->kind = info->kind;
	d->allocated = info->allocated;
	d->location = strdup(info->location);
	if (!d->location)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	p->ndisks++;
	return 0;
}

/* Only data disks come from a separate data tier. */
static int add_data_disk(void *ctx, const vp_image_info *info)
{
	return info->kind == VP_DISK_DATA ? add_disk(ctx, info) : 0;
}

static int list_disks(vp_pool *p)
{
	int rc = p->deltas.ops->delta_list(p->deltas.handle, p->spec->pool, add_disk, p);

	if (rc == 0 && p->data_separate)
		rc = p->data.ops->delta_list(p->data.handle, p->spec->pool, add_data_disk, p);
	return rc;
}

static vp_observed_clone *obs_entry(vp_pool *p, vp_strmap *by_name, const char *name)
{
	vp_observed_clone *o = vp_strmap_get(by_name, name);

	if (o)
		return o;
	o = &p->obs[p->nobs++];
	o->name = name;
	if (vp_strmap_put(by_name, name, o) < 0)
		return NULL;
	return o;
}

static unsigned index_of(const char *name, const vp_strmap *wanted)
{
	const vp_desired_clone *w = vp_strmap_get(wanted, name);

	return w ? w->index : 0;
}

static int merge(vp_pool *p)
{
	vp_strmap *by_name = &p->obs_by_name, wanted = VP_STRMAP_INIT;
	int rc = VP_ENOMEM;

	p->obs = calloc(p->ndoms + p->ndisks + 1, sizeof(*p->obs));
	p->obs_base = calloc(p->ndoms + 1, sizeof(*p->obs_base));
	if (!p->obs || !p->obs_base)
		goto nomem;
	for (size_t i = 0; i < p->nwant; i++)
		if (vp_strmap_put(&wanted, p->want[i].name, &p->want[i]) < 0)
			goto out;
	for (size_t i = 0; i < p->ndoms; i++) {
		const vp_virt_domain *d = &p->doms[i];
		bool ours = d->has_meta && !strcmp(d->meta.pool, p->spec->pool);
		vp_observed_clone *o;

		/* Others' domains matter only when they hold a name we want. */
		if (!ours && !vp_strmap_get(&wanted, d->name))
			continue;
		if (!(o = obs_entry(p, by_name, d->name)))
			goto out;
		o->flags |= VP_OBS_DOMAIN;
		o->flags |= d->state == VP_DOM_RUNNING || d->state == VP_DOM_PAUSED ? VP_OBS_RUNNING : 0;
		if (d->has_meta) {
			o->flags |= VP_OBS_OURS;
			o->pool = d->meta.pool;
			o->index = d->meta.index;
			o->spec_hash = d->meta.spec_hash;
			snprintf(p->obs_base[i], sizeof(p->obs_base[i]), "%s@%s",
				 d->meta.base_name ? d->meta.base_name : "",
				 d->meta.base_version ? d->meta.base_version : "");
			o->base_ref = p->obs_base[i];
		}
	}
	for (size_t i = 0; i < p->ndisks; i++) {
		vp_observed_clone *o = obs_entry(p, by_name, p->disks[i].name);
		if (!o)
			goto out;
		if (!o->index)
			o->index = index_of(o->name, &wanted);
		if (p->disks[i].kind == VP_DISK_DATA) {
			o->flags |= VP_OBS_DATA;
			o->data_bytes = p->disks[i].allocated;
		} else {
			o->flags |= VP_OBS_DELTA;
			o->delta_bytes = p->disks[i].allocated;
			if (vp_strmap_put(&p->delta_by_name, p->disks[i].name, &p->disks[i]) < 0)
				goto out;
		}
	}
	rc = 0;
	goto out;
nomem:
	rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
out:
	vp_strmap_release(&wanted);
	return rc;
}

int vp_pool_inventory(vp_pool *p, bool need_base)
{
	int rc;

	pool_clear_inventory(p);
	if ((rc = build_names(p)) < 0)
		return rc;
	/* Without need_base a missing base is fine (status, destroy). */
	if ((rc = pool_resolve_base(p, p->spec->base.version ? p->spec->base.version : "latest")) < 0) {
		if (need_base)
			return rc;
		vp_error_clear();
	}
	if ((rc = vp_virt_list(p->virt, &p->doms, &p->ndoms)) < 0)
		return rc;
	for (size_t i = 0; i < p->ndoms; i++)
		if ((rc = vp_strmap_put(&p->dom_by_name, p->doms[i].name, &p->doms[i])) < 0)
			return rc;
	if ((rc = list_disks(p)) < 0)
		return rc;
	return merge(p);
}

const vp_observed_clone *pool_find_obs(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->obs_by_name, name);
}

const vp_virt_domain *pool_dom_of(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->dom_by_name, name);
}
