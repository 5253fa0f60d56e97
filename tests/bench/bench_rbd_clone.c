/* bench_rbd_clone.c: RBD clone speed, a bare librbd loop against the rbd plugin's delta_create. */
/*
 * Not a test: prints figures; tests/bench/bench_rbd.sh drives it against a throw-away cluster.
 * Usage: bench_rbd_clone -c CONF -k KEYRING [-i ID] [-p POOL] [-n N] MODE [ARG]
 *   import FILE   vp_store_import of a raw FILE as base bench@1 on an rbd base tier (the
 *                 product's import path: base_stage, qemu-img convert, hash, base_commit)
 *   bare          N x rbd_clone3 of base.bench.1@vdipool to bare.<i>, one connection, the
 *                 plugin's disk features; prints "bare N SECONDS"
 *   vdipool       N x the rbd plugin's delta_create as `vdipool apply` calls it (loaded through
 *                 the plugin loader, one tier handle, the default delta flags); prints
 *                 "vdipool N SECONDS"
 *   rm PREFIX     removes every image whose name starts with PREFIX (not timed)
 *   unimport      vp_store_remove of bench@1
 * bare and vdipool remove their clones after the clock stops. The plugin is looked up in
 * $VDIPOOL_PLUGIN_PATH (the build's plugins directory).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/store.h"

/* The features the rbd plugin gives its disks (plugins/rbd/rbd.c DISK_FEATURES). */
#define DISK_FEATURES                                                                 \
	(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | \
	 RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN)
#define BASE_IMAGE "base.bench.1"
#define BASE_SNAP "vdipool"

static const char *conf, *keyring, *id = "vdipool", *pool = "rbd";
static unsigned n = 100;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "bench_rbd_clone: %s: %s\n", what, vp_error_last()->message);
	return 1;
}

static int ceph_fail(const char *what, int rc)
{
	fprintf(stderr, "bench_rbd_clone: %s: %s\n", what, strerror(-rc));
	return 1;
}

static vp_tier_config tier_config(vp_plugin_param params[3])
{
	params[0] = (vp_plugin_param){ "conf", conf };
	params[1] = (vp_plugin_param){ "id", id };
	params[2] = (vp_plugin_param){ "keyring", keyring };
	return (vp_tier_config){ .tier = "bench", .path = pool, .params = params, .nparams = 3 };
}

static int open_store(vp_store **s)
{
	vp_plugin_param params[3];
	vp_store_tier base = { .driver = "rbd", .config = tier_config(params) };

	return vp_store_open(s, &base, NULL, 0);
}

static int do_import(const char *file)
{
	vp_store_import_opts o = { .format = "raw" };
	vp_base_info info;
	vp_store *s = NULL;
	int rc;

	if (open_store(&s) < 0)
		return fail("cannot open the rbd tier");
	rc = vp_store_import(s, "bench", "1", file, &o, &info);
	vp_store_free(s);
	if (rc < 0)
		return fail("import");
	printf("imported bench@1 %s sha256 %s\n", info.location, info.sha256);
	return 0;
}

static int do_unimport(void)
{
	vp_store *s = NULL;
	int rc;

	if (open_store(&s) < 0)
		return fail("cannot open the rbd tier");
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);  /* no domain uses this cluster */
	/* waits for the store lock (removal alone would fail while another vdipool holds it) */
	if ((rc = vp_store_lock(s, VP_STORE_LOCK_EXCLUSIVE, true)) == 0)
		rc = vp_store_remove(s, "bench@1");
	vp_store_free(s);
	return rc < 0 ? fail("remove bench@1") : 0;
}

static int connect_io(rados_t *cl, rados_ioctx_t *io)
{
	int rc;

	if ((rc = rados_create(cl, id)) < 0)
		return ceph_fail("rados_create", rc);
	if ((rc = rados_conf_read_file(*cl, conf)) < 0 ||
	    (rc = rados_conf_set(*cl, "keyring", keyring)) < 0 || (rc = rados_connect(*cl)) < 0 ||
	    (rc = rados_ioctx_create(*cl, pool, io)) < 0) {
		rados_shutdown(*cl);
		return ceph_fail("cannot connect", rc);
	}
	return 0;
}

/* Removes the images named PREFIX*; never timed. */
static int remove_prefix(rados_ioctx_t io, const char *prefix)
{
	rbd_image_spec_t *specs = NULL;
	size_t cap = 256;
	int rc;

	for (;;) {
		free(specs);
		if (!(specs = calloc(cap, sizeof(*specs))))
			return 1;
		if ((rc = rbd_list2(io, specs, &cap)) != -ERANGE)
			break;
	}
	if (rc < 0) {
		free(specs);
		return ceph_fail("rbd_list2", rc);
	}
	for (size_t i = 0; i < cap && rc == 0; i++)
		if (!strncmp(specs[i].name, prefix, strlen(prefix)) &&
		    (rc = rbd_remove(io, specs[i].name)) < 0)
			ceph_fail(specs[i].name, rc);
	rbd_image_spec_list_cleanup(specs, cap);
	free(specs);
	return rc < 0;
}

static int do_rm(const char *prefix)
{
	rados_t cl;
	rados_ioctx_t io;
	int rc;

	if (connect_io(&cl, &io))
		return 1;
	rc = remove_prefix(io, prefix);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	return rc;
}

static int do_bare(void)
{
	rados_t cl;
	rados_ioctx_t io;
	rbd_image_options_t o;
	char name[64];
	double t0, t1;
	int rc = 0;

	if (connect_io(&cl, &io))
		return 1;
	rbd_image_options_create(&o);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, DISK_FEATURES);
	t0 = now();
	for (unsigned i = 0; i < n && rc == 0; i++) {
		snprintf(name, sizeof(name), "bare.%04u", i);
		if ((rc = rbd_clone3(io, BASE_IMAGE, BASE_SNAP, io, name, o)) < 0)
			ceph_fail(name, rc);
	}
	t1 = now();
	rbd_image_options_destroy(o);
	if (rc == 0)
		printf("bare %u %.3f\n", n, t1 - t0);
	rc = remove_prefix(io, "bare.") || rc;
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	return rc != 0;
}

/* As lib/pool/apply.c create_delta: the spec's defaults (128K, extended L2, metadata). */
static int do_vdipool(void)
{
	const vp_plugin *p;
	const vp_plugin_ops *ops;
	vp_plugin_param params[3];
	vp_tier_config cfg = tier_config(params);
	vp_image_info base, info;
	void *tier = NULL;
	char clone[32];
	double t0, t1;
	int rc = 0;

	if (vp_plugin_find(&p, "rbd") < 0 || !(ops = vp_plugin_get_ops(p)) || strcmp(ops->name, "rbd"))
		return fail("no rbd plugin");
	if (ops->open(&cfg, &tier) < 0)
		return fail("cannot open the rbd tier");
	memset(&base, 0, sizeof(base));
	if (ops->base_stat(tier, "bench", "1", 0, &base) < 0) {
		ops->close(tier);
		return fail("bench@1");
	}
	vp_delta_request req = {
		.kind = VP_DISK_DELTA, .pool = "bench", .clone = clone,
		.flags = VP_DELTA_PREALLOC_METADATA | VP_DELTA_EXTENDED_L2,
		.cluster_size = 128 * 1024, .base_location = base.location, .base_format = base.format,
	};
	t0 = now();
	for (unsigned i = 0; i < n && rc == 0; i++) {
		snprintf(clone, sizeof(clone), "c%04u", i);
		if ((rc = ops->delta_create(tier, &req, &info)) < 0)
			fail(clone);
	}
	t1 = now();
	if (rc == 0)
		printf("vdipool %u %.3f\n", n, t1 - t0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(clone, sizeof(clone), "c%04u", i);
		if (ops->delta_remove(tier, VP_DISK_DELTA, "bench", clone) < 0 && rc == 0)
			rc = fail(clone);
	}
	ops->close(tier);
	return rc != 0;
}

int main(int argc, char **argv)
{
	const char *pp = getenv("VDIPOOL_PLUGIN_PATH"), *mode;
	int c;

	while ((c = getopt(argc, argv, "c:k:i:p:n:")) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'k': keyring = optarg; break;
		case 'i': id = optarg; break;
		case 'p': pool = optarg; break;
		case 'n': n = (unsigned)strtoul(optarg, NULL, 10); break;
		default: goto usage;
		}
	}
	if (!conf || !keyring || optind >= argc || !n)
		goto usage;
	if (pp && vp_plugin_set_search_path(pp) < 0)
		return fail("VDIPOOL_PLUGIN_PATH");
	mode = argv[optind];
	if (!strcmp(mode, "import") && optind + 1 < argc)
		return do_import(argv[optind + 1]);
	if (!strcmp(mode, "unimport"))
		return do_unimport();
	if (!strcmp(mode, "rm") && optind + 1 < argc)
		return do_rm(argv[optind + 1]);
	if (!strcmp(mode, "bare"))
		return do_bare();
	if (!strcmp(mode, "vdipool"))
		return do_vdipool();
usage:
	fprintf(stderr, "usage: bench_rbd_clone -c CONF -k KEYRING [-i ID] [-p POOL] [-n N] "
			"import FILE | unimport | rm PREFIX | bare | vdipool\n");
	return 2;
}
