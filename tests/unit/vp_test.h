/* vp_test.h: the shared CUnit main for tests/unit/test_*.c and small test helpers. */
#ifndef VP_TEST_H
#define VP_TEST_H

#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Assert two C strings are equal and print both when they are not. */
#define VP_ASSERT_STR_EQ(actual, expected)                                              \
	do {                                                                            \
		const char *a_ = (actual), *e_ = (expected);                            \
		if (!a_ || !e_ || strcmp(a_, e_) != 0)                                  \
			fprintf(stderr, "\n  %s:%d: got '%s'\n  expected '%s'\n", __FILE__, \
				__LINE__, a_ ? a_ : "(null)", e_ ? e_ : "(null)");      \
		CU_ASSERT_STRING_EQUAL_FATAL(a_ ? a_ : "(null)", e_ ? e_ : "(null)");    \
	} while (0)

/* Makes a scratch directory /tmp/vp-test-NAME-XXXXXX into dir and puts the
 * build tree's plugins on the search path (unless the environment set one);
 * for suite setups that drive the store. 0 or -1. */
static inline int vp_test_scratch_dir(char *dir, size_t len, const char *name)
{
	const char *b = getenv("VP_BUILD_DIR");
	static char env[600];

	snprintf(env, sizeof(env), "%s/plugins", b ? b : ".");
	setenv("VDIPOOL_PLUGIN_PATH", env, 0);
	snprintf(dir, len, "/tmp/vp-test-%s-XXXXXX", name);
	return mkdtemp(dir) ? 0 : -1;
}

/* Runs a shell command (printf-style); prints it when it fails. Its exit status as system(). */
static inline int vp_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int vp_sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "\n  command failed (%d): %s\n", rc, cmd);
	return rc;
}

/* Output of a shell command (printf-style) without its trailing newlines; "" on failure. */
static inline void vp_capture(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void vp_capture(char *out, size_t len, const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	FILE *f;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	out[0] = '\0';
	if (!(f = popen(cmd, "r")))
		return;
	n = fread(out, 1, len - 1, f);
	out[n] = '\0';
	pclose(f);
	while (n > 0 && out[n - 1] == '\n')
		out[--n] = '\0';
}

/* A unit test executable: runs every suite, exits 1 when anything failed.
 * An argument restricts the run to the suite of that name. */
#define VP_TEST_MAIN(suites)                                                           \
	int main(int argc, char **argv)                                                 \
	{                                                                               \
		unsigned fails;                                                         \
		if (CU_initialize_registry() != CUE_SUCCESS)                           \
			return 2;                                                       \
		if (CU_register_suites(suites) != CUE_SUCCESS)                         \
			return 2;                                                       \
		CU_basic_set_mode(CU_BRM_VERBOSE);                                      \
		if (argc > 1) {                                                         \
			CU_pSuite s_ = CU_get_suite(argv[1]);                           \
			if (!s_) {                                                      \
				fprintf(stderr, "no suite '%s'\n", argv[1]);            \
				return 2;                                               \
			}                                                               \
			CU_basic_run_suite(s_);                                         \
		} else {                                                                \
			CU_basic_run_tests();                                           \
		}                                                                       \
		fails = CU_get_number_of_failures() + CU_get_number_of_suites_failed(); \
		CU_cleanup_registry();                                                  \
		return fails ? 1 : 0;                                                   \
	}

#endif
