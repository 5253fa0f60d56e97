/* test_store.c: the base store with real files and real qemu-img: import, verify, rm, gc, bad input, crash. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "util/fs.h"
#include "util/run.h"
#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/store.h"
#include "vp_test.h"

static char tmp[256];   /* scratch files (sources) */
static char root[300];  /* the store */

/* ---- fixtures -------------------------------------------------------------------- */

static int sh(const char *const argv[])
{
	vp_run_result r;
	int rc = vp_run_ok(argv, NULL, &r);

	if (rc < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	vp_run_result_release(&r);
	return rc;
}

/* A raw image of `mib` MiB whose first sector holds `tag` (so contents differ). */
static const char *make_raw(const char *name, unsigned mib, const char *tag)
{
	static char path[4][512];
	static int k;
	char *p = path[k++ % 4];
	int fd;

	snprintf(p, 512, "%s/%s", tmp, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)mib << 20) < 0 || pwrite(fd, tag, strlen(tag), 0) < 0)
		CU_FAIL("cannot create raw image");
	if (fd >= 0)
		close(fd);
	return p;
}

static void make_file(const char *path, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	char buf[512] = "not a disk image\n";

	CU_ASSERT_FATAL(fd >= 0);
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);
		CU_ASSERT_FATAL(write(fd, buf, n) == (ssize_t)n);
		len -= n;
	}
	close(fd);
}

static vp_store *open_store(void)
{
	vp_store *s = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_store_open_root(&s, root), 0);
	/* A host without domains; the lock in the scratch directory (root's, 0700). */
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(s, tmp), 0);
	return s;
}

/* A host where one domain uses the delta `ctx` names. */
static int pins_delta(void *ctx, vp_store_pins *pins)
{
	return vp_store_pins_add(pins, ctx, "dom-1");
}

/* Leftovers of imports: .import-* directories under bases/. */
static int count_staging(void)
{
	char bases[512];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(bases, sizeof(bases), "%s/bases", root);
	if (!(d = opendir(bases)))
		return 0;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, ".import-", 8) || !strncmp(e->d_name, ".remove-", 8);
	closedir(d);
	return n;
}

/* The dir plugin, opened on the store's root, to make deltas like the executor will. */
static const vp_plugin_ops *dir_tier(void **tier)
{
	const vp_plugin *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_get_ops(p)->open(&(vp_tier_config){ .tier = "t", .path = root }, tier), 0);
	return vp_plugin_get_ops(p);
}

static void make_delta(const char *ref, const char *pool, const char *clone)
{
	void *tier = NULL;
	const vp_plugin_ops *ops = dir_tier(&tier);
	vp_store *s = open_store();
	vp_base_info b;
	vp_image_info out;

	CU_ASSERT_EQUAL_FATAL(vp_store_stat(s, ref, &b), 0);
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = pool, .clone = clone,
				 .base_location = b.location, .base_format = b.format };
	if (ops->delta_create(tier, &req, &out) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	VP_ASSERT_STR_EQ(out.backing, b.location);
	ops->close(tier);
	vp_store_free(s);
}

static const char *delta_path(const char *pool, const char *clone)
{
	static char path[700];

	snprintf(path, sizeof(path), "%s/deltas/%s/%s.qcow2", root, pool, clone);
	return path;
}

static void remove_delta(const char *pool, const char *clone)
{
	void *tier = NULL;
	const vp_plugin_ops *ops = dir_tier(&tier);

	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, pool, clone), 0);
	ops->close(tier);
}

static int setup(void)
{
	if (vp_test_scratch_dir(tmp, sizeof(tmp), "store") < 0)
		return -1;
	snprintf(root, sizeof(root), "%s/root", tmp);
	return 0;
}

static int teardown(void)
{
	return vp_fs_rm_rf(tmp) < 0 ? -1 : 0;
}

/* ---- import, list, verify ------------------------------------------------------------ */

static void test_import_raw(void)
{
	vp_store *s = open_store();
	vp_base_info b;
	struct stat st;
	char manifest[600];

	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "tiny", "v1", make_raw("tiny1.raw", 8, "one"), NULL, &b), 0);
	VP_ASSERT_STR_EQ(b.format, "qcow2");
	VP_ASSERT_STR_EQ(b.source_format, "raw");
	CU_ASSERT_EQUAL(b.virtual_size, 8u << 20);
	CU_ASSERT_EQUAL(strlen(b.sha256), 64);
	CU_ASSERT_EQUAL(b.imported[strlen(b.imported) - 1], 'Z');
	CU_ASSERT_EQUAL_FATAL(stat(b.location, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0444);
	CU_ASSERT_EQUAL((uint64_t)st.st_size, b.image_size);
	snprintf(manifest, sizeof(manifest), "%s/bases/tiny/v1/manifest", root);
	CU_ASSERT_EQUAL(access(manifest, F_OK), 0);
	CU_ASSERT_EQUAL(count_staging(), 0);
	CU_ASSERT_EQUAL(vp_store_verify(s, "tiny@v1", NULL, NULL), 0);
	CU_ASSERT_EQUAL(vp_store_check_unchanged(s, "tiny@v1"), 0);
	vp_store_free(s);
}

static void test_import_qcow2_stored_raw(void)
{
	vp_store *s = open_store();
	vp_store_import_opts o = { .format = "raw", .parent = "v1" };
	char q[512];
	vp_base_info b;

	snprintf(q, sizeof(q), "%s/src.qcow2", tmp);
	CU_ASSERT_EQUAL_FATAL(sh((const char *[]){ "qemu-img", "convert", "-f", "raw", "-O", "qcow2",
						   make_raw("q.raw", 4, "qcow2 source"), q, NULL }), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "tiny", "v2", q, &o, &b), 0);
	VP_ASSERT_STR_EQ(b.format, "raw");
	VP_ASSERT_STR_EQ(b.source_format, "qcow2");
	VP_ASSERT_STR_EQ(b.parent, "v1");
	CU_ASSERT_PTR_NOT_NULL(strstr(b.location, "/bases/tiny/v2/disk.raw"));
	CU_ASSERT_EQUAL(vp_store_verify(s, "tiny@v2", NULL, NULL), 0);
	vp_store_free(s);
}

static void test_reimport_same_and_different(void)
{
	vp_store *s = open_store();
	vp_base_info b;

	/* Same content again (a raw file matches its qcow2 import): nothing to do. */
	CU_ASSERT_EQUAL(vp_store_import(s, "tiny", "v1", make_raw("tiny1b.raw", 8, "one"), NULL, &b), 1);
	VP_ASSERT_STR_EQ(b.version, "v1");
	CU_ASSERT_EQUAL(vp_store_import(s, "tiny", "v1", make_raw("tiny1c.raw", 8, "ONE"), NULL, NULL),
			VP_EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message,
				      "cannot import base 'tiny@v1': version v1 exists already with other content"));
	CU_ASSERT_EQUAL(count_staging(), 0);
	vp_store_free(s);
}

static void test_list_and_latest(void)
{
	vp_store *s = open_store();
	vp_base_info *list = NULL, b;
	size_t n = 0;

	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "other", "1.10", make_raw("o.raw", 1, "o"), NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_list(s, NULL, &list, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	VP_ASSERT_STR_EQ(list[0].name, "other");
	VP_ASSERT_STR_EQ(list[1].version, "v1");
	VP_ASSERT_STR_EQ(list[2].version, "v2");
	CU_ASSERT_EQUAL(list[1].references, 0);
	vp_store_list_free(list);
	CU_ASSERT_EQUAL(vp_store_list(s, "tiny", &list, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	vp_store_list_free(list);
	CU_ASSERT_EQUAL(vp_store_stat(s, "tiny@latest", &b), 0);
	VP_ASSERT_STR_EQ(b.version, "v2");
	CU_ASSERT_EQUAL(vp_store_stat(s, "tiny", &b), 0);
	VP_ASSERT_STR_EQ(b.version, "v2");
	CU_ASSERT_EQUAL(vp_store_stat(s, "nope@latest", &b), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_store_stat(s, "tiny@v9", &b), VP_ENOENT);
	vp_store_free(s);
}

static void test_tamper_detected(void)
{
	vp_store *s = open_store();
	vp_base_info b;
	unsigned char c;
	int fd;

	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "tamper", "v1", make_raw("t.raw", 2, "tamper"), NULL, &b), 0);
	CU_ASSERT_EQUAL_FATAL(chmod(b.location, 0644), 0);
	fd = open(b.location, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(pread(fd, &c, 1, 100), 1);
	c ^= 0xff;
	CU_ASSERT_EQUAL(pwrite(fd, &c, 1, 100), 1);
	close(fd);
	CU_ASSERT_EQUAL(vp_store_verify(s, "tamper@v1", NULL, NULL), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "base 'tamper@v1' is corrupted: its sha256 is "));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, b.sha256));
	/* The cheap check (size + mtime) sees the write too. */
	CU_ASSERT_EQUAL(vp_store_check_unchanged(s, "tamper@v1"), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "changed since it was imported"));
	vp_store_free(s);
}

/* ---- references, rm, gc ----------------------------------------------------------------- */

static void test_rm_refused_while_referenced(void)
{
	vp_store *s = open_store();
	vp_image_info *refs = NULL;
	vp_base_info *list = NULL;
	size_t n = 0;

	make_delta("tiny@v1", "pool1", "clone-1");
	CU_ASSERT_EQUAL(vp_store_references(s, "tiny@v1", &refs, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(refs);
	CU_ASSERT_EQUAL(vp_store_list(s, "tiny", &list, &n), 0);
	CU_ASSERT_EQUAL(list[0].references, 1);
	vp_store_list_free(list);
	CU_ASSERT_EQUAL(vp_store_remove(s, "tiny@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message,
				      "cannot remove base 'tiny@v1': 1 delta backs onto it: "));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "/deltas/pool1/clone-1.qcow2"));
	CU_ASSERT_EQUAL(vp_store_remove(s, "tiny@latest"), VP_EINVAL);
	remove_delta("pool1", "clone-1");
	CU_ASSERT_EQUAL(vp_store_remove(s, "tiny@v1"), 0);
	CU_ASSERT_EQUAL(vp_store_stat(s, "tiny@v1", &(vp_base_info){ 0 }), VP_ENOENT);
	CU_ASSERT_EQUAL(count_staging(), 0);
	vp_store_free(s);
}

/* Is there a ".CLONE.qcow2.tmp.*" beside the pool's disks? */
static bool temp_left(const char *pool)
{
	char dir[600];
	struct dirent *e;
	DIR *d;
	bool found = false;

	snprintf(dir, sizeof(dir), "%s/deltas/%s", root, pool);
	if (!(d = opendir(dir)))
		return false;
	while ((e = readdir(d)))
		found |= strstr(e->d_name, ".tmp.") != NULL;
	closedir(d);
	return found;
}

/* A full clone is a standalone copy (reflink or data extents only): it references no base, so
 * the base can go while it exists; it grows to delta.size; unknown flags are refused. */
static void test_full_clone(void)
{
	vp_store *s = open_store();
	void *tier = NULL;
	const vp_plugin_ops *ops = dir_tier(&tier);
	vp_image_info out, *refs = NULL;
	vp_base_info b;
	struct stat bst, cst;
	size_t n = 9;
	char fake[700];

	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "full", "v1", make_raw("full.raw", 64, "full one"), NULL, &b), 0);
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "fp", .clone = "c-1",
				 .base_location = b.location, .base_format = b.format, .flags = VP_DELTA_FULL };
	/* A dead writer's half copy is swept before the disk is made. */
	snprintf(fake, sizeof(fake), "%s/deltas/fp", root);
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(fake, 0755), 0);
	snprintf(fake, sizeof(fake), "%s/deltas/fp/.c-1.qcow2.tmp.999999999.f0", root);
	make_file(fake, 4096);
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), 0);
	CU_ASSERT_EQUAL(access(fake, F_OK), -1);
	VP_ASSERT_STR_EQ(out.backing, "");
	VP_ASSERT_STR_EQ(out.format, "qcow2");
	CU_ASSERT_EQUAL(out.virtual_size, 64u << 20);
	CU_ASSERT_EQUAL_FATAL(stat(b.location, &bst), 0);
	CU_ASSERT_EQUAL_FATAL(stat(out.location, &cst), 0);
	CU_ASSERT_EQUAL(cst.st_size, bst.st_size);
	CU_ASSERT_EQUAL(cst.st_mode & 0777, 0600);
	CU_ASSERT(cst.st_blocks <= bst.st_blocks + 8); /* holes stayed holes */
	CU_ASSERT_EQUAL(sh((const char *[]){ "cmp", "-s", b.location, out.location, NULL }), 0);
	CU_ASSERT_EQUAL(sh((const char *[]){ "qemu-img", "check", "-q", out.location, NULL }), 0);
	CU_ASSERT_FALSE(temp_left("fp"));

	/* Larger than the base: grown in place before the rename. */
	req.clone = "c-2";
	req.size = 96u << 20;
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), 0);
	CU_ASSERT_EQUAL(out.virtual_size, 96u << 20);
	CU_ASSERT_EQUAL(sh((const char *[]){ "qemu-img", "check", "-q", out.location, NULL }), 0);
	req.size = 32u << 20; /* smaller than the base: refused, nothing left */
	req.clone = "c-3";
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "never smaller than its base"));
	CU_ASSERT_EQUAL(access(delta_path("fp", "c-3"), F_OK), -1);
	CU_ASSERT_FALSE(temp_left("fp"));
	/* An existing disk is replaced only when asked to. */
	req.size = 0;
	req.clone = "c-1";
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), VP_EEXIST);
	req.flags |= VP_DELTA_OVERWRITE;
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), 0);
	/* A flag this backend does not know is refused, never ignored. */
	req.flags = 0x100;
	req.clone = "c-4";
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &out), VP_ENOTSUP);
	CU_ASSERT_EQUAL(access(delta_path("fp", "c-4"), F_OK), -1);

	/* A base stored raw: converted to a standalone qcow2 (a clone's disk is a .qcow2), grown too. */
	{
		vp_store_import_opts o = { .format = "raw" };
		vp_base_info rb;
		CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "fullraw", "v1", make_raw("fr.raw", 8, "raw one"), &o, &rb), 0);
		VP_ASSERT_STR_EQ(rb.format, "raw");
		vp_delta_request rr = { .kind = VP_DISK_DELTA, .pool = "fp", .clone = "r-1", .size = 16u << 20,
					.base_location = rb.location, .base_format = rb.format, .flags = VP_DELTA_FULL };
		CU_ASSERT_EQUAL(ops->delta_create(tier, &rr, &out), 0);
		VP_ASSERT_STR_EQ(out.backing, "");
		CU_ASSERT_EQUAL(out.virtual_size, 16u << 20);
		CU_ASSERT_EQUAL(sh((const char *[]){ "qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2",
						     rb.location, out.location, NULL }), 0);
		CU_ASSERT_EQUAL(sh((const char *[]){ "qemu-img", "check", "-q", out.location, NULL }), 0);
		CU_ASSERT_FALSE(temp_left("fp"));
		remove_delta("fp", "r-1");
	}

	/* No backing file: no reference; the base can be removed under its full clones. */
	CU_ASSERT_EQUAL(vp_store_references(s, "full@v1", &refs, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(refs);
	CU_ASSERT_EQUAL(vp_store_remove(s, "full@v1"), 0);
	CU_ASSERT_EQUAL(sh((const char *[]){ "qemu-img", "check", "-q", delta_path("fp", "c-1"), NULL }), 0);
	remove_delta("fp", "c-1");
	remove_delta("fp", "c-2");
	ops->close(tier);
	vp_store_free(s);
}

static void test_gc_keeps_exactly(void)
{
	static const char *const versions[] = { "v1", "v2", "v3", "v4", "v5" };
	vp_store *s = open_store();
	vp_gc_plan *plan = NULL;
	vp_base_info *list = NULL;
	size_t n = 0, removed = 0;
	char src[32];

	for (size_t i = 0; i < 5; i++) {
		snprintf(src, sizeof(src), "gc%zu.raw", i);
		CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "gcb", versions[i], make_raw(src, 1, versions[i]),
						      NULL, NULL), 0);
	}
	make_delta("gcb@v2", "pool2", "c1");
	/* No pins source: the plan is shown, nothing is removed. */
	vp_store_set_pins_source(s, NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 2, &plan), 0);
	CU_ASSERT_FALSE(plan->domains_known);
	CU_ASSERT_PTR_NOT_NULL(strstr(plan->unknown, "not known"));
	CU_ASSERT_EQUAL(plan->norphans, 1); /* a candidate only */
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, 0, &removed), VP_EBUSY);
	CU_ASSERT_EQUAL(removed, 0);
	vp_gc_plan_free(plan);
	/* A domain uses the delta: it stays, v2 under it stays. */
	vp_store_set_pins_source(s, pins_delta, (void *)delta_path("pool2", "c1"));
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 2, &plan), 0);
	CU_ASSERT_TRUE(plan->domains_known);
	CU_ASSERT_EQUAL(plan->norphans, 0);
	/* Other names (tiny@v2, other@1.10, tamper@v1) are their name's newest: kept. */
	CU_ASSERT_EQUAL_FATAL(plan->nbases, 2);
	VP_ASSERT_STR_EQ(plan->bases[0].version, "v3");
	VP_ASSERT_STR_EQ(plan->bases[1].version, "v1");
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, 0, &removed), 0);
	CU_ASSERT_EQUAL(removed, 2);
	vp_gc_plan_free(plan);
	CU_ASSERT_EQUAL(vp_store_list(s, "gcb", &list, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	VP_ASSERT_STR_EQ(list[0].version, "v2");
	VP_ASSERT_STR_EQ(list[1].version, "v4");
	VP_ASSERT_STR_EQ(list[2].version, "v5");
	vp_store_list_free(list);

	/* No domain uses it any more: the orphan goes, then v2 can. */
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 2, &plan), 0);
	CU_ASSERT_TRUE(plan->domains_known);
	CU_ASSERT_EQUAL(plan->nbases, 0);
	CU_ASSERT_EQUAL(plan->norphans, 1);
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, 0, &removed), 0);
	CU_ASSERT_EQUAL(removed, 1);
	vp_gc_plan_free(plan);
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 2, &plan), 0);
	CU_ASSERT_EQUAL_FATAL(plan->nbases, 1);
	VP_ASSERT_STR_EQ(plan->bases[0].version, "v2");
	vp_gc_plan_free(plan);
	vp_store_free(s);
}

/* ---- bad input ------------------------------------------------------------------------- */

static void expect_refused(vp_store *s, const char *name, const char *version, const char *file,
			   const char *needle)
{
	int rc = vp_store_import(s, name, version, file, NULL, NULL);

	CU_ASSERT(rc < 0);
	if (!strstr(vp_error_last()->message, needle)) {
		fprintf(stderr, "\n  import %s@%s '%s': got '%s'\n  expected '%s'\n", name, version,
			file, vp_error_last()->message, needle);
		CU_FAIL("wrong message");
	}
	CU_ASSERT_EQUAL(count_staging(), 0);
}

static void test_bad_input(void)
{
	static const char *const bad_versions[] = { "a/b", "..", "1..2", "a b", "x\001", ".hidden",
						    "latest", "", "0123456789012345678901234567890123456789012345678901234567890123456789" };
	vp_store *s = open_store();
	char p[512], q[512], inside[600];
	const char *good = make_raw("good.raw", 1, "good");

	snprintf(p, sizeof(p), "%s/empty.img", tmp);
	make_file(p, 0);
	expect_refused(s, "bad", "v1", p, "is empty: not a disk image");
	snprintf(p, sizeof(p), "%s/text.img", tmp);
	make_file(p, 1000);
	expect_refused(s, "bad", "v1", p, "is not a disk image: its size (1000 bytes) is not a multiple of 512");
	snprintf(q, sizeof(q), "%s/backed.qcow2", tmp);
	CU_ASSERT_EQUAL_FATAL(sh((const char *[]){ "qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b",
						   good, q, NULL }), 0);
	expect_refused(s, "bad", "v1", q, "has a backing file");
	snprintf(q, sizeof(q), "%s/disk.vmdk", tmp);
	CU_ASSERT_EQUAL_FATAL(sh((const char *[]){ "qemu-img", "create", "-f", "vmdk", q, "1M", NULL }), 0);
	expect_refused(s, "bad", "v1", q, "is a vmdk image: only raw and qcow2 can be imported");
	expect_refused(s, "Bad_Name", "v1", good, "cannot import base 'Bad_Name@v1': invalid name");
	for (size_t i = 0; i < VP_ARRAY_SIZE(bad_versions); i++)
		expect_refused(s, "bad", bad_versions[i], good, "invalid version");
	expect_refused(s, "bad", "v1", "/nonexistent/x.raw", "cannot open '/nonexistent/x.raw'");
	expect_refused(s, "bad", "v1", tmp, "is not a regular file");
	/* A file on the base tier itself (here: a published base image). */
	snprintf(inside, sizeof(inside), "%s/bases/tiny/v2/disk.raw", root);
	expect_refused(s, "bad", "v1", inside, "lives on the base tier");
	CU_ASSERT_EQUAL(vp_store_stat(s, "bad", &(vp_base_info){ 0 }), VP_ENOENT);
	vp_store_free(s);
}

/* ---- a crash in the middle ------------------------------------------------------------------ */

static void test_kill_mid_import_then_reimport(void)
{
	char big[512];
	pid_t pid;
	int fd, status, seen = 0;
	vp_store *s;

	/* 1 GiB virtual, 32 MiB of non-zero data spread over it: slow enough to interrupt. */
	snprintf(big, sizeof(big), "%s/big.raw", tmp);
	fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 1 << 30) == 0);
	{
		static char chunk[1 << 20];
		memset(chunk, 0xa5, sizeof(chunk));
		for (off_t off = 0; off < (1 << 30); off += 32 << 20)
			CU_ASSERT_FATAL(pwrite(fd, chunk, sizeof(chunk), off) == (ssize_t)sizeof(chunk));
	}
	close(fd);
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		vp_store *cs = NULL;
		setpgid(0, 0); /* so the kill takes qemu-img down too, like a killed job */
		if (vp_store_open_root(&cs, root) == 0)
			vp_store_import(cs, "big", "v1", big, NULL, NULL);
		_exit(0);
	}
	setpgid(pid, pid);
	for (int i = 0; i < 20000 && !seen; i++) {
		seen = count_staging() > 0;
		usleep(500);
	}
	CU_ASSERT_TRUE(seen);
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	usleep(100 * 1000); /* let the killed qemu-img go away */
	CU_ASSERT_TRUE(WIFSIGNALED(status));
	CU_ASSERT_EQUAL(count_staging(), 1); /* the dead import's staging dir */

	s = open_store();
	CU_ASSERT_EQUAL(vp_store_stat(s, "big@v1", &(vp_base_info){ 0 }), VP_ENOENT);
	if (vp_store_import(s, "big", "v1", big, NULL, NULL) != 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_EQUAL(count_staging(), 0);
	CU_ASSERT_EQUAL(vp_store_verify(s, "big@v1", NULL, NULL), 0);
	vp_store_free(s);
}

/* ---- pure parts -------------------------------------------------------------------------- */

static void test_version_rule(void)
{
	CU_ASSERT_TRUE(vp_store_version_valid("2026.11.23"));
	CU_ASSERT_TRUE(vp_store_version_valid("v1.2-rc1+build_7"));
	CU_ASSERT_TRUE(vp_store_version_valid("a"));
	CU_ASSERT_FALSE(vp_store_version_valid("a@b"));
	CU_ASSERT_FALSE(vp_store_version_valid("a\tb"));
}

static void test_manifest_roundtrip(void)
{
	vp_base_info a = { .name = "n", .version = "1", .format = "qcow2", .source_format = "raw",
			   .imported = "2026-01-02T03:04:05.000006Z", .source = "/src",
			   .virtual_size = 1 << 20, .image_size = 4096, .image_mtime_sec = 17,
			   .image_mtime_nsec = 5 };
	vp_base_info b = { 0 };
	char *text;

	memset(a.sha256, 'a', 64);
	text = vp_store_manifest_format(&a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_EQUAL(vp_store_manifest_parse(&b, text, "m"), 0);
	VP_ASSERT_STR_EQ(b.sha256, a.sha256);
	CU_ASSERT_EQUAL(b.image_mtime_nsec, 5);
	CU_ASSERT_EQUAL(b.virtual_size, 1u << 20);
	VP_ASSERT_STR_EQ(b.compression, "");
	CU_ASSERT_PTR_NULL(strstr(text, "compression="));
	free(text);
	/* A compressed base says so; an older vdipool ignores the key. */
	snprintf(a.compression, sizeof(a.compression), "zlib");
	text = vp_store_manifest_format(&a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ncompression=zlib\n"));
	CU_ASSERT_EQUAL(vp_store_manifest_parse(&b, text, "m"), 0);
	VP_ASSERT_STR_EQ(b.compression, "zlib");
	free(text);
	CU_ASSERT_EQUAL(vp_store_manifest_parse(&b, "vdipool-manifest=1\nname=n\n", "m"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "m: missing 'version'"));
	CU_ASSERT_EQUAL(vp_store_manifest_parse(&b, "hello", "m"), VP_EINVAL);
}

static void test_info_json(void)
{
	static const char json[] =
		"{\n    \"children\": [{\"name\": \"file\", \"info\": {\"format\": \"file\"}}],\n"
		"    \"virtual-size\": 1048576,\n    \"filename\": \"/x\",\n"
		"    \"format-specific\": {\"type\": \"qcow2\", \"data\": {\"compat\": \"1.1\"}},\n"
		"    \"format\": \"qcow2\",\n    \"actual-size\": 200704,\n"
		"    \"backing-filename\": \"/etc/passwd\"\n}\n";
	vp_probe p;

	CU_ASSERT_EQUAL_FATAL(vp_store_parse_info_json(&p, json, "x"), 0);
	VP_ASSERT_STR_EQ(p.format, "qcow2");
	CU_ASSERT_EQUAL(p.virtual_size, 1048576);
	CU_ASSERT_EQUAL(p.actual_size, 200704);
	VP_ASSERT_STR_EQ(p.backing, "/etc/passwd");
}

/* A killed writer's temporaries of one file go; a live writer's and other files' stay. */
static void test_sweep_tmp(void)
{
	char dir[] = "/tmp/vp-sweep-XXXXXX", f[256], dead[256], live[256], mine[256], other[256];
	pid_t child;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	if ((child = fork()) == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	snprintf(f, sizeof(f), "%s/pool.hosts", dir);
	snprintf(dead, sizeof(dead), "%s/.pool.hosts.tmp.%ld.3", dir, (long)child);
	snprintf(live, sizeof(live), "%s/.pool.hosts.tmp.1.0", dir); /* init lives */
	snprintf(mine, sizeof(mine), "%s/.pool.hosts.tmp.%ld.0", dir, (long)getpid());
	snprintf(other, sizeof(other), "%s/.other.hosts.tmp.%ld.0", dir, (long)child);
	const char *all[] = { dead, live, mine, other };
	for (size_t i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(close(open(all[i], O_CREAT | O_WRONLY, 0600)), 0);
	vp_fs_sweep_tmp(f);
	CU_ASSERT_EQUAL(access(dead, F_OK), -1);
	CU_ASSERT_EQUAL(access(live, F_OK), 0);
	CU_ASSERT_EQUAL(access(mine, F_OK), 0);
	CU_ASSERT_EQUAL(access(other, F_OK), 0);
	CU_ASSERT_EQUAL(vp_fs_rm_rf(dir), 0);
}

static CU_TestInfo store_tests[] = {
	{ "import raw (stored qcow2), verify", test_import_raw },
	{ "import qcow2 (stored raw) with parent", test_import_qcow2_stored_raw },
	{ "re-import: same content no-op, other content refused", test_reimport_same_and_different },
	{ "list sorted, latest", test_list_and_latest },
	{ "tampered base caught by verify and check_unchanged", test_tamper_detected },
	{ "rm refused while a delta references the base", test_rm_refused_while_referenced },
	{ "gc keeps the newest N and referenced versions", test_gc_keeps_exactly },
	{ "full clone: standalone copy, grown, no reference, flags checked", test_full_clone },
	{ "bad input refused with its message, nothing left", test_bad_input },
	{ "kill -9 mid-import, then re-import works", test_kill_mid_import_then_reimport },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo pure_tests[] = {
	{ "version rule", test_version_rule },
	{ "manifest round trip and errors", test_manifest_roundtrip },
	{ "qemu-img info JSON", test_info_json },
	{ "sweep of a killed writer's temporaries", test_sweep_tmp },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "store", setup, teardown, NULL, NULL, store_tests },
	{ "store-pure", NULL, NULL, NULL, NULL, pure_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
