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

	if (iv->location && (info->kind != VP_DISK_DELTA || strcmp(info->backing, iv->location)))
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
		if (d->kind == VP_DISK_DELTA && !strcmp(d->backing, b->location) &&
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

int vp_store_remove(vp_store *s, const char *ref)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	vp_image_info *refs = NULL;
	vp_base_info b;
	size_t n = 0;
	int rc;

	if ((rc = store_parse_ref(ref, name, version)) < 0)
		return rc;
	if (!strcmp(version, "latest"))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "cannot remove base '%s': name an explicit version (NAME@VERSION)", ref);
	if ((rc = store_load(s, name, version, &b, NULL)) < 0 || (rc = refs_of(s, &b, &refs, &n)) < 0)
		return rc;
	rc = n ? refuse_busy(name, version, refs, n)
	       : s->base.ops->base_remove(s->base.h, name, version);
	free(refs);
	return rc;
}

/* ---- gc --------------------------------------------------------------------------- */

static bool in_set(const char *loc, const char *const *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(set[i], loc))
			return true;
	return false;
}

/* Of each name's versions (sorted oldest first), keep the `keep` newest and
 * every referenced one; the rest go. */
static int plan_bases(vp_gc_plan *p, const vp_base_info *list, size_t n, unsigned keep)
{
	for (size_t end = n; end > 0;) {
		size_t start = end;
		while (start > 0 && !strcmp(list[start - 1].name, list[end - 1].name))
			start--;
		for (size_t j = end; j > start; j--) {
			const vp_base_info *b = &list[j - 1];
			int rc;
			if (end - j < keep || b->references)
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

static int plan_orphans(vp_store *s, vp_gc_plan *p, const char *const *live, size_t nlive)
{
	struct img_vec all = { 0 };
	int rc = collect_disks(s, NULL, &all);

	for (size_t i = 0; rc == 0 && i < all.n; i++) {
		const vp_image_info *d = &all.v[i];
		/* Data disks hold user data: never gc candidates. */
		if (d->kind != VP_DISK_DELTA || (live && in_set(d->location, live, nlive)))
			continue;
		if ((rc = grow((void **)&p->orphans, p->norphans, sizeof(*p->orphans))) < 0)
			break;
		p->orphans[p->norphans++] = *d;
		if (live)
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

int vp_store_gc_plan(vp_store *s, unsigned keep, const char *const *live, size_t nlive,
		     vp_gc_plan **out)
{
	vp_gc_plan *p = calloc(1, sizeof(*p));
	vp_base_info *list = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!p)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	p->domains_known = live != NULL;
	rc = vp_store_list(s, NULL, &list, &n);
	if (rc == 0)
		rc = pin_derivation_parents(s, list, n);
	if (rc == 0)
		rc = plan_bases(p, list, n, keep);
	if (rc == 0)
		rc = plan_orphans(s, p, live, nlive);
	free(list);
	if (rc < 0) {
		vp_gc_plan_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

static int remove_orphan(vp_store *s, const vp_image_info *d)
{
	for (size_t i = 0; i < s->ndelta; i++) {
		store_tier *t = &s->deltas[i];
		vp_image_info cur;
		memset(&cur, 0, sizeof(cur));
		if (t->ops->delta_stat(t->h, d->kind, d->pool, d->name, &cur) == 0 &&
		    !strcmp(cur.location, d->location))
			return t->ops->delta_remove(t->h, d->kind, d->pool, d->name);
	}
	vp_error_clear();
	return 0; /* gone already */
}

int vp_store_gc_apply(vp_store *s, const vp_gc_plan *p, size_t *removed)
{
	int rc;

	*removed = 0;
	for (size_t i = 0; i < p->nbases; i++) {
		char ref[2 * VP_PLUGIN_NAME_MAX + 2];
		snprintf(ref, sizeof(ref), "%s@%s", p->bases[i].name, p->bases[i].version);
		/* vp_store_remove checks references again: a delta may have appeared. */
		rc = vp_store_remove(s, ref);
		if (rc == VP_EBUSY)
			continue;
		if (rc < 0)
			return rc;
		(*removed)++;
	}
	for (size_t i = 0; p->domains_known && i < p->norphans; i++) {
		if ((rc = remove_orphan(s, &p->orphans[i])) < 0)
			return rc;
		(*removed)++;
	}
	return 0;
}

void vp_gc_plan_free(vp_gc_plan *p)
{
	if (!p)
		return;
	free(p->bases);
	free(p->orphans);
	free(p);
}
