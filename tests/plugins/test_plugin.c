/* test_plugin.c: a do-nothing storage plugin built three ways to test the loader's ABI checks. */
/*
 * TEST_OLD_ABI:     claims the smaller struct of an older header (ending
 *                   before delta_rebase): must load, with the tail zeroed.
 * TEST_FUTURE_ABI:  claims an API version newer than the host's: refused.
 * TEST_MISSING_OPS: lacks the mandatory base_remove: refused, naming it.
 * TEST_PARALLEL:    declares VP_THREAD_MODEL_PARALLEL (the others are
 *                   serialised by default): delta_create counts the calls
 *                   in flight and reports the most it saw in info->size.
 * Needs no libvdipool: errors go through the host table, as documented.
 */
#define _POSIX_C_SOURCE 200809L
#include <stddef.h>
#include <time.h>

#include "vdipool/plugin.h"

static const vp_plugin_host *host;
static int dummy_tier;

static int t_load(const vp_plugin_host *h)
{
	host = h;
	return 0;
}

static int t_open(const vp_tier_config *cfg, void **tier)
{
	(void)cfg;
	*tier = &dummy_tier;
	return 0;
}

static int t_nothing(void *tier) { (void)tier; return host->error(VP_ENOTSUP, "test plugin: not supported"); }
static int t_stage(void *t, const char *n, const char *v, const char *f, vp_image_info *i) { (void)n; (void)v; (void)f; (void)i; return t_nothing(t); }
static int t_commit(void *t, const char *n, const char *v, const char *m) { (void)n; (void)v; (void)m; return t_nothing(t); }
static int t_nv(void *t, const char *n, const char *v) { (void)n; (void)v; return t_nothing(t); }
static int t_read(void *t, const char *n, const char *v, int s, void *b, size_t l, uint64_t o, size_t *g) { (void)n; (void)v; (void)s; (void)b; (void)l; (void)o; *g = 0; return t_nothing(t); }
static int t_stat(void *t, const char *n, const char *v, int s, vp_image_info *i) { (void)n; (void)v; (void)s; (void)i; return t_nothing(t); }
static int t_manifest(void *t, const char *n, const char *v, char **x) { (void)n; (void)v; *x = NULL; return t_nothing(t); }
static int t_list(void *t, const char *n, vp_plugin_list_fn fn, void *ctx) { (void)t; (void)n; (void)fn; (void)ctx; return 0; }
static int inflight, maxflight;

static int t_dcreate(void *t, const vp_delta_request *r, vp_image_info *i)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int n = __atomic_add_fetch(&inflight, 1, __ATOMIC_SEQ_CST), m;

	(void)t;
	(void)r;
	while ((m = __atomic_load_n(&maxflight, __ATOMIC_SEQ_CST)) < n &&
	       !__atomic_compare_exchange_n(&maxflight, &m, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
	nanosleep(&ts, NULL);
	__atomic_sub_fetch(&inflight, 1, __ATOMIC_SEQ_CST);
	i->size = (uint64_t)__atomic_load_n(&maxflight, __ATOMIC_SEQ_CST);
	return 0;
}
static int t_dstat(void *t, int k, const char *p, const char *c, vp_image_info *i) { (void)k; (void)p; (void)c; (void)i; return t_nothing(t); }
static int t_dremove(void *t, int k, const char *p, const char *c) { (void)k; (void)p; (void)c; return t_nothing(t); }
/* Present in memory but beyond the old-abi plugin's claimed size: the loader must not see it. */
static int t_rebase(void *t, const char *p, const char *c, const char *l, const char *f) { (void)t; (void)p; (void)c; (void)l; (void)f; return 0; }

static vp_plugin_ops ops = {
	.name = TEST_NAME,
	.version = "0.1",
	.description = "loader test plugin",
	.capabilities = VP_CAP_LINKED_CLONE,
	.load = t_load,
	.open = t_open,
	.base_stage = t_stage,
	.base_commit = t_commit,
	.base_abort = t_nv,
	.base_read = t_read,
	.base_stat = t_stat,
	.base_manifest = t_manifest,
#ifndef TEST_MISSING_OPS
	.base_remove = t_nv,
#endif
	.base_list = t_list,
	.delta_create = t_dcreate,
	.delta_stat = t_dstat,
	.delta_remove = t_dremove,
	.delta_list = t_list,
	.delta_rebase = t_rebase,
};

VP_PLUGIN_EXPORT const vp_plugin_ops *vp_plugin_init(void);
VP_PLUGIN_EXPORT const vp_plugin_ops *vp_plugin_init(void)
{
	ops._struct_size = sizeof(ops);
	ops._api_version = VP_PLUGIN_API_VERSION;
#ifdef TEST_OLD_ABI
	ops._struct_size = offsetof(vp_plugin_ops, delta_rebase);
	ops._api_version = 1;
#endif
#ifdef TEST_PARALLEL
	ops.thread_model = VP_THREAD_MODEL_PARALLEL;
#endif
#ifdef TEST_FUTURE_ABI
	ops._api_version = VP_PLUGIN_API_VERSION + 1;
#endif
	return &ops;
}
