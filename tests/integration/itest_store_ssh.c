/* itest_store_ssh.c: the `ssh` storage backend and vp_store_push against two real sshd test hosts. */
/*
 * Two throw-away hosts (scripts/test-hosts-up.sh, own run dir, port and user prefix). A
 * host's /var/lib/vdipool is RUN/hostN/store here, so what a host holds is checked by
 * reading that directory directly, and with tools run in the host's mount namespace
 * (nsenter): qemu-img there opens a delta's backing chain exactly as a hypervisor on
 * that host would, and the vdipool CLI there (dir backend) must see the same store.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/run.h"
#include "util/util.h"
#include "vdipool/error.h"
#include "vdipool/ssh.h"
#include "vdipool/store.h"
#include "vp_test.h"

#define MiB (1024ull * 1024)
#define RROOT "/var/lib/vdipool"
#define BASE_LOC(v) RROOT "/bases/itb/" v "/disk.qcow2"

static char run[128], src[512], kh[256], id[256], user1[32], user2[32], portstr[2][16];
static char sha[3][65]; /* local sha256 of itb@1, itb@2 (index 1, 2) */
static int port = 22451, lock_fd = -1;
static bool up;
static vp_store *local;

static int hosts(const char *script)
{
	return vp_sh("VP_TEST_HOSTS_DIR=%s VP_TEST_HOSTS_PORT=%d VP_TEST_HOSTS_USER=vpstier "
		  "bash %s/scripts/%s >>%s.log 2>&1", run, port - 1, src, script, run);
}

/* A 64 MiB raw image with 4 MiB of data in four extents, patterned by seed; imported. */
static int import_version(const char *version, int seed, char out[65])
{
	vp_base_info b;
	char img[300];

	snprintf(img, sizeof(img), "%s/img%s.raw", run, version);
	if (vp_sh("qemu-img create -q -f raw %s 64M", img))
		return -1;
	for (int i = 0; i < 4; i++)
		if (vp_sh("qemu-io -f raw -c 'write -P %d %dM 1M' %s >/dev/null", seed * 4 + i + 1,
		       i * 16 + seed, img))
			return -1;
	if (vp_store_import(local, "itb", version, img, NULL, &b) < 0) {
		fprintf(stderr, "\n  import: %s\n", vp_error_last()->message);
		return -1;
	}
	memcpy(out, b.sha256, 65);
	return 0;
}

/* Hosts a crashed earlier run left up hold our ports: take them down first. */
static void reap_dead_runs(void)
{
	glob_t g;

	if (glob("/var/tmp/vp-itest-sshtier-*", GLOB_ONLYDIR, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		long pid = strtol(strrchr(g.gl_pathv[i], '-') + 1, NULL, 10);

		if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
			vp_sh("VP_TEST_HOSTS_DIR=%s VP_TEST_HOSTS_USER=vpstier bash %s/scripts/test-hosts-down.sh "
			   ">/dev/null 2>&1; rm -rf %s %s.log", g.gl_pathv[i], src, g.gl_pathv[i], g.gl_pathv[i]);
	}
	globfree(&g);
}

static int suite_init(void)
{
	const char *s = getenv("VP_SOURCE_DIR");
	char root[200], rt[200];

	if (getuid() != 0) {
		fprintf(stderr, "SKIP: itest_store_ssh needs root (users, mount namespaces)\n");
		return 0;
	}
	lock_fd = open("/tmp/vp-itest.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
		return -1;
	snprintf(src, sizeof(src), "%s", s ? s : "..");
	reap_dead_runs();
	snprintf(run, sizeof(run), "/var/tmp/vp-itest-sshtier-%d", (int)getpid());
	snprintf(kh, sizeof(kh), "%s/known_hosts", run);
	snprintf(id, sizeof(id), "%s/id_ed25519", run);
	snprintf(user1, sizeof(user1), "vpstier1");
	snprintf(user2, sizeof(user2), "vpstier2");
	snprintf(portstr[0], sizeof(portstr[0]), "%d", port);
	snprintf(portstr[1], sizeof(portstr[1]), "%d", port + 1);
	if (hosts("test-hosts-up.sh 2") != 0) {
		fprintf(stderr, "itest_store_ssh: test-hosts-up.sh failed, see %s.log\n", run);
		hosts("test-hosts-down.sh");
		return -1;
	}
	up = true;
	snprintf(root, sizeof(root), "%s/local", run);
	snprintf(rt, sizeof(rt), "%s/rt", run);
	if (mkdir(root, 0755) < 0 || vp_store_open_root(&local, root) < 0 ||
	    vp_store_set_runtime_dir(local, rt) < 0)
		return -1;
	return import_version("1", 1, sha[1]) || import_version("2", 2, sha[2]) ? -1 : 0;
}

static int suite_clean(void)
{
	vp_store_free(local);
	if (up)
		hosts("test-hosts-down.sh");
	if (run[0])
		vp_sh("rm -rf %s %s.log", run, run);
	if (lock_fd >= 0)
		close(lock_fd);
	return 0;
}

#define NEED_HOST() do { if (!up) return; } while (0)

static vp_ssh *conn(int h)
{
	vp_ssh_opts o = { .host = "127.0.0.1", .port = port + h - 1, .user = h == 1 ? user1 : user2,
			  .identity = id, .known_hosts = kh, .timeout = 20 };
	vp_ssh *s = NULL;

	if (vp_ssh_connect(&s, &o) < 0)
		fprintf(stderr, "\n  connect: %s\n", vp_error_last()->message);
	return s;
}

/* The tier config of host h at dir (on the host); params live in static storage. */
static vp_store_tier tier(int h, const char *name, const char *dir)
{
	static vp_plugin_param p[2][5];

	p[h - 1][0] = (vp_plugin_param){ "host", "127.0.0.1" };
	p[h - 1][1] = (vp_plugin_param){ "port", portstr[h - 1] };
	p[h - 1][2] = (vp_plugin_param){ "user", h == 1 ? user1 : user2 };
	p[h - 1][3] = (vp_plugin_param){ "identity", id };
	p[h - 1][4] = (vp_plugin_param){ "known_hosts", kh };
	return (vp_store_tier){ .driver = "ssh",
				.config = { .tier = name, .path = dir, .params = p[h - 1], .nparams = 5 } };
}

/* The store of host h: bases at /var/lib/vdipool, deltas on a second tier beside it. */
static vp_store *open_host(int h)
{
	vp_store_tier b = tier(h, "base", RROOT), d = tier(h, "fast", RROOT "/fast");
	vp_store *s = NULL;
	char rt[200];

	snprintf(rt, sizeof(rt), "%s/rt", run);
	if (vp_store_open(&s, &b, &d, 1) < 0) {
		fprintf(stderr, "\n  open: %s\n", vp_error_last()->message);
		return NULL;
	}
	vp_store_set_runtime_dir(s, rt);
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);
	return s;
}

/* The delta tier's ops and a handle of its own (the pool creates disks this way). */
static const vp_plugin_ops *delta_tier(int h, void **hd)
{
	vp_store_tier d = tier(h, "fast", RROOT "/fast");
	const vp_plugin *p;
	const vp_plugin_ops *ops;

	if (vp_plugin_find(&p, "ssh") < 0 || !(ops = vp_plugin_get_ops(p)) || ops->open(&d.config, hd) < 0) {
		fprintf(stderr, "\n  delta tier: %s\n", vp_error_last()->message);
		return NULL;
	}
	return ops;
}

/* Runs a command in host h's mount namespace (its view of /var/lib/vdipool). */
static int on_host(int h, const char *cmd)
{
	return vp_sh("nsenter -t $(cat %s/host%d/pid) -m sh -c '%s' >/dev/null 2>&1", run, h, cmd);
}

static void test_push(void)
{
	vp_store_push_result r;
	vp_ssh *s;

	NEED_HOST();
	s = conn(1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(vp_store_push(local, "itb@1", s, RROOT "/bases", NULL, &r), 0);
	CU_ASSERT_FALSE(r.already);
	VP_ASSERT_STR_EQ(r.xfer.sha256, sha[1]);
	CU_ASSERT(r.xfer.sent > 0 && r.xfer.sent < 16 * MiB); /* the data, not the 64 MiB */
	CU_ASSERT_EQUAL(vp_store_push(local, "itb@1", s, RROOT "/bases", NULL, &r), 0);
	CU_ASSERT_TRUE(r.already);
	CU_ASSERT_EQUAL(vp_store_push(local, "itb@2", s, RROOT "/bases", NULL, &r), 0);
	CU_ASSERT_FALSE(r.already);
	CU_ASSERT_EQUAL(vp_store_push(local, "itb@1", s, "bases", NULL, &r), VP_EINVAL);
	vp_ssh_free(s);

	s = conn(2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_store_push(local, "itb@1", s, RROOT "/bases", NULL, &r), 0);
	vp_ssh_free(s);
	/* The host's own vdipool (dir backend) sees and verifies what was pushed. */
	{
		char cmd[800];
		snprintf(cmd, sizeof(cmd), "%s/bin/vdipool --root " RROOT " base verify itb@2",
			 getenv("VP_BUILD_DIR") ? getenv("VP_BUILD_DIR") : ".");
		CU_ASSERT_EQUAL(on_host(1, cmd), 0);
	}
}

static void test_bases(void)
{
	vp_store *s;
	vp_base_info b, *list = NULL;
	size_t n = 0;

	NEED_HOST();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = open_host(1));
	CU_ASSERT_EQUAL_FATAL(vp_store_stat(s, "itb@1", &b), 0);
	VP_ASSERT_STR_EQ(b.sha256, sha[1]);
	VP_ASSERT_STR_EQ(b.location, BASE_LOC("1"));
	VP_ASSERT_STR_EQ(b.tier, "base");
	CU_ASSERT(b.allocated > 0);
	CU_ASSERT_EQUAL(vp_store_check_unchanged(s, "itb@1"), 0); /* size and mtime (ns) kept */
	CU_ASSERT_EQUAL(vp_store_stat(s, "itb", &b), 0);       /* latest */
	VP_ASSERT_STR_EQ(b.version, "2");
	CU_ASSERT_EQUAL_FATAL(vp_store_list(s, NULL, &list, &n), 0);
	CU_ASSERT_EQUAL(n, 2);
	if (n == 2) {
		VP_ASSERT_STR_EQ(list[0].version, "1");
		VP_ASSERT_STR_EQ(list[1].version, "2");
	}
	vp_store_list_free(list);
	/* Errors name the host and the path. */
	CU_ASSERT_EQUAL(vp_store_stat(s, "itb@9", &b), VP_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vpstier1@127.0.0.1:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, RROOT "/bases/itb/9"));
	/* Bases are imported on the controller and pushed. */
	{
		char img[300];
		snprintf(img, sizeof(img), "%s/img1.raw", run);
		CU_ASSERT_EQUAL(vp_store_import(s, "itb", "7", img, NULL, NULL), VP_ENOTSUP);
		if (!strstr(vp_error_last()->message, "push"))
			fprintf(stderr, "\n  import: %s\n", vp_error_last()->message);
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "push"));
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vpstier1@127.0.0.1:"));
	}
	/* Host 2 has only version 1; its store is another store: its own lock. */
	{
		vp_store *s2;
		CU_ASSERT_PTR_NOT_NULL_FATAL(s2 = open_host(2));
		CU_ASSERT_EQUAL(vp_store_list(s2, "itb", &list, &n), 0);
		CU_ASSERT_EQUAL(n, 1);
		vp_store_list_free(list);
		CU_ASSERT_EQUAL(vp_store_lock(s, VP_STORE_LOCK_EXCLUSIVE, false), 0);
		CU_ASSERT_EQUAL(vp_store_lock(s2, VP_STORE_LOCK_EXCLUSIVE, false), 0);
		vp_store_free(s2);
	}
	vp_store_free(s);
}

static int count_fn(void *ctx, const vp_image_info *info)
{
	(void)info;
	(*(size_t *)ctx)++;
	return 0;
}

static void create(const vp_plugin_ops *ops, void *h, int kind, const char *clone, const char *base,
		   unsigned flags, int want)
{
	vp_delta_request req = { .kind = kind, .pool = "p1", .clone = clone, .base_location = base,
				 .base_format = base ? "qcow2" : NULL, .flags = flags,
				 .size = kind == VP_DISK_DATA ? 32 * MiB : 0 };
	vp_image_info out;
	int rc;

	memset(&out, 0, sizeof(out));
	rc = ops->delta_create(h, &req, &out);
	if (rc != want)
		fprintf(stderr, "\n  create %s: %d: %s\n", clone, rc, vp_error_last()->message);
	CU_ASSERT_EQUAL(rc, want);
	if (rc == 0 && base)
		VP_ASSERT_STR_EQ(out.backing, base);
	if (rc == 0)
		CU_ASSERT_EQUAL(out.virtual_size, kind == VP_DISK_DATA ? 32 * MiB : 64 * MiB);
}

/* The delta is a valid qcow2 on the host whose backing chain ends in that host's base. */
static int check_on_host(const char *clone, const char *base)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "qemu-img check -q " RROOT "/fast/deltas/p1/%s.qcow2 && "
		 "qemu-img info --backing-chain " RROOT "/fast/deltas/p1/%s.qcow2 | "
		 "grep -qx \"backing file: %s\"", clone, clone, base);
	return on_host(1, cmd);
}

static void test_deltas(void)
{
	const vp_plugin_ops *ops;
	vp_image_info info, *refs = NULL;
	vp_store *s;
	struct stat st;
	char path[300];
	size_t n = 0;
	void *h = NULL;

	NEED_HOST();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops = delta_tier(1, &h));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = open_host(1));
	create(ops, h, VP_DISK_DELTA, "c1", BASE_LOC("1"), 0, 0);
	create(ops, h, VP_DISK_DELTA, "c2", BASE_LOC("1"), VP_DELTA_PREALLOC_METADATA, 0);
	create(ops, h, VP_DISK_DELTA, "c3", BASE_LOC("1"), VP_DELTA_EXTENDED_L2, 0);
	create(ops, h, VP_DISK_DATA, "c1", NULL, 0, 0);
	create(ops, h, VP_DISK_DELTA, "c1", BASE_LOC("1"), 0, VP_EEXIST);
	create(ops, h, VP_DISK_DELTA, "c1", BASE_LOC("1"), VP_DELTA_OVERWRITE, 0);
	create(ops, h, VP_DISK_DELTA, "c9", RROOT "/bases/itb/9/disk.qcow2", 0, VP_ENOENT);

	/* Read straight from the host's store: the dir layout, 0600, sparse. */
	snprintf(path, sizeof(path), "%s/host1/store/fast/deltas/p1/c1.qcow2", run);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0600);
	snprintf(path, sizeof(path), "%s/host1/store/fast/data/p1/c1.qcow2", run);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/host1/store/fast/deltas/p1/c2.qcow2", run);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT((uint64_t)st.st_blocks * 512 < 4 * MiB); /* metadata only; holes stayed holes */
	CU_ASSERT_EQUAL(check_on_host("c1", BASE_LOC("1")), 0);
	CU_ASSERT_EQUAL(check_on_host("c2", BASE_LOC("1")), 0);
	CU_ASSERT_EQUAL(check_on_host("c3", BASE_LOC("1")), 0);
	CU_ASSERT_EQUAL(on_host(1, "qemu-img info " RROOT "/fast/deltas/p1/c3.qcow2 | grep -q \"extended l2: true\""), 0);

	CU_ASSERT_EQUAL(ops->delta_list(h, NULL, count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 4);
	CU_ASSERT_EQUAL(vp_store_references(s, "itb@1", &refs, &n), 0);
	CU_ASSERT_EQUAL(n, 3);
	free(refs);

	/* Rebase: a fresh delta on version 2 replaces c1. */
	CU_ASSERT_EQUAL(ops->delta_rebase(h, "p1", "c1", BASE_LOC("2"), "qcow2"), 0);
	CU_ASSERT_EQUAL(ops->delta_stat(h, VP_DISK_DELTA, "p1", "c1", &info), 0);
	VP_ASSERT_STR_EQ(info.backing, BASE_LOC("2"));
	CU_ASSERT_EQUAL(check_on_host("c1", BASE_LOC("2")), 0);
	CU_ASSERT_EQUAL(vp_store_references(s, "itb@2", &refs, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	free(refs);

	/* Remove: gone, and removing again is done. */
	CU_ASSERT_EQUAL(ops->delta_remove(h, VP_DISK_DELTA, "p1", "c3"), 0);
	CU_ASSERT_EQUAL(ops->delta_stat(h, VP_DISK_DELTA, "p1", "c3", &info), VP_ENOENT);
	CU_ASSERT_EQUAL(ops->delta_remove(h, VP_DISK_DELTA, "p1", "c3"), 0);
	n = 0;
	CU_ASSERT_EQUAL(ops->delta_list(h, "p1", count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 3);

	/* A pool directory the host's user cannot read fails the listing (it could hide a
	 * delta, and gc would then remove its base), naming the host and the directory. */
	CU_ASSERT_EQUAL_FATAL(vp_sh("mkdir -m 0700 %s/host1/store/fast/deltas/p2", run), 0);
	CU_ASSERT_EQUAL(ops->delta_list(h, NULL, count_fn, &n), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vpstier1@127.0.0.1:"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, RROOT "/fast/deltas/p2"));
	CU_ASSERT_EQUAL(vp_store_references(s, "itb@1", &refs, &n), VP_EIO);
	vp_sh("rmdir %s/host1/store/fast/deltas/p2", run);
	vp_store_free(s);
	ops->close(h);
}

static void count_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	(void)phase, (void)done, (void)total;
	(*(int *)ctx)++;
}

static void test_hash_and_tamper(void)
{
	const vp_plugin *p;
	vp_store_tier b = tier(1, "base", RROOT);
	vp_store *s;
	char path[300], hex[65] = "";
	void *h = NULL;
	int calls = 0;

	NEED_HOST();
	/* The op itself: the host's sha256 of the image is the manifest's. */
	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "ssh"), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(vp_plugin_get_ops(p)->base_hash);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_get_ops(p)->open(&b.config, &h), 0);
	CU_ASSERT_EQUAL(vp_plugin_get_ops(p)->base_hash(h, "itb", "1", hex), 0);
	VP_ASSERT_STR_EQ(hex, sha[1]);
	vp_plugin_get_ops(p)->close(h);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s = open_host(1));
	/* One progress report: verify asked the host for the hash instead of reading
	 * the image through base_read (a report per 4 MiB chunk; this image is larger). */
	CU_ASSERT_EQUAL(vp_store_verify(s, "itb@1", count_progress, &calls), 0);
	CU_ASSERT_EQUAL(calls, 1);
	CU_ASSERT_EQUAL(vp_store_verify(s, "itb@2", NULL, NULL), 0);
	/* One byte changed on the host (through its store directory): verify fails. */
	snprintf(path, sizeof(path), "%s/host1/store/bases/itb/2/disk.qcow2", run);
	CU_ASSERT_EQUAL_FATAL(vp_sh("chmod u+w %s && printf X | dd of=%s bs=1 seek=%llu conv=notrunc "
				 "status=none && chmod 0444 %s", path, path, 3 * MiB, path), 0);
	CU_ASSERT_EQUAL(vp_store_verify(s, "itb@2", NULL, NULL), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "corrupted"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, sha[2]));
	vp_store_free(s);
}

static void test_sweep(void)
{
	vp_store *s;
	char dir[300];
	struct stat st;

	NEED_HOST();
	snprintf(dir, sizeof(dir), "%s/host1/store/fast/deltas/p1", run);
	CU_ASSERT_EQUAL_FATAL(vp_sh("touch -d '2 hours ago' %s/.c7.qcow2.tmp.ssh-1-2-3 && touch "
				 "%s/.c8.qcow2.tmp.ssh-4-5-6 %s/.c6.qcow2.tmp.4242.1", dir, dir, dir), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = open_host(1));
	CU_ASSERT_EQUAL(vp_store_sweep(s), 0);
	vp_store_free(s);
	CU_ASSERT_EQUAL(vp_sh("test ! -e %s/.c7.qcow2.tmp.ssh-1-2-3", dir), 0); /* old: an upload that died */
	CU_ASSERT_EQUAL(stat(strcat(dir, "/.c8.qcow2.tmp.ssh-4-5-6"), &st), 0); /* young: may be live */
}

static void test_gc(void)
{
	const vp_plugin_ops *ops;
	vp_gc_plan *plan = NULL;
	vp_base_info b;
	vp_store *s;
	size_t removed = 0;
	void *h = NULL;
	char path[300];

	NEED_HOST();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops = delta_tier(1, &h));
	CU_ASSERT_EQUAL(ops->delta_remove(h, VP_DISK_DELTA, "p1", "c2"), 0); /* the last on itb@1 */
	ops->close(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s = open_host(1));
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 1, &plan), 0);
	CU_ASSERT_EQUAL_FATAL(plan->nbases, 1);
	VP_ASSERT_STR_EQ(plan->bases[0].version, "1");
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, 0, &removed), 0);
	CU_ASSERT(removed >= 1);
	vp_gc_plan_free(plan);
	CU_ASSERT_EQUAL(vp_store_stat(s, "itb@1", &b), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_store_stat(s, "itb@2", &b), 0);
	vp_store_free(s);
	snprintf(path, sizeof(path), "%s/host1/store/bases", run);
	CU_ASSERT_EQUAL(vp_sh("test ! -e %s/itb/1 && ! ls -A %s | grep -q remove", path, path), 0);
	/* Host 2's copy of itb@1 is another store: untouched. */
	CU_ASSERT_EQUAL(vp_sh("test -e %s/host2/store/bases/itb/1/manifest", run), 0);
}

/* Twenty deltas created, listed and removed; the time is printed (measured, not asserted). */
static void test_many(void)
{
	const vp_plugin_ops *ops;
	void *h = NULL;
	char clone[16];
	size_t n = 0;
	double t0, t1, t2;

	NEED_HOST();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ops = delta_tier(1, &h));
	t0 = vp_now();
	for (int i = 0; i < 20; i++) {
		vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "many", .clone = clone,
					 .base_location = BASE_LOC("2"), .base_format = "qcow2" };
		snprintf(clone, sizeof(clone), "m%02d", i);
		CU_ASSERT_EQUAL(ops->delta_create(h, &req, NULL), 0);
	}
	t1 = vp_now();
	CU_ASSERT_EQUAL(ops->delta_list(h, "many", count_fn, &n), 0);
	CU_ASSERT_EQUAL(n, 20);
	t2 = vp_now();
	for (int i = 0; i < 20; i++) {
		snprintf(clone, sizeof(clone), "m%02d", i);
		CU_ASSERT_EQUAL(ops->delta_remove(h, VP_DISK_DELTA, "many", clone), 0);
	}
	fprintf(stderr, "\n  20 deltas over SSH (loopback): created in %.2f s, listed in %.2f s, "
		"removed in %.2f s ", t1 - t0, t2 - t1, vp_now() - t2);
	ops->close(h);
}

static CU_TestInfo tests[] = {
	{ "vp_store_push: pushed, already there, the host's vdipool verifies it", test_push },
	{ "ssh tier: stat, latest, list, unchanged, errors name host and path, no import", test_bases },
	{ "ssh tier: deltas, data disk, prealloc, extended L2, overwrite, rebase, remove", test_deltas },
	{ "ssh tier: verify hashes on the host; a tampered image fails", test_hash_and_tamper },
	{ "ssh tier: sweep removes old upload temporaries only", test_sweep },
	{ "ssh tier: twenty deltas created, listed, removed (timed)", test_many },
	{ "ssh tier: gc removes an unreferenced version on that host only", test_gc },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "store_ssh", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
