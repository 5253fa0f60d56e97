/* store.h (private): what lib/store*.c share: the store's tiers and image probing. */
#ifndef VP_STORE_PRIV_H
#define VP_STORE_PRIV_H

#include "vdipool/store.h"
#include "util/util.h"

/* What `qemu-img info --output=json` says about a file. */
typedef struct vp_probe {
	char format[32];
	uint64_t virtual_size;
	uint64_t actual_size;
	char backing[VP_PLUGIN_LOCATION_MAX];  /* "" when none */
} vp_probe;

int vp_store_parse_info_json(vp_probe *p, const char *json, const char *what);

/* One opened tier. */
typedef struct store_tier {
	const vp_plugin_ops *ops;
	void *h;
	char name[VP_PLUGIN_NAME_MAX];
	char path[4096];  /* the configured path, canonical when it exists; "" if none */
	char where[4352]; /* what the storage is, for the store lock's key: driver and path,
			   * plus host and port for a backend on another host */
	bool borrowed;    /* the handle belongs to another tier (base == delta tier) */
} store_tier;

struct vp_store {
	store_tier base;
	store_tier *deltas;  /* at least one; deltas[0] borrows base when none were given */
	size_t ndelta;
	char runtime_dir[256];  /* where the store lock lives (VP_RUNTIME_DIR) */
	int lock_fd;            /* -1: not locked */
	int lock_mode;          /* 0, VP_STORE_LOCK_SHARED or VP_STORE_LOCK_EXCLUSIVE */
	vp_store_pins_fn pins_fn;  /* what libvirt domains use; NULL: not known */
	void *pins_ctx;
};

/* Takes the exclusive store lock for one operation unless the caller holds
 * it already; *took says whether store_excl_end must drop it. */
int store_excl_begin(vp_store *s, const char *what, bool *took);
void store_excl_end(vp_store *s, bool took);

/* The pins from the caller's source (new object, caller frees); VP_EBUSY
 * when the store has no source, the source's error when it fails. */
int store_pins_load(vp_store *s, const char *what, vp_store_pins **out);

int store_parse_ref(const char *ref, char *name, char *version);
int store_resolve(vp_store *s, const char *ref, char *name, char *version);
int store_load(vp_store *s, const char *name, const char *version, vp_base_info *out,
	       vp_image_info *img);
int store_cmp_age(const vp_base_info *a, const vp_base_info *b);
int store_hash(vp_store *s, const char *name, const char *version, int staged, uint64_t total,
	       vp_store_progress_fn progress, void *ctx, char hex[65]);
/* vp_store_list without reference counts (cheap); sorted by name, oldest first. */
int store_list_plain(vp_store *s, const char *name, vp_base_info **out, size_t *n);

#endif
