/* inventory.c: reads the world (the pool's domains by metadata, its deltas and data disks) and
 * merges it into the planner's observed clones, with name lookups kept as hash maps. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/pool_int.h"

void pool_clear_inventory(vp_pool *p)
{
	free(p->names);
	free(p->want);
	vp_virt_domains_free(p->doms, p->ndoms);
	vp_strmap_release(&p->dom_by_name);
	vp_strmap_release(&p->dom_by_uuid);
	for (size_t i = 0; i < p->ndisks; i++) {
		free(p->disks[i].location);
		free(p->disks[i].backing);
	}
	free(p->disks);
	free(p->obs);
	free(p->obs_base);
	free(p->disk_base);
	free(p->macs);
	free(p->macs_taken);
	free(p->want_base);
	vp_store_list_free(p->known);
	free(p->targets);
	free(p->target_refs);
	p->disk_base = NULL;
	p->macs = NULL;
	p->macs_taken = NULL;
	p->want_base = NULL;
	p->known = NULL;
	p->targets = NULL;
	p->target_refs = NULL;
	p->nmacs_taken = p->nknown = p->ntargets = 0;
	p->known_listed = false;
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
		p->want[i] = (vp_desired_clone){ .name = name, .index = c->start_index + i };
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
	d->backing = strdup(info->backing);
	if (!d->location || !d->backing) {
		free(d->location);
		free(d->backing);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
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

bool pool_on_our_tier(const vp_pool *p, const vp_domain_meta *m)
{
	const char *spec = p->spec->storage.deltas->where, *real = p->tier_real;
	size_t ns = strlen(spec), nr = strlen(real);

	if (m->tier)
		return !strcmp(m->tier, spec) || !strcmp(m->tier, real);
	/* Defined before the tier was recorded: where its delta lies tells. */
	if (m->delta_path)
		return (!strncmp(m->delta_path, spec, ns) && m->delta_path[ns] == '/') ||
		       (!strncmp(m->delta_path, real, nr) && m->delta_path[nr] == '/');
	return true;
}

/* The same file, however its path is spelled. */
static bool same_file(const char *backing, const char *image)
{
	char real[PATH_MAX];

	if (!image)
		return false;
	if (vp_location_same(backing, image))
		return true;
	return image[0] == '/' && realpath(image, real) && !strcmp(backing, real);
}

/* The base ref ("name@version") that a delta's backing file names: the
 * domain's recorded base or previous base, the spec's, or any version of
 * the spec's base in the store; "" when it names none of them. */
static int disk_ref(vp_pool *p, const disk_entry *disk, const vp_virt_domain *dom, char out[REF_MAX])
{
	const vp_domain_meta *m = dom && dom->has_meta ? &dom->meta : NULL;
	const char *b = disk->backing;
	int rc;

	out[0] = '\0';
	if (!*b)
		return 0;
	if (m && m->base_name && m->base_version && same_file(b, m->base_image)) {
		snprintf(out, REF_MAX, "%s@%s", m->base_name, m->base_version);
		return 0;
	}
	if (m && m->base_name && m->prev_version && same_file(b, m->prev_image)) {
		snprintf(out, REF_MAX, "%s@%s", m->base_name, m->prev_version);
		return 0;
	}
	if (p->base_resolved && same_file(b, p->base.location)) {
		snprintf(out, REF_MAX, "%s", p->base_ref);
		return 0;
	}
	if (!p->known_listed) {
		if ((rc = vp_store_list(p->store, p->spec->base.name, &p->known, &p->nknown)) < 0)
			return rc;
		p->known_listed = true;
	}
	for (size_t i = 0; i < p->nknown; i++)
		if (same_file(b, p->known[i].location)) {
			snprintf(out, REF_MAX, "%s@%s", p->known[i].name, p->known[i].version);
			return 0;
		}
	return 0;
}

static int merge(vp_pool *p)
{
	vp_strmap *by_name = &p->obs_by_name, wanted = VP_STRMAP_INIT;
	int rc = VP_ENOMEM;

	p->obs = calloc(p->ndoms + p->ndisks + 1, sizeof(*p->obs));
	p->obs_base = calloc(p->ndoms + 1, sizeof(*p->obs_base));
	p->disk_base = calloc(p->ndisks + 1, sizeof(*p->disk_base));
	p->macs = calloc(p->ndoms + 1, sizeof(*p->macs));
	p->macs_taken = calloc(p->ndoms + 1, sizeof(*p->macs_taken));
	p->want_base = calloc(p->nwant + 1, sizeof(*p->want_base));
	if (!p->obs || !p->obs_base || !p->disk_base || !p->macs || !p->macs_taken || !p->want_base)
		goto nomem;
	for (size_t i = 0; i < p->nwant; i++)
		if (vp_strmap_put(&wanted, p->want[i].name, &p->want[i]) < 0)
			goto out;
	for (size_t i = 0; i < p->ndoms; i++) {
		const vp_virt_domain *d = &p->doms[i];
		bool namesake = d->has_meta && !strcmp(d->meta.pool, p->spec->pool);
		bool elsewhere = namesake && !pool_on_our_tier(p, &d->meta);
		bool ours = namesake && !elsewhere;
		vp_observed_clone *o;

		if (d->has_meta) {
			if (d->meta.mac)
				snprintf(p->macs[i], sizeof(p->macs[i]), "%s", d->meta.mac);
			else
				vp_domain_mac_legacy(d->meta.pool, d->name, p->macs[i]);
			if (!ours)
				p->macs_taken[p->nmacs_taken++] = p->macs[i];
		}
		/* Others' domains matter only when they hold a name we want. */
		if (!ours && !vp_strmap_get(&wanted, d->name))
			continue;
		if (!(o = obs_entry(p, by_name, d->name)))
			goto out;
		o->flags |= VP_OBS_DOMAIN;
		/* A parked clone (saved to disk) counts as up: a claim resumes it, apply does not boot it;
		 * a stop (rebase, reset, update) discards its saved state (vp_virt_stop). */
		o->flags |= d->state == VP_DOM_RUNNING || d->state == VP_DOM_PAUSED || d->saved ? VP_OBS_RUNNING : 0;
		if (d->has_meta) {
			o->flags |= VP_OBS_OURS;
			o->pool = d->meta.pool;
			o->index = d->meta.index;
			o->spec_hash = d->meta.spec_hash;
			snprintf(p->obs_base[i], sizeof(p->obs_base[i]), "%s@%s",
				 d->meta.base_name ? d->meta.base_name : "",
				 d->meta.base_version ? d->meta.base_version : "");
			o->base_ref = p->obs_base[i];
			o->mac = p->macs[i];
			o->claimed_by = d->meta.claimed_by;
			if (d->meta.detached)
				o->flags |= VP_OBS_DETACHED;
		}
		if (elsewhere)
			o->flags |= VP_OBS_ELSEWHERE;
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
			if ((rc = disk_ref(p, &p->disks[i], pool_dom_of(p, o->name), p->disk_base[i])) < 0)
				goto out;
			rc = VP_ENOMEM;
			o->disk_base_ref = p->disk_base[i];
			/* delta.encrypt: luks: a delta that is plain, or whose key libvirt lacks (a kill
			 * between its rename and its secret), is on no usable base: made again. */
			if (p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS && p->disks[i].location[0] == '/' &&
			    p->virt) {
				char uuid[37];
				int st = pool_luks_secret(p, p->disks[i].location, uuid);
				if (st < 0) {
					rc = st;
					goto out;
				}
				if (st != LUKS_OK)
					p->disk_base[i][0] = '\0';
			}
			if (!*p->disks[i].backing) {
				/* A full clone names no base: it is a copy of the one its domain
				 * records (NULL: trust the metadata); without a domain, of an
				 * unknown one (""), so it is made again. */
				const vp_virt_domain *dom = pool_dom_of(p, o->name);
				o->flags |= VP_OBS_STANDALONE;
				if (p->spec->clones.mode == VP_CLONE_FULL && dom && dom->has_meta)
					o->disk_base_ref = NULL;
			}
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

static int list_world(vp_pool *p)
{
	int rc;

	if ((rc = vp_virt_list(p->virt, &p->doms, &p->ndoms)) < 0)
		return rc;
	for (size_t i = 0; i < p->ndoms; i++)
		if ((rc = vp_strmap_put(&p->dom_by_name, p->doms[i].name, &p->doms[i])) < 0 ||
		    (rc = vp_strmap_put(&p->dom_by_uuid, p->doms[i].uuid, &p->doms[i])) < 0)
			return rc;
	return list_disks(p);
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
	if ((rc = list_world(p)) < 0)
		return rc;
	return merge(p);
}

int pool_inventory_list(vp_pool *p)
{
	pool_clear_inventory(p);
	return list_world(p);
}

size_t pool_count_claimed(const vp_pool *p)
{
	size_t n = 0;

	for (size_t i = 0; i < p->ndoms; i++) {
		const vp_virt_domain *d = &p->doms[i];

		if (d->has_meta && d->meta.claimed_by && !strcmp(d->meta.pool, p->spec->pool) &&
		    pool_on_our_tier(p, &d->meta))
			n++;
	}
	return n;
}

int pool_each_existing(vp_pool *p, int (*fn)(void *ctx, const char *name, unsigned index,
					     const char *meta_host), void *ctx)
{
	vp_strmap seen = VP_STRMAP_INIT;
	int rc = 0;

	for (size_t i = 0; i < p->ndoms && rc == 0; i++) {
		const vp_virt_domain *d = &p->doms[i];

		if (!d->has_meta || strcmp(d->meta.pool, p->spec->pool) || !pool_on_our_tier(p, &d->meta))
			continue;
		if ((rc = vp_strmap_put(&seen, d->name, (void *)d)) == 0)
			rc = fn(ctx, d->name, d->meta.index, d->meta.host);
	}
	for (size_t i = 0; i < p->ndisks && rc == 0; i++) {
		if (p->disks[i].kind != VP_DISK_DELTA || vp_strmap_get(&seen, p->disks[i].name))
			continue;
		if ((rc = vp_strmap_put(&seen, p->disks[i].name, &p->disks[i])) == 0)
			rc = fn(ctx, p->disks[i].name, 0, NULL);
	}
	vp_strmap_release(&seen);
	return rc;
}

int pool_set_want(vp_pool *p, const vp_desired_clone *want, size_t n)
{
	free(p->names);
	free(p->want);
	p->names = calloc(n + 1, 64);
	p->want = calloc(n + 1, sizeof(*p->want));
	p->nwant = 0;
	if (!p->names || !p->want)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		char *name = p->names + i * 64;

		snprintf(name, 64, "%s", want[i].name);
		p->want[i] = (vp_desired_clone){ .name = name, .index = want[i].index };
	}
	p->nwant = n;
	p->want_given = true;
	return merge(p);
}

int pool_adopt_base(vp_pool *p, const vp_base_info *b, bool *present)
{
	char ref[REF_MAX];
	vp_base_info here;
	int rc;

	snprintf(ref, sizeof(ref), "%s@%s", b->name, b->version);
	*present = false;
	rc = vp_store_stat(p->store, ref, &here);
	if (rc == VP_ENOENT) {
		vp_error_clear();
		/* Not there yet: planned from the controller's copy, pushed before use.
		 * Stores have one layout everywhere, so its location is the same. */
		here = *b;
	} else if (rc < 0) {
		vp_error_prefix("host '%s'", p->spec->hosts[p->host_index].name);
		return rc == VP_EINVAL ? VP_ECONFLICT : rc;
	} else if (strcmp(here.sha256, b->sha256)) {
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
				    "host '%s': its copy of base '%s' has sha256 %.16s..., not %.16s... "
				    "like the controller's: it is never used there; remove it on the host "
				    "(vdipool base rm) and apply again",
				    p->spec->hosts[p->host_index].name, ref, here.sha256, b->sha256);
	} else {
		*present = true;
	}
	p->base = here;
	snprintf(p->base_ref, sizeof(p->base_ref), "%s", ref);
	p->base_resolved = true;
	return 0;
}

const vp_observed_clone *pool_find_obs(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->obs_by_name, name);
}

const vp_virt_domain *pool_dom_of(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->dom_by_name, name);
}

const vp_base_info *pool_target(const vp_pool *p, const vp_plan_item *it)
{
	const char *ref = it->to_base ? it->to_base : p->base_ref;

	for (size_t i = 0; i < p->ntargets; i++)
		if (!strcmp(p->target_refs[i], ref))
			return &p->targets[i];
	return NULL;
}
