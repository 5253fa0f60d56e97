/* test_store_derive.c: base derivation with real files and qemu-img: derive, list, seal, abort, refusals. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/run.h"
#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "vdipool/store.h"
#include "vp_test.h"

static char tmp[256];   /* scratch files and the seal's temp dir */
static char root[300];  /* the store */

static int setup(void)
{
	if (vp_test_scratch_dir(tmp, sizeof(tmp), "derive") < 0)
		return -1;
	snprintf(root, sizeof(root), "%s/root", tmp);
	return 0;
}

static int teardown(void)
{
	return vp_fs_rm_rf(tmp) < 0 ? -1 : 0;
}

/* A store holding tiny@v1 (8 MiB raw source, "one" in the first sector). */
static vp_store *store_with_v1(void)
{
	char src[512];
	vp_store *s = NULL;
	int fd;

	snprintf(src, sizeof(src), "%s/a.raw", tmp);
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(ftruncate(fd, 8 << 20) == 0 && pwrite(fd, "one", 3, 0) == 3);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(vp_store_open_root(&s, root), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(s, tmp), 0); /* the store lock */
	CU_ASSERT_FATAL(vp_store_import(s, "tiny", "v1", src, NULL, NULL) >= 0);
	return s;
}

static void test_derive_seal(void)
{
	vp_store *s = store_with_v1();
	vp_store_seal_opts so = { .tmpdir = tmp };
	vp_derive_info d, *list = NULL;
	vp_base_info b;
	vp_qcow2_info qi;
	size_t n = 0;

	vp_store *apply = NULL;
	struct stat st;
	mode_t old;

	/* While an apply holds the store shared, derive and seal wait their turn. */
	CU_ASSERT_EQUAL_FATAL(vp_store_open_root(&apply, root), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(apply, tmp), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_lock(apply, VP_STORE_LOCK_SHARED, false), 0);
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v1", "v2", &d), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot derive: the store"));
	vp_store_free(apply);
	/* The maintenance delta holds guest data: 0600 whatever the umask. */
	old = umask(0);
	CU_ASSERT_EQUAL_FATAL(vp_store_derive(s, "tiny@v1", "v2", &d), 0);
	umask(old);
	CU_ASSERT_EQUAL(stat(d.location, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	VP_ASSERT_STR_EQ(d.parent, "v1");
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&qi, d.location), 0);
	CU_ASSERT(qi.has_backing);
	VP_ASSERT_STR_EQ(qi.backing_format, "qcow2");
	CU_ASSERT_EQUAL(vp_store_derive_list(s, NULL, &list, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	VP_ASSERT_STR_EQ(list[0].version, "v2");
	free(list);
	/* Not a version: stat and list of bases do not see it. */
	CU_ASSERT_EQUAL(vp_store_stat(s, "tiny@v2", &b), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v1", "v2", NULL), VP_EEXIST);

	CU_ASSERT_EQUAL_FATAL(vp_store_seal(s, "tiny@v2", &so, &b), 0);
	VP_ASSERT_STR_EQ(b.parent, "v1");
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_read_info(&qi, b.location), 0);
	CU_ASSERT(!qi.has_backing);
	CU_ASSERT_EQUAL(vp_store_verify(s, "tiny@v2", NULL, NULL), 0);
	CU_ASSERT(!vp_fs_exists(d.location));
	CU_ASSERT_EQUAL(vp_store_derive_list(s, "tiny", &list, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(list);
	CU_ASSERT_EQUAL(vp_store_seal(s, "tiny@v2", &so, NULL), VP_ENOENT);
	vp_store_free(s);
}

static void test_refusals_and_abort(void)
{
	vp_store *s = NULL;
	vp_derive_info d;

	CU_ASSERT_EQUAL_FATAL(vp_store_open_root(&s, root), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(s, tmp), 0);
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v9", "v3", NULL), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v1", "v2", NULL), VP_EEXIST); /* sealed above */
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v1", "latest", NULL), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_store_derive(s, "tiny@v1", "../x", NULL), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_store_seal(s, "tiny", NULL, NULL), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_store_derive_abort(s, "tiny@v3"), VP_ENOENT);
	CU_ASSERT_EQUAL_FATAL(vp_store_derive(s, "tiny", "v3", &d), 0); /* latest = v2 */
	VP_ASSERT_STR_EQ(d.parent, "v2");
	CU_ASSERT_EQUAL(vp_store_derive_stat(s, "tiny@v3", &d), 0);
	CU_ASSERT_EQUAL(vp_store_derive_abort(s, "tiny@v3"), 0);
	CU_ASSERT_EQUAL(vp_store_derive_stat(s, "tiny@v3", &d), VP_ENOENT);
	CU_ASSERT(strstr(vp_error_last()->message, "no derivation of 'tiny@v3' in progress") != NULL);
	vp_store_free(s);
}

static CU_TestInfo derive_tests[] = {
	{ "derive, list, seal: flat v2 with parent v1", test_derive_seal },
	{ "refusals, derive from latest, abort", test_refusals_and_abort },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "store-derive", setup, teardown, NULL, NULL, derive_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
