/* store_import.c: importing a golden image: refuse bad input, convert, hash, publish atomically. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util/run.h"
#include "vdipool/qcow2.h"

static const char *const qemu_env[] = { "LC_ALL=C", NULL };

/* ---- checking the source ---------------------------------------------------------- */

static int probe_file(const char *path, vp_probe *p)
{
	const char *argv[] = { "qemu-img", "info", "--output=json", path, NULL };
	vp_run_opts opts = { .env = qemu_env };
	vp_run_result res;
	int rc = vp_run_ok(argv, &opts, &res);

	if (rc == 0)
		rc = vp_store_parse_info_json(p, vp_buf_cstr(&res.out), path);
	vp_run_result_release(&res);
	return rc;
}

/* A qcow2 with a backing file or an external data file would make the base
 * read whatever host file it names (Nova refuses these too). */
static int check_qcow2(const char *fdpath, const char *path, const vp_probe *p)
{
	vp_qcow2_info qi;
	int rc;

	if (p->backing[0])
		return vp_error_set(VP_ERR_STORE, VP_EINVAL,
				    "'%s' has a backing file ('%s'): import a standalone image "
				    "(qemu-img convert it first)", path, p->backing);
	if ((rc = vp_qcow2_read_info(&qi, fdpath)) < 0)
		return rc;
	if (qi.has_backing)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s' has a backing file ('%s'): import a "
				    "standalone image (qemu-img convert it first)", path, qi.backing_file);
	if (qi.external_data_file)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s' uses an external data file", path);
	return 0;
}

static int check_raw(const char *path, const struct stat *st)
{
	if (st->st_size == 0)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s' is empty: not a disk image", path);
	/* qemu-img calls anything it does not recognise raw; a disk is whole sectors. */
	if (st->st_size % 512)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL,
				    "'%s' is not a disk image: its size (%lld bytes) is not a multiple of 512",
				    path, (long long)st->st_size);
	return 0;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return n && !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0' || !strcmp(dir, "/"));
}

/* Opens the source once: every check and the copy read this open file
 * (through /proc/PID/fd/N, which reopens the same inode), so a file swapped
 * in at the path after the checks is never what gets imported. */
static int open_source(vp_store *s, const char *file, char *real, char *fdpath, int *fdp)
{
	struct stat st;
	int fd;

	*fdp = -1;
	if (!realpath(file, real))
		return vp_error_set_os(errno, "cannot open '%s'", file);
	for (const char *c = real; *c; c++)
		if ((unsigned char)*c < 0x20)
			return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s': the path has a control character",
					    file);
	if ((fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return vp_error_set_os(errno, "cannot open '%s'", file);
	*fdp = fd;
	if (fstat(fd, &st) < 0)
		return vp_error_set_os(errno, "cannot stat '%s'", file);
	if (!S_ISREG(st.st_mode))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s' is not a regular file", file);
	if (under(real, s->base.path))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "'%s' lives on the base tier '%s' (%s): "
				    "import from a file outside the store", real, s->base.name, s->base.path);
	snprintf(fdpath, 64, "/proc/%ld/fd/%d", (long)getpid(), fd);
	return 0;
}

static int check_source(const char *real, const char *fdpath, int fd, vp_probe *p)
{
	struct stat st;
	int rc;

	if (fstat(fd, &st) < 0)
		return vp_error_set_os(errno, "cannot stat '%s'", real);
	if ((rc = probe_file(fdpath, p)) < 0)
		return rc;
	if (!strcmp(p->format, "raw"))
		return check_raw(real, &st);
	if (!strcmp(p->format, "qcow2"))
		return check_qcow2(fdpath, real, p);
	return vp_error_set(VP_ERR_STORE, VP_EINVAL,
			    "'%s' is a %s image: only raw and qcow2 can be imported", real, p->format);
}

/* ---- an existing version ----------------------------------------------------------- */

/* 1: same guest-visible content; 0: other content. qemu-img compare ignores
 * the container format, so a raw source matches its qcow2 import. */
static int same_content(const char *src, const vp_probe *p, const vp_base_info *b)
{
	const char *argv[] = { "qemu-img", "compare", "-f", p->format, "-F", b->format, src,
			       b->location, NULL };
	vp_run_opts opts = { .env = qemu_env };
	vp_run_result res;
	int rc;

	if (p->virtual_size != b->virtual_size)
		return 0;
	rc = vp_run(argv, &opts, &res);
	if (rc == 0 && (res.signal || res.exit_code > 1))
		rc = vp_run_ok(argv, &opts, NULL); /* records the error with qemu-img's text */
	if (rc == 0)
		rc = res.exit_code == 0;
	vp_run_result_release(&res);
	return rc;
}

/* 0: absent; 1: present with the same content; VP_EEXIST: other content. */
static int existing(vp_store *s, const char *name, const char *version, const char *src,
		    const vp_probe *p, vp_base_info *b)
{
	int rc = store_load(s, name, version, b, NULL);

	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	if (rc < 0 || (rc = same_content(src, p, b)) < 0)
		return rc;
	if (rc == 1)
		return 1;
	return vp_error_set(VP_ERR_STORE, VP_EEXIST, "version %s exists already with other content "
			    "(imported from '%s' at %s): choose a new version", version, b->source,
			    b->imported);
}

/* ---- converting, with progress ------------------------------------------------------ */

struct poller {
	atomic_bool stop;
	const char *target;
	uint64_t total;
	vp_store_progress_fn fn;
	void *ctx;
};

/* qemu-img convert's own -p output needs a streaming runner; watching the
 * target grow is good enough for a bar. */
static void *poll_target(void *arg)
{
	struct poller *pl = arg;
	const struct timespec tick = { 0, 100 * 1000 * 1000 };

	while (!atomic_load(&pl->stop)) {
		struct stat st;
		uint64_t done = stat(pl->target, &st) == 0 ? (uint64_t)st.st_blocks * 512 : 0;
		pl->fn(pl->ctx, "convert", done < pl->total ? done : pl->total, pl->total);
		nanosleep(&tick, NULL);
	}
	return NULL;
}

/* src is /proc/PID/fd/N; json: names the driver and, for qcow2, no backing
 * file at all, so nothing but the checked open file is ever read. */
static int convert(const char *src, const vp_probe *p, const char *fmt, const char *target,
		   const vp_store_import_opts *o)
{
	char spec[200];
	/* -c: every cluster written deflated (zlib: what every QEMU reads; zstd needs 5.1+). */
	const char *plain[] = { "qemu-img", "convert", spec, "-O", fmt, target, NULL };
	const char *packed[] = { "qemu-img", "convert", spec, "-O", fmt, "-c", "-o", "compression_type=zlib",
				 target, NULL };
	const char *const *argv = o->compress ? packed : plain;
	vp_run_opts opts = { .env = qemu_env };
	struct poller pl = { .target = target, .total = p->actual_size, .fn = o->progress,
			     .ctx = o->progress_ctx };
	pthread_t th;
	bool polling;
	int rc;

	snprintf(spec, sizeof(spec), "json:{\"driver\":\"%s\",%s\"file\":{\"driver\":\"file\","
		 "\"filename\":\"%s\"}}", !strcmp(p->format, "qcow2") ? "qcow2" : "raw",
		 !strcmp(p->format, "qcow2") ? "\"backing\":null," : "", src);
	polling = o->progress && pthread_create(&th, NULL, poll_target, &pl) == 0;
	rc = vp_run_ok(argv, &opts, NULL);

	if (polling) {
		atomic_store(&pl.stop, true);
		pthread_join(th, NULL);
		if (rc == 0)
			o->progress(o->progress_ctx, "convert", pl.total, pl.total);
	}
	return rc;
}

/* ---- publishing ------------------------------------------------------------------- */

static void fill_info(vp_base_info *b, const char *name, const char *version, const char *src,
		      const vp_probe *p, const vp_image_info *st, const vp_store_import_opts *o)
{
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	snprintf(b->version, sizeof(b->version), "%s", version);
	snprintf(b->format, sizeof(b->format), "%s", st->format);
	snprintf(b->source_format, sizeof(b->source_format), "%.15s", p->format);
	snprintf(b->source, sizeof(b->source), "%s", src);
	snprintf(b->parent, sizeof(b->parent), "%s", o->parent ? o->parent : "");
	snprintf(b->compression, sizeof(b->compression), "%s", o->compress ? "zlib" : "");
	vp_now_iso8601(b->imported, sizeof(b->imported));
	b->virtual_size = p->virtual_size;
	b->disk_bytes = st->allocated;
	b->image_size = st->size;
	b->image_mtime_sec = st->mtime_sec;
	b->image_mtime_nsec = st->mtime_nsec;
}

static int stage_and_commit(vp_store *s, const char *name, const char *version, const char *src,
			    const char *fdpath, const vp_probe *p, const char *fmt,
			    const vp_store_import_opts *o)
{
	const vp_plugin_ops *ops = s->base.ops;
	vp_image_info staged, st;
	vp_base_info b;
	VP_AUTOFREE char *text = NULL;
	int rc;

	memset(&staged, 0, sizeof(staged));
	memset(&st, 0, sizeof(st));
	if ((rc = ops->base_stage(s->base.h, name, version, fmt, &staged)) < 0)
		return rc;
	rc = convert(fdpath, p, fmt, staged.location, o);
	if (rc == 0)
		rc = ops->base_stat(s->base.h, name, version, 1, &st);
	if (rc == 0) {
		fill_info(&b, name, version, src, p, &st, o);
		rc = store_hash(s, name, version, 1, st.size, o->progress, o->progress_ctx, b.sha256);
	}
	if (rc == 0 && !(text = vp_store_manifest_format(&b)))
		rc = VP_ENOMEM;
	if (rc == 0)
		rc = ops->base_commit(s->base.h, name, version, text);
	if (rc < 0) {
		/* Keep the first error: the cleanup must not overwrite why it failed. */
		VP_AUTOFREE char *msg = vp_strdup(vp_error_last()->message);
		vp_error_class klass = vp_error_last()->klass;
		ops->base_abort(s->base.h, name, version);
		vp_error_set(klass, rc, "%s", msg ? msg : "import failed");
	}
	return rc;
}

static int check_args(vp_store *s, const char *name, const char *version, const char *fmt,
		      const vp_store_import_opts *o)
{
	if (!vp_name_valid(name))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "invalid name: use [a-z0-9][a-z0-9-]*, at most 63 characters");
	if (!vp_store_version_valid(version))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "invalid version: use 1 to 64 of [A-Za-z0-9._+-], not starting with "
				    "'.', no '..', not 'latest'");
	if (o->parent && !vp_store_version_valid(o->parent))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid parent version '%s'", o->parent);
	if (strcmp(fmt, "qcow2") && strcmp(fmt, "raw"))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid format '%s': use qcow2 or raw", fmt);
	if (o->compress && strcmp(fmt, "qcow2"))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "compression needs the qcow2 format (this base would be stored %s)", fmt);
	return 0;
}

int vp_store_import(vp_store *s, const char *name, const char *version, const char *file,
		    const vp_store_import_opts *opts, vp_base_info *out)
{
	static const vp_store_import_opts none;
	const vp_store_import_opts *o = opts ? opts : &none;
	/* qcow2 by default; a backend that makes no qcow2 deltas of its own (rbd: clones of a
	 * snapshot) stores raw images, as QEMU reads them through it. */
	const char *fmt = o->format ? o->format
			  : (s->base.ops->capabilities & VP_CAP_PREALLOC_METADATA) ? "qcow2" : "raw";
	char real[PATH_MAX], fdpath[64];
	vp_probe p;
	vp_base_info b;
	int fd = -1, rc;

	rc = check_args(s, name, version, fmt, o);
	/* What killed imports left behind goes first (their staged images hold space). */
	if (rc == 0)
		rc = vp_store_sweep(s);
	if (rc == 0)
		rc = open_source(s, file, real, fdpath, &fd);
	if (rc == 0)
		rc = check_source(real, fdpath, fd, &p);
	if (rc == 0)
		rc = existing(s, name, version, fdpath, &p, &b);
	if (rc == 0)
		rc = stage_and_commit(s, name, version, real, fdpath, &p, fmt, o);
	if (fd >= 0)
		close(fd); /* read-only: nothing to lose */
	if (rc == 0 && out)
		rc = store_load(s, name, version, out, NULL);
	else if (rc == 1 && out)
		*out = b;
	if (rc < 0)
		vp_error_prefix("cannot import base '%s@%s'", name, version);
	return rc;
}
