/* test_ssh.c: lib/ssh/'s pure parts: fingerprints, shell quoting, extents, resume records, sha256sum output. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <unistd.h>

#include "ssh/ssh_int.h"
#include "vp_test.h"

/* Public key blobs (the base64 field of a .pub file) and what `ssh-keygen -lf` prints for them. */
static const struct {
	const char *blob, *fingerprint;
} fp_cases[] = {
	{ "AAAAC3NzaC1lZDI1NTE5AAAAIGetmRBi4Swozes3UtHYr7G4rFmOg3omf3pNyjRfMxeH",
	  "SHA256:0Rg441BXQTarR7QG8xjSg+UwcyhEjhkTZ7qh/3Rbn5c" },
	{ "AAAAB3NzaC1yc2EAAAADAQABAAAAgQDGSduB2P9vqKZyKxbPjPc1POJHN/RDJsTQmvQXLR6tQtz/TCLt6bZuWUX5Fi"
	  "MMV5wBTKlXZrIH8gJtulE+MFli7PDns8CdNJi2NOd6cRLoDskXZtQp0Yffclnl06Eykps5D9Q7D1CtDnT0No0umP6f"
	  "e4rWLfu0jMv+5W82H2rbkw==",
	  "SHA256:rXHnnjGJObvbNN66elYrH2S9P0Fr1QuG0ZY49jm8ZUg" },
};

static void test_fingerprint(void)
{
	for (size_t i = 0; i < VP_ARRAY_SIZE(fp_cases); i++) {
		unsigned char key[1024];
		const char *b = fp_cases[i].blob;
		int n = EVP_DecodeBlock(key, (const unsigned char *)b, (int)strlen(b));
		char out[64];

		CU_ASSERT_FATAL(n > 0);
		n -= (int)(strlen(b) - strcspn(b, "=")); /* DecodeBlock counts the padding */
		CU_ASSERT_EQUAL_FATAL(vp_ssh_fingerprint_format(key, (size_t)n, out, sizeof(out)), 0);
		VP_ASSERT_STR_EQ(out, fp_cases[i].fingerprint);
	}
	{
		char small[20];

		CU_ASSERT(vp_ssh_fingerprint_format((const unsigned char *)"x", 1, small, sizeof(small)) < 0);
	}
}

static void test_quote(void)
{
	static const char *const cases[][2] = {
		{ "abc", "'abc'" },
		{ "", "''" },
		{ "it's", "'it'\\''s'" },
		{ "a b; rm -rf / $(x) `y`", "'a b; rm -rf / $(x) `y`'" },
		{ "''", "''\\'''\\'''" },
	};

	for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
		char *q = vp_ssh_quote(cases[i][0]);

		VP_ASSERT_STR_EQ(q, cases[i][1]);
		free(q);
	}
}

static void test_extents_add(void)
{
	vp_extents e = { 0 };

	CU_ASSERT_EQUAL(vp_extents_add(&e, 0, 10), 0);
	CU_ASSERT_EQUAL(vp_extents_add(&e, 10, 5), 0);   /* adjacent: merged */
	CU_ASSERT_EQUAL(vp_extents_add(&e, 100, 0), 0);  /* empty: ignored */
	CU_ASSERT_EQUAL(vp_extents_add(&e, 100, 20), 0);
	CU_ASSERT_EQUAL_FATAL(e.n, 2);
	CU_ASSERT_EQUAL(e.v[0].off, 0);
	CU_ASSERT_EQUAL(e.v[0].len, 15);
	CU_ASSERT_EQUAL(e.v[1].off, 100);
	CU_ASSERT_EQUAL(e.v[1].len, 20);
	CU_ASSERT_EQUAL(e.data, 35);
	for (uint64_t i = 0; i < 1000; i++) /* growth */
		CU_ASSERT_EQUAL(vp_extents_add(&e, 1000 + i * 10, 1), 0);
	CU_ASSERT_EQUAL(e.n, 1002);
	CU_ASSERT_EQUAL(e.data, 1035);
	vp_extents_release(&e);
	CU_ASSERT_EQUAL(e.n, 0);
}

/* A real sparse file: data at 0 and 1 MiB, holes elsewhere, size 4 MiB. */
static void test_extents_read(void)
{
	char path[] = "/var/tmp/vp-test-ssh-XXXXXX";
	int fd = mkstemp(path);
	char block[8192];
	vp_extents e;

	CU_ASSERT_FATAL(fd >= 0);
	memset(block, 0xab, sizeof(block));
	CU_ASSERT_EQUAL(pwrite(fd, block, 4096, 0), 4096);
	CU_ASSERT_EQUAL(pwrite(fd, block, 8192, 1 << 20), 8192);
	CU_ASSERT_EQUAL(ftruncate(fd, 4 << 20), 0);
	CU_ASSERT_EQUAL_FATAL(vp_extents_read(&e, fd, path), 0);
	CU_ASSERT_EQUAL(e.size, 4 << 20);
	CU_ASSERT_EQUAL_FATAL(e.n, 2);
	CU_ASSERT_EQUAL(e.v[0].off, 0);
	CU_ASSERT_EQUAL(e.v[0].len, 4096);
	CU_ASSERT_EQUAL(e.v[1].off, 1 << 20);
	CU_ASSERT_EQUAL(e.v[1].len, 8192);
	CU_ASSERT_EQUAL(e.data, 12288);
	vp_extents_release(&e);

	/* Empty file: no extents. */
	CU_ASSERT_EQUAL(ftruncate(fd, 0), 0);
	CU_ASSERT_EQUAL_FATAL(vp_extents_read(&e, fd, path), 0);
	CU_ASSERT_EQUAL(e.n, 0);
	CU_ASSERT_EQUAL(e.size, 0);
	vp_extents_release(&e);
	close(fd);
	unlink(path);

	CU_ASSERT(vp_extents_read(&e, -1, "nothing") < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "'nothing'"));
}

static void test_data_below(void)
{
	vp_extents e = { 0 };
	static const uint64_t cases[][2] = {
		{ 0, 0 }, { 50, 0 }, { 100, 0 }, { 110, 10 }, { 150, 50 }, { 300, 50 },
		{ 1000, 50 }, { 1010, 60 }, { 5000, 150 },
	};

	vp_extents_add(&e, 100, 50);
	vp_extents_add(&e, 1000, 100);
	for (size_t i = 0; i < VP_ARRAY_SIZE(cases); i++) {
		uint64_t got = vp_extents_data_below(&e, cases[i][0]);

		if (got != cases[i][1])
			fprintf(stderr, "\n  data below %lu: got %lu, expected %lu\n",
				(unsigned long)cases[i][0], (unsigned long)got, (unsigned long)cases[i][1]);
		CU_ASSERT_EQUAL(got, cases[i][1]);
	}
	vp_extents_release(&e);
}

#define SHA_A "2e9d1e1f50821e8b0e70c375ac540612353652dbcbd5d81ae034f53b26562147"
#define SHA_B "0000000000000000000000000000000000000000000000000000000000000000"

static void test_state_roundtrip(void)
{
	vp_push_state st = { .sha256 = SHA_A, .size = 1ull << 30, .data = 64 << 20, .done = 16 << 20 };
	vp_push_state back;
	char *text = vp_push_state_format(&st);

	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	VP_ASSERT_STR_EQ(text, "vdipool-push 1\nsha256=" SHA_A "\nsize=1073741824\ndata=67108864\n"
			       "done=16777216\n");
	CU_ASSERT_EQUAL_FATAL(vp_push_state_parse(&back, text), 0);
	VP_ASSERT_STR_EQ(back.sha256, SHA_A);
	CU_ASSERT_EQUAL(back.size, st.size);
	CU_ASSERT_EQUAL(back.data, st.data);
	CU_ASSERT_EQUAL(back.done, st.done);
	free(text);
}

/* A record that is cut short, altered or of another format is never trusted. */
static void test_state_rejects(void)
{
	static const char *const bad[] = {
		"",
		"vdipool-push 1\n",
		"vdipool-push 2\nsha256=" SHA_A "\nsize=10\ndata=5\ndone=5\n",
		"vdipool-push 1\nsha256=" SHA_A "\nsize=10\ndata=5\ndone=",
		"vdipool-push 1\nsha256=" SHA_A "\nsize=10\ndata=5\ndone=11\n",   /* done > size */
		"vdipool-push 1\nsha256=2E9D1E1F50821E8B0E70C375AC540612353652DBCBD5D81AE034F53B26562147"
		"\nsize=10\ndata=5\ndone=5\n",                                     /* uppercase */
		"vdipool-push 1\nsha256=2e9d\nsize=10\ndata=5\ndone=5\n",          /* short */
		"vdipool-push 1\nsha256=" SHA_A "\nsize=10\ndata=5\ndone=5\nx",    /* trailing junk */
		"vdipool-push 1\nsha256=" SHA_A "\nsize=-1\ndata=5\ndone=5\n",
	};
	vp_push_state st;

	for (size_t i = 0; i < VP_ARRAY_SIZE(bad); i++) {
		int rc = vp_push_state_parse(&st, bad[i]);

		if (rc != VP_EINVAL)
			fprintf(stderr, "\n  accepted bad record %zu\n", i);
		CU_ASSERT_EQUAL(rc, VP_EINVAL);
	}
}

static void test_resume_offset(void)
{
	vp_extents e = { 0 };
	vp_push_state st = { .sha256 = SHA_A, .size = 4096, .data = 300, .done = 1500 };

	e.size = 4096;
	vp_extents_add(&e, 1000, 100);
	vp_extents_add(&e, 2000, 200);
	CU_ASSERT_EQUAL(vp_push_resume_offset(&st, SHA_A, &e), 1500);
	CU_ASSERT_EQUAL(vp_push_resume_offset(NULL, SHA_A, &e), 0);
	CU_ASSERT_EQUAL(vp_push_resume_offset(&st, SHA_B, &e), 0); /* another image */
	st.size = 8192;
	CU_ASSERT_EQUAL(vp_push_resume_offset(&st, SHA_A, &e), 0);
	st.size = 4096;
	st.data = 299;
	CU_ASSERT_EQUAL(vp_push_resume_offset(&st, SHA_A, &e), 0);
	vp_extents_release(&e);
}

static void test_parse_sha256sum(void)
{
	char out[65];

	CU_ASSERT_EQUAL(vp_ssh_parse_sha256sum(SHA_A " */var/lib/vdipool/x\n", out), 0);
	VP_ASSERT_STR_EQ(out, SHA_A);
	CU_ASSERT_EQUAL(vp_ssh_parse_sha256sum("\\" SHA_A " *a\\nb\n", out), 0);
	VP_ASSERT_STR_EQ(out, SHA_A);
	CU_ASSERT_EQUAL(vp_ssh_parse_sha256sum("", out), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_ssh_parse_sha256sum("sha256sum: x: No such file or directory\n", out), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_ssh_parse_sha256sum("2e9d1e1f  x\n", out), VP_EINVAL);
}

static CU_TestInfo ssh_tests[] = {
	{ "fingerprint like ssh-keygen -l", test_fingerprint },
	{ "shell quoting", test_quote },
	{ "extent list: merge, grow, sum", test_extents_add },
	{ "extents of a real sparse file", test_extents_read },
	{ "data below a resume offset", test_data_below },
	{ "resume record round trip", test_state_roundtrip },
	{ "resume record: bad ones refused", test_state_rejects },
	{ "resume offset: only for the same image", test_resume_offset },
	{ "sha256sum output", test_parse_sha256sum },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "ssh", NULL, NULL, NULL, NULL, ssh_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
