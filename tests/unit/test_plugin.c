/* test_plugin.c: the plugin loader: ABI size/version checks, mandatory callbacks, registry, host table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vp_test.h"

static char test_plugins[4096];

static const char *tp(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/vdipool-%s.so", test_plugins, name);
	return path;
}

static int setup(void)
{
	const char *b = getenv("VP_BUILD_DIR");
	static char env[9000];

	if (!b)
		b = ".";
	snprintf(test_plugins, sizeof(test_plugins), "%s/tests/plugins", b);
	/* Before the registry's first scan: test plugins first, then the real ones. */
	snprintf(env, sizeof(env), "%s:%s/plugins", test_plugins, b);
	return setenv("VDIPOOL_PLUGIN_PATH", env, 1);
}

static void test_old_abi_loads_with_zeroed_tail(void)
{
	vp_plugin *p = NULL;
	const vp_plugin_ops *ops;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_load_file(&p, tp("old-abi")), 0);
	VP_ASSERT_STR_EQ(vp_plugin_name(p), "old-abi");
	CU_ASSERT_EQUAL(vp_plugin_api_version(p), 1);
	CU_ASSERT_PTR_NULL(vp_plugin_load_error(p));
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	/* The plugin's own delta_rebase lies beyond its claimed size: not copied,
	 * so the loader's default (not supported) answers. */
	CU_ASSERT_EQUAL(ops->delta_rebase(NULL, "p", "c", "/x", "raw"), VP_ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "does not support rebase"));
	CU_ASSERT_EQUAL(ops->delta_flatten(NULL, "p", "c"), VP_ENOTSUP);
	CU_ASSERT_PTR_NULL(ops->base_children);
	CU_ASSERT_EQUAL(ops->_struct_size, sizeof(vp_plugin_ops) - 3 * sizeof(void *));
	vp_plugin_free(p);
}

static void test_plugin_errors_go_through_host(void)
{
	vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	vp_image_info info;
	void *tier = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_load_file(&p, tp("old-abi")), 0);
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->open(&(vp_tier_config){ .tier = "t" }, &tier), 0);
	vp_error_clear();
	CU_ASSERT_EQUAL(ops->base_stage(tier, "a", "1", "qcow2", &info), VP_ENOTSUP);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "test plugin: not supported");
	CU_ASSERT_EQUAL(vp_error_last()->klass, VP_ERR_PLUGIN);
	ops->close(tier);
	vp_plugin_free(p);
}

static void test_future_abi_refused(void)
{
	vp_plugin *p = NULL;
	char want[4608];

	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, tp("future-abi")), VP_ENOTSUP);
	CU_ASSERT_PTR_NULL(p);
	snprintf(want, sizeof(want), "plugin '%s' needs storage plugin API version %d, this vdipool "
		 "supports up to version %d", tp("future-abi"), VP_PLUGIN_API_VERSION + 1,
		 VP_PLUGIN_API_VERSION);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, want));
	if (!strstr(vp_error_last()->message, want))
		fprintf(stderr, "\n  got: %s\n", vp_error_last()->message);
}

static void test_missing_mandatory_refused(void)
{
	vp_plugin *p = NULL;

	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, tp("missing-ops")), VP_EINVAL);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "lacks the mandatory callback 'base_remove'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vdipool-missing-ops.so"));
}

static void test_not_a_plugin(void)
{
	vp_plugin *p = NULL;

	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, "/nonexistent/vdipool-x.so"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot load plugin '/nonexistent/vdipool-x.so'"));
	/* A real shared object without the init symbol. */
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, "libz.so.1"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "is not a vdipool plugin"));
}

static void test_registry(void)
{
	const vp_plugin *const *list = NULL;
	const vp_plugin *p = NULL;
	size_t n = 0;
	int refused = 0, dirs = 0;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	VP_ASSERT_STR_EQ(vp_plugin_name(p), "dir");
	CU_ASSERT(vp_plugin_capabilities(p) & VP_CAP_LINKED_CLONE);
	CU_ASSERT_EQUAL(vp_plugin_find(&p, "old-abi"), 0);
	CU_ASSERT_EQUAL(vp_plugin_find(&p, "future-abi"), VP_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "no storage plugin 'future-abi'"));
	CU_ASSERT_EQUAL_FATAL(vp_plugin_list_all(&list, &n), 0);
	for (size_t i = 0; i < n; i++) {
		refused += vp_plugin_load_error(list[i]) != NULL;
		dirs += !strcmp(vp_plugin_name(list[i]), "dir");
	}
	CU_ASSERT_EQUAL(refused, 2);  /* future-abi, missing-ops: listed with why */
	CU_ASSERT_EQUAL(dirs, 1);     /* the file shadows the built-in */
}

static void test_caps_str(void)
{
	char buf[128];

	VP_ASSERT_STR_EQ(vp_plugin_caps_str(0, buf, sizeof(buf)), "");
	VP_ASSERT_STR_EQ(vp_plugin_caps_str(VP_CAP_LINKED_CLONE | VP_CAP_SHARED, buf, sizeof(buf)),
			 "linked-clone,shared");
}

static CU_TestInfo loader_tests[] = {
	{ "old ABI loads, tail zero-filled, defaults", test_old_abi_loads_with_zeroed_tail },
	{ "plugin errors reach vp_error_last via the host table", test_plugin_errors_go_through_host },
	{ "future API version refused with both versions", test_future_abi_refused },
	{ "missing mandatory callback refused by name", test_missing_mandatory_refused },
	{ "not a plugin", test_not_a_plugin },
	{ "registry: search path, refused files, dir", test_registry },
	{ "capability names", test_caps_str },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "plugin", setup, NULL, NULL, NULL, loader_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
