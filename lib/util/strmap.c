/* strmap.c: linear-probing string map; grows at 50% load so probes stay short. */
#include <string.h>

#include "util/strmap.h"
#include "util/util.h"

uint64_t vp_hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static int grow(vp_strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	const char **keys = calloc(cap, sizeof(*keys));
	void **vals = calloc(cap, sizeof(*vals));

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->keys[i])
			continue;
		size_t j = vp_hash_str(m->keys[i]) & (cap - 1);
		while (keys[j])
			j = (j + 1) & (cap - 1);
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	return 0;
}

int vp_strmap_put(vp_strmap *m, const char *key, void *val)
{
	size_t i;

	if ((m->len + 1) * 2 > m->cap && grow(m) < 0)
		return VP_ENOMEM;
	i = vp_hash_str(key) & (m->cap - 1);
	while (m->keys[i] && strcmp(m->keys[i], key) != 0)
		i = (i + 1) & (m->cap - 1);
	if (!m->keys[i]) {
		m->keys[i] = key;
		m->len++;
	}
	m->vals[i] = val;
	return 0;
}

void *vp_strmap_get(const vp_strmap *m, const char *key)
{
	size_t i;

	if (!m->cap)
		return NULL;
	i = vp_hash_str(key) & (m->cap - 1);
	while (m->keys[i]) {
		if (!strcmp(m->keys[i], key))
			return m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	return NULL;
}

void vp_strmap_release(vp_strmap *m)
{
	free(m->keys);
	free(m->vals);
	*m = (vp_strmap)VP_STRMAP_INIT;
}
