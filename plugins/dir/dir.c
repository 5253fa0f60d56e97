/* dir.c: the `dir` storage plugin: bases and qcow2 deltas as files in a local directory tree. */
/*
 * Layout under the tier's directory:
 *   bases/<name>/<version>/disk.qcow2|disk.raw (0444) + manifest
 *   bases/.import-<name>-<version>-<pid>/        an import in progress
 *   deltas/<pool>/<clone>.qcow2                  backing file = absolute base path, or
 *                                                a full clone: a standalone qcow2 copy
 *   deltas/<pool>/<clone>.snap/<name>.qcow2      its snapshots (vdipool snapshot), between
 *                                                the disk and its base; removed with the disk
 *   data/<pool>/<clone>.qcow2                    standalone data disks
 * Self-contained on purpose (libc, plugin.h, the qcow2 API): it is also the
 * example of how to write a plugin, and it is compiled into libvdipool too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/qcow2.h"

#define MANIFEST_MAX (64 * 1024)

static const vp_plugin_host *host;

struct stamp_dir; /* per directory of disks: stamps and group syncs (see "stamping") */

struct dir_tier {
	char root[PATH_MAX];
	pthread_mutex_t lock;     /* guards dirs */
	struct stamp_dir *dirs;
};

static void stamps_release(struct dir_tier *t);

/* ---- small helpers ---------------------------------------------------------- */

static int os_error(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int os_error(int errnum, const char *fmt, ...)
{
	char msg[PATH_MAX + 256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return host->error(errnum == ENOENT ? VP_ENOENT : VP_EIO,
			   "%s: %s", msg, strerror(errnum));
}

/* Errors of libvdipool calls (the qcow2 API) go through the host: it may be
 * another copy of the library with its own error records. */
static int forward_error(int rc)
{
	return host->error(rc, "%s", vp_error_last()->message);
}

static int mkpath(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mkpath(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		return host->error(VP_EINVAL, "path too long: '%.64s...'", buf);
	return 0;
}

/* One path component we create: not empty, no '/', not hidden (dot names are ours). */
static int component_ok(const char *what, const char *s)
{
	if (!s || !*s || s[0] == '.' || strchr(s, '/') || strlen(s) >= VP_PLUGIN_NAME_MAX)
		return host->error(VP_EINVAL, "invalid %s '%s'", what, s ? s : "");
	return 0;
}

static int mkdir_p(const char *path)
{
	char p[PATH_MAX];
	struct stat st;

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return os_error(errno, "cannot create directory '%s'", p);
		if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
			return host->error(VP_EIO, "'%s' exists and is not a directory", p);
		*s = c;
		if (!c)
			return 0;
	}
}

static int fsync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return os_error(errno, "cannot open '%s'", path);
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return os_error(e, "cannot fsync '%s'", path);
	}
	if (close(fd) < 0)
		return os_error(errno, "cannot close '%s'", path);
	return 0;
}

static int fsync_parent(const char *path)
{
	char d[PATH_MAX];
	char *slash;

	snprintf(d, sizeof(d), "%s", path);
	slash = strrchr(d, '/');
	if (!slash)
		return 0;
	*(slash == d ? slash + 1 : slash) = '\0';
	return fsync_path(d, 1);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

static int rm_rf(const char *path)
{
	if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT)
		return os_error(errno, "cannot remove '%s'", path);
	return 0;
}

static void fill_stat(vp_image_info *out, const struct stat *st)
{
	out->size = (uint64_t)st->st_size;
	out->allocated = (uint64_t)st->st_blocks * 512;
	out->mtime_sec = (int64_t)st->st_mtim.tv_sec;
	out->mtime_nsec = st->st_mtim.tv_nsec;
}

/* ---- tiers ------------------------------------------------------------------ */

static int dir_load(const vp_plugin_host *h)
{
	host = h;
	return 0;
}

static int dir_open(const vp_tier_config *cfg, void **tier)
{
	struct dir_tier *t;

	if (!cfg->path || cfg->path[0] != '/')
		return host->error(VP_EINVAL, "tier '%s': the dir backend needs an absolute path",
				   cfg->tier ? cfg->tier : "");
	if (cfg->nparams)
		return host->error(VP_EINVAL, "tier '%s': the dir backend has no setting '%s'",
				   cfg->tier ? cfg->tier : "", cfg->params[0].key);
	t = calloc(1, sizeof(*t));
	if (!t)
		return host->error(VP_ENOMEM, "out of memory");
	/* Canonical when it exists, so base locations (and the backing names
	 * written into deltas) do not depend on how the path was spelled. */
	if (!realpath(cfg->path, t->root))
		snprintf(t->root, sizeof(t->root), "%s", cfg->path);
	pthread_mutex_init(&t->lock, NULL);
	*tier = t;
	return 0;
}

static void dir_close(void *tier)
{
	struct dir_tier *t = tier;

	stamps_release(t);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* ---- bases -------------------------------------------------------------------- */

static int stage_dir(char *buf, const struct dir_tier *t, const char *name, const char *version,
		     long pid)
{
	return mkpath(buf, "%s/bases/.import-%s-%s-%ld", t->root, name, version, pid);
}

/* The image file in a version (or staging) directory; its format into fmt. */
static int find_image(char *path, const char *dir, char *fmt, size_t fmtlen)
{
	static const char *const fmts[] = { "qcow2", "raw" };

	for (size_t i = 0; i < 2; i++) {
		if (mkpath(path, "%s/disk.%s", dir, fmts[i]) < 0)
			return VP_EINVAL;
		if (access(path, F_OK) == 0) {
			if (fmt)
				snprintf(fmt, fmtlen, "%s", fmts[i]);
			return 0;
		}
	}
	return host->error(VP_ENOENT, "no image in '%s'", dir);
}

static int base_dir(char *buf, const struct dir_tier *t, const char *name, const char *version,
		    int staged)
{
	if (component_ok("base name", name) < 0 || component_ok("version", version) < 0)
		return VP_EINVAL;
	if (staged)
		return stage_dir(buf, t, name, version, (long)getpid());
	return mkpath(buf, "%s/bases/%s/%s", t->root, name, version);
}

/* Removes .import-<name>-<version>-<pid> directories whose process is gone. */
static void sweep_stale(const struct dir_tier *t, const char *name, const char *version)
{
	char bases[PATH_MAX], prefix[256], victim[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if (mkpath(bases, "%s/bases", t->root) < 0 || !(d = opendir(bases)))
		return;
	snprintf(prefix, sizeof(prefix), ".import-%s-%s-", name, version);
	while ((e = readdir(d))) {
		const char *rest;
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		rest = e->d_name + strlen(prefix);
		pid = strtol(rest, &end, 10);
		if (end == rest || *end || pid <= 0)
			continue;
		/* A live process other than us is importing the same version right now. */
		if (pid != (long)getpid() && !(kill((pid_t)pid, 0) < 0 && errno == ESRCH))
			continue;
		if (mkpath(victim, "%s/%s", bases, e->d_name) == 0)
			rm_rf(victim);
	}
	closedir(d);
}

static int dir_base_stage(void *tier, const char *name, const char *version, const char *format,
			  vp_image_info *staged)
{
	struct dir_tier *t = tier;
	char dir[PATH_MAX];
	int rc;

	if (strcmp(format, "qcow2") && strcmp(format, "raw"))
		return host->error(VP_EINVAL, "the dir backend stores qcow2 or raw, not '%s'", format);
	if ((rc = base_dir(dir, t, name, version, 1)) < 0)
		return rc;
	sweep_stale(t, name, version);
	if ((rc = mkpath(staged->location, "%s/bases", t->root)) < 0 ||
	    (rc = mkdir_p(staged->location)) < 0)
		return rc;
	if (mkdir(dir, 0755) < 0)
		return os_error(errno, "cannot create staging directory '%s'", dir);
	snprintf(staged->name, sizeof(staged->name), "%s", name);
	snprintf(staged->version, sizeof(staged->version), "%s", version);
	snprintf(staged->format, sizeof(staged->format), "%s", format);
	return mkpath(staged->location, "%s/disk.%s", dir, format);
}

static int write_manifest(const char *dir, const char *text)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	size_t len = strlen(text);
	int fd, rc;

	if ((rc = mkpath(tmp, "%s/.manifest.tmp", dir)) < 0 ||
	    (rc = mkpath(path, "%s/manifest", dir)) < 0)
		return rc;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444);
	if (fd < 0)
		return os_error(errno, "cannot create '%s'", tmp);
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		int e = errno ? errno : EIO;
		close(fd);
		unlink(tmp);
		return os_error(e, "cannot write '%s'", tmp);
	}
	if (close(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return os_error(e, "cannot close '%s'", tmp);
	}
	if (rename(tmp, path) < 0)
		return os_error(errno, "cannot rename '%s'", tmp);
	return fsync_path(dir, 1);
}

/* Publishes the staged import: image read-only and durable, manifest last,
 * then one rename makes the version appear complete or not at all. */
static int dir_base_commit(void *tier, const char *name, const char *version, const char *manifest)
{
	struct dir_tier *t = tier;
	char stage[PATH_MAX], img[PATH_MAX], final[PATH_MAX], parent[PATH_MAX];
	int rc;

	if ((rc = base_dir(stage, t, name, version, 1)) < 0 ||
	    (rc = base_dir(final, t, name, version, 0)) < 0 ||
	    (rc = mkpath(parent, "%s/bases/%s", t->root, name)) < 0 ||
	    (rc = find_image(img, stage, NULL, 0)) < 0)
		return rc;
	if (chmod(img, 0444) < 0)
		return os_error(errno, "cannot make '%s' read-only", img);
	if ((rc = fsync_path(img, 0)) < 0 || (rc = write_manifest(stage, manifest)) < 0 ||
	    (rc = mkdir_p(parent)) < 0)
		return rc;
	if (rename(stage, final) < 0) {
		if (errno == EEXIST || errno == ENOTEMPTY)
			return host->error(VP_EEXIST, "base '%s@%s' exists already", name, version);
		return os_error(errno, "cannot rename '%s' to '%s'", stage, final);
	}
	if ((rc = fsync_path(parent, 1)) < 0)
		return rc;
	return fsync_parent(parent);
}

static int dir_base_abort(void *tier, const char *name, const char *version)
{
	char stage[PATH_MAX];
	int rc = base_dir(stage, tier, name, version, 1);

	return rc < 0 ? rc : rm_rf(stage);
}

static int dir_base_read(void *tier, const char *name, const char *version, int staged, void *buf,
			 size_t len, uint64_t offset, size_t *got)
{
	char dir[PATH_MAX], img[PATH_MAX];
	ssize_t r;
	int fd, rc;

	*got = 0;
	if ((rc = base_dir(dir, tier, name, version, staged)) < 0 ||
	    (rc = find_image(img, dir, NULL, 0)) < 0)
		return rc;
	fd = open(img, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return os_error(errno, "cannot open '%s'", img);
	do
		r = pread(fd, buf, len, (off_t)offset);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		int e = errno;
		close(fd);
		return os_error(e, "cannot read '%s'", img);
	}
	close(fd);
	*got = (size_t)r;
	return 0;
}

/* A clone's snapshots (vdipool snapshot) are the images of CLONE.snap/ beside its disk, each
 * backing onto the one before and the first onto the base: what the disk stands on is the
 * image at the end of them. `backing` (canonical) is moved past them in place. */
static int skip_snapshots(const char *img, char *backing, size_t len)
{
	char real[PATH_MAX], prefix[PATH_MAX];
	size_t n;

	/* Most disks have none: no path to resolve for them. */
	if (!strstr(backing, ".snap/"))
		return 0;
	if (!realpath(img, real) || (n = strlen(real)) < 6 || strcmp(real + n - 6, ".qcow2"))
		return 0;
	if ((size_t)snprintf(prefix, sizeof(prefix), "%.*s.snap/", (int)(n - 6), real) >= sizeof(prefix))
		return 0;
	n = strlen(prefix);
	for (int hops = 0; !strncmp(backing, prefix, n) && !strchr(backing + n, '/'); hops++) {
		vp_qcow2_info qi;
		int rc;

		if (hops > 64)
			return host->error(VP_EINVAL, "'%s': too many snapshots under it", img);
		if ((rc = vp_qcow2_read_info(&qi, backing)) < 0)
			return forward_error(rc);
		if (!qi.has_backing)
			return host->error(VP_EINVAL, "snapshot '%s' of '%s' backs onto nothing", backing, img);
		if (qi.backing_file[0] == '/')
			snprintf(real, sizeof(real), "%s", qi.backing_file);
		else
			snprintf(real, sizeof(real), "%.*s/%s", (int)(n - 1), prefix, qi.backing_file);
		{
			char canon[PATH_MAX];
			snprintf(backing, len, "%s", realpath(real, canon) ? canon : real);
		}
	}
	return 0;
}

/* Disks are parsed for their backing file; bases are not (their manifest
 * has the virtual size), so a damaged base image never breaks a listing
 * and `verify` can say what is wrong with it. */
static int stat_image(const char *img, const char *fmt, int parse, vp_image_info *out)
{
	char real[PATH_MAX];
	struct stat st;
	vp_qcow2_info qi;
	int rc;

	if (stat(img, &st) < 0)
		return os_error(errno, "cannot stat '%s'", img);
	fill_stat(out, &st);
	snprintf(out->format, sizeof(out->format), "%s", fmt);
	snprintf(out->location, sizeof(out->location), "%s", img);
	out->backing[0] = '\0';
	out->virtual_size = strcmp(fmt, "raw") ? 0 : out->size;
	if (!parse)
		return 0;
	if ((rc = vp_qcow2_read_info(&qi, img)) < 0)
		return forward_error(rc);
	out->virtual_size = qi.virtual_size;
	if (!qi.has_backing)
		return 0;
	if (qi.backing_file[0] == '/')
		snprintf(out->backing, sizeof(out->backing), "%s", qi.backing_file);
	else
		snprintf(out->backing, sizeof(out->backing), "%.*s/%s",
			 (int)(strrchr(img, '/') - img), img, qi.backing_file);
	/* Canonical, so that it compares equal to the base's location however
	 * the delta's creator spelled the path. */
	if (realpath(out->backing, real))
		snprintf(out->backing, sizeof(out->backing), "%s", real);
	return skip_snapshots(img, out->backing, sizeof(out->backing));
}

static int dir_base_stat(void *tier, const char *name, const char *version, int staged,
			 vp_image_info *out)
{
	char dir[PATH_MAX], img[PATH_MAX], fmt[16], manifest[PATH_MAX];
	int rc;

	if ((rc = base_dir(dir, tier, name, version, staged)) < 0 ||
	    (rc = mkpath(manifest, "%s/manifest", dir)) < 0)
		return rc;
	if (!staged && access(manifest, F_OK) < 0)
		return host->error(VP_ENOENT, "no base '%s@%s'", name, version);
	if ((rc = find_image(img, dir, fmt, sizeof(fmt))) < 0 || (rc = stat_image(img, fmt, 0, out)) < 0)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->version, sizeof(out->version), "%s", version);
	return 0;
}

static int dir_base_manifest(void *tier, const char *name, const char *version, char **text)
{
	char dir[PATH_MAX], path[PATH_MAX];
	char *buf;
	ssize_t n;
	int fd, rc;

	*text = NULL;
	if ((rc = base_dir(dir, tier, name, version, 0)) < 0 ||
	    (rc = mkpath(path, "%s/manifest", dir)) < 0)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return os_error(errno, "cannot open manifest of '%s@%s'", name, version);
	buf = malloc(MANIFEST_MAX + 1);
	n = buf ? read(fd, buf, MANIFEST_MAX + 1) : -1;
	close(fd);
	if (n < 0 || n > MANIFEST_MAX) {
		free(buf);
		return host->error(VP_EIO, "cannot read '%s': %s", path,
				   n > MANIFEST_MAX ? "too large" : "read error");
	}
	buf[n] = '\0';
	*text = buf;
	return 0;
}

static int dir_base_remove(void *tier, const char *name, const char *version)
{
	struct dir_tier *t = tier;
	char dir[PATH_MAX], trash[PATH_MAX], parent[PATH_MAX];
	int rc;

	if ((rc = base_dir(dir, t, name, version, 0)) < 0 ||
	    (rc = mkpath(trash, "%s/bases/.remove-%s-%s-%ld", t->root, name, version, (long)getpid())) < 0 ||
	    (rc = mkpath(parent, "%s/bases/%s", t->root, name)) < 0)
		return rc;
	/* Rename first: the version disappears at once, the slow delete follows. */
	if (rename(dir, trash) < 0)
		return os_error(errno, "cannot remove base '%s@%s'", name, version);
	if ((rc = fsync_path(parent, 1)) < 0 || (rc = rm_rf(trash)) < 0)
		return rc;
	if (rmdir(parent) == 0)
		fsync_parent(parent);
	return 0;
}

typedef int (*entry_fn)(void *tier, const char *dir, const char *entry, void *ctx);

/* Calls fn for each non-hidden entry of dir, sorted; a missing dir is empty. */
static int each_entry(void *tier, const char *dir, entry_fn fn, void *ctx)
{
	struct dirent **list = NULL;
	int n = scandir(dir, &list, NULL, alphasort);
	int rc = 0;

	if (n < 0)
		return errno == ENOENT ? 0 : os_error(errno, "cannot list '%s'", dir);
	for (int i = 0; i < n; i++) {
		if (rc == 0 && list[i]->d_name[0] != '.')
			rc = fn(tier, dir, list[i]->d_name, ctx);
		free(list[i]);
	}
	free(list);
	return rc;
}

struct list_ctx {
	vp_plugin_list_fn fn;
	void *ctx;
	const char *name;
	const char *pool;
	int kind;
	char cur[VP_PLUGIN_NAME_MAX];
};

static int list_version(void *tier, const char *dir, const char *version, void *ctx)
{
	struct list_ctx *lc = ctx;
	vp_image_info info;
	char manifest[PATH_MAX];

	(void)dir;
	memset(&info, 0, sizeof(info));
	if (mkpath(manifest, "%s/%s/manifest", dir, version) < 0 || access(manifest, F_OK) < 0)
		return 0; /* not a published version */
	if (dir_base_stat(tier, lc->cur, version, 0, &info) < 0)
		return VP_EIO;
	return lc->fn(lc->ctx, &info);
}

static int list_name(void *tier, const char *dir, const char *name, void *ctx)
{
	struct list_ctx *lc = ctx;
	char sub[PATH_MAX];

	if (lc->name && strcmp(lc->name, name))
		return 0;
	snprintf(lc->cur, sizeof(lc->cur), "%.*s", (int)sizeof(lc->cur) - 1, name);
	if (mkpath(sub, "%s/%s", dir, name) < 0)
		return VP_EINVAL;
	return each_entry(tier, sub, list_version, lc);
}

static int dir_base_list(void *tier, const char *name, vp_plugin_list_fn fn, void *ctx)
{
	struct dir_tier *t = tier;
	struct list_ctx lc = { .fn = fn, .ctx = ctx, .name = name };
	char bases[PATH_MAX];

	if (mkpath(bases, "%s/bases", t->root) < 0)
		return VP_EINVAL;
	return each_entry(tier, bases, list_name, &lc);
}

/* ---- deltas and data disks ------------------------------------------------------ */

static int disk_path(char *buf, const struct dir_tier *t, int kind, const char *pool,
		     const char *clone)
{
	if (kind != VP_DISK_DELTA && kind != VP_DISK_DATA)
		return host->error(VP_EINVAL, "invalid disk kind %d", kind);
	if (component_ok("pool name", pool) < 0 || component_ok("clone name", clone) < 0)
		return VP_EINVAL;
	return mkpath(buf, "%s/%s/%s/%s.qcow2", t->root, kind == VP_DISK_DELTA ? "deltas" : "data",
		      pool, clone);
}

static int dir_delta_stat(void *tier, int kind, const char *pool, const char *clone,
			  vp_image_info *out)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = disk_path(path, tier, kind, pool, clone)) < 0 ||
	    (rc = stat_image(path, "qcow2", 1, out)) < 0)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", clone);
	snprintf(out->pool, sizeof(out->pool), "%s", pool);
	out->kind = kind;
	return 0;
}

static int create_disk(const char *path, const vp_delta_request *req, unsigned flags)
{
	vp_qcow2_create_opts o;
	char dir[PATH_MAX];
	int rc;

	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	if ((rc = mkdir_p(dir)) < 0)
		return rc;
	vp_qcow2_create_opts_init(&o);
	if (req->kind == VP_DISK_DELTA) {
		o.backing_file = req->base_location;
		o.backing_format = req->base_format;
	}
	o.size = req->size;
	o.prealloc = (flags & VP_DELTA_PREALLOC_METADATA) ? VP_QCOW2_PREALLOC_METADATA
							    : VP_QCOW2_PREALLOC_OFF;
	/* A backed image can only preallocate with extended L2 (QEMU's rule). */
	o.extended_l2 = (flags & VP_DELTA_EXTENDED_L2) ||
			(req->kind == VP_DISK_DELTA && (flags & VP_DELTA_PREALLOC_METADATA));
	o.cluster_size = req->cluster_size;
	o.overwrite = (flags & VP_DELTA_OVERWRITE) != 0;
	o.mode = 0600; /* guest data: libvirt relabels it for QEMU */
	rc = vp_qcow2_create(path, &o);
	if (rc < 0)
		return forward_error(rc);
	/* The umask can only have taken bits away: make it exactly 0600. */
	if (chmod(path, 0600) < 0)
		return os_error(errno, "cannot set the mode of '%s'", path);
	return 0;
}

/* A writer killed before its rename leaves ".<file>.tmp.<pid>.<n>" beside
 * the disk; remove those of dead processes before writing the disk again. */
static void sweep_dead_temps(const char *path)
{
	char dir[PATH_MAX], prefix[PATH_MAX];
	const char *base = strrchr(path, '/') + 1;
	size_t plen;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%.*s", (int)(base - path - 1), path);
	plen = (size_t)snprintf(prefix, sizeof(prefix), ".%s.tmp.", base);
	if (!(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		char victim[PATH_MAX];
		long pid;

		if (strncmp(e->d_name, prefix, plen))
			continue;
		pid = strtol(e->d_name + plen, NULL, 10);
		if (pid <= 0 || (kill((pid_t)pid, 0) < 0 && errno == ESRCH)) {
			if ((size_t)snprintf(victim, sizeof(victim), "%s/%s", dir, e->d_name) < sizeof(victim))
				unlink(victim);
		}
	}
	closedir(d);
}

/* ---- full clones ------------------------------------------------------------------ */

#ifdef VP_TEST_HOOKS
/* VDIPOOL_TEST_CRASH_COPY=1: SIGKILL the process once a full copy has written
 * its first data extent (test builds only), for the kill -9 tests. */
static void copy_crash_point(void)
{
	const char *v = getenv("VDIPOOL_TEST_CRASH_COPY");

	if (v && !strcmp(v, "1"))
		kill(getpid(), SIGKILL);
}
/* VDIPOOL_TEST_CRASH_FLATTEN=1: SIGKILL once a flattened copy is complete under its temporary
 * name, before the rename (test builds only). */
static void flatten_crash_point(void)
{
	const char *v = getenv("VDIPOOL_TEST_CRASH_FLATTEN");

	if (v && !strcmp(v, "1"))
		kill(getpid(), SIGKILL);
}
#else
static void copy_crash_point(void) {}
static void flatten_crash_point(void) {}
#endif

/* Copies [off, end) of in to the same offsets of out: copy_file_range (which
 * shares extents itself where the file system can), else read and write. */
static int copy_range(int in, int out, off_t off, off_t end, const char *src, const char *dst)
{
	bool no_cfr = false; /* per call: another pair of files may support it */
	char *b = NULL;

	while (off < end) {
		size_t want = (size_t)(end - off > (1 << 30) ? (1 << 30) : end - off);
		ssize_t n = -1;

		if (!no_cfr) {
			loff_t io = off, oo = off;
			n = copy_file_range(in, &io, out, &oo, want, 0);
			if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
				      errno == EOPNOTSUPP)) {
				no_cfr = true;
				continue;
			}
		} else {
			if (!b && !(b = malloc(1 << 20)))
				return host->error(VP_ENOMEM, "out of memory");
			n = pread(in, b, want < (1 << 20) ? want : (1 << 20), off);
			if (n > 0) {
				ssize_t w = 0;
				for (ssize_t done = 0; done < n; done += w)
					if ((w = pwrite(out, b + done, (size_t)(n - done), off + done)) < 0)
						break;
				if (w < 0) {
					int e = errno;
					free(b);
					return os_error(e, "cannot write '%s'", dst);
				}
			}
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(b);
			return os_error(e, "cannot copy '%s' to '%s'", src, dst);
		}
		if (n == 0) {
			free(b);
			return host->error(VP_EIO, "cannot copy '%s': it shrank while being copied", src);
		}
		off += n;
		copy_crash_point();
	}
	free(b);
	return 0;
}

/* The file's data extents only (SEEK_DATA/SEEK_HOLE): holes stay holes and are never read. */
static int copy_sparse(int in, int out, off_t size, const char *src, const char *dst)
{
	off_t pos = 0;
	int rc;

	if (ftruncate(out, size) < 0)
		return os_error(errno, "cannot size '%s'", dst);
	while (pos < size) {
		off_t data = lseek(in, pos, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			return 0; /* only a hole is left */
		if (data < 0 && errno == EINVAL)
			return copy_range(in, out, pos, size, src, dst); /* no SEEK_DATA here */
		if (data < 0)
			return os_error(errno, "cannot seek in '%s'", src);
		if ((hole = lseek(in, data, SEEK_HOLE)) < 0)
			return os_error(errno, "cannot seek in '%s'", src);
		if (hole > size)
			hole = size;
		if ((rc = copy_range(in, out, data, hole, src, dst)) < 0)
			return rc;
		pos = hole;
	}
	return 0;
}

/* The whole file: one reflink (FICLONE: XFS with reflink=1, btrfs) when the
 * file system shares extents, else a sparse copy. *how says which. */
static int copy_file(const char *src, const char *dst, int out, const char **how)
{
	struct stat st;
	int in = open(src, O_RDONLY | O_CLOEXEC), rc;

	if (in < 0)
		return os_error(errno, "cannot open base '%s'", src);
	if (fstat(in, &st) < 0) {
		rc = os_error(errno, "cannot stat '%s'", src);
	} else if (ioctl(out, FICLONE, in) == 0) {
		*how = "reflink";
		rc = 0;
	} else if (errno != EOPNOTSUPP && errno != EXDEV && errno != EINVAL && errno != ENOTTY &&
		   errno != ENOSYS && errno != EPERM) {
		rc = os_error(errno, "cannot reflink '%s' to '%s'", src, dst);
	} else {
		*how = "sparse copy";
		rc = copy_sparse(in, out, st.st_size, src, dst);
	}
	close(in);
	return rc;
}

/* rename() that replaces the target only when asked to. */
static int put_in_place(const char *tmp, const char *path, bool overwrite)
{
	if (overwrite ? rename(tmp, path) == 0
		      : renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (!overwrite && (errno == EINVAL || errno == ENOSYS) && link(tmp, path) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EEXIST)
		return host->error(VP_EEXIST, "'%s' exists already", path);
	return os_error(errno, "cannot rename '%s' to '%s'", tmp, path);
}

/* Grows a complete copy to `size` bytes (qemu-img resize: it also grows the L1 table). */
static int grow_copy(const char *tmp, uint64_t size)
{
	vp_qcow2_info qi;
	char arg[32];
	int rc;

	if ((rc = vp_qcow2_read_info(&qi, tmp)) < 0)
		return forward_error(rc);
	if (size <= qi.virtual_size) {
		if (size < qi.virtual_size)
			return host->error(VP_EINVAL, "cannot make a disk of %llu bytes from a base of "
					   "%llu bytes: a clone's disk is never smaller than its base",
					   (unsigned long long)size, (unsigned long long)qi.virtual_size);
		return 0;
	}
	snprintf(arg, sizeof(arg), "%llu", (unsigned long long)size);
	{
		const char *argv[] = { "qemu-img", "resize", "-q", "-f", "qcow2", tmp, arg, NULL };
		return host->run(argv);
	}
}

/* The temporary a new disk is written under, ".CLONE.qcow2.tmp.PID.<tag>N" in the disk's own
 * directory (sweep and sweep_dead_temps remove those of dead processes), created 0600 and
 * O_EXCL; refused when the disk exists and may not be replaced. Returns the open fd. */
static int open_temp(const char *path, char tag, bool overwrite, char tmp[PATH_MAX])
{
	static atomic_uint counter;
	const char *base = strrchr(path, '/') + 1;
	char dir[PATH_MAX];
	int fd, rc;

	snprintf(dir, sizeof(dir), "%.*s", (int)(base - path - 1), path);
	if ((rc = mkdir_p(dir)) < 0 ||
	    (rc = mkpath(tmp, "%s/.%s.tmp.%ld.%c%u", dir, base, (long)getpid(), tag,
			 atomic_fetch_add(&counter, 1))) < 0)
		return rc;
	if (!overwrite && access(path, F_OK) == 0)
		return host->error(VP_EEXIST, "'%s' exists already", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return os_error(errno, "cannot create '%s'", tmp);
	return fd;
}

/* A full clone: a standalone qcow2 under a temporary name in the disk's own
 * directory (".CLONE.qcow2.tmp.PID.N", which sweep and sweep_dead_temps remove
 * when the process died), made durable, then renamed into place: the disk is
 * complete or absent, like a delta. A qcow2 base is copied as it is (it has no
 * backing file, so the copy is standalone); a raw base is converted to qcow2
 * by qemu-img (which skips zeroes), because a clone's disk is a .qcow2 file. */
static int create_full(const char *path, const vp_delta_request *req)
{
	const char *how = "qemu-img convert";
	char tmp[PATH_MAX];
	int fd, rc;

	if ((fd = open_temp(path, 'f', (req->flags & VP_DELTA_OVERWRITE) != 0, tmp)) < 0)
		return fd;
	if (req->base_format && !strcmp(req->base_format, "raw")) {
		const char *argv[] = { "qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
				       req->base_location, tmp, NULL };
		close(fd);
		fd = -1;
		rc = host->run(argv);
	} else {
		vp_qcow2_info qi;
		if ((rc = vp_qcow2_read_info(&qi, req->base_location)) < 0)
			rc = forward_error(rc);
		else if (qi.has_backing)
			rc = host->error(VP_EINVAL, "base '%s' has a backing file: a copy of it would not "
					 "stand alone", req->base_location);
		else
			rc = copy_file(req->base_location, tmp, fd, &how);
	}
	if (rc == 0 && req->size)
		rc = grow_copy(tmp, req->size);
	if (rc == 0 && fd < 0 && (fd = open(tmp, O_WRONLY | O_CLOEXEC)) < 0)
		rc = os_error(errno, "cannot open '%s'", tmp);
	if (rc == 0 && fchmod(fd, 0600) < 0)
		rc = os_error(errno, "cannot set the mode of '%s'", tmp);
	if (rc == 0 && fsync(fd) < 0)
		rc = os_error(errno, "cannot fsync '%s'", tmp);
	if (fd >= 0 && close(fd) < 0 && rc == 0)
		rc = os_error(errno, "cannot close '%s'", tmp);
	if (rc == 0)
		rc = put_in_place(tmp, path, (req->flags & VP_DELTA_OVERWRITE) != 0);
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if (host->debug)
		host->debug("full clone '%s' of '%s' by %s", path, req->base_location, how);
	return fsync_parent(path);
}

/* ---- LUKS-encrypted disks ---------------------------------------------------------- */

/* A value inside qemu-img's -o list: commas doubled. */
static int opt_append(char *buf, size_t len, const char *key, const char *val)
{
	size_t n = strlen(buf);

	n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s=", n ? "," : "", key);
	for (const char *c = val; *c && n + 2 < len; c++) {
		buf[n++] = *c;
		if (*c == ',')
			buf[n++] = ',';
	}
	if (n + 1 >= len)
		return host->error(VP_EINVAL, "qemu-img options too long (%s)", key);
	buf[n] = '\0';
	return 0;
}

/* A LUKS-encrypted qcow2 (delta or data disk), made by qemu-img: the passphrase
 * reaches it as /proc/self/fd/N of the caller's memfd (never on its command line,
 * never in a file), under ".CLONE.qcow2.tmp.PID.eN" created 0600 first (qemu-img
 * reuses the file and its mode), made durable, then renamed into place. PBKDF2
 * is kept short (encrypt.iter-time=10 ms): the passphrase is 256 random bits,
 * which no amount of key stretching makes harder to guess. */
static int create_luks(const char *path, const vp_delta_request *req)
{
	char tmp[PATH_MAX], obj[64], o[3 * PATH_MAX], num[32], size[32] = "";
	bool ext = (req->flags & VP_DELTA_EXTENDED_L2) ||
		   (req->kind == VP_DISK_DELTA && (req->flags & VP_DELTA_PREALLOC_METADATA));
	int fd, rc;

	if (host->_struct_size < offsetof(vp_plugin_host, run_keep_fd) + sizeof(host->run_keep_fd) ||
	    !host->run_keep_fd)
		return host->error(VP_ENOTSUP, "disk '%s': this vdipool cannot hand a key to qemu-img "
				   "(plugin host older than API version 4)", path);
	if (req->secret_fd < 0 || lseek(req->secret_fd, 0, SEEK_SET) != 0)
		return host->error(VP_EINVAL, "disk '%s': no readable passphrase descriptor", path);
	if ((fd = open_temp(path, 'e', (req->flags & VP_DELTA_OVERWRITE) != 0, tmp)) < 0)
		return fd;
	close(fd);
	snprintf(obj, sizeof(obj), "secret,id=vpsec0,file=/proc/self/fd/%d", req->secret_fd);
	o[0] = '\0';
	snprintf(num, sizeof(num), "%u", req->cluster_size ? req->cluster_size : (ext ? 131072u : 65536u));
	rc = opt_append(o, sizeof(o), "encrypt.format", "luks");
	if (rc == 0)
		rc = opt_append(o, sizeof(o), "encrypt.key-secret", "vpsec0");
	if (rc == 0)
		rc = opt_append(o, sizeof(o), "encrypt.iter-time", "10");
	if (rc == 0)
		rc = opt_append(o, sizeof(o), "cluster_size", num);
	if (rc == 0 && ext)
		rc = opt_append(o, sizeof(o), "extended_l2", "on");
	if (rc == 0 && (req->flags & VP_DELTA_PREALLOC_METADATA))
		rc = opt_append(o, sizeof(o), "preallocation", "metadata");
	if (rc == 0 && req->kind == VP_DISK_DELTA) {
		rc = opt_append(o, sizeof(o), "backing_file", req->base_location);
		if (rc == 0)
			rc = opt_append(o, sizeof(o), "backing_fmt", req->base_format ? req->base_format : "qcow2");
	}
	if (req->size)
		snprintf(size, sizeof(size), "%llu", (unsigned long long)req->size);
	if (rc == 0) {
		const char *argv[] = { "qemu-img", "create", "-q", "-f", "qcow2", "--object", obj, "-o", o,
				       tmp, size[0] ? size : NULL, NULL };
		rc = host->run_keep_fd(argv, req->secret_fd);
	}
	if (rc == 0 && chmod(tmp, 0600) < 0)
		rc = os_error(errno, "cannot set the mode of '%s'", tmp);
	if (rc == 0)
		rc = fsync_path(tmp, 0);
	if (rc == 0)
		rc = put_in_place(tmp, path, (req->flags & VP_DELTA_OVERWRITE) != 0);
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return fsync_parent(path);
}

/* ---- stamping: one disk written, the others copied from it -------------------------- */
/*
 * Every new disk of one kind, base, base format, size, cluster size and flags is the same
 * bytes: the qcow2 writer puts nothing of the clone into it (the backing name is the base's
 * path, the same for every clone). So the first such disk of a tier handle is written by the
 * writer as before; from the second on, one *stamp* is written beside the disks
 * (".stamp-N.qcow2.tmp.PID.s": a temporary of this process, removed at close and swept like
 * any other when the process died) and each disk is copied from it: FICLONE where the file
 * system shares extents (XFS with reflink=1, btrfs: nothing is written but the extent map),
 * else a sparse copy of its data extents (copy_file_range, in the kernel). Durability is paid
 * per group, not per disk (group commit): the threads whose copies are done share one
 * syncfs() before their renames and one fsync of the directory after them. Crash safety is
 * the writer's: a temporary name, durable before the rename, the directory durable before
 * the call returns; a kill leaves temporaries only, which the next writer sweeps.
 */

#define STAMP_KEY_MAX (PATH_MAX + 128)

struct stamp {
	char key[STAMP_KEY_MAX];
	unsigned uses;       /* disks asked for with this key */
	bool failed;         /* writing it failed: the writer makes each disk itself */
	char path[PATH_MAX]; /* "" until written */
	struct stamp *next;
};

/* Callers take tickets; one of them at a time (the leader) runs the flush for every ticket
 * taken before it started, the others wait for a flush that covers theirs. */
struct group {
	pthread_cond_t cv;
	unsigned long long taken, done;
	bool busy;
};

struct stamp_dir {
	char dir[PATH_MAX];
	unsigned nstamps;
	struct stamp *stamps;
	struct group data, names;
	struct stamp_dir *next;
};

static void stamps_release(struct dir_tier *t)
{
	for (struct stamp_dir *d = t->dirs, *dn; d; d = dn) {
		dn = d->next;
		for (struct stamp *s = d->stamps, *sn; s; s = sn) {
			sn = s->next;
			if (s->path[0])
				unlink(s->path);
			free(s);
		}
		pthread_cond_destroy(&d->data.cv);
		pthread_cond_destroy(&d->names.cv);
		free(d);
	}
	t->dirs = NULL;
}

/* The state of one directory of disks (lock held); made on first use, when the dead
 * processes' temporaries there are swept once. NULL when out of memory. */
static struct stamp_dir *stamp_dir_of(struct dir_tier *t, const char *dir, const char *path)
{
	struct stamp_dir *d;

	for (d = t->dirs; d; d = d->next)
		if (!strcmp(d->dir, dir))
			return d;
	if (!(d = calloc(1, sizeof(*d))))
		return NULL;
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	pthread_cond_init(&d->data.cv, NULL);
	pthread_cond_init(&d->names.cv, NULL);
	d->next = t->dirs;
	t->dirs = d;
	sweep_dead_temps(path);
	return d;
}

static int flush_fs(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return os_error(errno, "cannot open '%s'", dir);
	if (syncfs(fd) < 0)
		rc = os_error(errno, "cannot sync the file system of '%s'", dir);
	close(fd);
	return rc;
}

static int flush_dir(const char *dir) { return fsync_path(dir, 1); }

static int group_flush(struct dir_tier *t, struct group *g, int (*flush)(const char *), const char *dir)
{
	unsigned long long mine;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	mine = ++g->taken;
	while (g->done < mine) {
		unsigned long long upto;
		if (g->busy) {
			pthread_cond_wait(&g->cv, &t->lock);
			continue;
		}
		upto = g->taken;
		g->busy = true;
		pthread_mutex_unlock(&t->lock);
		rc = flush(dir);
		pthread_mutex_lock(&t->lock);
		g->busy = false;
		if (rc == 0 && upto > g->done)
			g->done = upto;
		pthread_cond_broadcast(&g->cv);
		if (rc < 0)
			break; /* the waiters flush again themselves */
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* The stamp for this request, written at the second use of its key; NULL: the writer makes
 * the disk itself (a first disk, or no stamp could be written). Lock held while writing it:
 * the other requests of the tier wait for it (they would need it too). */
static const char *stamp_for(struct dir_tier *t, struct stamp_dir *d, const vp_delta_request *req,
			     unsigned flags)
{
	char key[STAMP_KEY_MAX];
	const char *out = NULL;
	struct stamp *s;

	snprintf(key, sizeof(key), "%d|%s|%s|%llu|%u|%x", req->kind,
		 req->base_location ? req->base_location : "", req->base_format ? req->base_format : "",
		 (unsigned long long)req->size, req->cluster_size, flags & ~VP_DELTA_OVERWRITE);
	pthread_mutex_lock(&t->lock);
	for (s = d->stamps; s && strcmp(s->key, key); s = s->next)
		;
	if (!s && (s = calloc(1, sizeof(*s)))) {
		snprintf(s->key, sizeof(s->key), "%s", key);
		s->next = d->stamps;
		d->stamps = s;
	}
	if (s && ++s->uses >= 2 && !s->failed) {
		char p[PATH_MAX];
		if (!s->path[0] &&
		    (mkpath(p, "%s/.stamp-%u.qcow2.tmp.%ld.s", d->dir, d->nstamps++, (long)getpid()) < 0 ||
		     create_disk(p, req, flags & ~VP_DELTA_OVERWRITE) < 0))
			s->failed = true;
		else if (!s->path[0])
			snprintf(s->path, sizeof(s->path), "%s", p);
		out = s->failed ? NULL : s->path;
	}
	pthread_mutex_unlock(&t->lock);
	return out;
}

/* A new qcow2 disk (delta or data disk) at `path`: copied from the stamp of its kind when
 * there is one, else written by the qcow2 writer. */
static int create_stamped(struct dir_tier *t, const char *path, const vp_delta_request *req, unsigned flags)
{
	static atomic_uint counter;
	const char *base = strrchr(path, '/') + 1, *how = "copy", *stamp;
	char dir[PATH_MAX], tmp[PATH_MAX];
	struct stamp_dir *d;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%.*s", (int)(base - path - 1), path);
	if ((rc = mkdir_p(dir)) < 0)
		return rc;
	pthread_mutex_lock(&t->lock);
	d = stamp_dir_of(t, dir, path);
	pthread_mutex_unlock(&t->lock);
	if (!d)
		return host->error(VP_ENOMEM, "out of memory");
	if (!(stamp = stamp_for(t, d, req, flags)))
		return create_disk(path, req, flags);
	if (!(flags & VP_DELTA_OVERWRITE) && access(path, F_OK) == 0)
		return host->error(VP_EEXIST, "'%s' exists already", path);
	if ((rc = mkpath(tmp, "%s/.%s.tmp.%ld.s%u", dir, base, (long)getpid(), atomic_fetch_add(&counter, 1))) < 0)
		return rc;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
		return os_error(errno, "cannot create '%s'", tmp);
	rc = copy_file(stamp, tmp, fd, &how);
	if (rc == 0 && fchmod(fd, 0600) < 0)
		rc = os_error(errno, "cannot set the mode of '%s'", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = os_error(errno, "cannot close '%s'", tmp);
	/* The contents are durable before any name points at them. */
	if (rc == 0)
		rc = group_flush(t, &d->data, flush_fs, dir);
	if (rc == 0)
		rc = put_in_place(tmp, path, (flags & VP_DELTA_OVERWRITE) != 0);
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if (host->debug)
		host->debug("disk '%s' stamped from '%s' by %s", path, stamp, how);
	return group_flush(t, &d->names, flush_dir, dir);
}

#define KNOWN_FLAGS (VP_DELTA_PREALLOC_METADATA | VP_DELTA_OVERWRITE | VP_DELTA_EXTENDED_L2 | VP_DELTA_FULL | \
		     VP_DELTA_ENCRYPT_LUKS)

static int dir_delta_create(void *tier, const vp_delta_request *req, vp_image_info *out)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = disk_path(path, tier, req->kind, req->pool, req->clone)) < 0)
		return rc;
	/* A flag from a newer host is refused, never ignored (it may ask for a full copy). */
	if (req->flags & ~KNOWN_FLAGS)
		return host->error(VP_ENOTSUP, "disk '%s/%s': unknown request flags 0x%x", req->pool,
				   req->clone, req->flags & ~KNOWN_FLAGS);
	if ((req->flags & VP_DELTA_FULL) && req->kind != VP_DISK_DELTA)
		return host->error(VP_EINVAL, "disk '%s/%s': only a clone's disk can be a full copy",
				   req->pool, req->clone);
	if ((req->flags & VP_DELTA_FULL) && (req->flags & VP_DELTA_ENCRYPT_LUKS))
		return host->error(VP_EINVAL, "disk '%s/%s': a full copy is not encrypted", req->pool,
				   req->clone);
	if (req->kind == VP_DISK_DELTA && (!req->base_location || req->base_location[0] != '/'))
		return host->error(VP_EINVAL, "delta '%s/%s': the base must be an absolute path",
				   req->pool, req->clone);
	if (req->kind == VP_DISK_DATA && !req->size)
		return host->error(VP_EINVAL, "data disk '%s/%s': size is required", req->pool,
				   req->clone);
	if (req->flags & VP_DELTA_FULL) {
		sweep_dead_temps(path);
		rc = create_full(path, req);
	} else if (req->flags & VP_DELTA_ENCRYPT_LUKS) {
		/* Never stamped: each LUKS disk has its own master key, salt and UUID. */
		sweep_dead_temps(path);
		rc = create_luks(path, req);
	} else {
		rc = create_stamped(tier, path, req, req->flags);
	}
	if (rc < 0)
		return rc;
	return out ? dir_delta_stat(tier, req->kind, req->pool, req->clone, out) : 0;
}

/* Does the directory holding `path` still exist? */
static bool parent_exists(const char *path)
{
	char d[PATH_MAX];
	struct stat st;

	snprintf(d, sizeof(d), "%s", path);
	*strrchr(d, '/') = '\0';
	return stat(d, &st) == 0 && S_ISDIR(st.st_mode);
}

static int dir_delta_remove(void *tier, int kind, const char *pool, const char *clone)
{
	char path[PATH_MAX];
	int rc;

	if ((rc = disk_path(path, tier, kind, pool, clone)) < 0)
		return rc;
	/* Already gone is done: removal must be idempotent for crash recovery. */
	if (unlink(path) < 0 && errno != ENOENT)
		return os_error(errno, "cannot remove '%s'", path);
	/* Its snapshots (CLONE.snap/) go with it: nothing else stands on them. */
	if (kind == VP_DISK_DELTA) {
		char snap[PATH_MAX];
		size_t n = strlen(path);

		if ((rc = mkpath(snap, "%.*s.snap", (int)(n - 6), path)) < 0)
			return rc;
		if ((rc = rm_rf(snap)) < 0)
			return rc;
	}
	/* A parallel removal of the pool's last disk may have taken the
	 * directory already: then there is nothing left to make durable. */
	if ((rc = fsync_parent(path)) < 0 && parent_exists(path))
		return rc;
	/* The pool's directory goes with its last disk, so a destroyed pool
	 * leaves nothing behind (ENOTEMPTY: other disks remain). */
	*strrchr(path, '/') = '\0';
	if (rmdir(path) == 0)
		return fsync_parent(path);
	return 0;
}

static int list_disk(void *tier, const char *dir, const char *file, void *ctx)
{
	struct list_ctx *lc = ctx;
	vp_image_info info;
	size_t n = strlen(file);
	char clone[VP_PLUGIN_NAME_MAX];

	(void)dir;
	if (n <= 6 || strcmp(file + n - 6, ".qcow2") || n - 6 >= sizeof(clone))
		return 0;
	snprintf(clone, sizeof(clone), "%.*s", (int)(n - 6), file);
	memset(&info, 0, sizeof(info));
	/* An unreadable delta fails the listing: guessing its backing file
	 * wrongly could let a base be deleted under it. */
	if (dir_delta_stat(tier, lc->kind, lc->cur, clone, &info) < 0)
		return VP_EIO;
	return lc->fn(lc->ctx, &info);
}

static int list_pool(void *tier, const char *dir, const char *pool, void *ctx)
{
	struct list_ctx *lc = ctx;
	char sub[PATH_MAX];

	if (lc->pool && strcmp(lc->pool, pool))
		return 0;
	snprintf(lc->cur, sizeof(lc->cur), "%.*s", (int)sizeof(lc->cur) - 1, pool);
	if (mkpath(sub, "%s/%s", dir, pool) < 0)
		return VP_EINVAL;
	return each_entry(tier, sub, list_disk, lc);
}

static int dir_delta_list(void *tier, const char *pool, vp_plugin_list_fn fn, void *ctx)
{
	struct dir_tier *t = tier;
	struct list_ctx lc = { .fn = fn, .ctx = ctx, .pool = pool };
	char top[PATH_MAX];
	int rc;

	for (int kind = VP_DISK_DELTA; kind <= VP_DISK_DATA; kind++) {
		lc.kind = kind;
		if ((rc = mkpath(top, "%s/%s", t->root, kind == VP_DISK_DELTA ? "deltas" : "data")) < 0 ||
		    (rc = each_entry(tier, top, list_pool, &lc)) != 0)
			return rc;
	}
	return 0;
}

static int dir_delta_rebase(void *tier, const char *pool, const char *clone,
			    const char *base_location, const char *base_format)
{
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = pool, .clone = clone,
				 .base_location = base_location, .base_format = base_format };
	char path[PATH_MAX];
	vp_qcow2_info qi;
	int rc;

	if ((rc = disk_path(path, tier, VP_DISK_DELTA, pool, clone)) < 0)
		return rc;
	if ((rc = vp_qcow2_read_info(&qi, path)) < 0)
		return forward_error(rc);
	/* Keep the delta's flavour: extended L2 means it was preallocated. */
	req.flags = VP_DELTA_OVERWRITE | (qi.extended_l2 ? VP_DELTA_PREALLOC_METADATA : 0);
	return create_stamped(tier, path, &req, req.flags);
}

/* qemu-img creates its output by the umask: it writes into a private 0700
 * directory (CLONE.qcow2.flatten-PID.tmp/), and the file leaves it 0600. */
static int dir_delta_flatten(void *tier, const char *pool, const char *clone)
{
	char path[PATH_MAX], tmp[PATH_MAX], out[PATH_MAX];
	int rc;

	if ((rc = disk_path(path, tier, VP_DISK_DELTA, pool, clone)) < 0 ||
	    (rc = mkpath(tmp, "%s.flatten-%ld.tmp", path, (long)getpid())) < 0 ||
	    (rc = mkpath(out, "%s/disk.qcow2", tmp)) < 0)
		return rc;
	rm_rf(tmp);
	if (mkdir(tmp, 0700) < 0)
		return os_error(errno, "cannot create '%s'", tmp);
	{
		const char *argv[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "qcow2",
				       path, out, NULL };
		rc = host->run(argv);
	}
	if (rc == 0 && chmod(out, 0600) < 0)
		rc = os_error(errno, "cannot set the mode of '%s'", out);
	if (rc == 0)
		rc = fsync_path(out, 0);
	if (rc == 0)
		flatten_crash_point();
	if (rc == 0 && rename(out, path) < 0)
		rc = os_error(errno, "cannot rename '%s'", out);
	rm_rf(tmp);
	return rc < 0 ? rc : fsync_parent(path);
}

/* ---- sweeping dead processes' temporaries ------------------------------------------ */

/* A pid that vdipool put in a name belongs to a process that is gone. */
static bool pid_dead(const char *digits, const char *end_ok)
{
	char *end;
	long pid = strtol(digits, &end, 10);

	if (end == digits || pid <= 0 || (end_ok ? strncmp(end, end_ok, strlen(end_ok)) : *end != '\0'))
		return false;
	return pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

/* bases/.import-NAME-V-PID and bases/.remove-NAME-V-PID: the pid is after the last '-'. */
static bool stale_base_entry(const char *dir, const char *n)
{
	(void)dir;
	const char *dash = strrchr(n, '-');

	return (!strncmp(n, ".import-", 8) || !strncmp(n, ".remove-", 8)) && dash && pid_dead(dash + 1, NULL);
}

/* A clone's snapshots whose disk is gone (its removal was killed between the two): CLONE.snap
 * without CLONE.qcow2. A snapshot never takes the disk away, it replaces it by a rename. */
static bool orphaned_snapshots(const char *dir, const char *n)
{
	char disk[PATH_MAX];
	size_t len = strlen(n);

	if (len <= 5 || strcmp(n + len - 5, ".snap") ||
	    mkpath(disk, "%s/%.*s.qcow2", dir, (int)(len - 5), n) < 0)
		return false;
	return access(disk, F_OK) < 0 && errno == ENOENT;
}

/* deltas|data/POOL/.CLONE.qcow2.tmp.PID.N, CLONE.qcow2.flatten-PID.tmp, orphaned CLONE.snap */
static bool stale_disk_entry(const char *dir, const char *n)
{
	const char *t = strstr(n, ".tmp."), *f = strstr(n, ".flatten-");

	return (n[0] == '.' && t && pid_dead(t + 5, ".")) || (f && pid_dead(f + 9, ".tmp")) ||
	       orphaned_snapshots(dir, n);
}

static int sweep_dir(const char *dir, bool (*stale)(const char *, const char *))
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : os_error(errno, "cannot read '%s'", dir);
	while ((e = readdir(d)) && rc == 0) {
		char victim[PATH_MAX];
		if (stale(dir, e->d_name) && (rc = mkpath(victim, "%s/%s", dir, e->d_name)) == 0)
			rc = rm_rf(victim);
	}
	closedir(d);
	return rc;
}

static int sweep_disks(const char *top)
{
	struct dirent *e;
	DIR *d = opendir(top);
	int rc = 0;

	if (!d)
		return errno == ENOENT ? 0 : os_error(errno, "cannot read '%s'", top);
	while ((e = readdir(d)) && rc == 0) {
		char pool[PATH_MAX];
		if (e->d_name[0] != '.' && (rc = mkpath(pool, "%s/%s", top, e->d_name)) == 0)
			rc = sweep_dir(pool, stale_disk_entry);
	}
	closedir(d);
	return rc;
}

static int dir_sweep(void *tier)
{
	struct dir_tier *t = tier;
	char p[PATH_MAX];
	int rc;

	if ((rc = mkpath(p, "%s/bases", t->root)) < 0 || (rc = sweep_dir(p, stale_base_entry)) < 0 ||
	    (rc = mkpath(p, "%s/deltas", t->root)) < 0 || (rc = sweep_disks(p)) < 0 ||
	    (rc = mkpath(p, "%s/data", t->root)) < 0)
		return rc;
	return sweep_disks(p);
}

static vp_plugin_ops dir_ops = {
	.name = "dir",
	.version = "1.0",
	.description = "bases and qcow2 deltas as files in a local directory",
	.capabilities = VP_CAP_LINKED_CLONE | VP_CAP_PREALLOC_METADATA | VP_CAP_REBASE | VP_CAP_FLATTEN |
			VP_CAP_FULL_CLONE | VP_CAP_ENCRYPT_LUKS,
	.load = dir_load,
	.open = dir_open,
	.close = dir_close,
	.base_stage = dir_base_stage,
	.base_commit = dir_base_commit,
	.base_abort = dir_base_abort,
	.base_read = dir_base_read,
	.base_stat = dir_base_stat,
	.base_manifest = dir_base_manifest,
	.base_remove = dir_base_remove,
	.base_list = dir_base_list,
	.delta_create = dir_delta_create,
	.delta_stat = dir_delta_stat,
	.delta_remove = dir_delta_remove,
	.delta_list = dir_delta_list,
	.delta_rebase = dir_delta_rebase,
	.delta_flatten = dir_delta_flatten,
	.thread_model = VP_THREAD_MODEL_PARALLEL, /* files and a stateless handle */
	.sweep = dir_sweep,
};

VP_REGISTER_PLUGIN(dir_ops);
