/* store_pins.c: the set of files that domains need (pins), handed to the store by its caller. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "util/strmap.h"

struct pin {
	char *location;
	char *owner;
	size_t next;  /* index + 1 of the next pin of this location; 0: none */
};

struct vp_store_pins {
	struct pin *v;
	size_t n, cap;
	vp_strmap first;  /* location -> index + 1 of its first pin */
	char *all;        /* why everything is pinned; NULL: not */
};

int vp_store_pins_new(vp_store_pins **out)
{
	if (!(*out = calloc(1, sizeof(**out))))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return 0;
}

void vp_store_pins_free(vp_store_pins *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].location);
		free(p->v[i].owner);
	}
	free(p->v);
	vp_strmap_release(&p->first);
	free(p->all);
	free(p);
}

/* Locations compare canonical: libvirt may name a file by another path, and an RBD image
 * ("rbd:pool/[namespace/]image[@snap]") with or without the client options a backend appends
 * (":id=..:conf=.."), which name how it is reached, not what it is. */
static char *canonical(const char *location)
{
	char buf[PATH_MAX];
	const char *opt;

	if (location[0] == '/' && realpath(location, buf))
		return vp_strdup(buf);
	if (!strncmp(location, "rbd:", 4) && (opt = strchr(location + 4, ':')))
		return vp_strdup_printf("%.*s", (int)(opt - location), location);
	return vp_strdup(location);
}

int vp_store_pins_add(vp_store_pins *p, const char *location, const char *owner)
{
	struct pin *pin;
	size_t head;

	if (!location || !*location)
		return 0;
	if (p->n == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 64;
		struct pin *nv = realloc(p->v, nc * sizeof(*nv));
		if (!nv)
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		/* The map's keys are the locations' own strings and its values
		 * indices: moving the array changes neither. */
		p->v = nv;
		p->cap = nc;
	}
	pin = &p->v[p->n];
	pin->location = canonical(location);
	pin->owner = vp_strdup(owner ? owner : "?");
	if (!pin->location || !pin->owner) {
		free(pin->location);
		free(pin->owner);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	head = (size_t)(uintptr_t)vp_strmap_get(&p->first, pin->location);
	pin->next = head;
	p->n++;
	if (vp_strmap_put(&p->first, pin->location, (void *)(uintptr_t)p->n) < 0)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return 0;
}

int vp_store_pins_pin_all(vp_store_pins *p, const char *why)
{
	if (p->all)
		return 0;
	if (!(p->all = vp_strdup(why ? why : "unknown disks")))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return 0;
}

const char *vp_store_pins_all(const vp_store_pins *p)
{
	return p->all;
}

size_t vp_store_pins_owners(const vp_store_pins *p, const char *location, char *buf, size_t len)
{
	VP_AUTOFREE char *loc = canonical(location);
	size_t n = 0, used = 0;

	if (len)
		buf[0] = '\0';
	if (!loc)
		return 0;
	for (size_t i = (size_t)(uintptr_t)vp_strmap_get(&p->first, loc); i; i = p->v[i - 1].next) {
		const char *o = p->v[i - 1].owner;
		bool dup = false;
		/* One domain may name a file in both definitions: list it once. */
		for (size_t j = (size_t)(uintptr_t)vp_strmap_get(&p->first, loc); j != i && !dup;
		     j = p->v[j - 1].next)
			dup = !strcmp(p->v[j - 1].owner, o);
		if (dup)
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", n ? ", " : "", o);
		n++;
	}
	return n;
}

void vp_store_set_pins_source(vp_store *s, vp_store_pins_fn fn, void *ctx)
{
	s->pins_fn = fn;
	s->pins_ctx = ctx;
}

int vp_store_pins_none(void *ctx, vp_store_pins *pins)
{
	(void)ctx;
	(void)pins;
	return 0;
}

/* The pins now, from the caller's source; refuses when there is none. */
int store_pins_load(vp_store *s, const char *what, vp_store_pins **out)
{
	int rc;

	*out = NULL;
	if (!s->pins_fn)
		return vp_error_set(VP_ERR_STORE, VP_EBUSY,
				    "cannot %s: the disks that domains use are not known (no pins source "
				    "given to the store), so nothing is removed", what);
	if ((rc = vp_store_pins_new(out)) < 0)
		return rc;
	if ((rc = s->pins_fn(s->pins_ctx, *out)) < 0) {
		vp_store_pins_free(*out);
		*out = NULL;
		vp_error_prefix("cannot %s: the disks that domains use cannot be read, so nothing "
				"is removed", what);
		return rc < 0 ? rc : VP_EGENERIC;
	}
	return 0;
}
