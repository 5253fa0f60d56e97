/* bench_qcow2.c: delta creation speed and size, vdipool writer vs qemu-img, and first-write IOPS. */
/*
 * Not a test: prints figures. Usage:
 *   bench_qcow2 [-n N] [-q N] [-c COUNT] [-d DIR] [-s]
 *     -n N      deltas per figure for our writer (default 1000)
 *     -q N      deltas per figure for the qemu-img loop (default: same as -n)
 *     -c COUNT  requests per qemu-img bench run (default 20000)
 *     -d DIR    scratch directory (default /tmp; a fresh subdirectory is made and removed)
 *     -s        skip the first-write benchmark
 * The base is a sparse 20 GiB qcow2 made with qemu-img.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "util/fs.h"
#include "util/run.h"
#include "util/util.h"

static char dir[300];

struct flavour {
	const char *name;
	uint32_t cs;
	bool ext_l2, prealloc;
	const char *qemu_opts;
};

static const struct flavour flavours[] = {
	{ "plain", 65536, false, false, "cluster_size=64k" },
	{ "preallocated", 131072, true, true, "cluster_size=128k,extended_l2=on,preallocation=metadata" },
};

static void die(const char *what)
{
	fprintf(stderr, "bench_qcow2: %s: %s\n", what, vp_error_last()->message);
	vp_fs_rm_rf(dir);
	exit(1);
}

static char **names(const char *prefix, int n)
{
	char **v = calloc((size_t)n, sizeof(*v));

	for (int i = 0; v && i < n; i++)
		if (!(v[i] = vp_strdup_printf("%s/%s-%05d.qcow2", dir, prefix, i)))
			die("names");
	if (!v)
		die("names");
	return v;
}

static void free_names(char **v, int n)
{
	for (int i = 0; i < n; i++) {
		unlink(v[i]);
		free(v[i]);
	}
	free(v);
}

static double usage_per_delta(char **v, int n)
{
	uint64_t total = 0, u;

	for (int i = 0; i < n; i++) {
		if (vp_fs_disk_usage(v[i], &u) < 0)
			die("stat");
		total += u;
	}
	return (double)total / n;
}

static void opts_for(vp_qcow2_create_opts *o, const struct flavour *f, vp_qcow2_sync sync)
{
	vp_qcow2_create_opts_init(o);
	o->backing_file = "base.qcow2";
	if (sync == (vp_qcow2_sync)-1) { /* first writes: the base with data */
		o->backing_file = "fwbase.qcow2";
		sync = VP_QCOW2_SYNC_FILES;
	}
	o->backing_format = "qcow2";
	o->cluster_size = f->cs;
	o->extended_l2 = f->ext_l2;
	o->prealloc = f->prealloc ? VP_QCOW2_PREALLOC_METADATA : VP_QCOW2_PREALLOC_OFF;
	o->sync = sync;
}

/* Seconds per delta: one vp_qcow2_create() per image (each fdatasync + directory fsync). */
static double ours_single(const struct flavour *f, int n, double *usage)
{
	vp_qcow2_create_opts o;
	char **v = names("single", n);
	double t0;

	opts_for(&o, f, VP_QCOW2_SYNC_FILES);
	sync();
	t0 = vp_now();
	for (int i = 0; i < n; i++)
		if (vp_qcow2_create(v[i], &o) < 0)
			die("vp_qcow2_create");
	t0 = (vp_now() - t0) / n;
	*usage = usage_per_delta(v, n);
	free_names(v, n);
	return t0;
}

/* Seconds per delta with vp_qcow2_create_batch(). */
static double ours_batch(const struct flavour *f, int n, vp_qcow2_sync sync_mode)
{
	vp_qcow2_create_opts o;
	char **v = names("batch", n);
	double t0;

	opts_for(&o, f, sync_mode);
	sync();
	t0 = vp_now();
	if (vp_qcow2_create_batch((const char *const *)v, (size_t)n, &o) < 0)
		die("vp_qcow2_create_batch");
	t0 = (vp_now() - t0) / n;
	free_names(v, n);
	return t0;
}

static double qemu_loop(const struct flavour *f, int n, double *usage)
{
	char **v = names("qemu", n);
	double t0;

	sync();
	t0 = vp_now();
	for (int i = 0; i < n; i++) {
		const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
				       "-o", f->qemu_opts, v[i], NULL };
		if (vp_run_ok(argv, NULL, NULL) < 0)
			die("qemu-img create");
	}
	t0 = (vp_now() - t0) / n;
	*usage = usage_per_delta(v, n);
	free_names(v, n);
	return t0;
}

static void bench_create(int n, int nq)
{
	for (size_t i = 0; i < VP_ARRAY_SIZE(flavours); i++) {
		const struct flavour *f = &flavours[i];
		double us_single, us_q, t_single, t_batch, t_fs, t_q;

		t_q = qemu_loop(f, nq, &us_q);
		t_single = ours_single(f, n, &us_single);
		t_batch = ours_batch(f, n, VP_QCOW2_SYNC_FILES);
		t_fs = ours_batch(f, n, VP_QCOW2_SYNC_FS);
		printf("create %-12s qemu-img        %8.3f ms/delta (%d deltas, %s)\n", f->name, t_q * 1e3, nq, f->qemu_opts);
		printf("create %-12s vdipool single  %8.3f ms/delta (%d deltas)\n", f->name, t_single * 1e3, n);
		printf("create %-12s vdipool batch   %8.3f ms/delta (fdatasync each, one dir fsync)\n", f->name,
		       t_batch * 1e3);
		printf("create %-12s vdipool batchfs %8.3f ms/delta (one syncfs before renames)\n", f->name, t_fs * 1e3);
		printf("ratio qemu-img/vdipool %s single = %.1f\n", f->name, t_q / t_single);
		printf("ratio qemu-img/vdipool %s batch = %.1f\n", f->name, t_q / t_batch);
		printf("ratio qemu-img/vdipool %s batchfs = %.1f\n", f->name, t_q / t_fs);
		printf("disk usage per delta %s: qemu-img %.0f KiB, vdipool %.0f KiB\n", f->name, us_q / 1024,
		       us_single / 1024);
		fflush(stdout);
	}
}

/* IOPS of `qemu-img bench` 4 KiB first writes into a fresh delta, one per cluster. */
static double first_write_iops(const struct flavour *f, int count)
{
	char c[32];
	const char *delta = vp_strdup_printf("%s/fw-%s.qcow2", dir, f->name);
	const char *argv[] = { "qemu-img", "bench", "-w", "-t", "none", "-n", "-s", "4k", "-S", "128k",
			       "-c", c, "-f", "qcow2", delta, NULL };
	vp_qcow2_create_opts o;
	vp_run_result res;
	const char *p;
	double secs = 0;

	opts_for(&o, f, (vp_qcow2_sync)-1);
	snprintf(c, sizeof(c), "%d", count);
	if (!delta || vp_qcow2_create(delta, &o) < 0)
		die("first-write delta");
	if (vp_run_ok(argv, NULL, &res) < 0)
		die("qemu-img bench");
	p = strstr(vp_buf_cstr(&res.out), "Run completed in ");
	if (p)
		secs = strtod(p + strlen("Run completed in "), NULL);
	vp_run_result_release(&res);
	unlink(delta);
	free((char *)delta);
	return secs > 0 ? count / secs : 0;
}

/* A 20 GiB base whose first count * 128 KiB hold data, so that first writes
 * into a plain delta really copy-on-write from the backing file. */
static void make_fw_base(int count)
{
	char *base = vp_strdup_printf("%s/fwbase.qcow2", dir);
	char *cmd = vp_strdup_printf("write -P 0x5a 0 %" PRIu64, (uint64_t)count * 128 * 1024);
	const char *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "20G", NULL };
	const char *fill[] = { "qemu-io", "-f", "qcow2", "-c", cmd, base, NULL };

	if (!base || !cmd || vp_run_ok(create, NULL, NULL) < 0 || vp_run_ok(fill, NULL, NULL) < 0)
		die("first-write base");
	free(base);
	free(cmd);
}

static void bench_first_write(int count)
{
	double plain, pre;

	make_fw_base(count);
	plain = first_write_iops(&flavours[0], count);
	pre = first_write_iops(&flavours[1], count);

	printf("first-write base: 20 GiB qcow2 with data in the first %d x 128 KiB\n", count);
	printf("first-write plain 64K deltas: %.0f IOPS (qemu-img bench -w -t none -n -s 4k -S 128k -c %d)\n", plain,
	       count);
	printf("first-write extended-L2 128K preallocated deltas: %.0f IOPS\n", pre);
	printf("ratio first-write preallocated/plain = %.1f\n", plain > 0 ? pre / plain : 0);
}

static void make_base(void)
{
	char *base = vp_strdup_printf("%s/base.qcow2", dir);
	const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", base, "20G", NULL };

	if (!base || vp_run_ok(argv, NULL, NULL) < 0)
		die("base");
	free(base);
}

int main(int argc, char **argv)
{
	int n = 1000, nq = -1, count = 20000, opt;
	bool skip_fw = false;
	const char *parent = "/tmp";

	while ((opt = getopt(argc, argv, "n:q:c:d:s")) != -1) {
		switch (opt) {
		case 'n': n = atoi(optarg); break;
		case 'q': nq = atoi(optarg); break;
		case 'c': count = atoi(optarg); break;
		case 'd': parent = optarg; break;
		case 's': skip_fw = true; break;
		default:
			fprintf(stderr, "usage: bench_qcow2 [-n N] [-q N] [-c COUNT] [-d DIR] [-s]\n");
			return 2;
		}
	}
	if (nq < 0)
		nq = n;
	if (n < 1 || nq < 1 || count < 1)
		return 2;
	snprintf(dir, sizeof(dir), "%s/vp-bench-qcow2-XXXXXX", parent);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	make_base();
	printf("base: sparse 20 GiB qcow2 (qemu-img), scratch %s\n", dir);
	bench_create(n, nq);
	if (!skip_fw)
		bench_first_write(count);
	vp_fs_rm_rf(dir);
	return 0;
}
