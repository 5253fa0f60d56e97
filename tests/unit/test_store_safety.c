/* test_store_safety.c: what keeps a clone's disks safe: the store lock, pins, chains, tiers, orphaned data. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/fs.h"
#include "util/run.h"
#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "vdipool/refs.h"
#include "vdipool/store.h"
#include "vp_test.h"

static char tmp[256];   /* scratch; also the runtime directory (mkdtemp: root, 0700) */
static char root[300];  /* the store (base tier, and deltas of a spec without delta tiers) */
static char other[300]; /* a second delta tier */

static int setup(void)
{
	if (vp_test_scratch_dir(tmp, sizeof(tmp), "safety") < 0)
		return -1;
	snprintf(root, sizeof(root), "%s/root", tmp);
	snprintf(other, sizeof(other), "%s/other", tmp);
	return 0;
}

static int teardown(void)
{
	if (getenv("VP_KEEP"))
		return 0;
	return vp_fs_rm_rf(tmp) < 0 ? -1 : 0;
}

static vp_store *open_root(vp_store_pins_fn fn, void *ctx)
{
	vp_store *s = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_store_open_root(&s, root), 0);
	vp_store_set_pins_source(s, fn, ctx);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(s, tmp), 0);
	return s;
}

/* A store like a spec opens it: bases on root, deltas on `other`. */
static vp_store *open_spec_store(void)
{
	vp_store_tier b = { .driver = "dir", .config = { .tier = "gold", .path = root } };
	vp_store_tier d = { .driver = "dir", .config = { .tier = "fast", .path = other } };
	vp_store *s = NULL;

	if (vp_store_open(&s, &b, &d, 1) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(s, tmp), 0);
	return s;
}

static void import(vp_store *s, const char *name, const char *version, vp_base_info *b)
{
	char src[512];
	int fd;

	snprintf(src, sizeof(src), "%s/%s-%s.raw", tmp, name, version);
	fd = open(src, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && write(fd, version, strlen(version)) > 0);
	close(fd);
	if (vp_store_import(s, name, version, src, NULL, b) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_EQUAL_FATAL(vp_store_stat(s, name, b), 0);
}

static void make_disk(vp_store *s, size_t tier, int kind, const vp_base_info *b, const char *pool,
		      const char *clone, vp_image_info *out)
{
	const vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	void *h = NULL;
	vp_delta_request req = { .kind = kind, .pool = pool, .clone = clone, .size = 1 << 20 };

	if (b) {
		req.base_location = b->location;
		req.base_format = b->format;
	}
	(void)s;
	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->open(&(vp_tier_config){ .tier = "t", .path = tier ? other : root }, &h), 0);
	if (ops->delta_create(h, &req, out) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	ops->close(h);
}

/* ---- the runtime directory and the lock files ------------------------------------------- */

static void test_runtime_dir_checked(void)
{
	char dir[400], link[400], file[500];
	int fd;

	snprintf(dir, sizeof(dir), "%s/run", tmp);
	/* Created 0700 when missing; usable. */
	fd = vp_store_lockfile_open(dir, "a.lock");
	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	/* Owned by another user: refused. */
	CU_ASSERT_EQUAL_FATAL(chown(dir, 65534, 65534), 0);
	CU_ASSERT_EQUAL(vp_store_lockfile_open(dir, "a.lock"), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "owned by uid 65534"));
	CU_ASSERT_EQUAL_FATAL(chown(dir, 0, 0), 0);
	/* World-writable: refused. */
	CU_ASSERT_EQUAL_FATAL(chmod(dir, 01777), 0);
	CU_ASSERT_EQUAL(vp_store_lockfile_open(dir, "a.lock"), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "must be owned by root with mode 0700"));
	CU_ASSERT_EQUAL_FATAL(chmod(dir, 0700), 0);
	/* A symlinked lock file: refused, its target untouched. */
	snprintf(file, sizeof(file), "%s/b.lock", dir);
	snprintf(link, sizeof(link), "%s/victim", tmp);
	CU_ASSERT_EQUAL_FATAL(symlink(link, file), 0);
	CU_ASSERT_EQUAL(vp_store_lockfile_open(dir, "b.lock"), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "is a symlink"));
	CU_ASSERT_EQUAL(vp_fs_exists(link), 0);
	/* A symlinked runtime directory: refused. */
	snprintf(link, sizeof(link), "%s/runlink", tmp);
	CU_ASSERT_EQUAL_FATAL(symlink(dir, link), 0);
	CU_ASSERT_EQUAL(vp_store_lockfile_open(link, "a.lock"), VP_ECONFLICT);
}

struct waiter {
	vp_store *s;
	atomic_int done;
	int rc;
};

static void *take_shared_waiting(void *arg)
{
	struct waiter *w = arg;

	w->rc = vp_store_lock(w->s, VP_STORE_LOCK_SHARED, true);
	atomic_store(&w->done, 1);
	return NULL;
}

/* gc holds the store: apply without --wait is refused with the reason and the lock's name;
 * with --wait it waits until gc lets go, then holds it. */
static void test_apply_waits_for_gc_when_asked(void)
{
	vp_store *gc = open_root(vp_store_pins_none, NULL), *apply = open_root(vp_store_pins_none, NULL);
	struct waiter w = { .s = apply };
	pthread_t th;

	CU_ASSERT_EQUAL_FATAL(vp_store_lock(gc, VP_STORE_LOCK_EXCLUSIVE, false), 0);
	CU_ASSERT_EQUAL(vp_store_lock(apply, VP_STORE_LOCK_SHARED, false), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "in use by another vdipool (gc, base rm"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, ".lock"));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, take_shared_waiting, &w), 0);
	usleep(200 * 1000);
	CU_ASSERT_EQUAL(atomic_load(&w.done), 0); /* still waiting while gc holds it */
	vp_store_unlock(gc);
	pthread_join(th, NULL);
	CU_ASSERT_EQUAL(w.rc, 0);
	/* apply holds it now: gc is refused in turn */
	CU_ASSERT_EQUAL(vp_store_lock(gc, VP_STORE_LOCK_EXCLUSIVE, false), VP_EBUSY);
	vp_store_unlock(apply);
	vp_store_free(apply);
	vp_store_free(gc);
}

/* apply holds the store shared: gc and rm refuse, and delete nothing, until it is done. */
static void test_removal_waits_for_apply(void)
{
	vp_store *apply = open_root(vp_store_pins_none, NULL), *gc = open_root(vp_store_pins_none, NULL);
	vp_gc_plan *plan = NULL;
	vp_base_info b1, b2;
	size_t removed = 0;

	import(apply, "lk", "v1", &b1);
	import(apply, "lk", "v2", &b2);
	CU_ASSERT_EQUAL_FATAL(vp_store_lock(apply, VP_STORE_LOCK_SHARED, false), 0);
	CU_ASSERT_EQUAL(vp_store_remove(gc, "lk@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "in use by another vdipool"));
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(gc, 0, &plan), 0);
	CU_ASSERT(plan->nbases >= 2);
	CU_ASSERT_EQUAL(vp_store_gc_apply(gc, plan, 0, &removed), VP_EBUSY);
	CU_ASSERT_EQUAL(removed, 0);
	/* Meanwhile apply made a delta on v1. */
	vp_image_info d;
	make_disk(apply, 0, VP_DISK_DELTA, &b1, "lkpool", "c1", &d);
	vp_store_unlock(apply);
	/* Re-checked under the lock: the plan's v1 is in use now and stays. */
	CU_ASSERT_EQUAL(vp_store_gc_apply(gc, plan, 0, &removed), 0);
	CU_ASSERT_EQUAL(vp_store_stat(gc, "lk@v1", &b1), 0);
	CU_ASSERT_EQUAL(vp_store_stat(gc, "lk@v2", &b2), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_fs_exists(d.location), 1);
	vp_gc_plan_free(plan);
	vp_store_free(apply);
	vp_store_free(gc);
}

/* A pool opens the store from its spec (tier "local"), gc from --root (tier
 * "default"): one tier, one lock. */
static void test_one_lock_per_tier(void)
{
	vp_store_tier b = { .driver = "dir", .config = { .tier = "local", .path = root } };
	vp_store *pool = NULL, *gc = open_root(vp_store_pins_none, NULL);
	vp_base_info info;

	import(gc, "ol", "v1", &info);
	CU_ASSERT_EQUAL_FATAL(vp_store_open(&pool, &b, NULL, 0), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_set_runtime_dir(pool, tmp), 0);
	CU_ASSERT_EQUAL_FATAL(vp_store_lock(pool, VP_STORE_LOCK_SHARED, false), 0);
	CU_ASSERT_EQUAL(vp_store_remove(gc, "ol@v1"), VP_EBUSY);
	vp_store_free(pool);
	CU_ASSERT_EQUAL(vp_store_remove(gc, "ol@v1"), 0);
	vp_store_free(gc);
}

/* ---- pins ------------------------------------------------------------------------------- */

static int pins_fail(void *ctx, vp_store_pins *pins)
{
	(void)ctx;
	(void)pins;
	return vp_error_set(VP_ERR_VIRT, VP_EIO, "cannot connect to libvirt at 'test:///nowhere'");
}

static int pins_location(void *ctx, vp_store_pins *pins)
{
	return vp_store_pins_add(pins, ctx, "vm-7");
}

static int pins_all(void *ctx, vp_store_pins *pins)
{
	(void)ctx;
	return vp_store_pins_pin_all(pins, "domain 'nas' has a network disk that vdipool cannot read");
}

static void test_remove_needs_pins(void)
{
	vp_store *s = open_root(NULL, NULL);
	vp_base_info b;

	import(s, "pn", "v1", &b);
	/* No source: refused. A failing source (libvirt down): refused. */
	CU_ASSERT_EQUAL(vp_store_remove(s, "pn@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "not known"));
	vp_store_set_pins_source(s, pins_fail, NULL);
	CU_ASSERT_EQUAL(vp_store_remove(s, "pn@v1"), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "test:///nowhere"));
	/* A domain records it (say, as its rollback version): refused, named. */
	vp_store_set_pins_source(s, pins_location, b.location);
	CU_ASSERT_EQUAL(vp_store_remove(s, "pn@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "1 domain records it as base or rollback version: vm-7 (or has it in a disk's backing chain)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "vm-7"));
	/* A disk vdipool cannot read: refused. */
	vp_store_set_pins_source(s, pins_all, NULL);
	CU_ASSERT_EQUAL(vp_store_remove(s, "pn@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "network disk"));
	CU_ASSERT_EQUAL(vp_store_stat(s, "pn@v1", &b), 0);
	vp_store_set_pins_source(s, vp_store_pins_none, NULL);
	CU_ASSERT_EQUAL(vp_store_remove(s, "pn@v1"), 0);
	vp_store_free(s);
}

/* Many domains on one base, past the growth of the pin table: each is named once. */
static void test_pins_owners(void)
{
	vp_store_pins *pins = NULL;
	char owner[32], buf[4096];

	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	for (int i = 0; i < 150; i++) {
		snprintf(owner, sizeof(owner), "d%d", i);
		CU_ASSERT_EQUAL(vp_store_pins_add(pins, "/no/such/base", owner), 0);
		CU_ASSERT_EQUAL(vp_store_pins_add(pins, "/no/such/other", owner), 0);
		CU_ASSERT_EQUAL(vp_store_pins_add(pins, "/no/such/base", owner), 0); /* live and config */
	}
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "/no/such/base", buf, sizeof(buf)), 150);
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "d0"));
	CU_ASSERT_PTR_NOT_NULL(strstr(buf, "d149"));
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "/no/such/none", buf, sizeof(buf)), 0);
	vp_store_pins_free(pins);
}

/* A host with one domain whose definition is ctx. */
static int xml_pins(void *ctx, vp_store_pins *pins)
{
	return vp_refs_pins_from_xml(pins, ctx, "snapvm");
}

/* After `virsh snapshot-create-as --disk-only` the domain's disk is an
 * overlay; the delta and the base are backing layers, and stay. */
static void test_chain_pins(void)
{
	vp_store *s = open_root(NULL, NULL);
	vp_store_pins *pins = NULL;
	vp_qcow2_create_opts o;
	vp_image_info d;
	vp_base_info b;
	char overlay[600], xml[2048], owners[64];
	vp_gc_plan *plan = NULL;

	import(s, "ch", "v1", &b);
	make_disk(s, 0, VP_DISK_DELTA, &b, "chpool", "c1", &d);
	snprintf(overlay, sizeof(overlay), "%s/snap-overlay.qcow2", tmp);
	vp_qcow2_create_opts_init(&o);
	o.backing_file = d.location;
	o.backing_format = "qcow2";
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(overlay, &o), 0);
	snprintf(xml, sizeof(xml), "<domain><devices><disk type='file' device='disk'><source file='%s'/>"
		 "</disk><disk type='file' device='cdrom'/></devices></domain>", overlay);
	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_pins_from_xml(pins, xml, "snapvm"), 0);
	CU_ASSERT_PTR_NULL(vp_store_pins_all(pins));
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, d.location, owners, sizeof(owners)), 1);
	VP_ASSERT_STR_EQ(owners, "snapvm");
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, b.location, owners, sizeof(owners)), 1);
	vp_store_pins_free(pins);
	/* gc with that domain: the delta is no orphan. */
	vp_store_set_pins_source(s, xml_pins, xml);
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 0, &plan), 0);
	CU_ASSERT_TRUE(plan->domains_known);
	for (size_t i = 0; i < plan->norphans; i++)
		CU_ASSERT_STRING_NOT_EQUAL(plan->orphans[i].location, d.location);
	for (size_t i = 0; i < plan->nbases; i++)
		CU_ASSERT_STRING_NOT_EQUAL(plan->bases[i].name, "ch");
	vp_gc_plan_free(plan);
	/* A network disk vdipool cannot read pins everything (an RBD one pins its image: test_domain). */
	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_pins_from_xml(pins, "<domain><devices><disk type='network'><source "
					      "protocol='nbd' name='img'/></disk></devices></domain>", "nas"), 0);
	CU_ASSERT_PTR_NOT_NULL(vp_store_pins_all(pins));
	vp_store_pins_free(pins);
	vp_store_free(s);
}

/* vdipool snapshot's layout: CLONE.snap/NAME.qcow2 images between the disk and its base. The
 * listing names the base as what the disk backs onto (so rm and gc keep it without any domain),
 * and removing the disk removes its snapshots. */
static void test_clone_snapshots_seen(void)
{
	vp_store *s = open_root(vp_store_pins_none, NULL);
	const vp_plugin *p = NULL;
	const vp_plugin_ops *ops;
	vp_qcow2_create_opts o;
	vp_image_info d;
	vp_base_info b;
	char dir[600], a[700], c[700];
	void *h = NULL;

	import(s, "sn", "v1", &b);
	make_disk(s, 0, VP_DISK_DELTA, &b, "snpool", "c1", &d);
	snprintf(dir, sizeof(dir), "%s/deltas/snpool/c1.snap", root);
	snprintf(a, sizeof(a), "%s/a.qcow2", dir);
	snprintf(c, sizeof(c), "%s/c.qcow2", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0755), 0);
	/* a: the old disk; c on a (relative name, as another tool might write it); the disk on c. */
	CU_ASSERT_EQUAL_FATAL(rename(d.location, a), 0);
	vp_qcow2_create_opts_init(&o);
	o.backing_file = "a.qcow2";
	o.backing_format = "qcow2";
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(c, &o), 0);
	o.backing_file = c;
	CU_ASSERT_EQUAL_FATAL(vp_qcow2_create(d.location, &o), 0);

	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	ops = vp_plugin_get_ops(p);
	CU_ASSERT_EQUAL_FATAL(ops->open(&(vp_tier_config){ .tier = "t", .path = root }, &h), 0);
	CU_ASSERT_EQUAL(ops->delta_stat(h, VP_DISK_DELTA, "snpool", "c1", &d), 0);
	VP_ASSERT_STR_EQ(d.backing, b.location);
	CU_ASSERT_EQUAL(vp_store_remove(s, "sn@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "c1.qcow2"));
	/* The sweep takes the snapshots of a disk that is gone, and only those. */
	snprintf(c, sizeof(c), "%s/deltas/snpool/c9.snap", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(c, 0755), 0);
	CU_ASSERT_EQUAL(vp_store_sweep(s), 0);
	CU_ASSERT_EQUAL(access(c, F_OK), -1);
	CU_ASSERT_EQUAL(access(a, F_OK), 0);
	CU_ASSERT_EQUAL(ops->delta_remove(h, VP_DISK_DELTA, "snpool", "c1"), 0);
	CU_ASSERT_EQUAL(access(dir, F_OK), -1);
	CU_ASSERT_EQUAL(vp_store_remove(s, "sn@v1"), 0);
	ops->close(h);
	vp_store_free(s);
}

/* ---- tiers and data disks ------------------------------------------------------------------ */

/* A delta on a tier only a spec names still keeps its base from `--root` gc and rm. */
static void test_other_tier_seen(void)
{
	vp_store *spec = open_spec_store(), *s;
	vp_gc_plan *plan = NULL;
	vp_image_info d;
	vp_base_info b;

	import(spec, "tr", "v1", &b);
	import(spec, "tr", "v2", &b);
	CU_ASSERT_EQUAL_FATAL(vp_store_stat(spec, "tr@v1", &b), 0);
	make_disk(spec, 1, VP_DISK_DELTA, &b, "trpool", "c1", &d);
	vp_store_free(spec);
	s = open_root(vp_store_pins_none, NULL);
	CU_ASSERT_EQUAL(vp_store_remove(s, "tr@v1"), VP_EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "1 delta backs onto it"));
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 0, &plan), 0);
	for (size_t i = 0; i < plan->nbases; i++)
		CU_ASSERT(strcmp(plan->bases[i].name, "tr") || strcmp(plan->bases[i].version, "v1"));
	vp_gc_plan_free(plan);
	CU_ASSERT_EQUAL(vp_fs_exists(d.location), 1);
	vp_store_free(s);
}

/* A data disk whose clone has neither domain nor delta: reported, removed only when asked. */
static void test_orphaned_data(void)
{
	vp_store *s = open_root(vp_store_pins_none, NULL);
	vp_gc_plan *plan = NULL;
	vp_image_info data, kept, delta;
	vp_base_info b;
	size_t removed = 0, found = 0;

	import(s, "od", "v1", &b);
	make_disk(s, 0, VP_DISK_DATA, NULL, "odpool", "gone", &data);
	make_disk(s, 0, VP_DISK_DATA, NULL, "odpool", "live", &kept);
	make_disk(s, 0, VP_DISK_DELTA, &b, "odpool", "live", &delta);
	vp_store_set_pins_source(s, pins_location, delta.location);
	CU_ASSERT_EQUAL_FATAL(vp_store_gc_plan(s, 5, &plan), 0);
	for (size_t i = 0; i < plan->norphan_data; i++)
		found += !strcmp(plan->orphan_data[i].location, data.location);
	CU_ASSERT_EQUAL(found, 1);
	for (size_t i = 0; i < plan->norphan_data; i++)
		CU_ASSERT_STRING_NOT_EQUAL(plan->orphan_data[i].location, kept.location);
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, 0, &removed), 0);
	CU_ASSERT_EQUAL(vp_fs_exists(data.location), 1);
	CU_ASSERT_EQUAL(vp_store_gc_apply(s, plan, VP_GC_PURGE_ORPHANED_DATA, &removed), 0);
	CU_ASSERT(removed >= 1);
	CU_ASSERT_EQUAL(vp_fs_exists(data.location), 0);
	CU_ASSERT_EQUAL(vp_fs_exists(kept.location), 1);
	vp_gc_plan_free(plan);
	vp_store_free(s);
}

/* ---- temporaries and modes ------------------------------------------------------------------ */

static long dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return (long)pid;
}

static void make_at(const char *rel, bool dir)
{
	char path[1400], parent[1400];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = '\0';
	CU_ASSERT_EQUAL_FATAL(vp_fs_mkdir_p(parent, 0755), 0);
	if (dir) {
		CU_ASSERT_EQUAL(mkdir(path, 0700), 0);
	} else {
		CU_ASSERT_EQUAL(vp_fs_write_atomic(path, "x", 1, 0600), 0);
	}
}

static int exists_at(const char *rel)
{
	char path[1400];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return vp_fs_exists(path);
}

static void rm_at(const char *rel)
{
	char path[1400];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	CU_ASSERT_EQUAL(vp_fs_rm_rf(path), 0);
}

static void test_sweep_dead_temporaries(void)
{
	vp_store *s = open_root(vp_store_pins_none, NULL);
	long dead = dead_pid(), live = (long)getppid();
	char dead_names[5][200], live_names[5][200];
	static const char *const pre[5] = { "bases/.import-sw-1-", "bases/.remove-sw-1-",
					    "deltas/swp/.c1.qcow2.tmp.", "deltas/swp/c1.qcow2.flatten-",
					    "data/swp/.c1.qcow2.tmp." };
	static const char *const post[5] = { "", "", ".0", ".tmp", ".3" };

	for (int i = 0; i < 5; i++) {
		snprintf(dead_names[i], sizeof(dead_names[i]), "%s%ld%s", pre[i], dead, post[i]);
		snprintf(live_names[i], sizeof(live_names[i]), "%s%ld%s", pre[i], live, post[i]);
		make_at(dead_names[i], i < 2 || i == 3);
		make_at(live_names[i], i < 2 || i == 3);
	}
	make_at("deltas/swp/c1.qcow2", false);
	CU_ASSERT_EQUAL(vp_store_sweep(s), 0);
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(exists_at(dead_names[i]), 0);
		CU_ASSERT_EQUAL(exists_at(live_names[i]), 1);
	}
	CU_ASSERT_EQUAL(exists_at("deltas/swp/c1.qcow2"), 1);
	/* Leave the store as it was for the next tests. */
	for (int i = 0; i < 5; i++)
		rm_at(live_names[i]);
	rm_at("deltas/swp");
	rm_at("data/swp");
	vp_store_free(s);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

/* Guest data is 0600 whatever the umask says. */
static void test_disks_0600(void)
{
	static const mode_t masks[] = { 0, 022, 0277 };
	vp_store *s = open_root(vp_store_pins_none, NULL);
	const vp_plugin *p = NULL;
	vp_image_info d;
	vp_base_info b;
	void *h = NULL;
	char clone[32];

	import(s, "md", "v1", &b);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_find(&p, "dir"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_plugin_get_ops(p)->open(&(vp_tier_config){ .tier = "t", .path = root }, &h), 0);
	for (size_t i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		mode_t old = umask(masks[i]);
		snprintf(clone, sizeof(clone), "m%zu", i);
		make_disk(s, 0, VP_DISK_DELTA, &b, "mdpool", clone, &d);
		CU_ASSERT_EQUAL(mode_of(d.location), 0600);
		make_disk(s, 0, VP_DISK_DATA, NULL, "mdpool", clone, &d);
		CU_ASSERT_EQUAL(mode_of(d.location), 0600);
		CU_ASSERT_EQUAL(vp_plugin_get_ops(p)->delta_flatten(h, "mdpool", clone), 0);
		CU_ASSERT_EQUAL(vp_plugin_get_ops(p)->delta_stat(h, VP_DISK_DELTA, "mdpool", clone, &d), 0);
		CU_ASSERT_EQUAL(mode_of(d.location), 0600);
		umask(old);
	}
	vp_plugin_get_ops(p)->close(h);
	vp_store_free(s);
}

/* ---- import reads the file it checked -------------------------------------------------------- */

struct swap {
	const char *from, *to;
	int done;
};

/* Called as the copy starts: swaps another file in at the imported path. */
static void swap_on_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct swap *sw = ctx;

	(void)done;
	(void)total;
	if (!sw->done && !strcmp(phase, "convert")) {
		sw->done = 1;
		CU_ASSERT_EQUAL(rename(sw->from, sw->to), 0);
	}
}

static void test_import_same_file(void)
{
	vp_store *s = open_root(vp_store_pins_none, NULL);
	char a[400], b[400], keep[400];
	struct swap sw = { .from = b, .to = a };
	vp_store_import_opts o = { .progress = swap_on_progress, .progress_ctx = &sw };
	vp_base_info info;
	int fd;

	snprintf(a, sizeof(a), "%s/checked.raw", tmp);
	snprintf(b, sizeof(b), "%s/swapped.raw", tmp);
	snprintf(keep, sizeof(keep), "%s/checked-copy.raw", tmp);
	fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && write(fd, "CHECKED", 7) == 7);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(link(a, keep), 0);
	fd = open(b, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CU_ASSERT_FATAL(fd >= 0 && ftruncate(fd, 1 << 20) == 0 && write(fd, "SWAPPED", 7) == 7);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(vp_store_import(s, "sw", "v1", a, &o, &info), 0);
	CU_ASSERT_EQUAL(sw.done, 1);
	/* What was checked is what was stored. */
	{
		const char *argv[] = { "qemu-img", "compare", "-q", "-f", "raw", "-F", "qcow2", keep,
				       info.location, NULL };
		vp_run_result r;
		CU_ASSERT_EQUAL(vp_run(argv, NULL, &r), 0);
		CU_ASSERT_EQUAL(r.exit_code, 0);
		vp_run_result_release(&r);
	}
	vp_store_free(s);
}

/* A damaged store is a state problem (exit 1), not bad input (exit 2). */
static void test_damaged_manifest_is_not_bad_input(void)
{
	vp_store *s = open_root(vp_store_pins_none, NULL);
	vp_base_info b;
	char path[700];

	import(s, "dm", "v1", &b);
	snprintf(path, sizeof(path), "%s/bases/dm/v1/manifest", root);
	CU_ASSERT_EQUAL_FATAL(chmod(path, 0644), 0);
	CU_ASSERT_EQUAL_FATAL(vp_fs_write_atomic(path, "garbage\n", 8, 0444), 0);
	CU_ASSERT_EQUAL(vp_store_stat(s, "dm@v1", &b), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "manifest of base 'dm@v1'"));
	/* gc cannot list a damaged store: it removes nothing rather than guess. */
	snprintf(path, sizeof(path), "%s/bases/dm", root);
	CU_ASSERT_EQUAL(vp_fs_rm_rf(path), 0);
	vp_store_free(s);
}

static CU_TestInfo tests[] = {
	{ "import converts the file it checked, not what the path names later", test_import_same_file },
	{ "sweep removes dead processes' temporaries only", test_sweep_dead_temporaries },
	{ "deltas, data disks, flattened deltas are 0600 under any umask", test_disks_0600 },
	{ "runtime dir: other owner, world-writable, symlinks refused", test_runtime_dir_checked },
	{ "gc and rm wait for apply's shared lock, re-check under it", test_removal_waits_for_apply },
	{ "apply refused while gc holds the store, or waits for it when asked", test_apply_waits_for_gc_when_asked },
	{ "a spec's store and the --root store share one lock", test_one_lock_per_tier },
	{ "remove refused without pins, with failing, naming or pin-all pins", test_remove_needs_pins },
	{ "pins: every owner counted once, past table growth", test_pins_owners },
	{ "a snapshot overlay's chain pins delta and base", test_chain_pins },
	{ "a clone's snapshots: the listing names the base under them, rm takes them", test_clone_snapshots_seen },
	{ "a delta on another tier a spec used keeps its base", test_other_tier_seen },
	{ "orphaned data disks reported, removed only when asked", test_orphaned_data },
	{ "a damaged manifest is a state error, not bad input", test_damaged_manifest_is_not_bad_input },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "store-safety", setup, teardown, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
