/* itest_qcow2.c: our qcow2 writer checked by real qemu-img/qemu-io over the cluster/L2/prealloc/size matrix. */
/*
 * Every combination of cluster size {16K, 64K, 128K, 2M} x extended L2 {off, on} x
 * preallocation {off, metadata} x virtual size {1 MiB, 1 GiB + 512, 20 GiB, 2 TiB} gets a
 * delta on a base with known content (1 MiB and 1 GiB+512: raw; 20 GiB and 2 TiB: sparse
 * qcow2). Preallocation with a backing file and without extended L2 is refused by QEMU; for
 * those we assert that qemu-img and our writer both refuse, with QEMU's reason.
 *
 * Each delta is checked by:
 *   check   qemu-img check --output=json: exit 0, check-errors 0, no leaks, no corruptions
 *           (and allocated-clusters = guest clusters when preallocated);
 *   info    qemu-img info --output=json: virtual size, cluster size, backing file, backing
 *           format, extended-l2;
 *   compare qemu-img compare delta base: "identical";
 *   map     preallocated: the map shape (entries without host offsets, adjacent equal ones
 *           merged) equals that of qemu-img's own preallocated reference, which equals that of a
 *           plain qemu-img delta: every subcluster unallocated, so all reads come from the base;
 *   write   qemu-io writes 12 KiB (not cluster aligned) into the delta and reads it back, reads
 *           base content through the delta, the map shows the write at depth 0, qemu-img check
 *           is still clean and the base file's SHA-256 is unchanged.
 *
 * For 2 TiB preallocated deltas the reference is the plain qemu-img delta (building qemu-img's
 * preallocated 2 TiB reference takes 20 s to minutes; the smaller sizes prove the two agree).
 * "Heavy" combinations (more than 512 MiB of metadata: 2 TiB preallocated with 16K clusters,
 * 2.3 GiB of L2 tables and refcount blocks, and with 64K clusters, 576 MiB) would spend 15-45 s in full-image
 * compare/map scans, so on them: check runs in full (it is the one that proves the refcounts);
 * compare is replaced by qemu-io pattern reads of every base region plus zero reads between
 * them through the delta; the map shape is compared on windows around each base region and at
 * the end of the disk, against a plain qemu-img delta (qemu-img's preallocated reference for
 * 2 TiB/16K takes minutes to build; at <= 20 GiB the test asserts both shapes are equal).
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "util/fs.h"
#include "util/run.h"
#include "util/util.h"
#include "vp_test.h"

#define KiB ((uint64_t)1024)
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)
#define TiB (1024ull * GiB)

static char dir[64];

struct base {
	const char *name;
	const char *fmt;
	uint64_t size;
	uint64_t spots[4]; /* where the known content is */
	unsigned char sha[32];
};

static struct base bases[] = {
	{ "base-1m.raw", "raw", 1 * MiB, { 0 }, { 0 } },
	{ "base-1g.raw", "raw", 1 * GiB + 512, { 0 }, { 0 } },
	{ "base-20g.qcow2", "qcow2", 20 * GiB, { 0 }, { 0 } },
	{ "base-2t.qcow2", "qcow2", 2 * TiB, { 0 }, { 0 } },
};

static const uint8_t patterns[4] = { 0x11, 0x22, 0x33, 0x44 };
static const uint64_t spot_len[4] = { 4 * KiB, 8 * KiB, 512, 1 * KiB };

static const char *path_in(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

/* ---- running qemu tools ------------------------------------------------------- */

/* Runs argv; returns the exit code (-1 if it could not run). Output stays in res. */
static int run(vp_run_result *res, const char *const argv[])
{
	if (vp_run(argv, NULL, res) < 0) {
		fprintf(stderr, "\n  cannot run %s: %s\n", argv[0], vp_error_last()->message);
		return -1;
	}
	return res->signal ? -1 : res->exit_code;
}

static int run_quiet(const char *const argv[])
{
	vp_run_result res;
	int rc = run(&res, argv);

	if (rc != 0) {
		VP_AUTOFREE char *cmd = vp_run_format(argv);
		fprintf(stderr, "\n  '%s' exited %d: %s%s\n", cmd, rc, vp_buf_cstr(&res.out), vp_buf_cstr(&res.err));
	}
	vp_run_result_release(&res);
	return rc;
}

/* The number after "key": in a qemu-img JSON document, or UINT64_MAX. */
static uint64_t json_u64(const char *json, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	p = strstr(json, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}

/* The string or literal after "key": (quotes dropped) into buf; "" if absent. */
static const char *json_str(const char *json, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	buf[0] = '\0';
	p = strstr(json, pat);
	if (!p)
		return buf;
	p += strlen(pat);
	if (*p == '"')
		p++;
	n = strcspn(p, "\",\n}");
	snprintf(buf, len, "%.*s", (int)(n < len ? n : len - 1), p);
	return buf;
}

/* ---- map shapes ------------------------------------------------------------------ */

struct extent {
	uint64_t start, length;
	int depth;
	bool present, zero, data;
};

struct shape {
	struct extent *e;
	size_t n;
};

static bool json_bool(const char *obj, const char *key)
{
	char buf[16];

	return strcmp(json_str(obj, key, buf, sizeof(buf)), "true") == 0;
}

/* Parses qemu-img map --output=json, drops host offsets, merges adjacent equal extents. */
static struct shape map_shape(const char *json)
{
	struct shape s = { NULL, 0 };

	for (const char *p = strchr(json, '{'); p; p = strchr(p + 1, '{')) {
		struct extent x;
		char obj[256];
		size_t n = strcspn(p, "}");
		snprintf(obj, sizeof(obj), "%.*s", (int)(n < sizeof(obj) ? n : sizeof(obj) - 1), p);
		x = (struct extent){ json_u64(obj, "start"), json_u64(obj, "length"), (int)json_u64(obj, "depth"),
				     json_bool(obj, "present"), json_bool(obj, "zero"), json_bool(obj, "data") };
		if (s.n) {
			struct extent *l = &s.e[s.n - 1];
			if (l->start + l->length == x.start && l->depth == x.depth && l->present == x.present &&
			    l->zero == x.zero && l->data == x.data) {
				l->length += x.length;
				continue;
			}
		}
		s.e = realloc(s.e, (s.n + 1) * sizeof(*s.e));
		s.e[s.n++] = x;
	}
	return s;
}

static bool extent_eq(const struct extent *a, const struct extent *b)
{
	return a->start == b->start && a->length == b->length && a->depth == b->depth &&
	       a->present == b->present && a->zero == b->zero && a->data == b->data;
}

static bool shape_eq(const struct shape *a, const struct shape *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!extent_eq(&a->e[i], &b->e[i]))
			return false;
	return true;
}

static void shape_print(const char *label, const struct shape *s)
{
	fprintf(stderr, "  %s:\n", label);
	for (size_t i = 0; i < s->n && i < 20; i++)
		fprintf(stderr, "    start %" PRIu64 " len %" PRIu64 " depth %d present %d zero %d data %d\n",
			s->e[i].start, s->e[i].length, s->e[i].depth, s->e[i].present, s->e[i].zero, s->e[i].data);
}

/* The map shape of `img` from `start` for `len` bytes (len 0: the whole image). */
static struct shape get_shape(const char *img, uint64_t start, uint64_t len)
{
	char so[64], ml[64];
	const char *full[] = { "qemu-img", "map", "--output=json", "-f", "qcow2", img, NULL };
	const char *win[] = { "qemu-img", "map", "--output=json", "-f", "qcow2", so, ml, img, NULL };
	vp_run_result res;
	struct shape s = { NULL, 0 };

	snprintf(so, sizeof(so), "--start-offset=%" PRIu64, start);
	snprintf(ml, sizeof(ml), "--max-length=%" PRIu64, len);
	if (run(&res, len ? win : full) == 0)
		s = map_shape(vp_buf_cstr(&res.out));
	else
		fprintf(stderr, "\n  qemu-img map %s: %s\n", img, vp_buf_cstr(&res.err));
	vp_run_result_release(&res);
	return s;
}

static bool same_shape(const char *a, const char *b, uint64_t start, uint64_t len)
{
	struct shape sa = get_shape(a, start, len), sb = get_shape(b, start, len);
	bool eq = sa.n > 0 && shape_eq(&sa, &sb);

	if (!eq) {
		fprintf(stderr, "\n  map shapes differ (%" PRIu64 "+%" PRIu64 ")\n", start, len);
		shape_print(a, &sa);
		shape_print(b, &sb);
	}
	free(sa.e);
	free(sb.e);
	return eq;
}

/* ---- base images ------------------------------------------------------------------ */

static int sha256_file(const char *path, unsigned char out[32])
{
	static unsigned char buf[1 << 20];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	FILE *f = fopen(path, "rb");
	size_t n;
	int rc = -1;

	if (ctx && f && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
			EVP_DigestUpdate(ctx, buf, n);
		if (!ferror(f) && EVP_DigestFinal_ex(ctx, out, NULL) == 1)
			rc = 0;
	}
	if (f)
		fclose(f);
	EVP_MD_CTX_free(ctx);
	return rc;
}

static int make_base(struct base *b)
{
	char sz[32], cmd[4][64];
	const char *path = path_in(b->name);
	const char *create[] = { "qemu-img", "create", "-q", "-f", b->fmt, path, sz, NULL };
	const char *io[] = { "qemu-io", "-f", b->fmt, "-c", cmd[0], "-c", cmd[1], "-c", cmd[2], "-c", cmd[3], path, NULL };

	/* Content at the start, the middle, the last sector and astride a 64K boundary. */
	b->spots[0] = 0;
	b->spots[1] = b->size / 2 / (64 * KiB) * (64 * KiB);
	b->spots[2] = b->size - 512;
	b->spots[3] = 64 * KiB - 512;
	snprintf(sz, sizeof(sz), "%" PRIu64, b->size);
	for (int i = 0; i < 4; i++)
		snprintf(cmd[i], sizeof(cmd[i]), "write -P 0x%02x %" PRIu64 " %" PRIu64, patterns[i], b->spots[i],
			 spot_len[i]);
	if (run_quiet(create) != 0 || run_quiet(io) != 0)
		return -1;
	return sha256_file(path, b->sha);
}

static int suite_init(void)
{
	double t0 = vp_now();

	snprintf(dir, sizeof(dir), "/tmp/vp-itest-qcow2-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	for (size_t i = 0; i < VP_ARRAY_SIZE(bases); i++)
		if (make_base(&bases[i]) < 0)
			return -1;
	fprintf(stderr, "bases ready in %.1fs\n", vp_now() - t0);
	return 0;
}

static int suite_clean(void)
{
	vp_fs_rm_rf(dir);
	return 0;
}

/* ---- one combination ------------------------------------------------------------ */

struct combo {
	const struct base *base;
	uint32_t cs;
	bool ext_l2, prealloc;
	char delta[256]; /* a copy: path_in() buffers are reused */
	bool heavy;
};

static void check_clean(const struct combo *c, const char *when)
{
	const char *argv[] = { "qemu-img", "check", "--output=json", "-f", "qcow2", c->delta, NULL };
	vp_run_result res;
	int rc = run(&res, argv);
	const char *j = vp_buf_cstr(&res.out);
	uint64_t guest = (c->base->size + c->cs - 1) / c->cs;

	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(json_u64(j, "check-errors"), 0);
	CU_ASSERT_PTR_NULL(strstr(j, "\"leaks\""));
	CU_ASSERT_PTR_NULL(strstr(j, "\"corruptions\""));
	if (c->prealloc && !strcmp(when, "fresh"))
		CU_ASSERT_EQUAL(json_u64(j, "allocated-clusters"), guest);
	if (rc != 0 || json_u64(j, "check-errors") != 0)
		fprintf(stderr, "\n  check (%s): %s %s\n", when, j, vp_buf_cstr(&res.err));
	vp_run_result_release(&res);
}

static void check_info(const struct combo *c)
{
	const char *argv[] = { "qemu-img", "info", "--output=json", "-f", "qcow2", c->delta, NULL };
	vp_run_result res;
	char buf[256];
	const char *j;

	CU_ASSERT_EQUAL_FATAL(run(&res, argv), 0);
	j = vp_buf_cstr(&res.out);
	CU_ASSERT_EQUAL(json_u64(j, "virtual-size"), c->base->size);
	CU_ASSERT_EQUAL(json_u64(j, "cluster-size"), c->cs);
	VP_ASSERT_STR_EQ(json_str(j, "backing-filename", buf, sizeof(buf)), c->base->name);
	VP_ASSERT_STR_EQ(json_str(j, "backing-filename-format", buf, sizeof(buf)), c->base->fmt);
	VP_ASSERT_STR_EQ(json_str(j, "extended-l2", buf, sizeof(buf)), c->ext_l2 ? "true" : "false");
	vp_run_result_release(&res);
}

static void check_compare(const struct combo *c)
{
	const char *argv[] = { "qemu-img", "compare", "-f", "qcow2", "-F", c->base->fmt, c->delta,
			       path_in(c->base->name), NULL };
	vp_run_result res;

	CU_ASSERT_EQUAL(run(&res, argv), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_buf_cstr(&res.out), "Images are identical"));
	vp_run_result_release(&res);
}

/* qemu-io commands on the delta; fails on a pattern mismatch too. */
static void io(const char *img, const char *fmt, bool ro, const char *const cmds[], size_t n)
{
	const char *argv[32];
	size_t k = 0;
	vp_run_result res;
	int rc;

	argv[k++] = "qemu-io";
	argv[k++] = "-f";
	argv[k++] = fmt;
	if (ro)
		argv[k++] = "-r";
	for (size_t i = 0; i < n && k < 28; i++) {
		argv[k++] = "-c";
		argv[k++] = cmds[i];
	}
	argv[k++] = img;
	argv[k] = NULL;
	rc = run(&res, argv);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_PTR_NULL(strstr(vp_buf_cstr(&res.out), "failed"));
	if (rc != 0 || strstr(vp_buf_cstr(&res.out), "failed"))
		fprintf(stderr, "\n  qemu-io %s: %s %s\n", img, vp_buf_cstr(&res.out), vp_buf_cstr(&res.err));
	vp_run_result_release(&res);
}

/* Every base region read through the delta, and zeros next to them. */
static void check_reads_through(const struct combo *c)
{
	char cmds[8][80];
	const char *p[8];
	const struct base *b = c->base;

	for (int i = 0; i < 4; i++) {
		snprintf(cmds[2 * i], sizeof(cmds[0]), "read -P 0x%02x %" PRIu64 " %" PRIu64, patterns[i], b->spots[i],
			 spot_len[i]);
		snprintf(cmds[2 * i + 1], sizeof(cmds[0]), "read -P 0 %" PRIu64 " 512",
			 b->spots[i] >= 1024 * KiB ? b->spots[i] - 512 * KiB : b->spots[i] + 128 * KiB);
		p[2 * i] = cmds[2 * i];
		p[2 * i + 1] = cmds[2 * i + 1];
	}
	io(c->delta, "qcow2", true, p, 8);
}

/* A plain qemu-img delta on the same base: the map shape every preallocated delta must have. */
static void plain_reference(const struct combo *c, const char *ref)
{
	char o[64];
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", c->base->name, "-F", c->base->fmt,
			       "-o", o, ref, NULL };

	snprintf(o, sizeof(o), "cluster_size=%" PRIu32, c->cs);
	unlink(ref);
	CU_ASSERT_EQUAL(run_quiet(argv), 0);
}

static void check_map_prealloc(const struct combo *c)
{
	const char *plain = path_in("ref-plain.qcow2"), *pre = path_in("ref-pre.qcow2");
	char o[96];
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", c->base->name, "-F", c->base->fmt,
			       "-o", o, pre, NULL };

	plain_reference(c, plain);
	if (c->heavy) {
		for (int i = 0; i < 4; i++)
			CU_ASSERT_TRUE(same_shape(c->delta, plain, c->base->spots[i] / GiB * GiB, 1 * GiB));
		CU_ASSERT_TRUE(same_shape(c->delta, plain, c->base->size - 1 * GiB, 1 * GiB));
	} else if (c->base->size > 20 * GiB) {
		/* qemu-img's own preallocation of 2 TiB takes 20 s and more; the
		 * smaller sizes prove its shape is the plain delta's. */
		CU_ASSERT_TRUE(same_shape(c->delta, plain, 0, 0));
	} else {
		snprintf(o, sizeof(o), "cluster_size=%" PRIu32 ",extended_l2=on,preallocation=metadata", c->cs);
		unlink(pre);
		CU_ASSERT_EQUAL(run_quiet(argv), 0);
		CU_ASSERT_TRUE(same_shape(c->delta, pre, 0, 0));
		CU_ASSERT_TRUE(same_shape(pre, plain, 0, 0));
		unlink(pre);
	}
	unlink(plain);
}

/* Writes into the delta and checks where it went and what it left alone. */
static void check_write(const struct combo *c)
{
	uint64_t off = c->base->size / 4 / (4 * KiB) * (4 * KiB) + 2 * KiB;
	char w[80], r[80], r0[80], z[80];
	const char *cmds[] = { w, r, r0 };
	const char *base_cmds[] = { z };
	unsigned char sha[32];
	struct shape s;

	snprintf(w, sizeof(w), "write -P 0xab %" PRIu64 " 12k", off);
	snprintf(r, sizeof(r), "read -P 0xab %" PRIu64 " 12k", off);
	snprintf(r0, sizeof(r0), "read -P 0x11 0 4k");
	snprintf(z, sizeof(z), "read -P 0 %" PRIu64 " 12k", off);
	io(c->delta, "qcow2", false, cmds, 3);
	s = get_shape(c->delta, off, 12 * KiB);
	CU_ASSERT_TRUE(s.n >= 1 && s.e[0].depth == 0 && s.e[0].data && s.e[0].start == off &&
		       s.e[s.n - 1].start + s.e[s.n - 1].length == off + 12 * KiB);
	for (size_t i = 0; i < s.n; i++)
		CU_ASSERT_TRUE(s.e[i].depth == 0 && s.e[i].data);
	free(s.e);
	CU_ASSERT_EQUAL(sha256_file(path_in(c->base->name), sha), 0);
	CU_ASSERT_EQUAL(memcmp(sha, c->base->sha, 32), 0);
	io(path_in(c->base->name), c->base->fmt, true, base_cmds, 1);
}

static int create_delta(const struct combo *c)
{
	vp_qcow2_create_opts o;

	vp_qcow2_create_opts_init(&o);
	o.backing_file = c->base->name;
	/* Half the deltas name the base format, half let the writer detect it. */
	o.backing_format = c->prealloc ? c->base->fmt : NULL;
	o.cluster_size = c->cs;
	o.extended_l2 = c->ext_l2;
	o.prealloc = c->prealloc ? VP_QCOW2_PREALLOC_METADATA : VP_QCOW2_PREALLOC_OFF;
	return vp_qcow2_create(c->delta, &o);
}

/* Both refuse: qemu-img with its message, we with the same reason. */
static void check_refused(const struct combo *c)
{
	char o[96];
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", c->base->name, "-F", c->base->fmt,
			       "-o", o, path_in("qemu-refused.qcow2"), NULL };
	vp_run_result res;

	snprintf(o, sizeof(o), "cluster_size=%" PRIu32 ",preallocation=metadata", c->cs);
	CU_ASSERT_NOT_EQUAL(run(&res, argv), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_buf_cstr(&res.err),
				      "Backing file and preallocation can only be used at the same time if extended_l2 is on"));
	vp_run_result_release(&res);
	CU_ASSERT_EQUAL(create_delta(c), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message,
				      "backing file and preallocation can only be used at the same time if extended_l2 is on"));
	CU_ASSERT_FALSE(vp_fs_exists(c->delta));
}

static void run_combo(struct combo *c)
{
	double t0 = vp_now(), t1;

	unlink(c->delta); /* left over when a fatal assertion stopped the previous one */
	if (c->prealloc && !c->ext_l2) {
		check_refused(c);
		fprintf(stderr, "  %-14s %5" PRIu32 "K extl2=%d prealloc=%d refused by qemu-img and by us\n", c->base->name,
			c->cs / 1024, c->ext_l2, c->prealloc);
		return;
	}
	CU_ASSERT_EQUAL_FATAL(create_delta(c), 0);
	t1 = vp_now();
	check_clean(c, "fresh");
	check_info(c);
	if (c->heavy)
		check_reads_through(c);
	else
		check_compare(c);
	if (c->prealloc)
		check_map_prealloc(c);
	check_write(c);
	check_clean(c, "after write");
	unlink(c->delta);
	fprintf(stderr, "  %-14s %5" PRIu32 "K extl2=%d prealloc=%d create %.3fs checks %.1fs%s\n", c->base->name,
		c->cs / 1024, c->ext_l2, c->prealloc, t1 - t0, vp_now() - t1,
		c->heavy ? " (heavy: windowed map, pattern reads instead of compare)" : "");
}

static void run_size(size_t bi)
{
	static const uint32_t sizes[] = { 16 * 1024, 64 * 1024, 128 * 1024, 2 * 1024 * 1024 };
	double t0 = vp_now();

	fprintf(stderr, "\n");
	for (size_t s = 0; s < VP_ARRAY_SIZE(sizes); s++) {
		for (int ext = 0; ext < 2; ext++) {
			for (int pre = 0; pre < 2; pre++) {
				struct combo c = { &bases[bi], sizes[s], ext, pre, "", false };
				snprintf(c.delta, sizeof(c.delta), "%s", path_in("delta.qcow2"));
				/* Over 512 MiB of metadata (16 B of L2 + 2 B of refcount per cluster):
				 * 2 TiB in 16K clusters (2.3 GiB) and in 64K clusters (576 MiB). */
				c.heavy = pre && bases[bi].size / sizes[s] * 18 > 512 * MiB;
				run_combo(&c);
			}
		}
	}
	fprintf(stderr, "  %s: %.1fs ", bases[bi].name, vp_now() - t0);
}

static void test_1m(void) { run_size(0); }
static void test_1g(void) { run_size(1); }
static void test_20g(void) { run_size(2); }
static void test_2t(void) { run_size(3); }

/* Standalone disks: no backing file, reads give zeros; map shape as qemu-img's own. */
static void test_standalone(void)
{
	for (int ext = 0; ext < 2; ext++) {
		for (int pre = 0; pre < 2; pre++) {
			vp_qcow2_create_opts o;
			char opt[96];
			const char *ours = path_in("solo.qcow2"), *ref = path_in("solo-ref.qcow2");
			const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", opt, ref, "3G", NULL };
			const char *zero[] = { "read -P 0 0 64k", "read -P 0 3221159936 64k" };
			const char *info[] = { "qemu-img", "info", "--output=json", ours, NULL };
			struct combo c = { &bases[0], 65536, ext, false, "", false };
			vp_run_result res;
			char buf[32];

			vp_qcow2_create_opts_init(&o);
			o.size = 3 * GiB;
			o.cluster_size = 65536;
			o.extended_l2 = ext;
			o.prealloc = pre ? VP_QCOW2_PREALLOC_METADATA : VP_QCOW2_PREALLOC_OFF;
			snprintf(c.delta, sizeof(c.delta), "%s", ours);
			CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(ours, &o), 0);
			snprintf(opt, sizeof(opt), "cluster_size=65536,extended_l2=%s,preallocation=%s", ext ? "on" : "off",
				 pre ? "metadata" : "off");
			CU_ASSERT_EQUAL(run_quiet(argv), 0);
			check_clean(&c, "standalone");
			CU_ASSERT_TRUE(same_shape(ours, ref, 0, 0));
			io(ours, "qcow2", true, zero, 2);
			CU_ASSERT_EQUAL(run(&res, info), 0);
			CU_ASSERT_EQUAL(json_u64(vp_buf_cstr(&res.out), "virtual-size"), 3 * GiB);
			CU_ASSERT_PTR_NULL(strstr(vp_buf_cstr(&res.out), "backing-filename"));
			VP_ASSERT_STR_EQ(json_str(vp_buf_cstr(&res.out), "extended-l2", buf, sizeof(buf)),
					 ext ? "true" : "false");
			vp_run_result_release(&res);
			unlink(ours);
			unlink(ref);
		}
	}
}

/* The reader agrees with qemu-img about a qemu-img made chain. */
static void test_reader_on_qemu_images(void)
{
	const char *mid = path_in("q-mid.qcow2"), *top = path_in("q-top.qcow2");
	const char *a[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b", "base-1m.raw",
			    "-F", "raw", mid, NULL };
	const char *b[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,cluster_size=32k",
			    "-b", "q-mid.qcow2", "-F", "qcow2", top, NULL };
	vp_qcow2_chain ch;

	CU_ASSERT_EQUAL_FATAL(run_quiet(a), 0);
	CU_ASSERT_EQUAL_FATAL(run_quiet(b), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_chain(&ch, top), 0);
	CU_ASSERT_EQUAL(ch.depth, 3);
	if (ch.depth == 3) {
		CU_ASSERT_EQUAL(ch.layers[0].info.cluster_size, 32768);
		CU_ASSERT_TRUE(ch.layers[0].info.extended_l2);
		CU_ASSERT_EQUAL(ch.layers[1].info.version, 2);
		VP_ASSERT_STR_EQ(ch.layers[1].info.backing_format, "raw");
		VP_ASSERT_STR_EQ(ch.layers[2].format, "raw");
		CU_ASSERT_EQUAL(ch.layers[2].virtual_size, 1 * MiB);
		CU_ASSERT_EQUAL(ch.layers[0].virtual_size, 1 * MiB);
	}
	vp_qcow2_chain_release(&ch);
}

static CU_TestInfo tests[] = {
	{ "reader on qemu-img images", test_reader_on_qemu_images },
	{ "standalone disks", test_standalone },
	{ "deltas on 1 MiB raw", test_1m },
	{ "deltas on 1 GiB + 512 raw", test_1g },
	{ "deltas on 20 GiB qcow2", test_20g },
	{ "deltas on 2 TiB qcow2", test_2t },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "qcow2_qemu", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
