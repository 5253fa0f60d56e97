/* test_ephemeral.c: the expiry record of `vdipool up` pools, and warming a base into the page
 * cache (vp_fs_warm: only allocated ranges, resident afterwards, checked with mincore). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/pool.h"
#include "vdipool/spec.h"
#include "util/fs.h"
#include "vp_test.h"

static char dir[256];

static int setup(void)
{
	vp_spec_set_template_path(getenv("VDIPOOL_TEMPLATE_PATH"));
	return vp_test_scratch_dir(dir, sizeof(dir), "ephemeral");
}

static int teardown(void)
{
	vp_fs_rm_rf(dir);
	return 0;
}

static vp_spec *spec_in(const char *state_dir, const char *extra)
{
	char text[1024];
	vp_spec *s = NULL;

	snprintf(text, sizeof(text),
		 "pool: { name: ci }\nbase: { name: tiny }\n"
		 "storage:\n  tiers: [ { name: t, path: %s } ]\n  state_dir: %s\n"
		 "clones: { count: 2%s }\n", dir, state_dir, extra);
	if (vp_spec_parse(&s, "pool.yaml", text, strlen(text)) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	return s;
}

static void test_expiry_round_trip(void)
{
	char state[300], path[400], *text = NULL;
	vp_spec *s;
	vp_pool_expiry e = { .present = true, .expires = 1795424400, .created = 1795417200,
			     .by = "job-42", .spec = "/builds/ci.yaml" }, r;
	size_t len;

	snprintf(state, sizeof(state), "%s/state", dir);
	s = spec_in(state, "");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* nothing recorded: not an error, not present */
	CU_ASSERT_EQUAL(vp_pool_expiry_read(s, &r), 0);
	CU_ASSERT_FALSE(r.present);
	CU_ASSERT_EQUAL(vp_pool_expiry_clear(s), 0);

	CU_ASSERT_EQUAL_FATAL(vp_pool_expiry_write(s, &e), 0);
	snprintf(path, sizeof(path), "%s/placement/ci.expires", state);
	CU_ASSERT_EQUAL_FATAL(vp_fs_read_all(path, 4096, &text, &len), 0);
	VP_ASSERT_STR_EQ(text, "vdipool-up=1\nexpires=1795424400\ncreated=1795417200\nby=job-42\nspec=/builds/ci.yaml\n");
	free(text);
	CU_ASSERT_EQUAL(vp_pool_expiry_read(s, &r), 0);
	CU_ASSERT_TRUE(r.present);
	CU_ASSERT_EQUAL(r.expires, 1795424400);
	CU_ASSERT_EQUAL(r.created, 1795417200);
	VP_ASSERT_STR_EQ(r.by, "job-42");
	VP_ASSERT_STR_EQ(r.spec, "/builds/ci.yaml");

	/* a holder of two lines would forge fields: refused, the record unchanged */
	snprintf(e.by, sizeof(e.by), "x\nexpires=0");
	CU_ASSERT_EQUAL(vp_pool_expiry_write(s, &e), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_pool_expiry_read(s, &r), 0);
	CU_ASSERT_EQUAL(r.expires, 1795424400);

	/* damaged: said so, naming the file */
	CU_ASSERT_EQUAL_FATAL(vp_fs_write_atomic(path, "garbage\n", 8, 0600), 0);
	CU_ASSERT_EQUAL(vp_pool_expiry_read(s, &r), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "ci.expires' is damaged"));

	CU_ASSERT_EQUAL(vp_pool_expiry_clear(s), 0);
	CU_ASSERT_EQUAL(vp_fs_exists(path), 0);
	vp_spec_free(s);
}

static void test_warm_base_key(void)
{
	char state[300];
	vp_spec *s;

	snprintf(state, sizeof(state), "%s/state", dir);
	s = spec_in(state, ", warm_base: true");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE(s->clones.warm_base);
	vp_spec_free(s);
}

/* Pages of [off, off+len) of fd resident in the page cache. */
static size_t resident(int fd, off_t off, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);
	unsigned char *vec = calloc(len / (size_t)pg + 1, 1);
	size_t n = 0;

	if (m == MAP_FAILED || !vec || mincore(m, len, vec) < 0) {
		free(vec);
		return (size_t)-1;
	}
	for (size_t i = 0; i < len / (size_t)pg; i++)
		n += vec[i] & 1;
	munmap(m, len);
	free(vec);
	return n;
}

static void test_warm_reads_data_not_holes(void)
{
	char path[300];
	const size_t mib = 1u << 20, pages = mib / (size_t)sysconf(_SC_PAGESIZE);
	char *buf = malloc(mib);
	uint64_t bytes = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/base.img", dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	memset(buf, 0x5a, mib);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0);
	/* data at 0-1 MiB and 8-9 MiB, a hole between and after (16 MiB) */
	CU_ASSERT_EQUAL_FATAL(pwrite(fd, buf, mib, 0), (ssize_t)mib);
	CU_ASSERT_EQUAL_FATAL(pwrite(fd, buf, mib, 8 * (off_t)mib), (ssize_t)mib);
	CU_ASSERT_EQUAL_FATAL(ftruncate(fd, 16 * (off_t)mib), 0);
	CU_ASSERT_EQUAL_FATAL(fsync(fd), 0);
	/* clean pages can be dropped: now the file is cold */
	CU_ASSERT_EQUAL(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	if (resident(fd, 0, mib) != 0) {
		fprintf(stderr, "\n  (the file system kept the pages; the residency check is skipped)\n");
	} else {
		CU_ASSERT_EQUAL(vp_fs_warm(path, &bytes), 0);
		CU_ASSERT_EQUAL(resident(fd, 0, mib), pages);
		CU_ASSERT_EQUAL(resident(fd, 8 * (off_t)mib, mib), pages);
	}
	/* a file system that tells holes from data reads 2 MiB, not 16 */
	CU_ASSERT_EQUAL(vp_fs_warm(path, &bytes), 0);
	if (lseek(fd, 0, SEEK_HOLE) < 16 * (off_t)mib)
		CU_ASSERT_EQUAL(bytes, 2 * mib);
	close(fd);
	free(buf);

	CU_ASSERT_EQUAL(vp_fs_warm(dir, &bytes), VP_EINVAL); /* a directory */
	snprintf(path, sizeof(path), "%s/missing.img", dir);
	CU_ASSERT_EQUAL(vp_fs_warm(path, &bytes), VP_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "missing.img"));
}

static CU_TestInfo tests[] = {
	{ "expiry record: write, read, refuse, damaged, clear", test_expiry_round_trip },
	{ "clones.warm_base parses", test_warm_base_key },
	{ "warming reads data ranges into the page cache, not holes", test_warm_reads_data_not_holes },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "ephemeral", setup, teardown, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
