/* itest_rbd.c: the rbd plugin's ops, called directly, against the throw-away Ceph of scripts/ceph-up.sh. */
/*
 * Each path (import, abort, a refused commit, clone, rebase, flatten, remove, sweep) ends
 * by listing the pool's images and snapshots with the rbd CLI (admin key): nothing that the
 * path made may be left behind. A machine where the Ceph packages cannot be installed
 * prints a SKIP line and passes nothing.
 *
 * ctest: run alone. librbd 16.2 (Debian 12's) now and then corrupts a mutex in its completion
 * threads while this process opens an image, when the machine's cores are busy with other
 * work (README, "RBD under CPU load"); this test opens images about 150 times in 30 s, and it
 * aborted in CI beside other tests. Alone, it has the cores to itself (about 35 s).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vdipool/common.h"
#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vp_test.h"

#define MiB (1024ull * 1024)
#define POOL "rbd"

static char run[128], src[512], conf[256], keyring[256], admin[600], img[256];
static bool up;
static const vp_plugin_ops *ops;
static void *tier;

/* Every image of the pool, and every snapshot of each, one per line. */
static void pool_state(char *out, size_t len)
{
	char cmd[3000];

	snprintf(cmd, sizeof(cmd), "for i in $(%s ls); do echo \"$i\"; %s snap ls --all \"$i\" "
		 "| sed 1d | sed \"s|^|$i@|\"; done; %s trash ls", admin, admin, admin);
	vp_capture(out, len, "%s", cmd);
}

/* The pool holds exactly the images listed (space separated), with nothing temporary. */
static void assert_pool(const char *want)
{
	char got[8192], cmd[1500];

	snprintf(cmd, sizeof(cmd), "%s ls | sort | tr '\\n' ' '", admin);
	vp_capture(got, sizeof(got), "%s", cmd);
	if (strcmp(got, want)) {
		char all[8192];
		pool_state(all, sizeof(all));
		fprintf(stderr, "\n  pool holds '%s', want '%s'; all:\n%s", got, want, all);
	}
	CU_ASSERT_STRING_EQUAL(got, want);
}

static void assert_snaps(const char *image, const char *want)
{
	char got[4096], cmd[1500];

	snprintf(cmd, sizeof(cmd), "%s snap ls --all %s 2>/dev/null | awk 'NR>1{print $2}' | tr '\\n' ' '",
		 admin, image);
	vp_capture(got, sizeof(got), "%s", cmd);
	if (strcmp(got, want))
		fprintf(stderr, "\n  %s has snapshots '%s', want '%s'\n", image, got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
}

static int cluster(const char *script)
{
	return vp_sh("VP_CEPH_DIR=%s VP_CEPH_PORT=auto bash %s/scripts/%s >>%s.log 2>&1", run, src,
		  script, run);
}

/* max_depth NULL: the setting is left out (the plugin's default). */
static int open_tier_depth(void **h, const char *conf_path, const char *timeout,
			   const char *max_depth)
{
	vp_plugin_param params[] = {
		{ "conf", conf_path }, { "id", "vdipool" }, { "keyring", keyring }, { "timeout", timeout },
		{ "max_depth", max_depth },
	};
	vp_tier_config cfg = { .tier = "ceph", .path = POOL, .params = params,
			       .nparams = max_depth ? 5 : 4 };

	return ops->open(&cfg, h);
}

static int open_tier(void **h, const char *conf_path, const char *timeout)
{
	return open_tier_depth(h, conf_path, timeout, NULL);
}

static int suite_init(void)
{
	const char *s = getenv("VP_SOURCE_DIR"), *pp = getenv("VDIPOOL_PLUGIN_PATH");
	const vp_plugin *p;

	snprintf(src, sizeof(src), "%s", s ? s : "..");
	snprintf(run, sizeof(run), "/tmp/vp-itest-rbd-%d", (int)getpid());
	if (getuid() != 0 && system("command -v ceph-mon >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SKIP: itest_rbd needs the Ceph packages (or root to install them)\n");
		return 0;
	}
	if (pp && vp_plugin_set_search_path(pp) < 0)
		return -1;
	if (vp_plugin_find(&p, "rbd") < 0 || !(ops = vp_plugin_get_ops(p)) || strcmp(ops->name, "rbd")) {
		fprintf(stderr, "SKIP: itest_rbd: no rbd plugin built (librbd-dev, librados-dev?)\n");
		ops = NULL;
		return 0;
	}
	if (cluster("ceph-up.sh") != 0) {
		char log[600];
		snprintf(log, sizeof(log), "%s.log", run);
		if (vp_sh("grep -q 'cannot install' %s", log) == 0) {
			fprintf(stderr, "SKIP: itest_rbd: the Ceph packages cannot be installed here\n");
			return 0;
		}
		fprintf(stderr, "itest_rbd: ceph-up.sh failed, see %s\n", log);
		cluster("ceph-down.sh");
		return -1;
	}
	up = true;
	snprintf(conf, sizeof(conf), "%s/ceph.conf", run);
	snprintf(keyring, sizeof(keyring), "%s/client.vdipool.keyring", run);
	snprintf(admin, sizeof(admin), "rbd -c %s -n client.admin --keyring %s/client.admin.keyring -p %s",
		 conf, run, POOL);
	snprintf(img, sizeof(img), "%s.src.raw", run);
	/* 32 MiB with 3 MiB of data in three extents: the rest must stay unallocated. */
	if (vp_sh("qemu-img create -q -f raw %s 32M && for i in 0 1 2; do qemu-io -f raw -c "
	       "\"write -P $((i + 7)) $((i * 10 + 1))M 1M\" %s >/dev/null || exit 1; done", img, img))
		return -1;
	if (open_tier(&tier, conf, "10") < 0) {
		fprintf(stderr, "itest_rbd: open: %s\n", vp_error_last()->message);
		return -1;
	}
	return 0;
}

static int suite_clean(void)
{
	if (tier)
		ops->close(tier);
	if (up)
		cluster("ceph-down.sh");
	unlink(img);
	if (up && CU_get_number_of_failures() == 0) {
		char log[200];
		snprintf(log, sizeof(log), "%s.log", run);
		unlink(log);
	}
	return 0;
}

#define NEED_CLUSTER()        \
	do {                  \
		if (!up)      \
			return; \
	} while (0)

/* Stages name@version, writes the source image there with qemu-img as the host does. */
static int stage(const char *name, const char *version, vp_image_info *staged)
{
	memset(staged, 0, sizeof(*staged));
	if (ops->base_stage(tier, name, version, "raw", staged) < 0) {
		fprintf(stderr, "\n  stage: %s\n", vp_error_last()->message);
		return -1;
	}
	return vp_sh("qemu-img convert -f raw -O raw %s '%s'", img, staged->location);
}

/* Reads the whole base through base_read and compares it with the source image. */
static int same_as_source(const char *name, const char *version, int staged)
{
	FILE *f = fopen(img, "rb");
	static char a[1 << 20], b[1 << 20];
	uint64_t off = 0;
	int rc = 0;

	if (!f)
		return -1;
	for (;;) {
		size_t got = 0, want = fread(b, 1, sizeof(b), f);
		if (ops->base_read(tier, name, version, staged, a, sizeof(a), off, &got) < 0) {
			fprintf(stderr, "\n  base_read: %s\n", vp_error_last()->message);
			rc = -1;
			break;
		}
		if (got != want || memcmp(a, b, got)) {
			fprintf(stderr, "\n  %s@%s differs from the source at %llu\n", name, version,
				(unsigned long long)off);
			rc = -1;
			break;
		}
		if (!got)
			break;
		off += got;
	}
	fclose(f);
	return rc;
}

static int import(const char *name, const char *version)
{
	vp_image_info staged;
	char manifest[128];

	snprintf(manifest, sizeof(manifest), "name=%s\nversion=%s\n", name, version);
	if (stage(name, version, &staged) || same_as_source(name, version, 1))
		return -1;
	if (ops->base_commit(tier, name, version, manifest) < 0) {
		fprintf(stderr, "\n  commit: %s\n", vp_error_last()->message);
		return -1;
	}
	return 0;
}

struct seen {
	int n;
	char names[8][VP_PLUGIN_NAME_MAX * 3 + 4];
	char backing[8][VP_PLUGIN_LOCATION_MAX];
};

static int collect(void *ctx, const vp_image_info *info)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		snprintf(s->names[s->n], sizeof(s->names[0]), "%s%s%s%s%s", info->pool,
			 *info->pool ? "/" : "", info->name, *info->version ? "@" : "", info->version);
		snprintf(s->backing[s->n], sizeof(s->backing[0]), "%s", info->backing);
	}
	s->n++;
	return 0;
}

/* The image has a parent (per `rbd info`). */
static bool has_parent(const char *image)
{
	char out[4096], cmd[1200];

	snprintf(cmd, sizeof(cmd), "%s info %s", admin, image);
	vp_capture(out, sizeof(out), "%s", cmd);
	return strstr(out, "parent:") != NULL;
}

/* The same RBD image, whatever client options follow ("rbd:pool/img@snap:id=..:conf=.."). */
static bool same_image(const char *a, const char *b)
{
	const char *ea = strchr(a + 4, ':'), *eb = strchr(b + 4, ':');
	size_t na = ea ? (size_t)(ea - a) : strlen(a), nb = eb ? (size_t)(eb - b) : strlen(b);

	return !strncmp(a, "rbd:", 4) && na == nb && !strncmp(a, b, na);
}

static void test_import_publishes(void)
{
	vp_image_info st;
	struct seen s = { 0 };
	char *m = NULL;

	NEED_CLUSTER();
	CU_ASSERT_EQUAL_FATAL(import("tb", "1"), 0);
	assert_pool("base.tb.1 ");
	assert_snaps("base.tb.1", "vdipool ");
	memset(&st, 0, sizeof(st));
	CU_ASSERT_EQUAL_FATAL(ops->base_stat(tier, "tb", "1", 0, &st), 0);
	CU_ASSERT_EQUAL(st.size, 32 * MiB);
	CU_ASSERT(st.allocated >= 3 * MiB && st.allocated < 32 * MiB); /* sparse regions not written */
	CU_ASSERT(strncmp(st.location, "rbd:" POOL "/base.tb.1@vdipool:",
			  strlen("rbd:" POOL "/base.tb.1@vdipool:")) == 0);
	CU_ASSERT(st.mtime_sec > 0);
	CU_ASSERT_EQUAL(same_as_source("tb", "1", 0), 0);
	CU_ASSERT_EQUAL_FATAL(ops->base_manifest(tier, "tb", "1", &m), 0);
	VP_ASSERT_STR_EQ(m, "name=tb\nversion=1\n");
	free(m);
	CU_ASSERT_EQUAL(ops->base_list(tier, NULL, collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 1);
	VP_ASSERT_STR_EQ(s.names[0], "tb@1");
	CU_ASSERT_EQUAL(ops->base_stat(tier, "tb", "9", 0, &st), VP_ENOENT);
}

static void test_abort_and_refused_commit_leave_nothing(void)
{
	vp_image_info staged;

	NEED_CLUSTER();
	CU_ASSERT_EQUAL_FATAL(stage("tb", "2", &staged), 0);
	CU_ASSERT_EQUAL(ops->base_abort(tier, "tb", "2"), 0);
	assert_pool("base.tb.1 ");
	/* a version that exists: refused, and neither the snapshot nor the staging image stays */
	CU_ASSERT_EQUAL_FATAL(stage("tb", "1", &staged), 0);
	CU_ASSERT_EQUAL(ops->base_commit(tier, "tb", "1", "x"), VP_EEXIST);
	CU_ASSERT(strstr(vp_error_last()->message, "tb@1") != NULL);
	CU_ASSERT_EQUAL(ops->base_abort(tier, "tb", "1"), 0);
	assert_pool("base.tb.1 ");
	assert_snaps("base.tb.1", "vdipool ");
}

static void test_clones_rebase_flatten_remove(void)
{
	vp_image_info b1, b2, d, data;
	struct seen s = { 0 }, k = { 0 };
	char info[4096], cmd[1200];

	NEED_CLUSTER();
	CU_ASSERT_EQUAL_FATAL(ops->base_stat(tier, "tb", "1", 0, &b1), 0);
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "p", .clone = "c1",
				 .base_location = b1.location, .base_format = "raw" };
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(tier, &req, &d), 0);
	VP_ASSERT_STR_EQ(d.backing, b1.location);
	CU_ASSERT_EQUAL(d.virtual_size, 32 * MiB);
	CU_ASSERT_EQUAL(ops->delta_create(tier, &req, &d), VP_EEXIST);
	snprintf(cmd, sizeof(cmd), "%s info delta.p.c1", admin);
	vp_capture(info, sizeof(info), "%s", cmd);
	CU_ASSERT(strstr(info, "layering, exclusive-lock, object-map, fast-diff, deep-flatten") != NULL);
	vp_delta_request dreq = { .kind = VP_DISK_DATA, .pool = "p", .clone = "c1", .size = 8 * MiB };
	memset(&data, 0, sizeof(data));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(tier, &dreq, &data), 0);
	CU_ASSERT_EQUAL(data.kind, VP_DISK_DATA);
	VP_ASSERT_STR_EQ(data.backing, "");
	CU_ASSERT_EQUAL(ops->delta_list(tier, "p", collect, &s), 0);
	CU_ASSERT_EQUAL(s.n, 2);
	CU_ASSERT_EQUAL(ops->base_children(tier, "tb", "1", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 1);
	VP_ASSERT_STR_EQ(k.names[0], "p/c1");

	/* the base is needed: refused, and left whole */
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tb", "1"), VP_EBUSY);
	CU_ASSERT(strstr(vp_error_last()->message, "tb@1") != NULL);
	assert_pool("base.tb.1 data.p.c1 delta.p.c1 ");
	assert_snaps("base.tb.1", "vdipool ");

	/* rebase onto tb@2: the clone changes parent, nothing temporary stays */
	CU_ASSERT_EQUAL_FATAL(import("tb", "2"), 0);
	CU_ASSERT_EQUAL_FATAL(ops->base_stat(tier, "tb", "2", 0, &b2), 0);
	CU_ASSERT_EQUAL(ops->delta_rebase(tier, "p", "c1", b2.location, "raw"), 0);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ops->delta_stat(tier, VP_DISK_DELTA, "p", "c1", &d), 0);
	VP_ASSERT_STR_EQ(d.backing, b2.location);
	memset(&k, 0, sizeof(k));
	CU_ASSERT_EQUAL(ops->base_children(tier, "tb", "1", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 0);
	assert_pool("base.tb.1 base.tb.2 data.p.c1 delta.p.c1 ");
	CU_ASSERT_EQUAL(ops->delta_rebase(tier, "p", "nope", b2.location, "raw"), VP_ENOENT);

	/* flatten: standalone, tb@2 free; the disk still names the base it was made from */
	CU_ASSERT_EQUAL(ops->delta_flatten(tier, "p", "c1"), 0);
	CU_ASSERT_FALSE(has_parent("delta.p.c1"));
	CU_ASSERT_EQUAL(ops->delta_flatten(tier, "p", "c1"), 0); /* flat already: nothing to do */
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ops->delta_stat(tier, VP_DISK_DELTA, "p", "c1", &d), 0);
	CU_ASSERT(same_image(d.backing, b2.location));
	memset(&k, 0, sizeof(k));
	CU_ASSERT_EQUAL(ops->base_children(tier, "tb", "2", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 0);

	/* everything goes, snapshots included */
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "p", "c1"), 0);
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DATA, "p", "c1"), 0);
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DATA, "p", "c1"), VP_ENOENT);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tb", "1"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tb", "2"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tb", "2"), VP_ENOENT);
	assert_pool("");
}

/* The owner part of this process's temporaries, as the plugin writes it, for a given pid. */
static void owner_for(char *buf, size_t len, long pid)
{
	char h[64] = "";
	size_t i;

	gethostname(h, sizeof(h) - 1);
	for (i = 0; h[i] && h[i] != '.'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9')))
			h[i] = '-';
	h[i] = '\0';
	snprintf(buf, len, "%s-%ld", *h ? h : "host", pid);
}

static void test_max_depth_setting(void)
{
	static const char *const bad[] = { "0", "17", "-1", "x", "", "8x", "99999999999999999999" };
	void *h = NULL;

	NEED_CLUSTER();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(open_tier_depth(&h, conf, "10", bad[i]), VP_EINVAL);
		CU_ASSERT(strstr(vp_error_last()->message, "max_depth must be between 1 and 16") != NULL);
	}
	CU_ASSERT_EQUAL_FATAL(open_tier_depth(&h, conf, "10", "1"), 0);
	ops->close(h);
	CU_ASSERT_EQUAL_FATAL(open_tier_depth(&h, conf, "10", "16"), 0);
	ops->close(h);
}

/* Stages name@version through the plugin, but as a clone of base.<of>.1@vdipool made with the
 * rbd CLI (a derived base), then commits it through `on`. */
static int commit_derived(void *on, const char *name, const char *of)
{
	vp_image_info staged;
	char owner[128], manifest[128];

	owner_for(owner, sizeof(owner), (long)getpid());
	snprintf(manifest, sizeof(manifest), "name=%s\nversion=1\n", name);
	memset(&staged, 0, sizeof(staged));
	if (ops->base_stage(on, name, "1", "raw", &staged) < 0 ||
	    vp_sh("%s clone base.%s.1@vdipool .import.%s.1.%s", admin, of, name, owner) != 0 ||
	    ops->base_commit(on, name, "1", manifest) < 0) {
		fprintf(stderr, "\n  derived base %s: %s\n", name, vp_error_last()->message);
		return -1;
	}
	return 0;
}

/* The disk image reads the source image's bytes. */
static bool reads_source(const char *image)
{
	return vp_sh("%s export --no-progress %s - 2>/dev/null | cmp -s - %s", admin, image, img) == 0;
}

static void test_deep_deltas_are_flattened(void)
{
	vp_image_info td, d;
	struct seen k = { 0 };
	void *t1 = NULL, *t2 = NULL;

	NEED_CLUSTER();
	CU_ASSERT_EQUAL_FATAL(open_tier_depth(&t1, conf, "10", "1"), 0);
	CU_ASSERT_EQUAL_FATAL(open_tier_depth(&t2, conf, "10", "2"), 0);
	/* td@1 stands on tc@1: its deltas are 2 deep; the default (8) keeps td's parent */
	CU_ASSERT_EQUAL_FATAL(import("tc", "1"), 0);
	CU_ASSERT_EQUAL_FATAL(commit_derived(tier, "td", "tc"), 0);
	CU_ASSERT(has_parent("base.td.1"));
	CU_ASSERT_EQUAL_FATAL(ops->base_stat(tier, "td", "1", 0, &td), 0);

	/* max_depth 1: flattened, with the base's bytes; max_depth 2: on its base */
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "p", .clone = "d1",
				 .base_location = td.location, .base_format = "raw" };
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(t1, &req, &d), 0);
	/* flat, and still naming the base it was made from (its metadata keeps it) */
	CU_ASSERT(same_image(d.backing, td.location));
	CU_ASSERT_FALSE(has_parent("delta.p.d1"));
	CU_ASSERT(reads_source("delta.p.d1"));
	CU_ASSERT_EQUAL(ops->delta_create(t1, &req, &d), VP_EEXIST);
	req.clone = "d2";
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(t2, &req, &d), 0);
	VP_ASSERT_STR_EQ(d.backing, td.location);
	CU_ASSERT(reads_source("delta.p.d2"));
	CU_ASSERT_EQUAL(ops->base_children(tier, "td", "1", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 1);
	VP_ASSERT_STR_EQ(k.names[0], "p/d2");

	/* an overwrite and a rebase at max_depth 1 flatten too; at 2 the rebase keeps the parent */
	req.flags = VP_DELTA_OVERWRITE;
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ops->delta_create(t1, &req, &d), 0);
	CU_ASSERT(same_image(d.backing, td.location));
	CU_ASSERT(reads_source("delta.p.d2"));
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL(ops->delta_stat(t1, VP_DISK_DELTA, "p", "d2", &d), 0);
	CU_ASSERT(same_image(d.backing, td.location));
	CU_ASSERT_EQUAL(ops->delta_rebase(t2, "p", "d1", td.location, "raw"), 0);
	CU_ASSERT(has_parent("delta.p.d1"));
	CU_ASSERT_EQUAL(ops->delta_rebase(t1, "p", "d1", td.location, "raw"), 0);
	CU_ASSERT_FALSE(has_parent("delta.p.d1"));
	CU_ASSERT(reads_source("delta.p.d1"));
	memset(&k, 0, sizeof(k));
	CU_ASSERT_EQUAL(ops->base_children(tier, "td", "1", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 0);

	/* a derived base committed at max_depth 1 is flattened before its snapshot */
	CU_ASSERT_EQUAL_FATAL(commit_derived(t1, "te", "tc"), 0);
	CU_ASSERT_FALSE(has_parent("base.te.1"));
	CU_ASSERT_EQUAL(same_as_source("te", "1", 0), 0);
	memset(&k, 0, sizeof(k));
	CU_ASSERT_EQUAL(ops->base_children(tier, "tc", "1", collect, &k), 0);
	CU_ASSERT_EQUAL(k.n, 1); /* td only */

	/* a base replaced under a handle that counted its chain: tf@1 flat, then tf@1 on td@1; the
	 * new disk is checked by its parent's id and flattened */
	vp_image_info tf;
	CU_ASSERT_EQUAL_FATAL(import("tf", "1"), 0);
	CU_ASSERT_EQUAL_FATAL(ops->base_stat(tier, "tf", "1", 0, &tf), 0);
	vp_delta_request r3 = { .kind = VP_DISK_DELTA, .pool = "p", .clone = "d3",
				.base_location = tf.location, .base_format = "raw" };
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(t2, &r3, &d), 0);
	VP_ASSERT_STR_EQ(d.backing, tf.location);
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "p", "d3"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tf", "1"), 0);
	CU_ASSERT_EQUAL_FATAL(commit_derived(tier, "tf", "td"), 0);
	memset(&d, 0, sizeof(d));
	CU_ASSERT_EQUAL_FATAL(ops->delta_create(t2, &r3, &d), 0);
	CU_ASSERT(same_image(d.backing, tf.location));
	CU_ASSERT_FALSE(has_parent("delta.p.d3"));
	CU_ASSERT(reads_source("delta.p.d3"));
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "p", "d3"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tf", "1"), 0);

	/* nothing temporary: no image, no snapshot besides the bases' own */
	assert_pool("base.tc.1 base.td.1 base.te.1 delta.p.d1 delta.p.d2 ");
	assert_snaps("base.td.1", "vdipool ");
	assert_snaps("base.te.1", "vdipool ");
	assert_snaps("delta.p.d1", "");
	assert_snaps("delta.p.d2", "");
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "p", "d1"), 0);
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "p", "d2"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "te", "1"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tc", "1"), VP_EBUSY); /* td stands on it */
	CU_ASSERT_EQUAL(ops->base_remove(tier, "td", "1"), 0);
	CU_ASSERT_EQUAL(ops->base_remove(tier, "tc", "1"), 0);
	assert_pool("");
	ops->close(t1);
	ops->close(t2);
}

static void test_sweep_removes_dead_temporaries_only(void)
{
	char dead[128], live[128];
	pid_t pid;

	NEED_CLUSTER();
	pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	owner_for(dead, sizeof(dead), (long)pid);
	owner_for(live, sizeof(live), (long)getppid());
	/* a crashed import after its snapshot, a crashed removal, a delta that died while being
	 * flattened (never renamed into place: it would stand too deep), and a live one's import */
	CU_ASSERT_EQUAL_FATAL(vp_sh("%s create --size 4M .import.tb.7.%s && %s snap create .import.tb.7.%s@vdipool "
				 "&& %s snap protect .import.tb.7.%s@vdipool && %s create --size 4M .remove.tb.6.%s "
				 "&& %s create --size 4M .flatten-delta.p.c9.%s "
				 "&& %s create --size 4M .import.tb.8.%s", admin, dead, admin, dead, admin, dead,
				 admin, dead, admin, dead, admin, live), 0);
	CU_ASSERT_EQUAL(ops->sweep(tier), 0);
	char want[256];
	snprintf(want, sizeof(want), ".import.tb.8.%s ", live);
	assert_pool(want);
	CU_ASSERT_EQUAL(vp_sh("%s rm --no-progress .import.tb.8.%s", admin, live), 0);
	assert_pool("");

	/* a dead removal whose snapshot got a clone meanwhile: kept, snapshot and all, until the
	 * clone is gone (clone v2 would let the snapshot go to the trash) */
	char rm[200];
	snprintf(rm, sizeof(rm), ".remove.tb.5.%s", dead);
	CU_ASSERT_EQUAL_FATAL(vp_sh("%s create --size 4M %s && %s snap create %s@vdipool && %s snap protect "
				 "%s@vdipool && %s clone %s@vdipool delta.q.k", admin, rm, admin, rm, admin,
				 rm, admin, rm), 0);
	CU_ASSERT_EQUAL(ops->sweep(tier), 0); /* kept for a later sweep, not an error */
	snprintf(want, sizeof(want), "%s delta.q.k ", rm);
	assert_pool(want);
	assert_snaps(rm, "vdipool ");
	CU_ASSERT_EQUAL(ops->delta_remove(tier, VP_DISK_DELTA, "q", "k"), 0);
	CU_ASSERT_EQUAL(ops->sweep(tier), 0);
	assert_pool("");
}

static void test_down_cluster_fails_in_seconds(void)
{
	char bad[300];
	FILE *f;
	void *h = NULL;
	time_t t0;
	int rc;

	NEED_CLUSTER();
	snprintf(bad, sizeof(bad), "%s.down.conf", run);
	f = fopen(bad, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fprintf(f, "[global]\nmon host = 127.0.0.1:9\nauth client required = cephx\n");
	fclose(f);
	t0 = time(NULL);
	rc = open_tier(&h, bad, "3");
	CU_ASSERT(rc < 0);
	CU_ASSERT(time(NULL) - t0 < 15);
	CU_ASSERT(strstr(vp_error_last()->message, "cannot connect") != NULL);
	if (rc == 0)
		ops->close(h);
	unlink(bad);
}

static void test_keyring_readable_by_all_is_refused(void)
{
	void *h = NULL;

	NEED_CLUSTER();
	CU_ASSERT_EQUAL_FATAL(chmod(keyring, 0644), 0);
	CU_ASSERT_EQUAL(open_tier(&h, conf, "10"), VP_EINVAL);
	CU_ASSERT(strstr(vp_error_last()->message, "readable by everyone") != NULL);
	chmod(keyring, 0600);
}

static CU_TestInfo rbd_tests[] = {
	{ "import publishes base.<name>.<version>@vdipool with its manifest", test_import_publishes },
	{ "abort and a refused commit leave no image or snapshot", test_abort_and_refused_commit_leave_nothing },
	{ "clone, children, refused remove, rebase, flatten, remove", test_clones_rebase_flatten_remove },
	{ "max_depth is 1..16", test_max_depth_setting },
	{ "a delta deeper than max_depth is flattened before it is named", test_deep_deltas_are_flattened },
	{ "sweep removes the temporaries of dead processes only", test_sweep_removes_dead_temporaries_only },
	{ "a down cluster fails in seconds", test_down_cluster_fails_in_seconds },
	{ "a keyring readable by everyone is refused", test_keyring_readable_by_all_is_refused },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "rbd", suite_init, suite_clean, NULL, NULL, rbd_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
