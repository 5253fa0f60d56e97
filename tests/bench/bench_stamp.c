/* bench_stamp.c: N new deltas through the dir backend as apply makes them (stamped) against one
 * durable vp_qcow2_create() each (how the backend made them before), from P threads. */
/*
 * Not a test: prints figures (tests/bench/bench_stamp.sh runs it on ext4 and XFS and adds dd).
 * Usage: bench_stamp -d TIER_DIR -b BASE.qcow2 -m stamp|write [-n N] [-p THREADS] [-k]
 *   -m stamp  the dir backend's delta_create (the first delta written, the others copied from
 *             a stamp: reflink or sparse copy, one syncfs + one directory fsync per group)
 *   -m write  one vp_qcow2_create() per delta: fdatasync, rename, directory fsync each
 *   -k        keep the deltas (TIER_DIR/deltas/bench/c-NNNNN.qcow2), else remove them
 * Deltas: preallocated metadata, extended L2, 128 KiB clusters (apply's defaults).
 * Prints "SECONDS BYTES_ALLOCATED" on one line.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/qcow2.h"
#include "util/util.h"

static const vp_plugin_ops *ops;
static void *tier;
static const char *root, *base, *mode = "stamp";
static int n = 1000;
static atomic_int next_clone, failures;

static void die(const char *what)
{
	fprintf(stderr, "bench_stamp: %s: %s\n", what, vp_error_last()->message);
	exit(1);
}

static void clone_name(char *buf, size_t len, int i) { snprintf(buf, len, "c-%05d", i); }

static int one(int i)
{
	char name[32], path[4096];
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = "bench", .clone = name,
				 .base_location = base, .base_format = "qcow2",
				 .flags = VP_DELTA_PREALLOC_METADATA | VP_DELTA_EXTENDED_L2,
				 .cluster_size = 128 << 10 };
	vp_qcow2_create_opts o;

	clone_name(name, sizeof(name), i);
	if (!strcmp(mode, "stamp"))
		return ops->delta_create(tier, &req, NULL);
	vp_qcow2_create_opts_init(&o);
	o.backing_file = base;
	o.backing_format = "qcow2";
	o.cluster_size = 128 << 10;
	o.extended_l2 = true;
	o.prealloc = VP_QCOW2_PREALLOC_METADATA;
	o.mode = 0600;
	snprintf(path, sizeof(path), "%s/deltas/bench/%s.qcow2", root, name);
	return vp_qcow2_create(path, &o);
}

static void *worker(void *arg)
{
	(void)arg;
	for (int i; (i = atomic_fetch_add(&next_clone, 1)) < n;)
		if (one(i) < 0) {
			fprintf(stderr, "bench_stamp: clone %d: %s\n", i, vp_error_last()->message);
			atomic_fetch_add(&failures, 1);
		}
	return NULL;
}

int main(int argc, char **argv)
{
	const vp_plugin *p;
	pthread_t tids[64];
	int par = 8, keep = 0, c;
	unsigned long long bytes = 0;
	char dir[4096];
	double t0, t1;

	while ((c = getopt(argc, argv, "d:b:m:n:p:k")) != -1) {
		switch (c) {
		case 'd': root = optarg; break;
		case 'b': base = optarg; break;
		case 'm': mode = optarg; break;
		case 'n': n = atoi(optarg); break;
		case 'p': par = atoi(optarg); break;
		case 'k': keep = 1; break;
		default: return 2;
		}
	}
	if (!root || !base || par < 1 || par > 64 || (strcmp(mode, "stamp") && strcmp(mode, "write"))) {
		fprintf(stderr, "usage: bench_stamp -d TIER_DIR -b BASE -m stamp|write [-n N] [-p P] [-k]\n");
		return 2;
	}
	if (vp_plugin_find(&p, "dir") < 0)
		die("dir backend");
	ops = vp_plugin_get_ops(p);
	if (ops->open(&(vp_tier_config){ .tier = "bench", .path = root }, &tier) < 0)
		die("open tier");
	snprintf(dir, sizeof(dir), "%s/deltas", root);
	mkdir(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/deltas/bench", root);
	mkdir(dir, 0755);
	sync();
	t0 = vp_now();
	for (int i = 0; i < par; i++)
		pthread_create(&tids[i], NULL, worker, NULL);
	for (int i = 0; i < par; i++)
		pthread_join(tids[i], NULL);
	ops->close(tier); /* removes the stamp: part of the cost */
	t1 = vp_now();
	for (int i = 0; i < n; i++) {
		char name[32], path[4096 + 64];
		struct stat st;
		clone_name(name, sizeof(name), i);
		snprintf(path, sizeof(path), "%s/%s.qcow2", dir, name);
		if (stat(path, &st) == 0)
			bytes += (unsigned long long)st.st_blocks * 512;
		if (!keep)
			unlink(path);
	}
	printf("%.3f %llu\n", t1 - t0, bytes);
	return atomic_load(&failures) ? 1 : 0;
}
