/* qcow2_read.c: hostile-file-safe qcow2 header reader and backing-chain walker. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qcow2.h"
#include "util/fs.h"
#include "util/util.h"

#define BAD(...) vp_error_set(VP_ERR_QCOW2, VP_EINVAL, __VA_ARGS__)

/* Names of the feature bits, from the image's own feature name table. */
struct feature_names {
	char name[64][47]; /* incompatible bits only: that is what we must name */
};

/* A pread that refuses to go past the end of the file, so no caller has
 * to trust an offset from the image. */
struct src {
	vp_qcow2_pread_fn pread;
	void *opaque;
	uint64_t size;
	const char *name;
};

static int src_read(const struct src *s, void *buf, size_t len, uint64_t off, const char *what)
{
	if (off > s->size || len > s->size - off)
		return BAD("'%s': %s at offset %" PRIu64 " (%zu bytes) is past the end of the file (%" PRIu64 " bytes)",
			   s->name, what, off, len, s->size);
	return s->pread(s->opaque, buf, len, off);
}

/* Fills the info fields that come straight from the fixed header. */
static void decode_header(vp_qcow2_info *in, const struct qcow2_header *h)
{
	in->version = be32toh(h->version);
	in->cluster_bits = be32toh(h->cluster_bits);
	in->virtual_size = be64toh(h->size);
	in->crypt_method = be32toh(h->crypt_method);
	in->l1_size = be32toh(h->l1_size);
	in->l1_table_offset = be64toh(h->l1_table_offset);
	in->refcount_table_offset = be64toh(h->refcount_table_offset);
	in->refcount_table_clusters = be32toh(h->refcount_table_clusters);
	in->nb_snapshots = be32toh(h->nb_snapshots);
	in->snapshots_offset = be64toh(h->snapshots_offset);
	if (in->version == 2) {
		in->header_length = QCOW2_V2_HEADER_LEN;
		in->refcount_order = QCOW2_REFCOUNT_ORDER;
		return;
	}
	in->incompatible_features = be64toh(h->incompatible_features);
	in->compatible_features = be64toh(h->compatible_features);
	in->autoclear_features = be64toh(h->autoclear_features);
	in->refcount_order = be32toh(h->refcount_order);
	in->header_length = be32toh(h->header_length);
}

static int read_header(vp_qcow2_info *in, const struct src *s, uint64_t *backing_off, uint32_t *backing_len)
{
	struct qcow2_header h;

	memset(&h, 0, sizeof(h));
	if (s->size < QCOW2_V2_HEADER_LEN)
		return BAD("'%s' is not a qcow2 image: only %" PRIu64 " bytes", s->name, s->size);
	if (src_read(s, &h, QCOW2_V2_HEADER_LEN, 0, "header") < 0)
		return VP_EINVAL;
	if (be32toh(h.magic) != QCOW2_MAGIC)
		return BAD("'%s' is not a qcow2 image: bad magic", s->name);
	if (be32toh(h.version) != 2 && be32toh(h.version) != 3)
		return BAD("'%s': unsupported qcow2 version %" PRIu32, s->name, be32toh(h.version));
	if (be32toh(h.version) == 3 &&
	    src_read(s, (char *)&h + QCOW2_V2_HEADER_LEN, QCOW2_V3_MIN_HEADER_LEN - QCOW2_V2_HEADER_LEN,
		     QCOW2_V2_HEADER_LEN, "header") < 0)
		return VP_EINVAL;
	decode_header(in, &h);
	*backing_off = be64toh(h.backing_file_offset);
	*backing_len = be32toh(h.backing_file_size);
	return 0;
}

/* The checks on the fixed fields that do not need the extensions. */
static int check_basics(vp_qcow2_info *in, const struct src *s)
{
	if (in->cluster_bits < QCOW2_MIN_CLUSTER_BITS || in->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return BAD("'%s': unsupported cluster size 2^%" PRIu32, s->name, in->cluster_bits);
	in->cluster_size = 1u << in->cluster_bits;
	if (in->version == 3) {
		if (in->header_length < QCOW2_V3_MIN_HEADER_LEN)
			return BAD("'%s': qcow2 header too short (%" PRIu32 " bytes)", s->name, in->header_length);
		if (in->header_length % 8)
			return BAD("'%s': qcow2 header length %" PRIu32 " is not a multiple of 8", s->name,
				   in->header_length);
		if (in->header_length > in->cluster_size)
			return BAD("'%s': qcow2 header exceeds cluster size", s->name);
	}
	if (in->refcount_order > 6)
		return BAD("'%s': refcount width 2^%" PRIu32 " bits is larger than 64", s->name, in->refcount_order);
	if (in->crypt_method > 2)
		return BAD("'%s': unsupported encryption method %" PRIu32, s->name, in->crypt_method);
	in->dirty = in->incompatible_features & QCOW2_INCOMPAT_DIRTY;
	in->corrupt = in->incompatible_features & QCOW2_INCOMPAT_CORRUPT;
	in->external_data_file = in->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	in->extended_l2 = in->incompatible_features & QCOW2_INCOMPAT_EXTL2;
	if (in->extended_l2 && in->cluster_bits < 14)
		return BAD("'%s': extended L2 entries need clusters of at least 16 KiB", s->name);
	return 0;
}

static int read_compression_type(vp_qcow2_info *in, const struct src *s)
{
	bool bit = in->incompatible_features & QCOW2_INCOMPAT_COMPRESSION;

	if (in->header_length > QCOW2_V3_MIN_HEADER_LEN &&
	    src_read(s, &in->compression_type, 1, QCOW2_V3_MIN_HEADER_LEN, "compression type") < 0)
		return VP_EINVAL;
	if (bit && in->compression_type != 1)
		return BAD("'%s': invalid compression type %u", s->name, in->compression_type);
	if (!bit && in->compression_type != 0)
		return BAD("'%s': compression type %u without the compression type feature bit", s->name,
			   in->compression_type);
	return 0;
}

static int ext_backing_format(vp_qcow2_info *in, const struct src *s, uint32_t len, uint64_t off)
{
	if (len > VP_QCOW2_MAX_FORMAT_NAME)
		return BAD("'%s': backing format name too long (%" PRIu32 " bytes)", s->name, len);
	if (src_read(s, in->backing_format, len, off, "backing format") < 0)
		return VP_EINVAL;
	in->backing_format[len] = '\0';
	if (strlen(in->backing_format) != len)
		return BAD("'%s': backing format name contains a NUL byte", s->name);
	return 0;
}

static int ext_feature_table(struct feature_names *fn, const struct src *s, uint32_t len, uint64_t off)
{
	for (uint32_t i = 0; i + sizeof(struct qcow2_feature_name) <= len; i += sizeof(struct qcow2_feature_name)) {
		struct qcow2_feature_name f;
		if (src_read(s, &f, sizeof(f), off + i, "feature name table") < 0)
			return VP_EINVAL;
		if (f.type == 0 && f.bit < 64)
			snprintf(fn->name[f.bit], sizeof(fn->name[f.bit]), "%.46s", f.name);
	}
	return 0;
}

/* Header extensions live between the header and the backing file name, inside
 * the first cluster (QEMU's qcow2_read_extensions). */
static int read_extensions(vp_qcow2_info *in, const struct src *s, uint64_t backing_off,
			   struct feature_names *fn)
{
	uint64_t end = in->cluster_size, off = in->header_length;

	if (backing_off && backing_off < end)
		end = backing_off;
	while (off < end) {
		struct qcow2_ext_hdr e;
		uint32_t type, len;
		int rc = 0;

		if (end - off < sizeof(e))
			return BAD("'%s': truncated header extension at offset %" PRIu64, s->name, off);
		if (src_read(s, &e, sizeof(e), off, "header extension") < 0)
			return VP_EINVAL;
		type = be32toh(e.type);
		len = be32toh(e.len);
		off += sizeof(e);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > end - off)
			return BAD("'%s': header extension 0x%08" PRIx32 " too large (%" PRIu32 " bytes)", s->name,
				   type, len);
		if (type == QCOW2_EXT_BACKING_FORMAT)
			rc = ext_backing_format(in, s, len, off);
		else if (type == QCOW2_EXT_FEATURE_TABLE)
			rc = ext_feature_table(fn, s, len, off);
		else if (type == QCOW2_EXT_CRYPTO_HEADER && len >= 16) {
			uint64_t v[2];
			if ((rc = src_read(s, v, sizeof(v), off, "crypto header extension")) == 0) {
				in->crypt_header_offset = be64toh(v[0]);
				in->crypt_header_length = be64toh(v[1]);
			}
		}
		if (rc < 0)
			return rc;
		off += ((uint64_t)len + 7) & ~7ull;
	}
	return 0;
}

static int check_features(const vp_qcow2_info *in, const struct src *s, const struct feature_names *fn)
{
	uint64_t unknown = in->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
	vp_buf b = VP_BUF_INIT;
	int rc;

	if (!unknown)
		return 0;
	for (int bit = 0; bit < 64; bit++) {
		if (!(unknown & (1ull << bit)))
			continue;
		vp_buf_printf(&b, "%sbit %d", b.len ? ", " : "", bit);
		if (fn->name[bit][0])
			vp_buf_printf(&b, " '%s'", fn->name[bit]);
	}
	rc = BAD("'%s': unsupported incompatible qcow2 feature(s): %s", s->name, vp_buf_cstr(&b));
	vp_buf_release(&b);
	return rc;
}

static int read_backing_name(vp_qcow2_info *in, const struct src *s, uint64_t off, uint32_t len)
{
	if (!off)
		return 0;
	if (len > VP_QCOW2_MAX_BACKING_NAME)
		return BAD("'%s': backing file name too long (%" PRIu32 " bytes)", s->name, len);
	if (len == 0)
		return BAD("'%s': empty backing file name", s->name);
	if (off < in->header_length || off > in->cluster_size || len > in->cluster_size - off)
		return BAD("'%s': backing file name at offset %" PRIu64 " is outside the header cluster", s->name,
			   off);
	if (src_read(s, in->backing_file, len, off, "backing file name") < 0)
		return VP_EINVAL;
	in->backing_file[len] = '\0';
	if (strlen(in->backing_file) != len)
		return BAD("'%s': backing file name contains a NUL byte", s->name);
	in->has_backing = true;
	return 0;
}

/* A table of `bytes` at `off` must be cluster aligned, not overlap the header
 * and lie inside the file (QEMU's validate_table_offset, plus the EOF check). */
static int check_table(const vp_qcow2_info *in, const struct src *s, uint64_t off, uint64_t bytes,
		       const char *what)
{
	if (off & (in->cluster_size - 1))
		return BAD("'%s': %s offset 0x%" PRIx64 " is not cluster aligned", s->name, what, off);
	if (off == 0)
		return BAD("'%s': %s overlaps the header", s->name, what);
	if (off > s->size || bytes > s->size - off)
		return BAD("'%s': %s (0x%" PRIx64 " + %" PRIu64 " bytes) is past the end of the file", s->name, what,
			   off, bytes);
	return 0;
}

static int check_l1(const vp_qcow2_info *in, const struct src *s)
{
	unsigned l2_bits = in->cluster_bits - (in->extended_l2 ? 4 : 3);
	unsigned shift = in->cluster_bits + l2_bits;
	uint64_t need;

	if (in->virtual_size > INT64_MAX)
		return BAD("'%s': virtual size %" PRIu64 " is too large", s->name, in->virtual_size);
	/* shift <= 39 and size <= 2^63 - 1: no overflow. */
	need = (in->virtual_size + (1ull << shift) - 1) >> shift;
	if (in->l1_size > QCOW2_MAX_L1_BYTES / 8)
		return BAD("'%s': active L1 table too large (%" PRIu32 " entries)", s->name, in->l1_size);
	if (need > in->l1_size)
		return BAD("'%s': L1 table is too small (%" PRIu32 " entries for %" PRIu64 " bytes)", s->name,
			   in->l1_size, in->virtual_size);
	if (in->l1_size == 0)
		return 0;
	return check_table(in, s, in->l1_table_offset, (uint64_t)in->l1_size * 8, "L1 table");
}

static int check_tables(const vp_qcow2_info *in, const struct src *s)
{
	int rc = check_l1(in, s);

	if (rc < 0)
		return rc;
	if (in->refcount_table_clusters == 0)
		return BAD("'%s': image has no refcount table", s->name);
	if (in->refcount_table_clusters > QCOW2_MAX_REFTABLE_BYTES >> in->cluster_bits)
		return BAD("'%s': refcount table too large (%" PRIu32 " clusters)", s->name,
			   in->refcount_table_clusters);
	rc = check_table(in, s, in->refcount_table_offset,
			 (uint64_t)in->refcount_table_clusters << in->cluster_bits, "refcount table");
	if (rc < 0 || in->nb_snapshots == 0)
		return rc;
	if (in->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return BAD("'%s': too many snapshots (%" PRIu32 ")", s->name, in->nb_snapshots);
	return check_table(in, s, in->snapshots_offset, (uint64_t)in->nb_snapshots * QCOW2_SNAPSHOT_MIN_ENTRY,
			   "snapshot table");
}

int vp_qcow2_parse_info(vp_qcow2_info *out, vp_qcow2_pread_fn pread_fn, void *opaque, uint64_t file_size,
			const char *name)
{
	struct src s = { pread_fn, opaque, file_size, name ? name : "(image)" };
	struct feature_names *fn = NULL;
	vp_qcow2_info in;
	uint64_t backing_off = 0;
	uint32_t backing_len = 0;
	int rc;

	memset(&in, 0, sizeof(in));
	in.file_size = file_size;
	rc = read_header(&in, &s, &backing_off, &backing_len);
	if (rc == 0)
		rc = check_basics(&in, &s);
	if (rc < 0)
		goto out;
	fn = calloc(1, sizeof(*fn));
	if (!fn) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	if (in.version == 3)
		rc = read_compression_type(&in, &s);
	if (rc == 0)
		rc = read_extensions(&in, &s, backing_off, fn);
	if (rc == 0)
		rc = check_features(&in, &s, fn);
	if (rc == 0)
		rc = read_backing_name(&in, &s, backing_off, backing_len);
	if (rc == 0)
		rc = check_tables(&in, &s);
	if (rc == 0)
		*out = in;
out:
	free(fn);
	return rc;
}

/* ---- sources: memory and files ---------------------------------------------- */

struct membuf {
	const unsigned char *p;
	size_t len;
};

static int mem_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	const struct membuf *m = opaque;

	if (off > m->len || len > m->len - off)
		return BAD("read past the end of the buffer");
	memcpy(buf, m->p + off, len);
	return 0;
}

int vp_qcow2_parse_buffer(vp_qcow2_info *out, const void *buf, size_t len, const char *name)
{
	struct membuf m = { buf, len };

	return vp_qcow2_parse_info(out, mem_pread, &m, len, name);
}

/* A file source that serves the first 4 KiB (where header, extensions and
 * the backing name usually are) from one read. */
struct filesrc {
	int fd;
	const char *path;
	unsigned char head[4096];
	size_t head_len;
};

static int file_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct filesrc *f = opaque;

	if (off < f->head_len && len <= f->head_len - off) {
		memcpy(buf, f->head + off, len);
		return 0;
	}
	return vp_fs_pread_all(f->fd, buf, len, off, f->path);
}

/* Size of a regular file or block device. */
static int fd_size(int fd, const char *path, uint64_t *out)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st) < 0)
		return vp_error_set_os(errno, "cannot stat '%s'", path);
	if (S_ISREG(st.st_mode)) {
		*out = (uint64_t)st.st_size;
		return 0;
	}
	end = lseek(fd, 0, SEEK_END);
	if (end < 0)
		return vp_error_set_os(errno, "cannot find the size of '%s'", path);
	*out = (uint64_t)end;
	return 0;
}

static int filesrc_open(struct filesrc *f, const char *path, uint64_t *size)
{
	ssize_t r;

	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return vp_error_set_os(errno, "cannot open '%s'", path);
	if (fd_size(f->fd, path, size) < 0)
		goto fail;
	do
		r = pread(f->fd, f->head, *size < sizeof(f->head) ? (size_t)*size : sizeof(f->head), 0);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		vp_error_set_os(errno, "cannot read '%s'", path);
		goto fail;
	}
	f->head_len = (size_t)r;
	return 0;
fail:
	close(f->fd);
	f->fd = -1;
	return vp_error_last()->code;
}

int vp_qcow2_read_info(vp_qcow2_info *out, const char *path)
{
	struct filesrc *f = malloc(sizeof(*f));
	uint64_t size;
	int rc;

	if (!f)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	rc = filesrc_open(f, path, &size);
	if (rc == 0) {
		rc = vp_qcow2_parse_info(out, file_pread, f, size, path);
		close(f->fd);
	}
	free(f);
	return rc;
}

/* LUKS1 and LUKS2 both keep "LUKS\xba\xbe" at 0 and the UUID (40 bytes, NUL-padded) at 168. */
int vp_qcow2_read_luks_uuid(const char *path, char uuid[37])
{
	vp_qcow2_info qi;
	unsigned char h[208];
	int fd, rc;

	uuid[0] = '\0';
	if ((rc = vp_qcow2_read_info(&qi, path)) < 0)
		return rc;
	if (qi.crypt_method != 2 || !qi.crypt_header_offset || qi.crypt_header_length < sizeof(h) ||
	    qi.crypt_header_offset > qi.file_size - sizeof(h))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is not a LUKS-encrypted qcow2", path);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return vp_error_set_os(errno, "cannot open '%s'", path);
	rc = vp_fs_pread_all(fd, h, sizeof(h), qi.crypt_header_offset, path);
	close(fd);
	if (rc < 0)
		return rc;
	if (memcmp(h, "LUKS\xba\xbe", 6) || memchr(h + 168, '\0', 40) != h + 168 + 36)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s': no LUKS header with a UUID at offset %" PRIu64,
				    path, qi.crypt_header_offset);
	memcpy(uuid, h + 168, 37);
	return 0;
}

const char *vp_qcow2_probe_format(const char *path)
{
	unsigned char magic[4];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0) {
		vp_error_set_os(errno, "cannot open '%s'", path);
		return NULL;
	}
	do
		r = pread(fd, magic, sizeof(magic), 0);
	while (r < 0 && errno == EINTR);
	close(fd);
	if (r < 0) {
		vp_error_set_os(errno, "cannot read '%s'", path);
		return NULL;
	}
	if (r == 4 && ((uint32_t)magic[0] << 24 | (uint32_t)magic[1] << 16 | (uint32_t)magic[2] << 8 | magic[3]) ==
			      QCOW2_MAGIC)
		return "qcow2";
	return "raw";
}

/* ---- backing chains ------------------------------------------------------------- */

char *vp_qcow2_resolve_backing(const char *image_path, const char *backing)
{
	const char *slash = strrchr(image_path, '/');

	if (backing[0] == '/' || !slash)
		return vp_strdup(backing);
	return vp_strdup_printf("%.*s/%s", (int)(slash - image_path), image_path, backing);
}

struct seen {
	dev_t dev;
	ino_t ino;
};

/* Records the file identity of a layer; VP_EINVAL if it was seen before. */
static int check_loop(struct seen *seen, size_t n, const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return vp_error_set_os(errno, "cannot open backing file '%s'", path);
	for (size_t i = 0; i < n; i++)
		if (seen[i].dev == st.st_dev && seen[i].ino == st.st_ino)
			return BAD("backing chain loop: '%s' is already in the chain", path);
	seen[n] = (struct seen){ st.st_dev, st.st_ino };
	return 0;
}

/* Fills one layer whose format is known; *next gets the backing path or NULL. */
static int read_layer(vp_qcow2_layer *l, char **next)
{
	uint64_t size;
	int rc;

	*next = NULL;
	if (strcmp(l->format, "raw") == 0) {
		struct filesrc f;
		rc = filesrc_open(&f, l->path, &size);
		if (rc == 0) {
			close(f.fd);
			l->virtual_size = size;
		}
		return rc;
	}
	if (strcmp(l->format, "qcow2") != 0)
		return vp_error_set(VP_ERR_QCOW2, VP_ENOTSUP, "'%s': unsupported image format '%s'", l->path,
				    l->format);
	rc = vp_qcow2_read_info(&l->info, l->path);
	if (rc < 0)
		return rc;
	l->virtual_size = l->info.virtual_size;
	if (!l->info.has_backing)
		return 0;
	if (strncmp(l->info.backing_file, "json:", 5) == 0)
		return vp_error_set(VP_ERR_QCOW2, VP_ENOTSUP, "'%s': json: backing file names are not supported",
				    l->path);
	*next = vp_qcow2_resolve_backing(l->path, l->info.backing_file);
	return *next ? 0 : VP_ENOMEM;
}

/* The format of the layer below `parent`: the backing format extension, else probed. */
static int set_format(vp_qcow2_layer *l, const vp_qcow2_layer *parent)
{
	const char *fmt = parent && parent->info.backing_format[0] ? parent->info.backing_format : NULL;

	l->format_probed = fmt == NULL;
	if (!fmt)
		fmt = vp_qcow2_probe_format(l->path);
	if (!fmt)
		return vp_error_last()->code;
	snprintf(l->format, sizeof(l->format), "%s", fmt);
	return 0;
}

int vp_qcow2_read_chain(vp_qcow2_chain *out, const char *path)
{
	struct seen seen[VP_QCOW2_MAX_CHAIN];
	char *cur = vp_strdup(path), *next = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->layers = calloc(VP_QCOW2_MAX_CHAIN, sizeof(*out->layers));
	if (!cur || !out->layers) {
		free(cur);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	while (cur) {
		vp_qcow2_layer *l;
		if (out->depth == VP_QCOW2_MAX_CHAIN) {
			rc = BAD("backing chain of '%s' is deeper than %d images", path, VP_QCOW2_MAX_CHAIN);
			break;
		}
		rc = check_loop(seen, out->depth, cur);
		if (rc < 0)
			break;
		l = &out->layers[out->depth++];
		l->path = cur;
		cur = NULL;
		rc = set_format(l, out->depth > 1 ? &out->layers[out->depth - 2] : NULL);
		if (rc == 0)
			rc = read_layer(l, &next);
		if (rc < 0)
			break;
		cur = next;
	}
	free(cur);
	if (rc < 0 && out->depth > 1)
		vp_error_prefix("backing chain of '%s'", path);
	return rc;
}

void vp_qcow2_chain_release(vp_qcow2_chain *chain)
{
	if (!chain || !chain->layers)
		return;
	for (size_t i = 0; i < chain->depth; i++)
		free(chain->layers[i].path);
	free(chain->layers);
	chain->layers = NULL;
	chain->depth = 0;
}
