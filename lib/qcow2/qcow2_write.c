/* qcow2_write.c: native qcow2 v3 writer: delta images on a backing file and empty disks, built in memory. */
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

#define CHUNK (4u << 20)              /* streaming buffer for huge preallocated tables */
#define MATERIALIZE_MAX (64ull << 20) /* build the metadata once when it is smaller than this */
#define HEADER_MAX 2048               /* header + extensions + backing name always fit */

/* The metadata areas we write; everything else in the file is a hole. */
enum seg_kind { SEG_HEADER, SEG_REFTABLE, SEG_REFBLOCKS, SEG_L1, SEG_L2, SEG_COUNT };

struct seg {
	uint64_t off, len;
	unsigned char *data; /* the bytes, or NULL: generated chunk by chunk while writing */
};

/* Where everything goes. Layout: header, refcount table, refcount blocks, L1,
 * L2 tables, data clusters: all contiguous, so for a plain delta it is exactly
 * QEMU's (header, reftable, refblock, L1 in clusters 0-3). */
struct plan {
	uint32_t cluster_bits;
	uint64_t cs;
	bool ext_l2, prealloc;
	uint64_t size, guest_clusters;
	uint64_t l1_size, l1_clusters, nl2;
	uint64_t rt_off, rt_clusters, rb_off, nrb, l1_off, l2_off, data_off, total_clusters, file_size;
	unsigned char header[HEADER_MAX];
	struct seg seg[SEG_COUNT];
};

void vp_qcow2_create_opts_init(vp_qcow2_create_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
}

/* ---- options ------------------------------------------------------------------ */

static int check_cluster_size(uint32_t cs)
{
	if (cs < VP_QCOW2_MIN_CLUSTER || cs > VP_QCOW2_MAX_CLUSTER || (cs & (cs - 1)))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "cluster size must be a power of two between 16 KiB and 2 MiB, got %" PRIu32, cs);
	return 0;
}

static int check_opts(const vp_qcow2_create_opts *o)
{
	const char *b = o->backing_file;

	if (b && (!*b || strlen(b) > VP_QCOW2_MAX_BACKING_NAME))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "backing file name must be 1 to %d bytes long",
				    VP_QCOW2_MAX_BACKING_NAME);
	if (o->backing_format && strcmp(o->backing_format, "qcow2") && strcmp(o->backing_format, "raw"))
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP, "unsupported backing format '%s' (raw or qcow2)",
				    o->backing_format);
	if (o->backing_format && !b)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "a backing format needs a backing file");
	if (o->cluster_size && check_cluster_size(o->cluster_size) < 0)
		return VP_EINVAL;
	if (o->prealloc != VP_QCOW2_PREALLOC_OFF && o->prealloc != VP_QCOW2_PREALLOC_METADATA)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "unknown preallocation mode %d", (int)o->prealloc);
	/* QEMU's rule: without subclusters a preallocated cluster would hide the backing file. */
	if (b && o->prealloc == VP_QCOW2_PREALLOC_METADATA && !o->extended_l2)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "backing file and preallocation can only be used at the same time if extended_l2 is on");
	if (o->sync != VP_QCOW2_SYNC_FILES && o->sync != VP_QCOW2_SYNC_FS)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "unknown sync mode %d", (int)o->sync);
	return 0;
}

/* Virtual size of the backing file, read with our own reader (never probed by QEMU). */
static int backing_size(const char *full, const char *fmt, uint64_t *size)
{
	vp_qcow2_info info;
	struct stat st;

	if (strcmp(fmt, "qcow2") == 0) {
		if (vp_qcow2_read_info(&info, full) < 0)
			return vp_error_last()->code;
		*size = info.virtual_size;
		return 0;
	}
	if (stat(full, &st) < 0)
		return vp_error_set_os(errno, "cannot open backing file '%s'", full);
	*size = (uint64_t)st.st_size;
	return 0;
}

/* Fills in the backing format and size the caller left to us. */
static int resolve_backing(const char *path, const vp_qcow2_create_opts *o, const char **fmt, uint64_t *size)
{
	VP_AUTOFREE char *full = NULL;

	*fmt = o->backing_format;
	if (!o->backing_file || (*fmt && *size))
		return 0;
	full = vp_qcow2_resolve_backing(path, o->backing_file);
	if (!full)
		return VP_ENOMEM;
	if (!*fmt && !(*fmt = vp_qcow2_probe_format(full)))
		return vp_error_last()->code;
	if (*size)
		return 0;
	return backing_size(full, *fmt, size);
}

/* ---- layout ------------------------------------------------------------------- */

static uint64_t div_up(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

/* Refcount blocks cover every cluster, themselves and the table included:
 * iterate to the fixed point (two or three rounds). */
static void size_refcounts(struct plan *p, uint64_t other_clusters)
{
	uint64_t per_block = p->cs * 8 / 16;

	p->rt_clusters = p->nrb = 1;
	for (;;) {
		uint64_t total = 1 + p->rt_clusters + p->nrb + other_clusters;
		uint64_t nrb = div_up(total, per_block);
		uint64_t rtc = div_up(nrb * 8, p->cs);
		p->total_clusters = total;
		if (nrb == p->nrb && rtc == p->rt_clusters)
			break;
		p->nrb = nrb;
		p->rt_clusters = rtc;
	}
}

static int too_large(void)
{
	return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
			    "image size is too large for qcow2 (try using a larger cluster size)");
}

static int layout(struct plan *p, uint64_t size, uint32_t cs, bool ext_l2, bool prealloc)
{
	uint64_t l2_entries = cs / (ext_l2 ? 16 : 8), ndata;

	p->cs = cs;
	p->cluster_bits = (uint32_t)__builtin_ctz(cs);
	p->ext_l2 = ext_l2;
	p->prealloc = prealloc;
	p->size = size;
	p->guest_clusters = div_up(size, cs);
	p->l1_size = div_up(p->guest_clusters, l2_entries);
	if (p->l1_size > QCOW2_MAX_L1_BYTES / 8)
		return too_large();
	p->l1_clusters = div_up(p->l1_size * 8, cs);
	p->nl2 = prealloc ? p->l1_size : 0;
	ndata = prealloc ? p->guest_clusters : 0;
	size_refcounts(p, p->l1_clusters + p->nl2 + ndata);
	if (p->rt_clusters * cs > QCOW2_MAX_REFTABLE_BYTES)
		return too_large();
	p->rt_off = cs;
	p->rb_off = (1 + p->rt_clusters) * cs;
	p->l1_off = p->l1_size ? p->rb_off + p->nrb * cs : 0; /* QEMU writes 0 for an empty L1 */
	p->l2_off = p->rb_off + (p->nrb + p->l1_clusters) * cs;
	p->data_off = p->l2_off + p->nl2 * cs;
	p->file_size = p->data_off + ndata * cs;
	if (p->file_size > QCOW2_OFFSET_MASK)
		return too_large();
	return 0;
}

/* ---- header ------------------------------------------------------------------- */

static const struct { uint8_t type, bit; const char *name; } feature_table[] = {
	{ 0, 0, "dirty bit" },          { 0, 1, "corrupt bit" },     { 0, 2, "external data file" },
	{ 0, 3, "compression type" },   { 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
	{ 2, 0, "bitmaps" },            { 2, 1, "raw external data" },
};

static size_t put_ext(unsigned char *buf, size_t off, uint32_t type, const void *data, uint32_t len)
{
	struct qcow2_ext_hdr e = { htobe32(type), htobe32(len) };

	memcpy(buf + off, &e, sizeof(e));
	if (len)
		memcpy(buf + off + sizeof(e), data, len);
	return off + sizeof(e) + ((len + 7u) & ~7u);
}

static size_t put_feature_table(unsigned char *buf, size_t off)
{
	struct qcow2_feature_name t[VP_ARRAY_SIZE(feature_table)];

	memset(t, 0, sizeof(t));
	for (size_t i = 0; i < VP_ARRAY_SIZE(feature_table); i++) {
		t[i].type = feature_table[i].type;
		t[i].bit = feature_table[i].bit;
		memcpy(t[i].name, feature_table[i].name, strlen(feature_table[i].name));
	}
	return put_ext(buf, off, QCOW2_EXT_FEATURE_TABLE, t, sizeof(t));
}

/* Header, extensions (backing format, feature names, end) and backing name, as QEMU lays them out. */
static size_t build_header(struct plan *p, const char *backing, const char *fmt)
{
	struct qcow2_header h;
	size_t off = sizeof(h);

	memset(p->header, 0, sizeof(p->header));
	memset(&h, 0, sizeof(h));
	h.magic = htobe32(QCOW2_MAGIC);
	h.version = htobe32(3);
	h.cluster_bits = htobe32(p->cluster_bits);
	h.size = htobe64(p->size);
	h.l1_size = htobe32((uint32_t)p->l1_size);
	h.l1_table_offset = htobe64(p->l1_off);
	h.refcount_table_offset = htobe64(p->rt_off);
	h.refcount_table_clusters = htobe32((uint32_t)p->rt_clusters);
	h.incompatible_features = htobe64(p->ext_l2 ? QCOW2_INCOMPAT_EXTL2 : 0);
	h.refcount_order = htobe32(QCOW2_REFCOUNT_ORDER);
	h.header_length = htobe32(QCOW2_V3_HEADER_LEN);
	if (backing)
		off = put_ext(p->header, off, QCOW2_EXT_BACKING_FORMAT, fmt, (uint32_t)strlen(fmt));
	off = put_feature_table(p->header, off);
	off = put_ext(p->header, off, QCOW2_EXT_END, NULL, 0);
	if (backing) {
		size_t n = strlen(backing);
		h.backing_file_offset = htobe64(off);
		h.backing_file_size = htobe32((uint32_t)n);
		memcpy(p->header + off, backing, n);
		off += n;
	}
	memcpy(p->header, &h, sizeof(h));
	return off;
}

/* ---- table contents ------------------------------------------------------------ */

static void put64(unsigned char *b, uint64_t v) { v = htobe64(v); memcpy(b, &v, 8); }

/* Writes the bytes [pos, pos + len) of segment k into buf; pos and len are
 * multiples of the entry size (chunks are multiples of 16). */
static void fill(const struct plan *p, int k, uint64_t pos, unsigned char *buf, size_t len)
{
	size_t esz = k == SEG_REFBLOCKS ? 2 : k == SEG_L2 && p->ext_l2 ? 16 : 8;
	uint64_t i = pos / esz;

	if (k == SEG_HEADER) {
		memcpy(buf, p->header + pos, len);
		return;
	}
	if (k == SEG_L2 && p->ext_l2)
		memset(buf, 0, len); /* subcluster bitmaps: nothing allocated, nothing zeroed */
	for (size_t o = 0; o < len; o += esz, i++) {
		switch (k) {
		case SEG_REFTABLE: put64(buf + o, p->rb_off + i * p->cs); break;
		case SEG_REFBLOCKS: buf[o] = 0; buf[o + 1] = 1; break;
		case SEG_L1: put64(buf + o, (p->l2_off + i * p->cs) | QCOW2_OFLAG_COPIED); break;
		case SEG_L2: put64(buf + o, (p->data_off + i * p->cs) | QCOW2_OFLAG_COPIED); break;
		}
	}
}

static void plan_segments(struct plan *p, size_t header_len)
{
	p->seg[SEG_HEADER] = (struct seg){ 0, header_len, NULL };
	p->seg[SEG_REFTABLE] = (struct seg){ p->rt_off, p->nrb * 8, NULL };
	p->seg[SEG_REFBLOCKS] = (struct seg){ p->rb_off, p->total_clusters * 2, NULL };
	p->seg[SEG_L1] = (struct seg){ p->l1_off, p->nl2 * 8, NULL };
	p->seg[SEG_L2] = (struct seg){ p->l2_off, p->prealloc ? p->guest_clusters * (p->ext_l2 ? 16 : 8) : 0, NULL };
}

/* Small metadata is built once and reused for every image of a batch. */
static int materialize(struct plan *p)
{
	uint64_t total = 0;

	for (int k = 0; k < SEG_COUNT; k++)
		total += p->seg[k].len;
	if (total > MATERIALIZE_MAX)
		return 0;
	for (int k = 0; k < SEG_COUNT; k++) {
		if (!p->seg[k].len)
			continue;
		p->seg[k].data = malloc(p->seg[k].len);
		if (!p->seg[k].data)
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		fill(p, k, 0, p->seg[k].data, p->seg[k].len);
	}
	return 0;
}

static void plan_release(struct plan *p)
{
	for (int k = 0; k < SEG_COUNT; k++)
		free(p->seg[k].data);
}

static int plan_build(struct plan *p, const char *first_path, const vp_qcow2_create_opts *o)
{
	uint64_t size = o->size;
	uint32_t cs = o->cluster_size ? o->cluster_size : o->extended_l2 ? 128u << 10 : 64u << 10;
	const char *fmt;
	int rc;

	memset(p, 0, sizeof(*p));
	rc = resolve_backing(first_path, o, &fmt, &size);
	if (rc < 0)
		return rc;
	if (size > INT64_MAX - 511)
		return too_large();
	size = (size + 511) & ~511ull; /* qemu-img rounds up to whole sectors */
	rc = layout(p, size, cs, o->extended_l2, o->prealloc == VP_QCOW2_PREALLOC_METADATA);
	if (rc < 0)
		return rc;
	plan_segments(p, build_header(p, o->backing_file, fmt));
	return materialize(p);
}

/* ---- writing ------------------------------------------------------------------ */

static int write_seg(int fd, const struct plan *p, int k, unsigned char **chunk, const char *tmp)
{
	const struct seg *s = &p->seg[k];

	if (s->data || !s->len)
		return s->len ? vp_fs_pwrite_all(fd, s->data, s->len, s->off, tmp) : 0;
	if (!*chunk && !(*chunk = malloc(CHUNK)))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (uint64_t pos = 0; pos < s->len; pos += CHUNK) {
		size_t n = s->len - pos < CHUNK ? (size_t)(s->len - pos) : CHUNK;
		fill(p, k, pos, *chunk, n);
		if (vp_fs_pwrite_all(fd, *chunk, n, s->off + pos, tmp) < 0)
			return VP_EIO;
	}
	return 0;
}

/* One image under its temporary name. The file is sized first: the
 * preallocated data clusters stay a hole, never written. */
static int write_image(const struct plan *p, const char *tmp, mode_t mode, bool sync)
{
	unsigned char *chunk = NULL;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int rc = 0;

	if (fd < 0)
		return vp_error_set_os(errno, "cannot create '%s'", tmp);
	if (ftruncate(fd, (off_t)p->file_size) < 0)
		rc = vp_error_set_os(errno, "cannot size '%s'", tmp);
	for (int k = 0; rc == 0 && k < SEG_COUNT; k++)
		rc = write_seg(fd, p, k, &chunk, tmp);
	/* fdatasync also flushes the new file size, which is all that reading needs. */
	if (rc == 0 && sync && fdatasync(fd) < 0)
		rc = vp_error_set_os(errno, "cannot fsync '%s'", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = vp_error_set_os(errno, "cannot close '%s'", tmp);
	free(chunk);
	return rc;
}

/* rename() that never replaces an existing target unless asked to. */
static int put_in_place(const char *tmp, const char *path, bool overwrite)
{
	if (overwrite) {
		if (rename(tmp, path) == 0)
			return 0;
	} else if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
		return 0;
	} else if (errno == EINVAL || errno == ENOSYS) {
		/* The file system has no RENAME_NOREPLACE: link() refuses to replace too. */
		if (link(tmp, path) == 0) {
			unlink(tmp);
			return 0;
		}
	}
	if (errno == EEXIST)
		return vp_error_set(VP_ERR_QCOW2, VP_EEXIST, "'%s' exists already", path);
	return vp_error_set_os(errno, "cannot rename '%s' to '%s'", tmp, path);
}

/* ---- batches ------------------------------------------------------------------ */

struct batch {
	const char *const *paths;
	size_t n;
	char **tmp;      /* temporary names */
	char *state;     /* 0 nothing, 1 temp written, 2 renamed into place */
	char **dirs;     /* distinct directories, sorted */
	size_t ndirs;
};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return vp_strdup(".");
	if (slash == path)
		return vp_strdup("/");
	return vp_strdup_printf("%.*s", (int)(slash - path), path);
}

/* The distinct directories of the batch: each is synced once. */
static int collect_dirs(struct batch *b)
{
	size_t j = 0;

	b->dirs = calloc(b->n, sizeof(*b->dirs));
	if (!b->dirs)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	b->ndirs = b->n; /* so that a failure below frees what was made */
	for (size_t i = 0; i < b->n; i++) {
		b->dirs[i] = dir_of(b->paths[i]);
		if (!b->dirs[i])
			return VP_ENOMEM;
	}
	qsort(b->dirs, b->n, sizeof(*b->dirs), cmp_str);
	for (size_t i = 0; i < b->n; i++) {
		if (j && strcmp(b->dirs[j - 1], b->dirs[i]) == 0) {
			free(b->dirs[i]);
			continue;
		}
		b->dirs[j++] = b->dirs[i];
	}
	b->ndirs = j;
	return 0;
}

static int sync_dirs(const struct batch *b, bool whole_fs)
{
	for (size_t i = 0; i < b->ndirs; i++) {
		int fd, rc = 0;
		if (!whole_fs) {
			if (vp_fs_fsync_dir(b->dirs[i]) < 0)
				return vp_error_last()->code;
			continue;
		}
		fd = open(b->dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return vp_error_set_os(errno, "cannot open directory '%s'", b->dirs[i]);
		if (syncfs(fd) < 0)
			rc = vp_error_set_os(errno, "cannot sync the file system of '%s'", b->dirs[i]);
		close(fd);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int check_targets(const struct batch *b, bool overwrite)
{
	for (size_t i = 0; i < b->n; i++) {
		if (!b->paths[i] || !*b->paths[i])
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "empty image path");
		if (!overwrite && vp_fs_exists(b->paths[i]))
			return vp_error_set(VP_ERR_QCOW2, VP_EEXIST, "'%s' exists already", b->paths[i]);
	}
	return 0;
}

static int write_all(struct batch *b, const struct plan *p, const vp_qcow2_create_opts *o)
{
	mode_t mode = o->mode ? (mode_t)o->mode : 0644;

	for (size_t i = 0; i < b->n; i++) {
		int rc;
		b->tmp[i] = vp_fs_tmpname(b->paths[i]);
		if (!b->tmp[i])
			return VP_ENOMEM;
		rc = write_image(p, b->tmp[i], mode, o->sync == VP_QCOW2_SYNC_FILES);
		if (rc < 0) {
			unlink(b->tmp[i]);
			vp_error_prefix("cannot create qcow2 image '%s'", b->paths[i]);
			return rc;
		}
		b->state[i] = 1;
	}
	return 0;
}

static int rename_all(struct batch *b, bool overwrite)
{
	for (size_t i = 0; i < b->n; i++) {
		if (put_in_place(b->tmp[i], b->paths[i], overwrite) < 0)
			return vp_error_last()->code;
		b->state[i] = 2;
	}
	return 0;
}

/* After a failure: remove what this batch made. Replaced targets stay: the
 * old file is gone already and the new one is complete. */
static void roll_back(struct batch *b, bool overwrite)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->state[i] == 1)
			unlink(b->tmp[i]);
		else if (b->state[i] == 2 && !overwrite)
			unlink(b->paths[i]);
	}
}

static void batch_release(struct batch *b)
{
	for (size_t i = 0; b->tmp && i < b->n; i++)
		free(b->tmp[i]);
	for (size_t i = 0; b->dirs && i < b->ndirs; i++)
		free(b->dirs[i]);
	free(b->tmp);
	free(b->state);
	free(b->dirs);
}

static int run_batch(struct batch *b, const struct plan *p, const vp_qcow2_create_opts *o)
{
	int rc = collect_dirs(b);

	if (rc == 0)
		rc = write_all(b, p, o);
	if (rc == 0 && o->sync == VP_QCOW2_SYNC_FS)
		rc = sync_dirs(b, true); /* the contents are durable before any name points at them */
	if (rc == 0)
		rc = rename_all(b, o->overwrite);
	if (rc == 0)
		rc = sync_dirs(b, false);
	if (rc < 0) {
		int code = vp_error_last()->code;
		roll_back(b, o->overwrite);
		return code ? code : rc;
	}
	return 0;
}

int vp_qcow2_create_batch(const char *const *paths, size_t n, const vp_qcow2_create_opts *opts)
{
	struct batch b = { .paths = paths, .n = n };
	struct plan *p = NULL;
	int rc;

	if (!paths || !opts)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "no image paths or no options");
	if (n == 0)
		return 0;
	rc = check_opts(opts);
	if (rc == 0)
		rc = check_targets(&b, opts->overwrite);
	if (rc < 0)
		return rc;
	p = malloc(sizeof(*p));
	b.tmp = calloc(n, sizeof(*b.tmp));
	b.state = calloc(n, 1);
	if (!p || !b.tmp || !b.state) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		free(p);
		batch_release(&b);
		return rc;
	}
	rc = plan_build(p, paths[0], opts);
	if (rc < 0)
		vp_error_prefix("cannot create qcow2 image '%s'", paths[0]);
	else
		rc = run_batch(&b, p, opts);
	plan_release(p);
	free(p);
	batch_release(&b);
	return rc;
}

int vp_qcow2_create(const char *path, const vp_qcow2_create_opts *opts)
{
	if (!path)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "empty image path");
	return vp_qcow2_create_batch(&path, 1, opts);
}
