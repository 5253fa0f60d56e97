/* vdipool/plugin.h: the storage plugin ABI (one versioned ops table per backend) and its loader. */
#ifndef VDIPOOL_PLUGIN_H
#define VDIPOOL_PLUGIN_H

/* This header must compile as C99 with -pedantic-errors: plugins are built
 * by other people with other flags. No C11, no GNU extensions unguarded. */

#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ===== The ABI contract ======================================================
 *
 * Modelled on nbdkit (include/nbdkit-plugin.h, server/plugins.c):
 *
 *  - A plugin is a shared object named "vdipool-<name>.so" that exports one
 *    symbol, vp_plugin_init, written by VP_REGISTER_PLUGIN(ops). It returns
 *    the plugin's `struct vp_plugin_ops`, whose first two fields are stamped
 *    by the macro: _struct_size = sizeof the struct the plugin was compiled
 *    with, _api_version = VP_PLUGIN_API_VERSION of that header.
 *  - Fields are only ever appended. The loader copies min(_struct_size,
 *    sizeof ours) into a zeroed struct, so a plugin built against an older
 *    header sees NULL for every newer callback, which then gets its default.
 *  - The loader refuses a plugin whose _api_version is newer than ours (it
 *    may rely on semantics we lack), and one lacking a mandatory callback.
 *  - Request and info structs passed across the ABI are append-only too, and
 *    growing one bumps VP_PLUGIN_API_VERSION: since newer plugins are
 *    refused, a plugin never sees a struct smaller than the one it was built
 *    with. Info structs are zeroed by the host before the plugin fills them.
 *  - Errors: a failing callback records why with host->error() (the host
 *    table given to .load) and returns a negative VP_E* code. Plugins need
 *    not link libvdipool; if they do (the dir plugin uses its qcow2 writer),
 *    they forward that library's vp_error_last() message through
 *    host->error(), because the host may be a different copy of libvdipool
 *    (a statically linked program) with its own error records.
 *  - Strings a plugin returns through `char **` are malloc()ed; the host
 *    free()s them.
 *  - Thread safety: by default (thread_model 0) the host serialises calls
 *    on one tier handle; calls on different handles may run in parallel. A
 *    plugin that declares VP_THREAD_MODEL_PARALLEL may be called at once.
 *
 * Where plugins are found: each directory of the search path the program
 * gives (vp_plugin_set_search_path; the CLI passes $VDIPOOL_PLUGIN_PATH read
 * with secure_getenv) in order, then the install directory; the first file
 * of a name wins. Only absolute directories; only files owned by root and
 * writable by no one else are loaded; vp_plugin_find loads only the plugin
 * it is asked for (the ones specs name). The dir backend is also compiled into libvdipool and is used when no
 * vdipool-dir.so is found, so a bare directory always works; so is the ssh
 * backend (a dir tier's layout on another host, reached over SFTP).
 *
 * ===== How the Ceph RBD backend (plugins/rbd) maps onto these operations ====
 *
 *   open          rados_connect + rados_ioctx_create(cfg->path = RADOS pool);
 *                 params: conf, id (cephx user), keyring, namespace, timeout
 *                 (seconds; a down cluster fails in seconds), max_depth (1..16)
 *   base_stage    location "rbd:<pool>/.import.<name>.<version>.<owner>:id=..:conf=.."
 *                 (qemu-img convert creates and writes it; raw only)
 *   base_read     rbd_open(staged image or snapshot) + rbd_read (hashing)
 *   base_commit   rbd_metadata_set("vdipool.manifest", text), flatten when the
 *                 staged image stands on max_depth parents, rbd_snap_create
 *                 "vdipool" + rbd_snap_protect, then rbd_rename to
 *                 "base.<name>.<version>": the rename publishes, like dir's
 *   base_stat     location "rbd:<pool>/base.<name>.<version>@vdipool:.."; size,
 *                 allocation (object map), mtime of the snapshot (0 when staged)
 *   base_manifest rbd_metadata_get("vdipool.manifest")
 *   base_remove   only when rbd_list_children3 lists no clone of the snapshot
 *                 (under clone v2, unprotect and snap_remove pass while clones
 *                 exist and the snapshot would go to the trash), then unprotect,
 *                 snap_remove, remove
 *   base_list     rbd_list2, names with the "base." prefix
 *   base_children rbd_list_children3 on the snapshot
 *   delta_create  rbd_clone3(base snapshot -> "delta.<pool>.<clone>") with
 *                 layering, exclusive-lock, object-map, fast-diff, deep-flatten;
 *                 flattened under a temporary name first when it would stand on
 *                 more than max_depth parents; data disks: rbd_create
 *   delta_stat/list  rbd_get_parent gives `backing`
 *   delta_rebase  rbd_clone3 from the new snapshot to ".rebase-<kind>.<pool>.<clone>.
 *                 <owner>", then remove the old disk and rename the new one; not
 *                 atomic: a crash between the two leaves only the temporary, which
 *                 sweep renames into place
 *   delta_flatten rbd_flatten
 *   capabilities  LINKED_CLONE | REBASE | FLATTEN | SHARED (no FULL_CLONE: the
 *                 host refuses clones.mode full on an rbd delta tier)
 */

/* Version of this ABI. Bump it when a struct grows or a meaning changes. */
#define VP_PLUGIN_API_VERSION 4

/* Capability bits (vp_plugin_ops.capabilities). */
#define VP_CAP_LINKED_CLONE 0x01u       /* deltas share a base (copy-on-write) */
#define VP_CAP_PREALLOC_METADATA 0x02u  /* VP_DELTA_PREALLOC_METADATA is honoured */
#define VP_CAP_REBASE 0x04u             /* delta_rebase is implemented */
#define VP_CAP_FLATTEN 0x08u            /* delta_flatten is implemented */
#define VP_CAP_SHARED 0x10u             /* storage is visible from many hosts */
/* VP_DELTA_FULL is honoured. The host sends that flag only to a backend that
 * sets this bit: a plugin built before the flag existed may ignore flags it
 * does not know, and would make a linked clone where a full copy was asked. */
#define VP_CAP_FULL_CLONE 0x20u
/* VP_DELTA_ENCRYPT_LUKS is honoured (sent only to backends that set this bit). */
#define VP_CAP_ENCRYPT_LUKS 0x40u

/* Lengths of the fixed strings in vp_image_info (NUL included). */
#define VP_PLUGIN_NAME_MAX 72
#define VP_PLUGIN_LOCATION_MAX 4096

/* ---- what the host gives a plugin ---------------------------------------- */

typedef struct vp_plugin_host {
	uint64_t _struct_size;
	int _api_version;
	/* Records why the current call fails; returns `code` (a negative VP_E*). */
	int (*error)(int code, const char *fmt, ...) VP_PRINTF(2, 3);
	/* Debug output (shown with -vv); never required. */
	void (*debug)(const char *fmt, ...) VP_PRINTF(1, 2);
	/* Runs argv (PATH lookup, LC_ALL=C, no shell) and requires exit status 0;
	 * on failure records an error quoting the command and its stderr. */
	int (*run)(const char *const *argv);
	/* ---- API version 4 ---- */
	/* Like run, and the child keeps `fd` (a close-on-exec descriptor of the
	 * caller's) open at the same number, so that it can read it as
	 * /proc/self/fd/N: how a key reaches qemu-img without a command line or a
	 * file. No other child of the process inherits it. */
	int (*run_keep_fd)(const char *const *argv, int fd);
} vp_plugin_host;

/* One driver-specific setting of a tier ("key=value" in the spec). */
typedef struct vp_plugin_param {
	const char *key;
	const char *value;
} vp_plugin_param;

/* What a tier is opened with; strings are borrowed for the call only. */
typedef struct vp_tier_config {
	const char *tier;               /* the tier's name, for messages */
	const char *path;               /* dir: a directory; rbd: the RADOS pool */
	const vp_plugin_param *params;  /* driver-specific settings */
	size_t nparams;
} vp_tier_config;

/* Kinds of per-clone disks. */
#define VP_DISK_DELTA 0  /* copy-on-write overlay of a base */
#define VP_DISK_DATA 1   /* standalone empty disk (user data) */

/* Flags of vp_delta_request. */
#define VP_DELTA_PREALLOC_METADATA 0x01u /* allocate all metadata now (faster first writes) */
#define VP_DELTA_OVERWRITE 0x02u         /* replace an existing disk atomically */
#define VP_DELTA_EXTENDED_L2 0x04u       /* qcow2 extended L2 entries (32 subclusters) */
/* A standalone copy of the base (no backing file, no parent) instead of a
 * copy-on-write delta, made the fastest way the storage allows (dir: a reflink,
 * else a copy of the data extents only). size, as for a delta: 0 = the base's
 * size, else a larger virtual size. Only with VP_CAP_FULL_CLONE; a plugin must
 * refuse (VP_ENOTSUP) flags it does not know rather than ignore them. */
#define VP_DELTA_FULL 0x08u
/* A LUKS-encrypted qcow2 (QEMU's encrypt.format=luks) whose passphrase is the
 * whole content of secret_fd (a memfd or pipe, never a file on disk). Only with
 * VP_CAP_ENCRYPT_LUKS; deltas and data disks; not with VP_DELTA_FULL. The
 * passphrase must never appear on a command line or in a file. */
#define VP_DELTA_ENCRYPT_LUKS 0x10u

/* Describes one stored image: a base version, a staged import or a disk. */
typedef struct vp_image_info {
	char name[VP_PLUGIN_NAME_MAX];      /* base name, or the clone of a disk */
	char version[VP_PLUGIN_NAME_MAX];   /* base version; "" for disks */
	char pool[VP_PLUGIN_NAME_MAX];      /* disks: the pool; "" for bases */
	int kind;                           /* disks: VP_DISK_* */
	char format[16];                    /* "qcow2", "raw", "rbd" */
	/* What qemu-img and the hypervisor open: a path, or "rbd:pool/img@snap".
	 * References are found by comparing a disk's `backing` with this. */
	char location[VP_PLUGIN_LOCATION_MAX];
	char backing[VP_PLUGIN_LOCATION_MAX]; /* disks: location of the base; "" none */
	uint64_t size;                      /* bytes in the image object (file size) */
	uint64_t allocated;                 /* bytes it occupies on the storage */
	uint64_t virtual_size;              /* guest-visible size; 0 when not known */
	int64_t mtime_sec;                  /* last modification; 0 when not known */
	long mtime_nsec;
} vp_image_info;

/* How to create a per-clone disk. */
typedef struct vp_delta_request {
	int kind;                   /* VP_DISK_DELTA or VP_DISK_DATA */
	const char *pool;
	const char *clone;
	const char *base_location;  /* delta: vp_image_info.location of the base */
	const char *base_format;    /* delta: the base's format */
	uint64_t size;              /* data: required; delta: 0 = the base's size, else a
				     * larger virtual size (reads past the base give zeros) */
	unsigned flags;             /* VP_DELTA_* */
	uint32_t cluster_size;      /* bytes; 0: the backend's default */
	/* ---- API version 4 ---- */
	int secret_fd;              /* VP_DELTA_ENCRYPT_LUKS: the passphrase, read from offset 0 */
} vp_delta_request;

/* Called once per listed image; a non-zero return stops the listing and is
 * returned by the list call. `info` is borrowed for the call. */
typedef int (*vp_plugin_list_fn)(void *ctx, const vp_image_info *info);

/* ---- the ops table ---------------------------------------------------------
 * Every callback returns 0 or a negative VP_E* code with host->error() called.
 * "tier" is the handle .open returned. VP_ENOENT when the object is absent. */
typedef struct vp_plugin_ops {
	uint64_t _struct_size;  /* set by VP_REGISTER_PLUGIN */
	int _api_version;       /* set by VP_REGISTER_PLUGIN */

	const char *name;         /* mandatory: [a-z0-9][a-z0-9_-]*, the file's <name> */
	const char *version;      /* the plugin's own version string */
	const char *description;  /* one line */
	uint64_t capabilities;    /* VP_CAP_* */

	/* optional: called once after loading, before anything else */
	int (*load)(const vp_plugin_host *host);
	/* optional: called once before unloading */
	void (*unload)(void);

	/* mandatory: open a tier; *tier is passed to every other call */
	int (*open)(const vp_tier_config *cfg, void **tier);
	/* optional: release a tier handle */
	void (*close)(void *tier);

	/* Bases: an import is base_stage, then the host writes the image to the
	 * staged location with qemu-img, hashes it through base_read, and either
	 * base_commit (publishes atomically, manifest last) or base_abort. */
	int (*base_stage)(void *tier, const char *name, const char *version,
			  const char *format, vp_image_info *staged);
	int (*base_commit)(void *tier, const char *name, const char *version,
			   const char *manifest);
	int (*base_abort)(void *tier, const char *name, const char *version);
	/* Reads the stored bytes of a base (staged != 0: of the staged import);
	 * *got = 0 at the end. The host computes SHA-256 from these bytes. */
	int (*base_read)(void *tier, const char *name, const char *version, int staged,
			 void *buf, size_t len, uint64_t offset, size_t *got);
	int (*base_stat)(void *tier, const char *name, const char *version, int staged,
			 vp_image_info *out);
	int (*base_manifest)(void *tier, const char *name, const char *version, char **text);
	int (*base_remove)(void *tier, const char *name, const char *version);
	/* name NULL: every base */
	int (*base_list)(void *tier, const char *name, vp_plugin_list_fn fn, void *ctx);

	/* Disks (deltas and data disks). */
	int (*delta_create)(void *tier, const vp_delta_request *req, vp_image_info *out);
	int (*delta_stat)(void *tier, int kind, const char *pool, const char *clone,
			  vp_image_info *out);
	int (*delta_remove)(void *tier, int kind, const char *pool, const char *clone);
	/* pool NULL: every pool; both kinds are listed */
	int (*delta_list)(void *tier, const char *pool, vp_plugin_list_fn fn, void *ctx);

	/* optional (default: VP_ENOTSUP): replace the clone's delta by a fresh one
	 * on another base, so that a crash leaves the old disk or the new one, never
	 * neither (atomically with a rename on dir; on rbd a cut swap leaves only the
	 * new disk under its temporary name, which sweep renames into place); the old
	 * content is discarded, because VDI clones are disposable and user data lives
	 * on data disks */
	int (*delta_rebase)(void *tier, const char *pool, const char *clone,
			    const char *base_location, const char *base_format);
	/* optional (default: VP_ENOTSUP): make the delta standalone, atomically */
	int (*delta_flatten)(void *tier, const char *pool, const char *clone);
	/* optional (default: the host lists the delta tiers and compares each
	 * disk's backing with the base's location): the disks backed by a base */
	int (*base_children)(void *tier, const char *name, const char *version,
			     vp_plugin_list_fn fn, void *ctx);

	/* ---- API version 2 ---- */
	/* How the host may call this plugin (VP_THREAD_MODEL_*). 0, which every
	 * plugin built before version 2 has, means serialised. */
	int thread_model;
	/* optional (default: nothing to sweep): removes the temporaries that
	 * this backend names with a process id (staged imports, removals,
	 * temporary deltas) whose process is gone; never those of live ones */
	int (*sweep)(void *tier);

	/* ---- API version 3 ---- */
	/* optional (default: the host reads the image through base_read and
	 * hashes it itself): the SHA-256 of a published base's image, lowercase
	 * hex, computed where the data lives (e.g. on the remote host), so that
	 * verifying a copy does not move the image over the network. Only for
	 * published versions: imports still hash the staged bytes via base_read. */
	int (*base_hash)(void *tier, const char *name, const char *version, char hex[65]);
	/* New fields go here, at the end, and nowhere else. */
} vp_plugin_ops;

/* Thread models (vp_plugin_ops.thread_model), after nbdkit's THREAD_MODEL. */
#define VP_THREAD_MODEL_SERIALIZE_REQUESTS 0 /* one call at a time on one tier handle */
#define VP_THREAD_MODEL_PARALLEL 1           /* any calls at once, on any handle */

/* ---- registration ---------------------------------------------------------- */

#ifndef VP_PLUGIN_EXPORT
#if defined(__GNUC__)
#define VP_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define VP_PLUGIN_EXPORT
#endif
#endif
#ifndef VP_PLUGIN_INIT_SYMBOL
#define VP_PLUGIN_INIT_SYMBOL vp_plugin_init
#endif
#define VP_PLUGIN_INIT_NAME "vp_plugin_init"

/* Use once at file scope: `static vp_plugin_ops ops = { ... }; VP_REGISTER_PLUGIN(ops);`
 * The trailing redeclaration swallows the user's semicolon (pedantic C99). */
#define VP_REGISTER_PLUGIN(ops)                                                       \
	VP_PLUGIN_EXPORT const vp_plugin_ops *VP_PLUGIN_INIT_SYMBOL(void);            \
	VP_PLUGIN_EXPORT const vp_plugin_ops *VP_PLUGIN_INIT_SYMBOL(void)             \
	{                                                                             \
		(ops)._struct_size = sizeof(ops);                                     \
		(ops)._api_version = VP_PLUGIN_API_VERSION;                           \
		return &(ops);                                                        \
	}                                                                             \
	const vp_plugin_ops *VP_PLUGIN_INIT_SYMBOL(void)

/* ===== The host side (libvdipool users; plugins never call these) ========== */

/* A loaded plugin (or a file that failed to load, see vp_plugin_load_error). */
typedef struct vp_plugin vp_plugin;

/* Loads one plugin file (dlopen RTLD_NOW|RTLD_LOCAL), checks and normalises
 * its ops table. Free with vp_plugin_free (which dlcloses it). */
VP_API int vp_plugin_load_file(vp_plugin **out, const char *path);
VP_API void vp_plugin_free(vp_plugin *p);

/* The directories searched before the install directory, colon-separated,
 * each absolute (VP_EINVAL otherwise). Call before the first lookup
 * (VP_EBUSY after). The library reads no environment variable. */
VP_API int vp_plugin_set_search_path(const char *path);

/* The process-wide registry: loads each plugin once (later calls reuse it). Finds a plugin by name; falls back to the built-in dir backend.
 * Returned plugins are borrowed and live until the process exits. */
VP_API int vp_plugin_find(const vp_plugin **out, const char *name);

/* Every plugin file found on the search path, in search order (including
 * those that failed to load), then the built-ins not shadowed by a file.
 * *out is borrowed; *n entries. */
VP_API int vp_plugin_list_all(const vp_plugin *const **out, size_t *n);

/* The directories searched, colon-separated, for messages; static storage
 * valid until the next call. */
VP_API const char *vp_plugin_search_path(void);

VP_API const char *vp_plugin_name(const vp_plugin *p);
VP_API const char *vp_plugin_file(const vp_plugin *p);     /* "(built-in)" for built-ins */
VP_API const char *vp_plugin_version(const vp_plugin *p);  /* "" when the plugin says none */
VP_API const char *vp_plugin_description(const vp_plugin *p);
VP_API int vp_plugin_api_version(const vp_plugin *p);
VP_API uint64_t vp_plugin_capabilities(const vp_plugin *p);
/* NULL when loaded; else why the file was refused (borrowed). */
VP_API const char *vp_plugin_load_error(const vp_plugin *p);
/* The normalised ops: full size, defaults filled in. NULL if it failed to load. */
VP_API const vp_plugin_ops *vp_plugin_get_ops(const vp_plugin *p);

/* "linked-clone,rebase,..." for the bits set, into buf; returns buf. */
VP_API const char *vp_plugin_caps_str(uint64_t caps, char *buf, size_t len);

/* The host table given to plugins (also for tests that drive ops directly). */
VP_API const vp_plugin_host *vp_plugin_host_table(void);

#ifdef __cplusplus
}
#endif
#endif
