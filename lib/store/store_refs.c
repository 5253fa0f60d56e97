/* store_refs.c: listing bases, finding the deltas that reference them, remove and gc. */
#include <stdio.h>
#include <string.h>

#include "store.h"

/* ---- growable arrays of infos ----------------------------------------------------- */

struct base_vec {
	vp_base_info *v;
	size_t n;
	vp_store *s;
};

struct img_vec {
	vp_image_info *v;
	size_t n;
	const char *location; /* filter: only disks backing onto it; NULL: all */
};

static int grow(void **v, size_t n, size_t size)
{
	void *p;

	if (n & (n - 1))
		return 0; /* capacity is the next power of two: grow at 0, 1, 2, 4, ... */
	p = realloc(*v, (n ? 2 * n : 1) * size);
	if (!p)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	*v = p;
	return 0;
}

static int add_base(void *ctx, const vp_image_info *info)
{
	struct base_vec *bv = ctx;
	int rc;

	if ((rc = grow((void **)&bv->v, bv->n, sizeof(*bv->v))) < 0)
		return rc;
	if ((rc = store_load(bv->s, info->name, info->version, &bv->v[bv->n], NULL)) < 0)
		return rc;
	bv->n++;
	return 0;
}

static int add_disk(void *ctx, const vp_image_info *info)
{
	struct img_vec *iv = ctx;
	int rc;

	if (iv->location && (info->kind != VP_DISK_DELTA || !vp_location_same(info->backing, iv->location)))
		return 0;
	if ((rc = grow((void **)&iv->v, iv->n, sizeof(*iv->v))) < 0)
		return rc;
	iv->v[iv->n++] = *info;
	return 0;
}

static int cmp_base(const void *a, const void *b)
{
	const vp_base_info *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : store_cmp_age(x, y);
}

int store_list_plain(vp_store *s, const char *name, vp_base_info **out, size_t *n)
{
	struct base_vec bv = { .s = s };
	int rc = s->base.ops->base_list(s->base.h, name, add_base, &bv);

	*out = NULL;
	*n = 0;
	if (rc < 0) {
		free(bv.v);
		return rc;
	}
	if (bv.n)
		qsort(bv.v, bv.n, sizeof(*bv.v), cmp_base);
	*out = bv.v;
	*n = bv.n;
	return 0;
}

/* Every disk on every delta tier (location NULL) or those backing onto location. */
static int collect_disks(vp_store *s, const char *location, struct img_vec *iv)
{
	int rc;

	iv->location = location;
	for (size_t i = 0; i < s->ndelta; i++) {
		store_tier *t = &s->deltas[i];
		if ((rc = t->ops->delta_list(t->h, NULL, add_disk, iv)) < 0) {
			vp_error_prefix("cannot list the disks of tier '%s'", t->name);
			return rc;
		}
	}
	return 0;
}

/* The deltas backing onto one base: the backend's own answer when it has one. */
static int base_refs(vp_store *s, const vp_base_info *b, const struct img_vec *all,
		     struct img_vec *out)
{
	if (s->base.ops->base_children) {
		out->location = NULL;
		return s->base.ops->base_children(s->base.h, b->name, b->version, add_disk, out);
	}
	for (size_t i = 0; i < all->n; i++) {
		const vp_image_info *d = &all->v[i];
		int rc;
		if (d->kind == VP_DISK_DELTA && vp_location_same(d->backing, b->location) &&
		    (rc = add_disk(out, d)) < 0)
			return rc;
	}
	return 0;
}

int vp_store_list(vp_store *s, const char *name, vp_base_info **out, size_t *n)
{
	struct img_vec all = { 0 };
	int rc;

	if (name && !vp_name_valid(name))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid base name '%s'", name);
	if ((rc = store_list_plain(s, name, out, n)) < 0)
		return rc;
	if (*n && !s->base.ops->base_children)
		rc = collect_disks(s, NULL, &all);
	for (size_t i = 0; rc == 0 && i < *n; i++) {
		struct img_vec refs = { 0 };
		rc = base_refs(s, &(*out)[i], &all, &refs);
		(*out)[i].references = refs.n;
		free(refs.v);
	}
	free(all.v);
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

void vp_store_list_free(vp_base_info *list) { free(list); }

static int refs_of(vp_store *s, const vp_base_info *b, vp_image_info **out, size_t *n)
{
	struct img_vec all = { 0 }, refs = { 0 };
	int rc = 0;

	if (!s->base.ops->base_children)
		rc = collect_disks(s, b->location, &all);
	if (rc == 0)
		rc = base_refs(s, b, &all, &refs);
	free(all.v);
	if (rc < 0) {
		free(refs.v);
		return rc;
	}
	*out = refs.v;
	*n = refs.n;
	return 0;
}

int vp_store_references(vp_store *s, const char *ref, vp_image_info **out, size_t *n)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	vp_base_info b;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = store_resolve(s, ref, name, version)) < 0 ||
	    (rc = store_load(s, name, version, &b, NULL)) < 0)
		return rc;
	return refs_of(s, &b, out, n);
}

/* ---- remove --------------------------------------------------------------------- */

static int refuse_busy(const char *name, const char *version, const vp_image_info *refs, size_t n)
{
	vp_buf b = VP_BUF_INIT;
	int rc;

	for (size_t i = 0; i < n && i < 10; i++)
		vp_buf_printf(&b, "%s%s", i ? ", " : "", refs[i].location);
	if (n > 10)
		vp_buf_printf(&b, " and %zu more", n - 10);
	rc = vp_error_set(VP_ERR_STORE, VP_EBUSY,
			  "cannot remove base '%s@%s': %zu delta%s back%s onto it: %s", name, version,
			  n, n == 1 ? "" : "s", n == 1 ? "s" : "", vp_buf_cstr(&b));
	vp_buf_release(&b);
	return rc;
}

/* A derivation in progress backs its maintenance delta onto its parent. */
static int check_derivations(vp_store *s, const vp_base_info *b)
{
	vp_derive_info *d = NULL;
	size_t nd = 0;
	int rc = vp_store_derive_list(s, b->name, &d, &nd);

	if (rc == VP_ENOTSUP) { /* a tier that cannot derive has no derivations */
		vp_error_clear();
		return 0;
	}
	for (size_t i = 0; rc == 0 && i < nd; i++)
		if (!strcmp(d[i].parent, b->version))
			rc = vp_error_set(VP_ERR_STORE, VP_EBUSY,
					  "cannot remove base '%s@%s': the derivation of %s@%s backs onto "
					  "it; seal or abandon it first", b->name, b->version, d[i].name,
					  d[i].version);
	free(d);
	return rc;
}

/* Every rule that keeps a base: domains' pins, derivations, deltas on any tier. */
static int check_removable(vp_store *s, const vp_base_info *b, const vp_store_pins *pins)
{
	vp_image_info *refs = NULL;
	char owners[512];
	size_t n = 0;
	int rc;

	if (vp_store_pins_all(pins))
		return vp_error_set(VP_ERR_STORE, VP_EBUSY,
				    "cannot remove base '%s@%s': %s, which may back onto any base; nothing "
				    "is removed until that disk is gone or vdipool can read it", b->name,
				    b->version, vp_store_pins_all(pins));
	if ((n = vp_store_pins_owners(pins, b->location, owners, sizeof(owners))))
		return vp_error_set(VP_ERR_STORE, VP_EBUSY,
				    "cannot remove base '%s@%s': %zu domain%s record%s it as base or rollback "
				    "version: %s (or ha%s it in a disk's backing chain); remove or rebase "
				    "them first", b->name, b->version, n, n == 1 ? "" : "s",
				    n == 1 ? "s" : "", owners, n == 1 ? "s" : "ve");
	if ((rc = check_derivations(s, b)) < 0 || (rc = refs_of(s, b, &refs, &n)) < 0)
		return rc;
	rc = n ? refuse_busy(b->name, b->version, refs, n) : 0;
	free(refs);
	return rc;
}

int vp_store_remove(vp_store *s, const char *ref)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX], what[200];
	vp_store_pins *pins = NULL;
	vp_base_info b;
	bool took = false;
	int rc;

	if ((rc = store_parse_ref(ref, name, version)) < 0)
		return rc;
	if (!strcmp(version, "latest"))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "cannot remove base '%s': name an explicit version (NAME@VERSION)", ref);
	snprintf(what, sizeof(what), "remove base '%s@%s'", name, version);
	if ((rc = store_excl_begin(s, what, &took)) < 0)
		return rc;
	/* Under the lock: no apply can add a delta between the check and the removal. */
	if ((rc = store_load(s, name, version, &b, NULL)) == 0 &&
	    (rc = store_pins_load(s, what, &pins)) == 0 && (rc = check_removable(s, &b, pins)) == 0)
		rc = s->base.ops->base_remove(s->base.h, name, version);
	vp_store_pins_free(pins);
	store_excl_end(s, took);
	return rc;
}

/* ---- gc --------------------------------------------------------------------------- */

/* Of each name's versions (sorted oldest first), keep the `keep` newest and
 * every referenced or pinned one; the rest go. */
static int plan_bases(vp_gc_plan *p, const vp_base_info *list, size_t n, unsigned keep,
		      const vp_store_pins *pins)
{
	char owners[8];

	for (size_t end = n; end > 0;) {
		size_t start = end;
		while (start > 0 && !strcmp(list[start - 1].name, list[end - 1].name))
			start--;
		for (size_t j = end; j > start; j--) {
			const vp_base_info *b = &list[j - 1];
			int rc;
			if (end - j < keep || b->references ||
			    (pins && vp_store_pins_owners(pins, b->location, owners, sizeof(owners))))
				continue;
			if ((rc = grow((void **)&p->bases, p->nbases, sizeof(*p->bases))) < 0)
				return rc;
			p->bases[p->nbases++] = *b;
			p->bytes += b->allocated;
		}
		end = start;
	}
	return 0;
}

static bool has_delta(const struct img_vec *all, const vp_image_info *data)
{
	for (size_t i = 0; i < all->n; i++)
		if (all->v[i].kind == VP_DISK_DELTA && !strcmp(all->v[i].pool, data->pool) &&
		    !strcmp(all->v[i].name, data->name))
			return true;
	return false;
}

static int add_img(vp_image_info **v, size_t *n, const vp_image_info *d)
{
	int rc = grow((void **)v, *n, sizeof(**v));

	if (rc == 0)
		(*v)[(*n)++] = *d;
	return rc;
}

/* Deltas no domain uses; data disks whose clone has neither domain nor delta. */
static int plan_orphans(vp_store *s, vp_gc_plan *p, const vp_store_pins *pins)
{
	struct img_vec all = { 0 };
	char owners[8];
	int rc = collect_disks(s, NULL, &all);

	for (size_t i = 0; rc == 0 && i < all.n; i++) {
		const vp_image_info *d = &all.v[i];
		if (pins && vp_store_pins_owners(pins, d->location, owners, sizeof(owners)))
			continue;
		if (d->kind == VP_DISK_DATA) {
			/* User data: reported, removed only when asked (VP_GC_PURGE_ORPHANED_DATA). */
			if (pins && !vp_store_pins_all(pins) && !has_delta(&all, d))
				rc = add_img(&p->orphan_data, &p->norphan_data, d);
			continue;
		}
		if ((rc = add_img(&p->orphans, &p->norphans, d)) == 0 && p->domains_known)
			p->bytes += d->allocated;
	}
	free(all.v);
	return rc;
}

/* A version that an open derivation backs onto counts as referenced: its
 * maintenance delta needs it until it is sealed or abandoned. */
static int pin_derivation_parents(vp_store *s, vp_base_info *list, size_t n)
{
	vp_derive_info *d = NULL;
	size_t nd = 0;
	int rc = vp_store_derive_list(s, NULL, &d, &nd);

	if (rc == VP_ENOTSUP) { /* a tier that cannot derive has no derivations */
		vp_error_clear();
		return 0;
	}
	for (size_t i = 0; rc == 0 && i < nd; i++)
		for (size_t j = 0; j < n; j++)
			if (!strcmp(list[j].name, d[i].name) && !strcmp(list[j].version, d[i].parent))
				list[j].references++;
	free(d);
	return rc;
}

int vp_store_gc_plan(vp_store *s, unsigned keep, vp_gc_plan **out)
{
	vp_gc_plan *p = calloc(1, sizeof(*p));
	vp_store_pins *pins = NULL;
	vp_base_info *list = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!p)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	/* Without pins the plan is only shown: vp_store_gc_apply refuses it. */
	if (store_pins_load(s, "remove anything", &pins) < 0)
		snprintf(p->unknown, sizeof(p->unknown), "%s", vp_error_last()->message);
	else if (vp_store_pins_all(pins))
		snprintf(p->unknown, sizeof(p->unknown), "%s", vp_store_pins_all(pins));
	vp_error_clear();
	p->domains_known = !p->unknown[0];
	rc = vp_store_list(s, NULL, &list, &n);
	if (rc == 0)
		rc = pin_derivation_parents(s, list, n);
	if (rc == 0)
		rc = plan_bases(p, list, n, keep, pins);
	if (rc == 0)
		rc = plan_orphans(s, p, pins);
	vp_store_pins_free(pins);
	free(list);
	if (rc < 0) {
		vp_gc_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* Removes one disk if it is still the one planned and no domain took it since. */
static int remove_disk(vp_store *s, const vp_image_info *d, const vp_store_pins *pins)
{
	char owners[8];

	if (vp_store_pins_owners(pins, d->location, owners, sizeof(owners)))
		return 1;
	for (size_t i = 0; i < s->ndelta; i++) {
		store_tier *t = &s->deltas[i];
		vp_image_info cur;
		memset(&cur, 0, sizeof(cur));
		if (t->ops->delta_stat(t->h, d->kind, d->pool, d->name, &cur) == 0 &&
		    !strcmp(cur.location, d->location))
			return t->ops->delta_remove(t->h, d->kind, d->pool, d->name);
	}
	vp_error_clear();
	return 1; /* gone already */
}

static int gc_bases(vp_store *s, const vp_gc_plan *p, const vp_store_pins *pins, size_t *removed)
{
	for (size_t i = 0; i < p->nbases; i++) {
		vp_base_info b;
		int rc = store_load(s, p->bases[i].name, p->bases[i].version, &b, NULL);
		if (rc == VP_ENOENT) {
			vp_error_clear();
			continue;
		}
		if (rc == 0 && (rc = check_removable(s, &b, pins)) == VP_EBUSY) {
			vp_error_clear(); /* in use since the plan was made: it stays */
			continue;
		}
		if (rc == 0)
			rc = s->base.ops->base_remove(s->base.h, b.name, b.version);
		if (rc < 0)
			return rc;
		(*removed)++;
	}
	return 0;
}

/* 0 removed (counted), 1 kept, < 0 failed: 0 or the failure. */
static int count(int rc, size_t *removed)
{
	if (rc == 0)
		(*removed)++;
	return rc < 0 ? rc : 0;
}

/* A clone that got a delta since the plan has its data disk back in use. */
static bool has_delta_now(vp_store *s, const vp_image_info *data)
{
	for (size_t i = 0; i < s->ndelta; i++) {
		store_tier *t = &s->deltas[i];
		vp_image_info cur;
		memset(&cur, 0, sizeof(cur));
		if (t->ops->delta_stat(t->h, VP_DISK_DELTA, data->pool, data->name, &cur) == 0)
			return true;
	}
	vp_error_clear();
	return false;
}

int vp_store_gc_apply(vp_store *s, const vp_gc_plan *p, unsigned flags, size_t *removed)
{
	vp_store_pins *pins = NULL;
	bool took = false;
	int rc;

	*removed = 0;
	if ((rc = store_excl_begin(s, "gc", &took)) < 0)
		return rc;
	/* Pins again, under the lock: a domain may have been defined since the plan. */
	if ((rc = store_pins_load(s, "gc", &pins)) == 0 && vp_store_pins_all(pins))
		rc = vp_error_set(VP_ERR_STORE, VP_EBUSY, "gc removes nothing: %s, which may back onto "
				  "any base or delta", vp_store_pins_all(pins));
	if (rc == 0)
		rc = vp_store_sweep(s);
	if (rc == 0)
		rc = gc_bases(s, p, pins, removed);
	for (size_t i = 0; rc == 0 && i < p->norphans; i++)
		rc = count(remove_disk(s, &p->orphans[i], pins), removed);
	for (size_t i = 0; rc == 0 && (flags & VP_GC_PURGE_ORPHANED_DATA) && i < p->norphan_data; i++)
		rc = has_delta_now(s, &p->orphan_data[i])
			     ? 0 : count(remove_disk(s, &p->orphan_data[i], pins), removed);
	vp_store_pins_free(pins);
	store_excl_end(s, took);
	return rc < 0 ? rc : 0;
}

void vp_gc_plan_free(vp_gc_plan *p)
{
	if (!p)
		return;
	free(p->bases);
	free(p->orphans);
	free(p->orphan_data);
	free(p);
}
