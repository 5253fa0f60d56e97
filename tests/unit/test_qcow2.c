/* test_qcow2.c: unit tests of the qcow2 reader's rejection paths, chains, and the writer's rules. */
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "qcow2/qcow2.h"
#include "util/fs.h"
#include "util/util.h"
#include "vp_test.h"

static char tmpdir[64];

static void remove_tmpdir(void)
{
	vp_fs_rm_rf(tmpdir);
}

/* Every suite can run alone (by name), so each makes sure the directory exists. */
static int suite_init(void)
{
	if (tmpdir[0])
		return 0;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/vp-test-qcow2-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	atexit(remove_tmpdir);
	return 0;
}

/* A path inside the suite's directory (static buffer rotation: 4 at a time). */
static const char *tpath(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
	return buf[i];
}

static void expect_error(int rc, int code, const char *needle)
{
	const char *msg = vp_error_last()->message;

	CU_ASSERT_EQUAL(rc, code);
	if (!strstr(msg, needle)) {
		fprintf(stderr, "\n  error '%s' does not contain '%s'\n", msg, needle);
		CU_FAIL("error message");
	}
}

static int make(const char *name, uint64_t size, const char *backing, const char *fmt)
{
	vp_qcow2_create_opts o;

	vp_qcow2_create_opts_init(&o);
	o.size = size;
	o.backing_file = backing;
	o.backing_format = fmt;
	o.overwrite = true;
	return vp_qcow2_create(tpath(name), &o);
}

/* ---- reader: a valid image, then one field broken at a time ------------------- */

static char *image;
static size_t image_len;

static void load_image(void)
{
	free(image);
	image = NULL;
	CU_ASSERT_EQUAL_FATAL(make("r.qcow2", 1 << 30, "base.raw", "raw"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_fs_read_all(tpath("r.qcow2"), 1 << 20, &image, &image_len), 0);
}

static void be32_at(size_t off, uint32_t v) { v = htobe32(v); memcpy(image + off, &v, 4); }
static void be64_at(size_t off, uint64_t v) { v = htobe64(v); memcpy(image + off, &v, 8); }

static int parse(void)
{
	vp_qcow2_info info;

	return vp_qcow2_parse_buffer(&info, image, image_len, "t");
}

static void test_reader_valid(void)
{
	vp_qcow2_info info;

	load_image();
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_parse_buffer(&info, image, image_len, "t"), 0);
	CU_ASSERT_EQUAL(info.version, 3);
	CU_ASSERT_EQUAL(info.virtual_size, 1 << 30);
	CU_ASSERT_EQUAL(info.cluster_size, 65536);
	CU_ASSERT_FALSE(info.extended_l2);
	CU_ASSERT_TRUE(info.has_backing);
	VP_ASSERT_STR_EQ(info.backing_file, "base.raw");
	VP_ASSERT_STR_EQ(info.backing_format, "raw");
	CU_ASSERT_EQUAL(info.file_size, image_len);
	CU_ASSERT_EQUAL(info.header_length, 112);
	/* Version 2: 72-byte header, the v3 fields read as an end extension. */
	be32_at(4, 2);
	CU_ASSERT_EQUAL(vp_qcow2_parse_buffer(&info, image, image_len, "t"), 0);
	CU_ASSERT_EQUAL(info.version, 2);
}

struct bad_case {
	const char *what;
	size_t off;
	int width; /* 4 or 8 */
	uint64_t value;
	const char *needle;
};

static const struct bad_case bad_cases[] = {
	{ "bad magic", 0, 4, 0x514649fa, "bad magic" },
	{ "version 1", 4, 4, 1, "unsupported qcow2 version 1" },
	{ "version 4", 4, 4, 4, "unsupported qcow2 version 4" },
	{ "cluster bits 8", 20, 4, 8, "unsupported cluster size 2^8" },
	{ "cluster bits 22", 20, 4, 22, "unsupported cluster size 2^22" },
	{ "size above INT64_MAX", 24, 8, 1ull << 63, "too large" },
	{ "L1 too small", 24, 8, 1ull << 50, "L1 table is too small" },
	{ "L1 too large", 36, 4, 0x800000, "active L1 table too large" },
	{ "L1 past EOF", 40, 8, 1ull << 40, "L1 table (0x10000000000 + 16 bytes) is past the end" },
	{ "L1 misaligned", 40, 8, 0x30200, "not cluster aligned" },
	{ "L1 on the header", 40, 8, 0, "overlaps the header" },
	{ "L1 at UINT64_MAX", 40, 8, 0xffffffffffff0000ull, "past the end" },
	{ "reftable past EOF", 48, 8, 0x40000, "refcount table (0x40000 + 65536 bytes) is past the end" },
	{ "no reftable", 56, 4, 0, "no refcount table" },
	{ "reftable too large", 56, 4, 0xffffffff, "refcount table too large" },
	{ "snapshots past EOF", 60, 4, 1, "snapshot table" },
	{ "too many snapshots", 60, 4, 65537, "too many snapshots" },
	{ "unknown incompat bit 40", 72, 8, 1ull << 40, "unsupported incompatible qcow2 feature(s): bit 40" },
	{ "refcount order 7", 96, 4, 7, "refcount width" },
	{ "header length 100", 100, 4, 100, "header too short" },
	{ "header length 108", 100, 4, 108, "not a multiple of 8" },
	{ "header length 1 MiB", 100, 4, 1 << 20, "exceeds cluster size" },
	{ "header length 2^32-8", 100, 4, 0xfffffff8, "exceeds cluster size" },
	{ "crypt method 3", 32, 4, 3, "unsupported encryption method" },
	{ "backing name too long", 16, 4, 1024, "backing file name too long (1024 bytes)" },
	{ "backing name empty", 16, 4, 0, "empty backing file name" },
	{ "backing name outside cluster", 8, 8, 65536, "outside the header cluster" },
	{ "backing name at UINT64_MAX", 8, 8, UINT64_MAX, "outside the header cluster" },
	{ "backing name in the header", 8, 8, 8, "outside the header cluster" },
	{ "extension too large", 116, 4, 0x10000, "header extension 0xe2792aca too large" },
	{ "backing format too long", 116, 4, 16, "backing format name too long" },
};

static void test_reader_rejects(void)
{
	for (size_t i = 0; i < VP_ARRAY_SIZE(bad_cases); i++) {
		const struct bad_case *c = &bad_cases[i];
		load_image();
		if (c->width == 4)
			be32_at(c->off, (uint32_t)c->value);
		else
			be64_at(c->off, c->value);
		vp_error_clear();
		fprintf(stderr, "%s ", c->what);
		expect_error(parse(), VP_EINVAL, c->needle);
	}
}

static void test_reader_named_feature(void)
{
	size_t ft;

	load_image();
	/* The feature table follows the 16-byte backing format extension; give
	 * its last entry ("raw external data") an unknown incompatible bit. */
	ft = 112 + 16 + 8 + 7 * 48;
	image[ft] = 0;
	image[ft + 1] = 5;
	memcpy(image + ft + 2, "future thing\0", 13);
	be64_at(72, 1ull << 5 | 1ull << 63);
	expect_error(parse(), VP_EINVAL, "feature(s): bit 5 'future thing', bit 63");
}

static void test_reader_extl2_small_cluster(void)
{
	load_image();
	be64_at(72, QCOW2_INCOMPAT_EXTL2);
	be32_at(20, 12);
	expect_error(parse(), VP_EINVAL, "extended L2 entries need clusters of at least 16 KiB");
	load_image();
	be64_at(72, QCOW2_INCOMPAT_EXTL2);
	be32_at(20, 13);
	be64_at(40, 0x30000);
	be64_at(48, 0x10000);
	expect_error(parse(), VP_EINVAL, "extended L2 entries need clusters of at least 16 KiB");
}

static void test_reader_compression(void)
{
	load_image();
	image[104] = 1;
	expect_error(parse(), VP_EINVAL, "compression type 1 without");
	be64_at(72, QCOW2_INCOMPAT_COMPRESSION);
	CU_ASSERT_EQUAL(parse(), 0);
	image[104] = 2;
	expect_error(parse(), VP_EINVAL, "invalid compression type 2");
}

static void test_reader_truncated(void)
{
	vp_qcow2_info info;
	size_t lens[] = { 0, 4, 71, 72, 100, 103, 104, 200, 600, 65536, 0x30000 };

	load_image();
	for (size_t i = 0; i < VP_ARRAY_SIZE(lens); i++) {
		int rc = vp_qcow2_parse_buffer(&info, image, lens[i], "t");
		CU_ASSERT_EQUAL(rc, VP_EINVAL);
	}
	CU_ASSERT_EQUAL(vp_qcow2_parse_buffer(&info, image, 0x30000 + 16, "t"), 0);
}

static void test_reader_files(void)
{
	vp_qcow2_info info;

	CU_ASSERT_EQUAL(vp_fs_write_atomic(tpath("junk"), "hello", 5, 0644), 0);
	expect_error(vp_qcow2_read_info(&info, tpath("junk")), VP_EINVAL, "not a qcow2 image");
	expect_error(vp_qcow2_read_info(&info, tpath("missing")), VP_ENOENT, "cannot open");
	VP_ASSERT_STR_EQ(vp_qcow2_probe_format(tpath("junk")), "raw");
	CU_ASSERT_EQUAL(make("p.qcow2", 1 << 20, NULL, NULL), 0);
	VP_ASSERT_STR_EQ(vp_qcow2_probe_format(tpath("p.qcow2")), "qcow2");
	CU_ASSERT_PTR_NULL(vp_qcow2_probe_format(tpath("missing")));
}

/* ---- chains ----------------------------------------------------------------- */

static void test_chain_basic(void)
{
	vp_qcow2_chain c;
	char magic[512] = "QFI\xfb";

	/* A raw base whose content looks like qcow2: the format extension says raw, so it ends the chain. */
	CU_ASSERT_EQUAL(vp_fs_write_atomic(tpath("base.raw"), magic, sizeof(magic), 0644), 0);
	CU_ASSERT_EQUAL(make("mid.qcow2", 0, "base.raw", "raw"), 0);
	CU_ASSERT_EQUAL(make("top.qcow2", 0, "mid.qcow2", NULL), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_chain(&c, tpath("top.qcow2")), 0);
	CU_ASSERT_EQUAL(c.depth, 3);
	if (c.depth == 3) {
		VP_ASSERT_STR_EQ(c.layers[0].format, "qcow2");
		VP_ASSERT_STR_EQ(c.layers[1].format, "qcow2");
		VP_ASSERT_STR_EQ(c.layers[2].format, "raw");
		VP_ASSERT_STR_EQ(c.layers[2].path, tpath("base.raw"));
		CU_ASSERT_EQUAL(c.layers[2].virtual_size, 512);
		CU_ASSERT_EQUAL(c.layers[0].virtual_size, 512);
		CU_ASSERT_FALSE(c.layers[1].format_probed);
		VP_ASSERT_STR_EQ(c.layers[0].info.backing_format, "qcow2"); /* detected by the writer */
	}
	vp_qcow2_chain_release(&c);
	vp_qcow2_chain_release(NULL);
}

static void test_chain_relative(void)
{
	vp_qcow2_chain c;
	char sub[256], top[300];

	snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(sub, 0755), 0);
	CU_ASSERT_EQUAL(make("sub/b.qcow2", 3 << 20, NULL, NULL), 0);
	CU_ASSERT_EQUAL(make("sub/t.qcow2", 0, "b.qcow2", "qcow2"), 0);
	CU_ASSERT_EQUAL(make("up.qcow2", 0, "sub/t.qcow2", "qcow2"), 0);
	snprintf(top, sizeof(top), "%s/up.qcow2", tmpdir);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_chain(&c, top), 0);
	CU_ASSERT_EQUAL(c.depth, 3);
	if (c.depth == 3) {
		VP_ASSERT_STR_EQ(c.layers[2].path, tpath("sub/b.qcow2"));
		CU_ASSERT_EQUAL(c.layers[0].virtual_size, 3 << 20);
	}
	vp_qcow2_chain_release(&c);
}

static void test_chain_loop(void)
{
	vp_qcow2_chain c;

	CU_ASSERT_EQUAL(make("loop-b.qcow2", 1 << 20, NULL, NULL), 0);
	CU_ASSERT_EQUAL(make("loop-a.qcow2", 0, "loop-b.qcow2", "qcow2"), 0);
	CU_ASSERT_EQUAL(make("loop-b.qcow2", 1 << 20, "loop-a.qcow2", "qcow2"), 0);
	expect_error(vp_qcow2_read_chain(&c, tpath("loop-a.qcow2")), VP_EINVAL, "backing chain loop");
	vp_qcow2_chain_release(&c);
	CU_ASSERT_EQUAL(make("self.qcow2", 1 << 20, "self.qcow2", "qcow2"), 0);
	expect_error(vp_qcow2_read_chain(&c, tpath("self.qcow2")), VP_EINVAL, "backing chain loop");
	vp_qcow2_chain_release(&c);
}

static void test_chain_depth(void)
{
	vp_qcow2_chain c;
	char name[32], prev[32];

	CU_ASSERT_EQUAL_FATAL(make("d0.qcow2", 1 << 20, NULL, NULL), 0);
	for (int i = 1; i <= 64; i++) {
		snprintf(name, sizeof(name), "d%d.qcow2", i);
		snprintf(prev, sizeof(prev), "d%d.qcow2", i - 1);
		CU_ASSERT_EQUAL_FATAL(make(name, 1 << 20, prev, "qcow2"), 0);
	}
	CU_ASSERT_EQUAL(vp_qcow2_read_chain(&c, tpath("d63.qcow2")), 0);
	CU_ASSERT_EQUAL(c.depth, 64);
	vp_qcow2_chain_release(&c);
	expect_error(vp_qcow2_read_chain(&c, tpath("d64.qcow2")), VP_EINVAL, "deeper than 64 images");
	vp_qcow2_chain_release(&c);
}

static void test_chain_missing_and_bad_format(void)
{
	vp_qcow2_chain c;
	VP_AUTOFREE char *buf = NULL;
	size_t len;

	CU_ASSERT_EQUAL(make("orphan.qcow2", 1 << 20, "gone.qcow2", "qcow2"), 0);
	expect_error(vp_qcow2_read_chain(&c, tpath("orphan.qcow2")), VP_ENOENT, "gone.qcow2");
	vp_qcow2_chain_release(&c);
	/* Rewrite the backing format extension to a format we do not read. */
	CU_ASSERT_EQUAL(make("vmdk.qcow2", 1 << 20, "d0.qcow2", "qcow2"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_fs_read_all(tpath("vmdk.qcow2"), 1 << 20, &buf, &len), 0);
	memcpy(buf + 120, "vmdk\0", 5);
	((unsigned char *)buf)[119] = 4;
	CU_ASSERT_EQUAL(vp_fs_write_atomic(tpath("vmdk.qcow2"), buf, len, 0644), 0);
	expect_error(vp_qcow2_read_chain(&c, tpath("vmdk.qcow2")), VP_ENOTSUP, "unsupported image format 'vmdk'");
	vp_qcow2_chain_release(&c);
}

/* ---- writer ----------------------------------------------------------------- */

static void test_writer_args(void)
{
	vp_qcow2_create_opts o;
	char longname[1100];

	vp_qcow2_create_opts_init(&o);
	o.size = 1 << 20;
	o.cluster_size = 8192;
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "between 16 KiB and 2 MiB, got 8192");
	o.cluster_size = 100000;
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "power of two");
	o.cluster_size = 4 << 20;
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "got 4194304");
	o.cluster_size = 0;
	o.backing_file = "base.raw";
	o.backing_format = "vmdk";
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_ENOTSUP, "unsupported backing format 'vmdk'");
	o.backing_format = "raw";
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL,
		     "backing file and preallocation can only be used at the same time if extended_l2 is on");
	o.prealloc = VP_QCOW2_PREALLOC_OFF;
	memset(longname, 'x', 1024);
	longname[1024] = '\0';
	o.backing_file = longname;
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "1 to 1023 bytes");
	o.backing_file = NULL;
	o.backing_format = "raw";
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "needs a backing file");
	o.backing_format = NULL;
	o.size = 3ull << 50; /* 3 PiB: more than QEMU's 32 MiB L1 maps with 64 KiB clusters */
	expect_error(vp_qcow2_create(tpath("a.qcow2"), &o), VP_EINVAL, "too large for qcow2");
	o.cluster_size = 2 << 20;
	CU_ASSERT_EQUAL(vp_qcow2_create(tpath("a.qcow2"), &o), 0); /* like qemu-img */
	o.backing_file = "no-such-base";
	o.size = 0;
	expect_error(vp_qcow2_create(tpath("b.qcow2"), &o), VP_ENOENT, "no-such-base");
	CU_ASSERT_FALSE(vp_fs_exists(tpath("b.qcow2")));
	expect_error(vp_qcow2_create(NULL, &o), VP_EINVAL, "empty image path");
	expect_error(vp_qcow2_create(tpath("b.qcow2"), NULL), VP_EINVAL, "no options");
}

static void test_writer_sizes_and_defaults(void)
{
	vp_qcow2_create_opts o;
	vp_qcow2_info info;

	vp_qcow2_create_opts_init(&o);
	o.size = 1000;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(tpath("s.qcow2"), &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&info, tpath("s.qcow2")), 0);
	CU_ASSERT_EQUAL(info.virtual_size, 1024); /* qemu-img rounds up to 512 */
	CU_ASSERT_EQUAL(info.cluster_size, 65536);
	CU_ASSERT_FALSE(info.has_backing);
	VP_ASSERT_STR_EQ(info.backing_format, "");
	/* Defaults from the backing file, format detected: qcow2 and raw. */
	vp_qcow2_create_opts_init(&o);
	o.backing_file = "s.qcow2";
	o.extended_l2 = true;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(tpath("s2.qcow2"), &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&info, tpath("s2.qcow2")), 0);
	CU_ASSERT_EQUAL(info.virtual_size, 1024);
	CU_ASSERT_EQUAL(info.cluster_size, 131072);
	CU_ASSERT_TRUE(info.extended_l2);
	VP_ASSERT_STR_EQ(info.backing_format, "qcow2");
	CU_ASSERT_EQUAL_FATAL(vp_fs_write_atomic(tpath("odd.raw"), "abc", 3, 0644), 0);
	o.backing_file = "odd.raw";
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(tpath("s3.qcow2"), &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&info, tpath("s3.qcow2")), 0);
	CU_ASSERT_EQUAL(info.virtual_size, 512);
	VP_ASSERT_STR_EQ(info.backing_format, "raw");
	/* Size 0 standalone: no L1 table at all, like qemu-img. */
	vp_qcow2_create_opts_init(&o);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(tpath("zero.qcow2"), &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&info, tpath("zero.qcow2")), 0);
	CU_ASSERT_EQUAL(info.virtual_size, 0);
	CU_ASSERT_EQUAL(info.l1_size, 0);
	CU_ASSERT_EQUAL(info.l1_table_offset, 0);
}

static void test_writer_preallocated_layout(void)
{
	vp_qcow2_create_opts o;
	vp_qcow2_info info;
	struct stat st;

	vp_qcow2_create_opts_init(&o);
	o.size = 3ull << 30;
	o.cluster_size = 16384;
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(tpath("pre.qcow2"), &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&info, tpath("pre.qcow2")), 0);
	CU_ASSERT_EQUAL(info.l1_size, 3 * 1024 * 1024 / 16 / 1024);
	CU_ASSERT_EQUAL_FATAL(stat(tpath("pre.qcow2"), &st), 0);
	/* 196608 data clusters + 192 L2 tables + metadata; the data area stays a hole. */
	CU_ASSERT_TRUE((uint64_t)st.st_size > (3ull << 30));
	CU_ASSERT_TRUE((uint64_t)st.st_blocks * 512 < (8ull << 20));
}

static void test_writer_exists(void)
{
	vp_qcow2_create_opts o;
	vp_qcow2_info info;

	vp_qcow2_create_opts_init(&o);
	CU_ASSERT_EQUAL_FATAL(vp_fs_write_atomic(tpath("keep.qcow2"), "precious", 8, 0644), 0);
	o.size = 1 << 20;
	expect_error(vp_qcow2_create(tpath("keep.qcow2"), &o), VP_EEXIST, "exists already");
	CU_ASSERT_EQUAL(vp_qcow2_probe_format(tpath("keep.qcow2"))[0], 'r');
	o.overwrite = true;
	CU_ASSERT_EQUAL(vp_qcow2_create(tpath("keep.qcow2"), &o), 0);
	CU_ASSERT_EQUAL(vp_qcow2_read_info(&info, tpath("keep.qcow2")), 0);
}

/* The number of entries of a directory, "." and ".." excluded. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_writer_efbig_leaves_nothing(void)
{
	vp_qcow2_create_opts o;
	struct rlimit old, small = { 1 << 20, 0 };
	char dir[256];
	int rc;

	snprintf(dir, sizeof(dir), "%s/efbig", tmpdir);
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(dir, 0755), 0);
	vp_qcow2_create_opts_init(&o);
	o.size = 1ull << 30;
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	/* Past RLIMIT_FSIZE the kernel sends SIGXFSZ and the call fails with EFBIG. */
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	small.rlim_max = old.rlim_max;
	CU_ASSERT_EQUAL_FATAL(setrlimit(RLIMIT_FSIZE, &small), 0);
	rc = vp_qcow2_create(tpath("efbig/x.qcow2"), &o);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	expect_error(rc, VP_EIO, "File too large");
	expect_error(rc, VP_EIO, "cannot create qcow2 image");
	CU_ASSERT_EQUAL(count_entries(dir), 0);
}

static void test_writer_enospc_leaves_nothing(void)
{
	vp_qcow2_create_opts o;
	const char *paths[3];
	char dir[256];
	int rc;

	snprintf(dir, sizeof(dir), "%s/full", tmpdir);
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(dir, 0755), 0);
	if (geteuid() != 0 || mount("tmpfs", dir, "tmpfs", 0, "size=1m") < 0) {
		fprintf(stderr, "(skipped: cannot mount a small tmpfs) ");
		return;
	}
	vp_qcow2_create_opts_init(&o);
	o.size = 64ull << 30;
	o.cluster_size = 16384;
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA; /* 64 MiB of L2 tables */
	rc = vp_qcow2_create(tpath("full/x.qcow2"), &o);
	expect_error(rc, VP_EIO, "No space left on device");
	CU_ASSERT_EQUAL(count_entries(dir), 0);
	/* A batch that runs out of space midway removes the images it made. */
	o.size = 4ull << 30;
	o.cluster_size = 65536;
	paths[0] = tpath("full/b0.qcow2");
	paths[1] = tpath("full/b1.qcow2");
	paths[2] = tpath("full/b2.qcow2");
	rc = vp_qcow2_create_batch(paths, 3, &o);
	expect_error(rc, VP_EIO, "No space left on device");
	CU_ASSERT_EQUAL(count_entries(dir), 0);
	umount(dir);
}

static void test_writer_batch(void)
{
	vp_qcow2_create_opts o;
	const char *paths[12];
	char names[12][300];
	vp_qcow2_info info;
	char dir[256];

	snprintf(dir, sizeof(dir), "%s/batch", tmpdir);
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(dir, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(make("batch/base.qcow2", 5 << 20, NULL, NULL), 0);
	for (int i = 0; i < 12; i++) {
		snprintf(names[i], sizeof(names[i]), "%s/batch/c%02d.qcow2", tmpdir, i);
		paths[i] = names[i];
	}
	vp_qcow2_create_opts_init(&o);
	o.backing_file = "base.qcow2";
	o.backing_format = "qcow2";
	for (int mode = 0; mode < 2; mode++) {
		o.sync = mode ? VP_QCOW2_SYNC_FS : VP_QCOW2_SYNC_FILES;
		CU_ASSERT_EQUAL_FATAL(vp_qcow2_create_batch(paths, 10, &o), 0);
		for (int i = 0; i < 10; i++) {
			CU_ASSERT_EQUAL(vp_qcow2_read_info(&info, paths[i]), 0);
			CU_ASSERT_EQUAL(info.virtual_size, 5 << 20);
		}
		CU_ASSERT_EQUAL(count_entries(dir), 11);
		/* An existing target: refused before anything is written. */
		expect_error(vp_qcow2_create_batch(paths + 8, 4, &o), VP_EEXIST, "c08.qcow2' exists already");
		CU_ASSERT_EQUAL(count_entries(dir), 11);
		for (int i = 0; i < 10; i++)
			unlink(paths[i]);
	}
	/* A path that cannot be created: the images made before it are removed. */
	snprintf(names[3], sizeof(names[3]), "%s/batch/nodir/c.qcow2", tmpdir);
	expect_error(vp_qcow2_create_batch(paths, 6, &o), VP_ENOENT, "nodir");
	CU_ASSERT_EQUAL(count_entries(dir), 1);
	CU_ASSERT_EQUAL(vp_qcow2_create_batch(paths, 0, &o), 0);
}

/* A LUKS-encrypted qcow2 as QEMU writes one, reduced to what the reader looks at: crypt_method 2,
 * the crypto header extension (0x0537be77: offset, length) and a LUKS header with its UUID. */
static void test_reader_luks_uuid(void)
{
	static const char uuid[] = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
	size_t hdr;
	char got[37];
	size_t off = 112;
	FILE *f;

	CU_ASSERT_EQUAL_FATAL(make("l.qcow2", 1 << 20, NULL, NULL), 0);
	expect_error(vp_qcow2_read_luks_uuid(tpath("l.qcow2"), got), VP_EINVAL, "is not a LUKS-encrypted qcow2");
	free(image);
	CU_ASSERT_EQUAL_FATAL(vp_fs_read_all(tpath("l.qcow2"), 1 << 20, &image, &image_len), 0);
	hdr = (image_len + 65535) & ~(size_t)65535; /* a cluster of its own past the end */
	/* The end of the extensions: put the crypto header extension there. */
	while (off + 8 <= 65536 && (image[off] | image[off + 1] | image[off + 2] | image[off + 3]))
		off += 8 + ((be32toh(*(uint32_t *)(image + off + 4)) + 7u) & ~7u);
	CU_ASSERT_FATAL(off + 32 <= 65536);
	be32_at(32, 2);
	be32_at(off, 0x0537be77);
	be32_at(off + 4, 16);
	be64_at(off + 8, hdr);
	be64_at(off + 16, 4096);
	memset(image + off + 24, 0, 8);
	image = realloc(image, hdr + 4096);
	CU_ASSERT_PTR_NOT_NULL_FATAL(image);
	memset(image + image_len, 0, hdr + 4096 - image_len);
	memcpy(image + hdr, "LUKS\xba\xbe\0\1", 8);
	memcpy(image + hdr + 168, uuid, sizeof(uuid));
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(tpath("l.qcow2"), "wb"));
	CU_ASSERT_EQUAL(fwrite(image, 1, hdr + 4096, f), hdr + 4096);
	fclose(f);
	CU_ASSERT_EQUAL(vp_qcow2_read_luks_uuid(tpath("l.qcow2"), got), 0);
	VP_ASSERT_STR_EQ(got, uuid);
	/* A header without the LUKS magic is refused, not read. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(f = fopen(tpath("l.qcow2"), "r+b"));
	fseek(f, (long)hdr, SEEK_SET);
	fputc('X', f);
	fclose(f);
	expect_error(vp_qcow2_read_luks_uuid(tpath("l.qcow2"), got), VP_EINVAL, "no LUKS header");
	free(image);
	image = NULL;
}

static CU_TestInfo reader_tests[] = {
	{ "LUKS: the UUID of the LUKS header", test_reader_luks_uuid },
	{ "valid image parses", test_reader_valid },
	{ "broken fields are refused", test_reader_rejects },
	{ "unknown features are named", test_reader_named_feature },
	{ "extended L2 needs 16K clusters", test_reader_extl2_small_cluster },
	{ "compression type", test_reader_compression },
	{ "truncated images", test_reader_truncated },
	{ "files", test_reader_files },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo chain_tests[] = {
	{ "qcow2 over qcow2 over raw", test_chain_basic },
	{ "relative names", test_chain_relative },
	{ "loops", test_chain_loop },
	{ "depth 64 ok, 65 refused", test_chain_depth },
	{ "missing layer, unknown format", test_chain_missing_and_bad_format },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo writer_tests[] = {
	{ "argument errors", test_writer_args },
	{ "sizes and defaults", test_writer_sizes_and_defaults },
	{ "preallocated layout is sparse", test_writer_preallocated_layout },
	{ "never overwrites unless asked", test_writer_exists },
	{ "EFBIG leaves no file", test_writer_efbig_leaves_nothing },
	{ "ENOSPC leaves no file", test_writer_enospc_leaves_nothing },
	{ "batches", test_writer_batch },
	CU_TEST_INFO_NULL,
};

static int suite_reader_clean(void)
{
	free(image);
	image = NULL;
	return 0;
}

static CU_SuiteInfo suites[] = {
	{ "qcow2_reader", suite_init, suite_reader_clean, NULL, NULL, reader_tests },
	{ "qcow2_chain", suite_init, NULL, NULL, NULL, chain_tests },
	{ "qcow2_writer", suite_init, NULL, NULL, NULL, writer_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
