/* strmap.h: an open-addressing hash map from C strings to pointers, for O(1) lookups at scale. */
#ifndef VP_UTIL_STRMAP_H
#define VP_UTIL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct vp_strmap {
	const char **keys; /* borrowed: keys must outlive the map */
	void **vals;
	size_t cap;        /* power of two */
	size_t len;
} vp_strmap;

#define VP_STRMAP_INIT { NULL, NULL, 0, 0 }

/* Inserts or replaces; 0 ok, VP_ENOMEM. */
int vp_strmap_put(vp_strmap *m, const char *key, void *val);
/* The value, or NULL when absent. */
void *vp_strmap_get(const vp_strmap *m, const char *key);
void vp_strmap_release(vp_strmap *m);

uint64_t vp_hash_str(const char *s);

#endif
