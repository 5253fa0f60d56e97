/* vdipool/store.h: the versioned golden base store: import, list, verify, remove, references, gc. */
#ifndef VDIPOOL_STORE_H
#define VDIPOOL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"
#include "vdipool/plugin.h"
#include "vdipool/ssh.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A base tier (where golden images live) plus the delta tiers whose deltas
 * reference them. Opaque; not thread-safe (use one per thread). */
typedef struct vp_store vp_store;

typedef struct vp_store_tier {
	const char *driver;     /* storage plugin name, e.g. "dir" */
	vp_tier_config config;  /* strings are copied by vp_store_open */
} vp_store_tier;

/* Opens the tiers through their plugins. ndelta == 0: the base tier holds
 * the deltas too. Free with vp_store_free. */
VP_API int vp_store_open(vp_store **out, const vp_store_tier *base,
			 const vp_store_tier *deltas, size_t ndelta);

/* vp_store_open, plus (for a dir base tier) every delta tier recorded in it
 * and the base tier itself as a delta tier: the whole set of deltas that may
 * back onto its bases, as vp_store_open_root sees it, with the given tiers
 * (any driver) added. What gc and base rm with a spec open. */
VP_API int vp_store_open_registered(vp_store **out, const vp_store_tier *base,
				    const vp_store_tier *deltas, size_t ndelta);

/* The store without a spec: one `dir` tier at `root` for bases and deltas. */
VP_API int vp_store_open_root(vp_store **out, const char *root);
VP_API void vp_store_free(vp_store *s);

/* ---- the store lock --------------------------------------------------------------
 * One lock per base tier, in a root-only runtime directory: shared while
 * apply, rollout and reset create deltas, exclusive while gc, base rm,
 * derive and seal remove or replace. Removals take it themselves (failing
 * with VP_EBUSY when another vdipool holds it) unless the caller holds it
 * exclusively already, and re-check references under it. */

#define VP_STORE_LOCK_SHARED 1
#define VP_STORE_LOCK_EXCLUSIVE 2

/* Opens (creating, 0600) `file` in the runtime directory `dir` (created
 * 0700 when missing) for flock. Refuses (VP_ECONFLICT) a directory that is
 * a symlink, not owned by root or open to group/others, and a lock file
 * that is a symlink or not a regular file owned by root. Returns the fd. */
VP_API int vp_store_lockfile_open(const char *dir, const char *file);

/* Where this store's lock lives; default VP_RUNTIME_DIR (tests use another). */
VP_API int vp_store_set_runtime_dir(vp_store *s, const char *dir);

/* Takes the store lock in mode (VP_STORE_LOCK_*), waiting or failing with
 * VP_EBUSY; held until vp_store_unlock or vp_store_free. */
VP_API int vp_store_lock(vp_store *s, int mode, bool wait);
VP_API void vp_store_unlock(vp_store *s);

/* ---- pins: what libvirt domains need ------------------------------------------------
 * The store cannot see domains; the caller gives it a source of pins (see
 * vdipool/refs.h for the libvirt one). Without one, or when it fails,
 * vp_store_remove and vp_store_gc_apply remove no base and no delta. */

typedef struct vp_store_pins vp_store_pins;

VP_API int vp_store_pins_new(vp_store_pins **out);
VP_API void vp_store_pins_free(vp_store_pins *p);
/* `location` (a disk file, any layer of its backing chain, or a base a
 * domain records) is needed by `owner` (a domain name). */
VP_API int vp_store_pins_add(vp_store_pins *p, const char *location, const char *owner);
/* Something vdipool cannot read (a network disk, an unreadable device) may
 * back onto anything: every base and delta is pinned; `why` says what. */
VP_API int vp_store_pins_pin_all(vp_store_pins *p, const char *why);
/* NULL, or why everything is pinned (borrowed). */
VP_API const char *vp_store_pins_all(const vp_store_pins *p);
/* The owners of location, comma-separated into buf; how many. */
VP_API size_t vp_store_pins_owners(const vp_store_pins *p, const char *location, char *buf,
				   size_t len);

/* Fills pins (new and empty) with what the domains use; 0 or a negative
 * VP_E* with the error recorded (then nothing is removed). */
typedef int (*vp_store_pins_fn)(void *ctx, vp_store_pins *pins);
VP_API void vp_store_set_pins_source(vp_store *s, vp_store_pins_fn fn, void *ctx);

/* A pins source for hosts without domains (tests, a store no hypervisor
 * uses): adds nothing. */
VP_API int vp_store_pins_none(void *ctx, vp_store_pins *pins);

/* Removes, on every tier, the temporaries that vdipool names with a process
 * id (staged imports, removals, temporary and flattening deltas) whose
 * process is gone. apply, destroy and gc call it; safe at any time. */
VP_API int vp_store_sweep(vp_store *s);

/* Progress of a long operation. phase: "convert" (import copy) or "hash".
 * total may be 0 when unknown. May be called from a helper thread. */
typedef void (*vp_store_progress_fn)(void *ctx, const char *phase, uint64_t done, uint64_t total);

/* What the store knows about one base version (plain data, no release). */
typedef struct vp_base_info {
	char name[VP_PLUGIN_NAME_MAX];
	char version[VP_PLUGIN_NAME_MAX];
	char tier[VP_PLUGIN_NAME_MAX];          /* the base tier's name */
	char sha256[65];                        /* lowercase hex */
	char format[16];                        /* stored format: qcow2 or raw */
	char source_format[16];                 /* format of the imported file */
	char imported[40];                      /* UTC, "2026-01-02T03:04:05.123456Z" */
	char parent[VP_PLUGIN_NAME_MAX];        /* version it derives from; "" none */
	char source[VP_PLUGIN_LOCATION_MAX];    /* the imported file (absolute) */
	char location[VP_PLUGIN_LOCATION_MAX];  /* what deltas back onto */
	uint64_t virtual_size;
	uint64_t disk_bytes;                    /* bytes on disk at import */
	uint64_t image_size;                    /* image file size at import */
	int64_t image_mtime_sec;                /* image mtime at import; 0: not known */
	long image_mtime_nsec;
	uint64_t allocated;                     /* bytes on disk now */
	size_t references;                      /* deltas backed by it (vp_store_list only) */
	char compression[8];                    /* "zlib": stored as compressed qcow2; "" not */
} vp_base_info;

typedef struct vp_store_import_opts {
	const char *format;         /* stored format: "qcow2" (default) or "raw" */
	const char *parent;         /* the version it was derived from, or NULL */
	vp_store_progress_fn progress;
	void *progress_ctx;
	/* Store it as compressed qcow2 (zlib clusters, qemu-img convert -c): fewer bytes stored
	 * and pushed, paid for by QEMU inflating what clones read from the base. The manifest
	 * says so (compression=zlib); sha256 still covers the stored file's bytes. */
	bool compress;
} vp_store_import_opts;

/* Valid version: 1..64 of [A-Za-z0-9._+-], not starting with '.', not "latest". */
VP_API bool vp_store_version_valid(const char *version);

/* Imports `file` (raw or qcow2, without a backing file) as name@version:
 * converts it into a staging area on the base tier, hashes it, publishes it
 * read-only with its manifest, atomically. Returns 0 when imported, 1 when
 * the same version exists already with the same content (nothing done),
 * VP_EEXIST when it exists with other content, VP_EINVAL for bad input.
 * opts and out may be NULL. A failed import leaves nothing behind. */
VP_API int vp_store_import(vp_store *s, const char *name, const char *version, const char *file,
			   const vp_store_import_opts *opts, vp_base_info *out);

/* "name@version"; "name@latest" (or just "name") is the newest version of
 * name by import time, ties broken by version (strverscmp: 1.10 > 1.9). */
VP_API int vp_store_stat(vp_store *s, const char *ref, vp_base_info *out);

/* Every base (name NULL) or every version of name, sorted by name, then
 * oldest to newest, with `references` filled. *out is the caller's: free
 * with vp_store_list_free. */
VP_API int vp_store_list(vp_store *s, const char *name, vp_base_info **out, size_t *n);
VP_API void vp_store_list_free(vp_base_info *list);

/* Recomputes the SHA-256 of the stored image. VP_EIO with both hashes in the
 * message when it does not match the manifest. progress may be NULL. */
VP_API int vp_store_verify(vp_store *s, const char *ref, vp_store_progress_fn progress, void *ctx);

/* Size and mtime of the image still match the manifest (cheap check before
 * apply); VP_ECONFLICT naming what changed when not. */
VP_API int vp_store_check_unchanged(vp_store *s, const char *ref);

/* The disks (deltas) on the delta tiers that back onto ref. *out is the
 * caller's: free() it. */
VP_API int vp_store_references(vp_store *s, const char *ref, vp_image_info **out, size_t *n);

/* Removes a base version, under the exclusive store lock. VP_EBUSY when any
 * rule keeps it: a delta on any delta tier backs onto it, a domain pins it
 * (a layer of a disk's backing chain, its recorded base or rollback
 * version), a pinned disk vdipool cannot read, a derivation in progress
 * backs onto it, or the store has no pins source (or it fails). */
VP_API int vp_store_remove(vp_store *s, const char *ref);

/* What gc would remove. */
typedef struct vp_gc_plan {
	vp_base_info *bases;    /* unreferenced, unpinned versions beyond the `keep` newest per name */
	size_t nbases;
	vp_image_info *orphans; /* deltas no domain uses (only candidates if !domains_known) */
	size_t norphans;
	bool domains_known;     /* false: the plan is only shown; vp_store_gc_apply refuses */
	char unknown[512];      /* why the domains are not known ("" when they are) */
	uint64_t bytes;         /* bytes the removal frees (bases, plus orphans if known) */
	vp_image_info *orphan_data; /* data disks whose clone has neither domain nor delta */
	size_t norphan_data;
} vp_gc_plan;

/* Also remove the orphaned data disks (user data: only when asked). */
#define VP_GC_PURGE_ORPHANED_DATA 0x01u

/* Plans gc with the store's pins source (see vp_store_set_pins_source). */
VP_API int vp_store_gc_plan(vp_store *s, unsigned keep, vp_gc_plan **out);
/* Removes what the plan lists, under the exclusive store lock, with the pins
 * read again and every rule re-checked (what became used since stays);
 * *removed counts it. Refuses (VP_EBUSY) without pins or when a disk pins
 * everything. flags: VP_GC_*. */
VP_API int vp_store_gc_apply(vp_store *s, const vp_gc_plan *plan, unsigned flags, size_t *removed);
VP_API void vp_gc_plan_free(vp_gc_plan *plan);

/* ---- pushing a version into another host's store -------------------------------- */

typedef struct vp_store_push_opts {
	vp_ssh_progress_fn progress; /* NULL: none */
	void *progress_ctx;
	size_t window;               /* bytes per pipelined SFTP write; 0: 4 MiB */
} vp_store_push_opts;

typedef struct vp_store_push_result {
	bool already;                /* the same sha256 was there already: nothing sent */
	vp_ssh_push_result xfer;     /* what the transfer did (zero when already) */
} vp_store_push_result;

/* Pushes ref ("name@version" or "name" for the newest) of src, whose base tier must
 * be a local dir tier, into the store of the host dst is connected to, where
 * remote_bases_dir (absolute) is that store's bases directory (a dir tier's
 * <root>/bases, which the host's ssh tier and a vdipool running there both see).
 * The image goes to <bases>/.push-NAME-VERSION-PID/ (allocated extents only,
 * pipelined, resumable), is hashed on the host and checked against the manifest's
 * SHA-256, made read-only; then the manifest is written and the directory renamed
 * to <bases>/NAME/VERSION, so the host sees all of a version or nothing. A staging
 * directory an interrupted push left is taken over and resumed. The same version
 * with the same SHA-256 there: 0 with out->already. With another SHA-256, or a
 * directory without a readable manifest: refused (VP_EEXIST, VP_ECONFLICT), never
 * replaced. opts and out may be NULL. */
VP_API int vp_store_push(vp_store *src, const char *ref, vp_ssh *dst, const char *remote_bases_dir,
			 const vp_store_push_opts *opts, vp_store_push_result *out);

/* ---- manifest (exposed for tests and tools) ---------------------------------- */

/* Formats info as the manifest text (key=value lines); caller frees. */
VP_API char *vp_store_manifest_format(const vp_base_info *info);
/* Parses manifest text into info (manifest fields only). VP_EINVAL when malformed. */
VP_API int vp_store_manifest_parse(vp_base_info *info, const char *text, const char *what);

/* ---- derivation: updating a golden image (dir base tier only) --------------------------
 * A derivation of name@V2 from name@V1 is a writable qcow2 "maintenance delta"
 * on V1 (dir tier: <tier>/bases/<name>/.derive-<V2>/disk.qcow2) plus a small
 * state file beside it. Hidden entries are not versions: list, gc and rm never
 * see them. Seal flattens the delta and publishes it through vp_store_import. */

typedef struct vp_derive_info {
	char name[VP_PLUGIN_NAME_MAX];
	char version[VP_PLUGIN_NAME_MAX];      /* the version being derived */
	char parent[VP_PLUGIN_NAME_MAX];       /* the version it is derived from */
	char parent_sha256[65];                /* the parent's sha256 when it started */
	char started[40];                      /* UTC, like vp_base_info.imported */
	char location[VP_PLUGIN_LOCATION_MAX]; /* the writable maintenance delta */
} vp_derive_info;

/* Starts deriving name@version from `ref` ("name@V1", or "name" for the
 * newest): creates the maintenance delta and records the derivation. VP_EINVAL
 * for a bad version, VP_ENOENT when ref does not exist, VP_EEXIST when the
 * version exists or is being derived already, VP_ENOTSUP when the base tier is
 * not a dir tier. out may be NULL. */
VP_API int vp_store_derive(vp_store *s, const char *ref, const char *version, vp_derive_info *out);

/* The derivation in progress of ref ("name@V2"); VP_ENOENT when none. */
VP_API int vp_store_derive_stat(vp_store *s, const char *ref, vp_derive_info *out);

/* Every derivation in progress (name NULL) or those of name, sorted by name,
 * then version. *out is the caller's: free() it. */
VP_API int vp_store_derive_list(vp_store *s, const char *name, vp_derive_info **out, size_t *n);

/* Drops the derivation in progress of ref ("name@V2") and its delta; VP_ENOENT
 * when none, VP_EBUSY while another vdipool works on it. */
VP_API int vp_store_derive_abort(vp_store *s, const char *ref);

typedef struct vp_store_seal_opts {
	const char *tmpdir;  /* where the flattened copy is made (outside the store);
			      * NULL: /var/tmp (the CLI passes $TMPDIR) */
	const char *format;  /* stored format; NULL: the parent's */
	vp_store_progress_fn progress;
	void *progress_ctx;
} vp_store_seal_opts;

/* Seals the derivation of ref ("name@V2"): flattens the maintenance delta
 * (qemu-img convert, no backing file), imports it as name@V2 with
 * parent=V1 (hash, manifest, atomic publish), then removes the derivation.
 * VP_EBUSY while a running VM holds the delta open (QEMU's image lock) or
 * another vdipool works on it; VP_ENOENT when no derivation is in progress.
 * A failed seal leaves the derivation as it was. opts and out may be NULL. */
VP_API int vp_store_seal(vp_store *s, const char *ref, const vp_store_seal_opts *opts,
			 vp_base_info *out);

#ifdef __cplusplus
}
#endif
#endif
