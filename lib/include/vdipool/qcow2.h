/* vdipool/qcow2.h: native qcow2 v3 writer (deltas and empty disks) and header/backing-chain reader. */
#ifndef VDIPOOL_QCOW2_H
#define VDIPOOL_QCOW2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Limits shared with QEMU (docs/interop/qcow2.txt, block/qcow2.h). */
#define VP_QCOW2_MAX_BACKING_NAME 1023 /* bytes, without the NUL */
#define VP_QCOW2_MAX_FORMAT_NAME 15    /* QEMU keeps backing_format in char[16] */
#define VP_QCOW2_MAX_CHAIN 64          /* images in a chain, the top one included */
#define VP_QCOW2_MIN_CLUSTER (16u * 1024)
#define VP_QCOW2_MAX_CLUSTER (2u * 1024 * 1024)

/* ---- writer ---------------------------------------------------------------- */

typedef enum {
	VP_QCOW2_PREALLOC_OFF = 0,
	/* Every guest cluster gets an L2 entry and a host cluster that stays a hole
	 * in the file. With a backing file this needs extended L2 entries: the
	 * subcluster bitmaps stay 0, so reads still go to the backing file. */
	VP_QCOW2_PREALLOC_METADATA
} vp_qcow2_prealloc;

typedef enum {
	VP_QCOW2_SYNC_FILES = 0, /* fdatasync every image (batch: each file, then one fsync per directory) */
	VP_QCOW2_SYNC_FS         /* batch only: one syncfs() per directory before the renames */
} vp_qcow2_sync;

typedef struct vp_qcow2_create_opts {
	/* Backing file name exactly as stored in the image (relative names are
	 * resolved against the new image's directory, like QEMU). NULL: a
	 * standalone empty disk. */
	const char *backing_file;
	/* "qcow2" or "raw"; NULL: detected from the backing file's magic. The
	 * backing format extension is always written either way. */
	const char *backing_format;
	/* Virtual size in bytes, rounded up to 512 like qemu-img. 0 with a
	 * backing file: the backing file's virtual size. */
	uint64_t size;
	uint32_t cluster_size;  /* 0: 128 KiB with extended L2, 64 KiB without */
	bool extended_l2;
	vp_qcow2_prealloc prealloc;
	bool overwrite;         /* replace an existing target instead of failing with VP_EEXIST */
	unsigned mode;          /* permission bits of the new file; 0: 0644 (before umask) */
	vp_qcow2_sync sync;
} vp_qcow2_create_opts;

/* Defaults: no backing file, size 0, default cluster size, no extended L2, no preallocation. */
VP_API void vp_qcow2_create_opts_init(vp_qcow2_create_opts *opts);

/* Creates the image at `path`: written under a temporary name, fdatasynced,
 * renamed into place and the directory fsynced, so it is durable on return.
 * On failure no file is left behind and vp_error_last() says why. */
VP_API int vp_qcow2_create(const char *path, const vp_qcow2_create_opts *opts);

/* Creates n images with the same options (clones of one base). The metadata
 * is built once; durability is paid once per directory where possible (see
 * opts->sync: VP_QCOW2_SYNC_FS is the fast one). A backing file that must be
 * read (no size or no format given) is looked up from paths[0]'s directory.
 * All or nothing: on failure every image of the batch that was created is
 * removed again (with opts->overwrite, replaced targets stay, complete).
 * Durable on return. */
VP_API int vp_qcow2_create_batch(const char *const *paths, size_t n, const vp_qcow2_create_opts *opts);

/* ---- reader ---------------------------------------------------------------- */

/* What a validated qcow2 header says. Plain data, no release needed. */
typedef struct vp_qcow2_info {
	uint32_t version;          /* 2 or 3 */
	uint32_t header_length;    /* 72 for version 2 */
	uint32_t cluster_bits;
	uint32_t cluster_size;
	uint64_t virtual_size;
	uint32_t crypt_method;     /* 0 none, 1 AES, 2 LUKS */
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t refcount_order;   /* refcount width is 1 << refcount_order bits */
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint8_t compression_type;  /* 0 zlib, 1 zstd */
	bool extended_l2;
	bool dirty;
	bool corrupt;
	bool external_data_file;
	bool has_backing;
	char backing_file[VP_QCOW2_MAX_BACKING_NAME + 1];  /* as stored; "" when none */
	char backing_format[VP_QCOW2_MAX_FORMAT_NAME + 1]; /* "" when the extension is absent */
	uint64_t file_size;        /* bytes in the image file */
	uint64_t crypt_header_offset; /* LUKS (crypt_method 2): where its header is; 0 when none */
	uint64_t crypt_header_length;
} vp_qcow2_info;

/* Reads `len` bytes at `off` into buf; 0 or a negative VP_E* code (with the error recorded). */
typedef int (*vp_qcow2_pread_fn)(void *opaque, void *buf, size_t len, uint64_t off);

/* Parses and validates the header of an image of `file_size` bytes read
 * through `pread`. `name` only labels error messages. Refuses what QEMU
 * would refuse to open and everything that points outside the file. */
VP_API int vp_qcow2_parse_info(vp_qcow2_info *out, vp_qcow2_pread_fn pread, void *opaque,
			       uint64_t file_size, const char *name);

/* The same on an image held in memory (len is the file size). */
VP_API int vp_qcow2_parse_buffer(vp_qcow2_info *out, const void *buf, size_t len, const char *name);

/* The same on a file. VP_EINVAL when it is not a valid qcow2 image. */
VP_API int vp_qcow2_read_info(vp_qcow2_info *out, const char *path);

/* The UUID of a LUKS-encrypted qcow2's LUKS header (36 characters, as QEMU wrote
 * it). VP_EINVAL when the image is not LUKS-encrypted. */
VP_API int vp_qcow2_read_luks_uuid(const char *path, char uuid[37]);

/* "qcow2" when the file starts with the qcow2 magic, else "raw"; static storage.
 * NULL (error recorded) when it cannot be read. */
VP_API const char *vp_qcow2_probe_format(const char *path);

/* One image of a backing chain. */
typedef struct vp_qcow2_layer {
	char *path;                /* the path it was opened with; owned by the chain */
	char format[VP_QCOW2_MAX_FORMAT_NAME + 1]; /* "qcow2" or "raw" */
	bool format_probed;        /* no backing format extension named it: it was probed */
	uint64_t virtual_size;     /* raw: the file size */
	vp_qcow2_info info;        /* valid when format is "qcow2" */
} vp_qcow2_layer;

typedef struct vp_qcow2_chain {
	size_t depth;              /* layers, the top image included */
	vp_qcow2_layer *layers;    /* [0] is the top image, [depth - 1] the bottom */
} vp_qcow2_chain;

/* Walks the backing chain of `path`. Relative backing names resolve against
 * the directory of the image that names them; raw layers end the chain;
 * loops and chains of more than VP_QCOW2_MAX_CHAIN images are errors.
 * Release `out` with vp_qcow2_chain_release() (also after a failure). */
VP_API int vp_qcow2_read_chain(vp_qcow2_chain *out, const char *path);
VP_API void vp_qcow2_chain_release(vp_qcow2_chain *chain);

#ifdef __cplusplus
}
#endif
#endif
