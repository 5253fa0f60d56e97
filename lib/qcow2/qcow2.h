/* qcow2.h (private): qcow2 on-disk structures and constants shared by the writer and the reader. */
#ifndef VP_QCOW2_PRIV_H
#define VP_QCOW2_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "vdipool/qcow2.h"

#define QCOW2_MAGIC 0x514649fbu /* "QFI\xfb" */

#define QCOW2_V2_HEADER_LEN 72u
#define QCOW2_V3_MIN_HEADER_LEN 104u
#define QCOW2_V3_HEADER_LEN 112u /* with compression_type, padded to 8 like QEMU */

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY (1ull << 0)
#define QCOW2_INCOMPAT_CORRUPT (1ull << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ull << 2)
#define QCOW2_INCOMPAT_COMPRESSION (1ull << 3)
#define QCOW2_INCOMPAT_EXTL2 (1ull << 4)
#define QCOW2_INCOMPAT_KNOWN 0x1full

/* Header extension types. */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_BACKING_FORMAT 0xe2792acau
#define QCOW2_EXT_FEATURE_TABLE 0x6803f857u
#define QCOW2_EXT_CRYPTO_HEADER 0x0537be77u /* offset and length of the LUKS header */

/* L1/L2/refcount table entry bits. */
#define QCOW2_OFLAG_COPIED (1ull << 63)   /* refcount is exactly one */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull

/* QEMU's implementation limits (block/qcow2.h), so that QEMU opens what we write. */
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32ull << 20)
#define QCOW2_MAX_REFTABLE_BYTES (8ull << 20)
#define QCOW2_MAX_SNAPSHOTS 65536u
#define QCOW2_SNAPSHOT_MIN_ENTRY 40u
#define QCOW2_REFCOUNT_ORDER 4 /* 16-bit refcounts, QEMU's default */

/* The fixed header, version 3 with compression_type (v2 uses the first 72 bytes). */
struct qcow2_header {
	uint32_t magic;
	uint32_t version;
	uint64_t backing_file_offset;
	uint32_t backing_file_size;
	uint32_t cluster_bits;
	uint64_t size;
	uint32_t crypt_method;
	uint32_t l1_size;
	uint64_t l1_table_offset;
	uint64_t refcount_table_offset;
	uint32_t refcount_table_clusters;
	uint32_t nb_snapshots;
	uint64_t snapshots_offset;
	/* version 3 */
	uint64_t incompatible_features;
	uint64_t compatible_features;
	uint64_t autoclear_features;
	uint32_t refcount_order;
	uint32_t header_length;
	uint8_t compression_type;
	uint8_t padding[7];
} __attribute__((packed));

_Static_assert(sizeof(struct qcow2_header) == QCOW2_V3_HEADER_LEN, "qcow2 header is 112 bytes");
_Static_assert(offsetof(struct qcow2_header, incompatible_features) == QCOW2_V2_HEADER_LEN,
	       "v3 fields start at byte 72");
_Static_assert(offsetof(struct qcow2_header, compression_type) == QCOW2_V3_MIN_HEADER_LEN,
	       "compression_type is byte 104");

struct qcow2_ext_hdr {
	uint32_t type;
	uint32_t len;
} __attribute__((packed));
_Static_assert(sizeof(struct qcow2_ext_hdr) == 8, "extension header is 8 bytes");

struct qcow2_feature_name {
	uint8_t type; /* 0 incompatible, 1 compatible, 2 autoclear */
	uint8_t bit;
	char name[46];
} __attribute__((packed));
_Static_assert(sizeof(struct qcow2_feature_name) == 48, "feature name entry is 48 bytes");

/* The path a backing name refers to, seen from the image at `image_path`:
 * absolute names as they are, relative ones against the image's directory
 * (QEMU's path_combine). Caller frees; NULL on OOM (error recorded). */
char *vp_qcow2_resolve_backing(const char *image_path, const char *backing);

#endif
