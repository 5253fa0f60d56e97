/* test_plugin.c: the plugin loader: ABI size/version checks, mandatory callbacks, registry, host table. */
#include <dirent.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/qcow2.h"
#include "util/fs.h"
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
	if (b[0] != '/')
		return -1;
	return vp_plugin_set_search_path(env) == 0 ? 0 : -1;
}

static void test_old_abi_loads_with_zeroed_tail(void)
{
	vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	void *tier = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_load_file(&p, tp("old-abi")), 0);
	VP_ASSERT_STR_EQ(vp_plugin_name(p), "old-abi");
	CU_ASSERT_EQUAL(vp_plugin_api_version(p), 1);
	CU_ASSERT_PTR_NULL(vp_plugin_load_error(p));
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	CU_ASSERT_EQUAL_FATAL(ops->open(&(vp_tier_config){ .tier = "t" }, &tier), 0);
	/* The plugin's own delta_rebase lies beyond its claimed size: not copied,
	 * so the loader's default (not supported) answers. */
	CU_ASSERT_EQUAL(ops->delta_rebase(tier, "p", "c", "/x", "raw"), VP_ENOTSUP);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "does not support rebase"));
	CU_ASSERT_EQUAL(ops->delta_flatten(tier, "p", "c"), VP_ENOTSUP);
	CU_ASSERT_PTR_NULL(ops->base_children);
	CU_ASSERT_PTR_NULL(ops->sweep);
	CU_ASSERT_PTR_NULL(ops->base_hash); /* API 3: beyond an old plugin's table */
	CU_ASSERT_EQUAL(ops->thread_model, VP_THREAD_MODEL_SERIALIZE_REQUESTS);
	CU_ASSERT_EQUAL(ops->_struct_size, offsetof(vp_plugin_ops, delta_rebase));
	ops->close(tier);
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
	char so[4300];

	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, "/nonexistent/vdipool-x.so"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot load plugin '/nonexistent/vdipool-x.so'"));
	/* Only absolute paths: no library-path lookup of plugin code. */
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, "libz.so.1"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "give an absolute path"));
	/* A real shared object without the init symbol. */
	snprintf(so, sizeof(so), "%s/../../libvdipool.so", test_plugins);
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, so), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "is not a vdipool plugin"));
	if (!strstr(vp_error_last()->message, "is not a vdipool plugin"))
		fprintf(stderr, "\n  got: %s\n", vp_error_last()->message);
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

/* ---- the thread model --------------------------------------------------------------- */

struct call {
	const vp_plugin_ops *ops;
	void *tier;
	vp_image_info info;
};

static void *create_one(void *arg)
{
	struct call *c = arg;
	vp_delta_request req = { .kind = VP_DISK_DATA, .pool = "p", .clone = "c", .size = 1 };

	memset(&c->info, 0, sizeof(c->info));
	c->ops->delta_create(c->tier, &req, &c->info);
	return NULL;
}

/* Four threads on one handle: the most calls the plugin saw at once. */
static uint64_t most_at_once(const char *name)
{
	vp_plugin *p = NULL;
	struct call c[4];
	pthread_t th[4];
	void *tier = NULL;
	uint64_t most = 0;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_load_file(&p, tp(name)), 0);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_get_ops(p)->open(&(vp_tier_config){ .tier = "t" }, &tier), 0);
	for (int i = 0; i < 4; i++) {
		c[i].ops = vp_plugin_get_ops(p);
		c[i].tier = tier;
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, create_one, &c[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		most = c[i].info.size > most ? c[i].info.size : most;
	}
	vp_plugin_get_ops(p)->close(tier);
	vp_plugin_free(p);
	return most;
}

static void test_thread_model(void)
{
	/* Built before the thread model existed: serialised, as plugin.h promised. */
	CU_ASSERT_EQUAL(most_at_once("old-abi"), 1);
	/* Declares VP_THREAD_MODEL_PARALLEL: called at once. */
	CU_ASSERT(most_at_once("parallel") > 1);
}

/* ---- who may provide plugin code ------------------------------------------------------------ */

static void test_file_owner_and_mode(void)
{
	char dir[] = "/tmp/vp-test-plugin-XXXXXX", copy[600];
	vp_plugin *p = NULL;
	char *text = NULL;
	size_t len = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(copy, sizeof(copy), "%s/vdipool-old-abi.so", dir);
	CU_ASSERT_EQUAL_FATAL(vp_fs_read_all(tp("old-abi"), 64u << 20, &text, &len), 0);
	CU_ASSERT_EQUAL_FATAL(vp_fs_write_atomic(copy, text, len, 0755), 0);
	free(text);
	CU_ASSERT_EQUAL_FATAL(chmod(copy, 0755), 0);
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, copy), 0);
	vp_plugin_free(p);
	p = NULL;
	/* Writable by others: anyone could put code in our process. */
	CU_ASSERT_EQUAL_FATAL(chmod(copy, 0757), 0);
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, copy), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "writable by no one else"));
	CU_ASSERT_EQUAL_FATAL(chmod(copy, 0775), 0);
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, copy), VP_EINVAL);
	/* Owned by another user. */
	CU_ASSERT_EQUAL_FATAL(chmod(copy, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(chown(copy, 65534, 65534), 0);
	CU_ASSERT_EQUAL(vp_plugin_load_file(&p, copy), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "owned by uid 65534"));
	CU_ASSERT_PTR_NULL(p);
	vp_fs_rm_rf(dir);
	/* Relative directories on the search path are refused (and it was set already). */
	CU_ASSERT_EQUAL(vp_plugin_set_search_path("plugins:/x"), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "'plugins' is not an absolute directory"));
	CU_ASSERT_EQUAL(vp_plugin_set_search_path("/x"), VP_EBUSY);
}

static void test_caps_str(void)
{
	char buf[128];

	VP_ASSERT_STR_EQ(vp_plugin_caps_str(0, buf, sizeof(buf)), "");
	VP_ASSERT_STR_EQ(vp_plugin_caps_str(VP_CAP_LINKED_CLONE | VP_CAP_SHARED, buf, sizeof(buf)),
			 "linked-clone,shared");
	VP_ASSERT_STR_EQ(vp_plugin_caps_str(VP_CAP_LINKED_CLONE | VP_CAP_FULL_CLONE, buf, sizeof(buf)),
			 "linked-clone,full-clone");
}

/* The dir backend says it makes full copies; the ssh one does not (the host never asks it). */
static void test_full_clone_caps(void)
{
	const vp_plugin *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	CU_ASSERT(vp_plugin_capabilities(p) & VP_CAP_FULL_CLONE);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "ssh"), 0);
	CU_ASSERT_FALSE(vp_plugin_capabilities(p) & VP_CAP_FULL_CLONE);
}


/* ---- the dir backend's stamping ------------------------------------------------------ */

struct stamp_job {
	const vp_plugin_ops *ops;
	void *tier;
	const char *base;
	int first, rc;
};

static void *stamp_some(void *arg)
{
	struct stamp_job *j = arg;
	char name[16];

	for (int i = j->first; i < j->first + 4 && j->rc == 0; i++) {
		vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "p", .clone = name,
					 .base_location = j->base, .base_format = "qcow2",
					 .flags = VP_DELTA_PREALLOC_METADATA | VP_DELTA_EXTENDED_L2 };
		snprintf(name, sizeof(name), "c%02d", i);
		j->rc = j->ops->delta_create(j->tier, &req, NULL);
	}
	return NULL;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n)) && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	if (f)
		fclose(f);
	*len = buf ? (size_t)n : 0;
	return buf;
}

/* 16 deltas from 4 threads: each is the bytes the qcow2 writer makes for those options
 * (the first written, the others copied from the stamp, flushed in groups); the stamp lives
 * beside them until the tier is closed; no temporary is left. */
static void test_dir_stamping(void)
{
	const vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	vp_qcow2_create_opts o;
	struct stamp_job jobs[4];
	pthread_t th[4];
	char dir[4096], base[4200], ref[4200], path[4300];
	void *tier = NULL;
	char *want, *got;
	size_t wlen, glen;

	CU_ASSERT_EQUAL_FATAL(vp_test_scratch_dir(dir, sizeof(dir), "stamp"), 0);
	snprintf(base, sizeof(base), "%s/base.qcow2", dir);
	snprintf(ref, sizeof(ref), "%s/ref.qcow2", dir);
	vp_qcow2_create_opts_init(&o);
	o.size = 3u << 20;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(base, &o), 0);
	o.size = 0;
	o.backing_file = base;
	o.backing_format = "qcow2";
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(ref, &o), 0);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->open(&(vp_tier_config){ .tier = "t", .path = dir }, &tier), 0);
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct stamp_job){ ops, tier, base, i * 4, 0 };
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, stamp_some, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(jobs[i].rc, 0);
	}
	snprintf(path, sizeof(path), "%s/deltas/p/.stamp-0.qcow2.tmp.%ld.s", dir, (long)getpid());
	CU_ASSERT_EQUAL(access(path, F_OK), 0); /* until close */
	ops->close(tier);
	CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
	want = slurp(ref, &wlen);
	CU_ASSERT_PTR_NOT_NULL_FATAL(want);
	for (int i = 0; i < 16; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/deltas/p/c%02d.qcow2", dir, i);
		got = slurp(path, &glen);
		CU_ASSERT_EQUAL(glen, wlen);
		CU_ASSERT(got && glen == wlen && !memcmp(got, want, wlen));
		CU_ASSERT(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
		free(got);
	}
	free(want);
	snprintf(path, sizeof(path), "%s/deltas/p", dir);
	{
		size_t hidden = 0;
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)))
			hidden += e->d_name[0] == '.' && strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
		if (d)
			closedir(d);
		CU_ASSERT_EQUAL(hidden, 0);
	}
	vp_fs_rm_rf(dir);
}

/* ---- the built-in ssh backend (what needs no host; tests/integration/itest_store_ssh.c has the rest) */

static int open_ssh(const vp_plugin_ops *ops, const char *path, const vp_plugin_param *params,
		    size_t n)
{
	vp_tier_config cfg = { .tier = "remote", .path = path, .params = params, .nparams = n };
	void *tier = NULL;
	int rc = ops->open(&cfg, &tier);

	if (rc == 0)
		ops->close(tier);
	return rc;
}

static void test_builtin_ssh(void)
{
	const vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	const vp_plugin_param ok[] = { { "host", "127.0.0.1" }, { "port", "1" }, { "user", "vdi" },
				       { "known_hosts", "/nonexistent/known_hosts" } };
	const vp_plugin_param odd[] = { { "host", "h" }, { "colour", "blue" } };
	const vp_plugin_param badport[] = { { "port", "99999" } };

	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "ssh"), 0);
	VP_ASSERT_STR_EQ(vp_plugin_file(p), "(built-in)");
	CU_ASSERT_EQUAL(vp_plugin_api_version(p), VP_PLUGIN_API_VERSION);
	CU_ASSERT(vp_plugin_capabilities(p) & VP_CAP_REBASE);
	CU_ASSERT_FALSE(vp_plugin_capabilities(p) & VP_CAP_FLATTEN);
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops);
	CU_ASSERT_PTR_NOT_NULL(ops->base_hash);
	CU_ASSERT_PTR_NOT_NULL(ops->sweep);
	CU_ASSERT_EQUAL(ops->thread_model, VP_THREAD_MODEL_SERIALIZE_REQUESTS);

	CU_ASSERT_EQUAL(open_ssh(ops, "/var/lib/vdipool", NULL, 0), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "host, user and known_hosts"));
	CU_ASSERT_EQUAL(open_ssh(ops, "relative", ok, 4), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "absolute path"));
	CU_ASSERT_EQUAL(open_ssh(ops, "/v", odd, 2), VP_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "'colour=blue'"));
	CU_ASSERT_EQUAL(open_ssh(ops, "/v", badport, 1), VP_EINVAL);
	/* Nothing listens on port 1: the error names the tier, its path and the host. */
	CU_ASSERT(open_ssh(ops, "/var/lib/vdipool/", ok, 4) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vdi@127.0.0.1:1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "'/var/lib/vdipool'"));
}

static CU_TestInfo loader_tests[] = {
	{ "old ABI loads, tail zero-filled, defaults", test_old_abi_loads_with_zeroed_tail },
	{ "plugin errors reach vp_error_last via the host table", test_plugin_errors_go_through_host },
	{ "future API version refused with both versions", test_future_abi_refused },
	{ "missing mandatory callback refused by name", test_missing_mandatory_refused },
	{ "not a plugin", test_not_a_plugin },
	{ "registry: search path, refused files, dir", test_registry },
	{ "capability names", test_caps_str },
	{ "full-clone capability: dir yes, ssh no", test_full_clone_caps },
	{ "built-in ssh: registered, API 3, settings checked, errors name the host", test_builtin_ssh },
	{ "thread model: old plugins serialised per handle, parallel ones not", test_thread_model },
	{ "dir: stamped deltas are the writer's bytes, from 4 threads; stamp gone at close", test_dir_stamping },
	{ "plugin files: root-owned, not group/other-writable, absolute", test_file_owner_and_mode },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "plugin", setup, NULL, NULL, NULL, loader_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
