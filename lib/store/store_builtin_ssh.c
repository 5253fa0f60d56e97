/* store_builtin_ssh.c: the built-in `ssh` storage backend: a dir tier's exact layout on another host, over SFTP. */
/*
 * The tier directory (cfg->path) is a directory on the host, laid out exactly as the
 * dir backend lays out a local one (plugins/dir/dir.c), so a vdipool running on that
 * host sees the same store:
 *   bases/<name>/<version>/disk.qcow2|disk.raw (0444) + manifest
 *   deltas/<pool>/<clone>.qcow2   backing file = the base's absolute path on the host
 *   data/<pool>/<clone>.qcow2     standalone data disks
 * Settings: host, user, known_hosts (required); port (22), identity (a private key
 * file; absent: ssh-agent), compress (yes|no), timeout (seconds), tmpdir (a local
 * directory where deltas are built before upload; /var/tmp).
 *
 * One SSH session per tier handle, so calls on a handle are serialised (the loader
 * does it: thread model 0). Bases are not imported here: import them on the
 * controller and push them (vp_store_push); base_stage/commit/abort say so.
 *
 * Temporaries. The dir backend names its temporaries with a pid and sweeps those of
 * dead processes; a pid on the host says nothing about a process on the controller.
 * This backend names them with a token instead, "ssh-<time>-<pid>-<n>-t" (the dir
 * backend never takes it for a pid, so a vdipool on the host leaves it alone):
 *   deltas|data/<pool>/.<clone>.qcow2.tmp.ssh-...   a disk being uploaded
 *   bases/.remove-<name>-<version>-ssh-...          a base being deleted
 * and sweep removes those whose mtime is more than an hour old (an upload that is
 * alive writes to its file; a removal takes seconds).
 */
#define VP_PLUGIN_INIT_SYMBOL vp_builtin_ssh_init
#define VP_PLUGIN_EXPORT

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"
#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/qcow2.h"
#include "vdipool/ssh.h"

#define MANIFEST_MAX (64 * 1024)
#define HEAD_MAX (64 * 1024)
#define SWEEP_AGE_MIN 60
/* One line per file: size, blocks, block unit, mtime with nanoseconds, path (last:
 * it may hold spaces). %.9Y needs GNU coreutils (Debian 12 has 9.1). */
#define STAT_CMD "stat -L -c '%%s %%b %%B %%.9Y %%n' -- " /* a printf format */

struct ssh_tier {
	vp_ssh *s;
	char root[PATH_MAX];
	char label[400];   /* user@host:port, for messages */
	char tmpdir[PATH_MAX];
};

/* ---- small helpers ---------------------------------------------------------------- */

static int mkpath(char *buf, const char *fmt, ...) VP_PRINTF(2, 3);
static int mkpath(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "path too long: '%.64s...'", buf);
	return 0;
}

/* One path component we create: not empty, no '/', not hidden (dot names are ours). */
static int component_ok(const char *what, const char *s)
{
	if (!s || !*s || s[0] == '.' || strchr(s, '/') || strlen(s) >= VP_PLUGIN_NAME_MAX)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "invalid %s '%s'", what, s ? s : "");
	return 0;
}

static int oom(void) { return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory"); }

/* A name no other process (here or on any other controller) uses at the same time. */
static void make_token(char *buf, size_t len)
{
	static unsigned counter;
	unsigned n = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);

	/* Ends in a letter: the dir backend takes what follows a name's last '-' (or
	 * ".tmp.") for a pid, and this must never read as one. */
	snprintf(buf, len, "ssh-%llx-%lx-%x-t", (unsigned long long)time(NULL), (long)getpid(), n);
}

/* Runs cmd on the host and requires exit status 0 (else an error quoting its stderr);
 * *out (may be NULL) gets its stdout, the caller's to free. */
static int run_remote(struct ssh_tier *t, const char *cmd, double timeout, char **out)
{
	vp_ssh_exec_result r;
	int rc = vp_ssh_exec(t->s, cmd, timeout, &r);

	if (rc < 0)
		return rc;
	if (r.exit_status != 0 || r.exit_signal[0]) {
		char *nl = strchr(r.err, '\n');
		if (nl)
			*nl = '\0';
		rc = vp_error_set(VP_ERR_STORE, VP_EIO, "'%.300s' failed on '%s' (exit %d%s%s): %.300s",
				  cmd, t->label, r.exit_status, r.exit_signal[0] ? ", signal " : "",
				  r.exit_signal, r.err);
	} else if (out) {
		*out = r.out;
		r.out = NULL;
	}
	vp_ssh_exec_result_release(&r);
	return rc;
}

/* The dir that holds path (path has a '/'). */
static void parent_of(char *buf, const char *path)
{
	snprintf(buf, PATH_MAX, "%s", path);
	*strrchr(buf, '/') = '\0';
}

/* ---- stat lines ---------------------------------------------------------------------- */

typedef struct rstat {
	uint64_t size, allocated;
	int64_t sec;
	long nsec;
	char *path;  /* points into the command's output */
} rstat;

/* "SIZE BLOCKS UNIT SEC[.NSEC] PATH"; false when the line is not one of ours. */
static bool parse_stat_line(char *line, rstat *st)
{
	unsigned long long size, blocks, unit;
	long long sec;
	int n = 0;
	char *p;

	if (sscanf(line, "%llu %llu %llu %lld%n", &size, &blocks, &unit, &sec, &n) != 4)
		return false;
	p = line + n;
	st->nsec = 0;
	if (*p == '.') {
		long mul = 100000000;
		for (p++; *p >= '0' && *p <= '9'; p++, mul /= 10)
			st->nsec += (*p - '0') * mul;
	}
	if (*p != ' ' || p[1] != '/')
		return false;
	st->size = size;
	st->allocated = blocks * unit;
	st->sec = sec;
	st->path = p + 1;
	return true;
}

/* stat's complaints other than "No such file" (a glob that matched nothing stays a
 * literal word, and a version or disk may vanish meanwhile): a file that exists but
 * cannot be stat'ed must fail a listing, not drop out of it, because a delta missing
 * from a listing would let gc remove the base under it. */
static int stat_errors(struct ssh_tier *t, char *err)
{
	for (char *save = NULL, *l = strtok_r(err, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (!strstr(l, "No such file or directory"))
			return vp_error_set(VP_ERR_STORE, VP_EIO, "cannot list the store's files on "
					    "'%s': %.300s", t->label, l);
	return 0;
}

/* Stats the files `args` names (shell words: quoted paths, maybe with globs) in one
 * command, after the shell snippet `pre` (may complain on stderr); files that do not
 * exist are left out. *out (malloc'ed, pointing into *text) and *text are the caller's. */
static int stat_remote(struct ssh_tier *t, const char *pre, const char *args, rstat **out,
		       size_t *n, char **text)
{
	VP_AUTOFREE char *cmd = vp_strdup_printf("export LC_ALL=C; %s" STAT_CMD "%s", pre, args);
	vp_ssh_exec_result r;
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	*text = NULL;
	if (!cmd)
		return oom();
	if ((rc = vp_ssh_exec(t->s, cmd, 0, &r)) < 0)
		return rc;
	rc = r.exit_signal[0] ? vp_error_set(VP_ERR_STORE, VP_EIO, "'stat' on '%s' was killed "
					      "(signal %s)", t->label, r.exit_signal)
			      : stat_errors(t, r.err);
	*text = r.out;
	r.out = NULL;
	vp_ssh_exec_result_release(&r);
	if (rc < 0)
		return rc;
	for (char *save = NULL, *l = strtok_r(*text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		rstat st;
		if (!parse_stat_line(l, &st))
			continue;
		if (*n == cap) {
			rstat *v = realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!v)
				return oom();
			*out = v;
		}
		(*out)[(*n)++] = st;
	}
	return 0;
}

static void fill_stat(vp_image_info *out, const rstat *st, const char *fmt)
{
	out->size = st->size;
	out->allocated = st->allocated;
	out->mtime_sec = st->sec;
	out->mtime_nsec = st->nsec;
	snprintf(out->format, sizeof(out->format), "%s", fmt);
	snprintf(out->location, sizeof(out->location), "%s", st->path);
	out->virtual_size = strcmp(fmt, "raw") ? 0 : st->size;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* ---- qcow2 headers read over SFTP ------------------------------------------------------ */

/* Serves the first 64 KiB (header, extensions, backing name) from one read. */
struct rsrc {
	vp_ssh_file *f;
	unsigned char head[HEAD_MAX];
	size_t head_len;
};

static int rsrc_pread(void *opaque, void *buf, size_t len, uint64_t off)
{
	struct rsrc *r = opaque;

	if (off < r->head_len && len <= r->head_len - off) {
		memcpy(buf, r->head + off, len);
		return 0;
	}
	return vp_ssh_file_pread(r->f, buf, len, off);
}

/* Reads the header of a remote image: *is_qcow2 and, for qcow2, *qi; else the size. */
static int read_header(struct ssh_tier *t, const char *path, bool *is_qcow2, vp_qcow2_info *qi,
		       uint64_t *size)
{
	struct rsrc *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return oom();
	if ((rc = vp_ssh_file_open(t->s, path, &r->f, size)) < 0)
		goto out;
	r->head_len = *size < HEAD_MAX ? (size_t)*size : HEAD_MAX;
	if ((rc = vp_ssh_file_pread(r->f, r->head, r->head_len, 0)) < 0)
		goto out;
	*is_qcow2 = r->head_len >= 4 && !memcmp(r->head, "QFI\xfb", 4);
	if (*is_qcow2 && (rc = vp_qcow2_parse_info(qi, rsrc_pread, r, *size, path)) < 0)
		vp_error_prefix("'%s' on '%s'", path, t->label);
out:
	vp_ssh_file_close(r->f);
	free(r);
	return rc;
}

/* ---- tiers ----------------------------------------------------------------------------- */

struct tier_params {
	const char *host, *user, *identity, *known_hosts, *tmpdir;
	int port;
	bool compress;
	double timeout;
};

static int parse_param(struct tier_params *p, const char *tier, const vp_plugin_param *kv)
{
	char *end;

	if (!strcmp(kv->key, "host")) p->host = kv->value;
	else if (!strcmp(kv->key, "user")) p->user = kv->value;
	else if (!strcmp(kv->key, "identity")) p->identity = kv->value;
	else if (!strcmp(kv->key, "known_hosts")) p->known_hosts = kv->value;
	else if (!strcmp(kv->key, "tmpdir") && kv->value[0] == '/') p->tmpdir = kv->value;
	else if (!strcmp(kv->key, "port")) {
		long v = strtol(kv->value, &end, 10);
		if (*end || end == kv->value || v < 1 || v > 65535)
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "tier '%s': port: expected "
					    "1-65535, got '%s'", tier, kv->value);
		p->port = (int)v;
	} else if (!strcmp(kv->key, "compress") && (!strcmp(kv->value, "yes") || !strcmp(kv->value, "no"))) {
		p->compress = !strcmp(kv->value, "yes");
	} else if (!strcmp(kv->key, "timeout")) {
		p->timeout = strtod(kv->value, &end);
		if (*end || end == kv->value || p->timeout <= 0 || p->timeout > 86400)
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "tier '%s': timeout: expected "
					    "seconds (0-86400), got '%s'", tier, kv->value);
	} else {
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "tier '%s': the ssh backend has no "
				    "setting '%s=%s' (host, port, user, identity, known_hosts, "
				    "compress=yes|no, timeout, tmpdir=/absolute)", tier, kv->key, kv->value);
	}
	return 0;
}

static int ssh_open(const vp_tier_config *cfg, void **tier)
{
	const char *name = cfg->tier ? cfg->tier : "";
	struct tier_params p = { .port = 22, .tmpdir = "/var/tmp" };
	struct ssh_tier *t;
	size_t len;
	int rc;

	for (size_t i = 0; i < cfg->nparams; i++)
		if ((rc = parse_param(&p, name, &cfg->params[i])) < 0)
			return rc;
	if (!cfg->path || cfg->path[0] != '/')
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "tier '%s': the ssh backend needs an "
				    "absolute path (the tier's directory on the host)", name);
	if (!p.host || !p.user || !p.known_hosts)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "tier '%s': the ssh backend needs the "
				    "settings host, user and known_hosts", name);
	if (!(t = calloc(1, sizeof(*t))))
		return oom();
	snprintf(t->root, sizeof(t->root), "%s", cfg->path);
	/* One spelling, so base locations (and the backing names written into deltas) match. */
	for (len = strlen(t->root); len > 1 && t->root[len - 1] == '/'; len--)
		t->root[len - 1] = '\0';
	snprintf(t->tmpdir, sizeof(t->tmpdir), "%s", p.tmpdir);
	snprintf(t->label, sizeof(t->label), "%s@%s:%d", p.user, p.host, p.port);
	{
		vp_ssh_opts o = { .host = p.host, .port = p.port, .user = p.user,
				  .identity = p.identity, .known_hosts = p.known_hosts,
				  .timeout = p.timeout, .compress = p.compress };
		if ((rc = vp_ssh_connect(&t->s, &o)) < 0) {
			vp_error_prefix("tier '%s' ('%s' on '%s')", name, t->root, t->label);
			free(t);
			return rc;
		}
	}
	*tier = t;
	return 0;
}

static void ssh_close(void *tier)
{
	struct ssh_tier *t = tier;

	if (!t)
		return;
	vp_ssh_free(t->s);
	free(t);
}

/* ---- bases --------------------------------------------------------------------------- */

static int no_import(void *tier, const char *name, const char *version)
{
	const struct ssh_tier *t = tier;

	return vp_error_set(VP_ERR_STORE, VP_ENOTSUP, "cannot import '%s@%s' into '%s' on '%s' "
			    "(an ssh tier): import bases on the controller, then push them to the "
			    "host (vdipool base push)", name, version, t->root, t->label);
}

static int ssh_base_stage(void *tier, const char *name, const char *version, const char *format,
			  vp_image_info *staged)
{
	(void)format, (void)staged;
	return no_import(tier, name, version);
}

static int ssh_base_commit(void *tier, const char *name, const char *version, const char *manifest)
{
	(void)manifest;
	return no_import(tier, name, version);
}

static int ssh_base_abort(void *tier, const char *name, const char *version)
{
	return no_import(tier, name, version);
}

static int base_dir(char *buf, const struct ssh_tier *t, const char *name, const char *version)
{
	if (component_ok("base name", name) < 0 || component_ok("version", version) < 0)
		return VP_EINVAL;
	return mkpath(buf, "%s/bases/%s/%s", t->root, name, version);
}

/* One published version found by a stat listing: its manifest and image lines. */
typedef struct rbase {
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	const rstat *img;
	const char *fmt;
} rbase;

/* Splits ".../bases/NAME/VERSION/disk.FMT" into rb; false when it is not such a path. */
static bool base_of(const rstat *st, rbase *rb)
{
	char dir[PATH_MAX];
	char *v, *n;

	if (ends_with(st->path, "/disk.qcow2"))
		rb->fmt = "qcow2";
	else if (ends_with(st->path, "/disk.raw"))
		rb->fmt = "raw";
	else
		return false;
	parent_of(dir, st->path);
	if (!(v = strrchr(dir, '/')))
		return false;
	*v++ = '\0';
	if (!(n = strrchr(dir, '/')))
		return false;
	n++;
	snprintf(rb->name, sizeof(rb->name), "%s", n);
	snprintf(rb->version, sizeof(rb->version), "%s", v);
	rb->img = st;
	return true;
}

/* A version is published when its manifest is there (written last by a push). */
static bool has_manifest(const rstat *v, size_t n, const rstat *img)
{
	size_t dlen = (size_t)(strrchr(img->path, '/') - img->path);

	for (size_t i = 0; i < n; i++)
		if (!strncmp(v[i].path, img->path, dlen) && !strcmp(v[i].path + dlen, "/manifest"))
			return true;
	return false;
}

static int cmp_rbase(const void *a, const void *b)
{
	const rbase *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (!c)
		c = strcmp(x->version, y->version);
	/* qcow2 before raw, like the dir backend's lookup */
	return c ? c : strcmp(x->fmt, y->fmt);
}

/* The published versions among the files `globs` names, sorted, one per version. */
static int find_bases(struct ssh_tier *t, const char *globs, rbase **out, size_t *n, rstat **sts,
		      char **text)
{
	size_t nst = 0, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = stat_remote(t, "", globs, sts, &nst, text)) < 0)
		return rc;
	if (nst && !(*out = calloc(nst, sizeof(**out))))
		return oom();
	for (size_t i = 0; i < nst; i++)
		if (base_of(&(*sts)[i], &(*out)[k]) && has_manifest(*sts, nst, &(*sts)[i]))
			k++;
	if (k) /* qsort must not see NULL */
		qsort(*out, k, sizeof(**out), cmp_rbase);
	*n = 0;
	for (size_t i = 0; i < k; i++)
		if (!*n || strcmp((*out)[*n - 1].name, (*out)[i].name) ||
		    strcmp((*out)[*n - 1].version, (*out)[i].version))
			(*out)[(*n)++] = (*out)[i];
	return 0;
}

/* Shell words for the manifest and images under `prefix` (quoted) + `glob` (not). */
static char *base_globs(const char *prefix, const char *glob)
{
	VP_AUTOFREE char *q = vp_ssh_quote(prefix);

	if (!q)
		return NULL;
	return vp_strdup_printf("%s%s/manifest %s%s/disk.qcow2 %s%s/disk.raw", q, glob, q, glob, q,
				glob);
}

static void base_info(vp_image_info *out, const rbase *b)
{
	fill_stat(out, b->img, b->fmt);
	snprintf(out->name, sizeof(out->name), "%s", b->name);
	snprintf(out->version, sizeof(out->version), "%s", b->version);
}

static int ssh_base_stat(void *tier, const char *name, const char *version, int staged,
			 vp_image_info *out)
{
	struct ssh_tier *t = tier;
	char dir[PATH_MAX];
	VP_AUTOFREE char *globs = NULL, *text = NULL;
	VP_AUTOFREE rbase *v = NULL;
	VP_AUTOFREE rstat *sts = NULL;
	size_t n = 0;
	int rc;

	if (staged)
		return no_import(tier, name, version);
	if ((rc = base_dir(dir, t, name, version)) < 0)
		return rc;
	if (!(globs = base_globs(dir, "")))
		return oom();
	if ((rc = find_bases(t, globs, &v, &n, &sts, &text)) < 0)
		return rc;
	if (n == 0)
		return vp_error_set(VP_ERR_STORE, VP_ENOENT, "no base '%s@%s' in '%s' on '%s'", name,
				    version, dir, t->label);
	base_info(out, &v[0]);
	return 0;
}

static int ssh_base_list(void *tier, const char *name, vp_plugin_list_fn fn, void *ctx)
{
	struct ssh_tier *t = tier;
	char prefix[PATH_MAX];
	VP_AUTOFREE char *globs = NULL, *text = NULL;
	VP_AUTOFREE rbase *v = NULL;
	VP_AUTOFREE rstat *sts = NULL;
	size_t n = 0;
	int rc;

	if (name && component_ok("base name", name) < 0)
		return VP_EINVAL;
	/* Shell globs skip dot names: staging and removal directories are not versions. */
	if ((rc = name ? mkpath(prefix, "%s/bases/%s/", t->root, name)
		       : mkpath(prefix, "%s/bases/", t->root)) < 0)
		return rc;
	if (!(globs = base_globs(prefix, name ? "*" : "*/*")))
		return oom();
	if ((rc = find_bases(t, globs, &v, &n, &sts, &text)) < 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		vp_image_info info;

		memset(&info, 0, sizeof(info));
		base_info(&info, &v[i]);
		rc = fn(ctx, &info);
	}
	return rc;
}

static int ssh_base_manifest(void *tier, const char *name, const char *version, char **text)
{
	struct ssh_tier *t = tier;
	char dir[PATH_MAX], path[PATH_MAX];
	int rc;

	*text = NULL;
	if ((rc = base_dir(dir, t, name, version)) < 0 || (rc = mkpath(path, "%s/manifest", dir)) < 0)
		return rc;
	return vp_ssh_read_file(t->s, path, MANIFEST_MAX, text, NULL);
}

static int ssh_base_read(void *tier, const char *name, const char *version, int staged, void *buf,
			 size_t len, uint64_t offset, size_t *got)
{
	struct ssh_tier *t = tier;
	vp_image_info img;
	vp_ssh_file *f = NULL;
	uint64_t size = 0;
	int rc;

	*got = 0;
	memset(&img, 0, sizeof(img));
	if ((rc = ssh_base_stat(tier, name, version, staged, &img)) < 0 ||
	    (rc = vp_ssh_file_open(t->s, img.location, &f, &size)) < 0)
		return rc;
	if (offset < size) {
		size_t n = size - offset < len ? (size_t)(size - offset) : len;
		if ((rc = vp_ssh_file_pread(f, buf, n, offset)) == 0)
			*got = n;
	}
	vp_ssh_file_close(f);
	return rc;
}

/* Hashed on the host: verifying a copy does not read the image over the network. */
static int ssh_base_hash(void *tier, const char *name, const char *version, char hex[65])
{
	struct ssh_tier *t = tier;
	vp_image_info img;
	int rc;

	memset(&img, 0, sizeof(img));
	if ((rc = ssh_base_stat(tier, name, version, 0, &img)) < 0)
		return rc;
	return vp_ssh_sha256(t->s, img.location, hex);
}

static int ssh_base_remove(void *tier, const char *name, const char *version)
{
	struct ssh_tier *t = tier;
	char dir[PATH_MAX], trash[PATH_MAX], parent[PATH_MAX], token[64];
	VP_AUTOFREE char *qt = NULL, *qp = NULL, *cmd = NULL;
	int rc;

	make_token(token, sizeof(token));
	if ((rc = base_dir(dir, t, name, version)) < 0 ||
	    (rc = mkpath(trash, "%s/bases/.remove-%s-%s-%s", t->root, name, version, token)) < 0 ||
	    (rc = mkpath(parent, "%s/bases/%s", t->root, name)) < 0)
		return rc;
	/* Rename first: the version disappears at once, the slow delete follows. */
	if ((rc = vp_ssh_rename(t->s, dir, trash)) < 0) {
		vp_error_prefix("cannot remove base '%s@%s'", name, version);
		return rc;
	}
	qt = vp_ssh_quote(trash);
	qp = vp_ssh_quote(parent);
	/* The name's directory goes with its last version, as with dir. */
	cmd = qt && qp ? vp_strdup_printf("rm -rf -- %s && { rmdir -- %s 2>/dev/null; true; }", qt, qp)
		       : NULL;
	if (!cmd)
		return oom();
	return run_remote(t, cmd, 0, NULL);
}

/* ---- deltas and data disks ------------------------------------------------------------ */

static int disk_path(char *buf, const struct ssh_tier *t, int kind, const char *pool,
		     const char *clone)
{
	if (kind != VP_DISK_DELTA && kind != VP_DISK_DATA)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "invalid disk kind %d", kind);
	if (component_ok("pool name", pool) < 0 || component_ok("clone name", clone) < 0)
		return VP_EINVAL;
	return mkpath(buf, "%s/%s/%s/%s.qcow2", t->root, kind == VP_DISK_DELTA ? "deltas" : "data",
		      pool, clone);
}

/* Fills out from a disk's stat line and its qcow2 header (read over SFTP). An
 * unreadable disk is an error: guessing its backing file wrongly could let a
 * base be deleted under it. */
static int disk_info(struct ssh_tier *t, const rstat *st, int kind, const char *pool,
		     const char *clone, vp_image_info *out)
{
	vp_qcow2_info qi;
	uint64_t size;
	bool qcow2 = false;
	int rc;

	fill_stat(out, st, "qcow2");
	if ((rc = read_header(t, st->path, &qcow2, &qi, &size)) < 0)
		return rc;
	if (!qcow2)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "disk '%s' on '%s' is not a qcow2 image",
				    st->path, t->label);
	out->virtual_size = qi.virtual_size;
	if (qi.has_backing && qi.backing_file[0] == '/')
		snprintf(out->backing, sizeof(out->backing), "%s", qi.backing_file);
	else if (qi.has_backing)
		snprintf(out->backing, sizeof(out->backing), "%.*s/%s",
			 (int)(strrchr(st->path, '/') - st->path), st->path, qi.backing_file);
	snprintf(out->name, sizeof(out->name), "%s", clone);
	snprintf(out->pool, sizeof(out->pool), "%s", pool);
	out->kind = kind;
	return 0;
}

static int ssh_delta_stat(void *tier, int kind, const char *pool, const char *clone,
			  vp_image_info *out)
{
	struct ssh_tier *t = tier;
	char path[PATH_MAX];
	VP_AUTOFREE char *q = NULL, *text = NULL;
	VP_AUTOFREE rstat *sts = NULL;
	size_t n = 0;
	int rc;

	if ((rc = disk_path(path, t, kind, pool, clone)) < 0)
		return rc;
	if (!(q = vp_ssh_quote(path)))
		return oom();
	if ((rc = stat_remote(t, "", q, &sts, &n, &text)) < 0)
		return rc;
	if (n == 0)
		return vp_error_set(VP_ERR_STORE, VP_ENOENT, "no disk '%s' on '%s'", path, t->label);
	return disk_info(t, &sts[0], kind, pool, clone, out);
}

/* The size and format of a base on the host, from its header: nothing is read locally. */
static int base_shape(struct ssh_tier *t, const char *loc, const char *fmt_in, char *fmt,
		      uint64_t *vsize)
{
	vp_qcow2_info qi;
	uint64_t size = 0;
	bool qcow2 = false;
	int rc;

	if ((rc = read_header(t, loc, &qcow2, &qi, &size)) < 0) {
		if (rc == VP_ENOENT)
			return vp_error_set(VP_ERR_STORE, VP_ENOENT, "base '%s' is not on '%s': push it "
					    "there first", loc, t->label);
		return rc;
	}
	snprintf(fmt, 16, "%s", qcow2 ? "qcow2" : "raw");
	/* A wrong backing format in a delta makes the guest read garbage: refuse. */
	if (fmt_in && strcmp(fmt_in, fmt))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "base '%s' on '%s' is %s, not %s", loc,
				    t->label, fmt, fmt_in);
	*vsize = qcow2 ? qi.virtual_size : size;
	return 0;
}

/* Builds the disk into a private local file with our qcow2 writer. */
static int build_local(struct ssh_tier *t, const vp_delta_request *req, const char *fmt,
		       uint64_t size, char *dir, char *file)
{
	vp_qcow2_create_opts o;
	int rc;

	if (mkpath(dir, "%s/vdipool-ssh-XXXXXX", t->tmpdir) < 0)
		return VP_EINVAL;
	if (!mkdtemp(dir))
		return vp_error_set_os(errno, "cannot create a temporary directory in '%s'", t->tmpdir);
	if ((rc = mkpath(file, "%s/disk.qcow2", dir)) < 0)
		return rc;
	vp_qcow2_create_opts_init(&o);
	if (req->kind == VP_DISK_DELTA) {
		o.backing_file = req->base_location;
		o.backing_format = fmt;
	}
	o.size = size;
	o.prealloc = (req->flags & VP_DELTA_PREALLOC_METADATA) ? VP_QCOW2_PREALLOC_METADATA
								 : VP_QCOW2_PREALLOC_OFF;
	/* A backed image can only preallocate with extended L2 (QEMU's rule). */
	o.extended_l2 = (req->flags & VP_DELTA_EXTENDED_L2) ||
			(req->kind == VP_DISK_DELTA && (req->flags & VP_DELTA_PREALLOC_METADATA));
	o.cluster_size = req->cluster_size;
	o.mode = 0600;
	return vp_qcow2_create(file, &o);
}

/* Publishes the uploaded temporary: a plain SFTP rename never replaces (VP_EEXIST);
 * to replace, `mv -f` (rename(2) on the host: atomic), because SFTP v3 cannot and
 * libssh2 1.10 has no posix-rename. The directory is then flushed (`sync DIR`). */
static int publish(struct ssh_tier *t, const char *tmp, const char *path, bool overwrite)
{
	char dir[PATH_MAX];
	VP_AUTOFREE char *qt = vp_ssh_quote(tmp), *qp = vp_ssh_quote(path), *qd = NULL, *cmd = NULL;
	int rc;

	parent_of(dir, path);
	if (!qt || !qp || !(qd = vp_ssh_quote(dir)))
		return oom();
	if (!overwrite && (rc = vp_ssh_rename(t->s, tmp, path)) < 0)
		return rc;
	cmd = overwrite ? vp_strdup_printf("mv -f -- %s %s && sync -- %s", qt, qp, qd)
			: vp_strdup_printf("sync -- %s", qd);
	return cmd ? run_remote(t, cmd, 0, NULL) : oom();
}

/* Uploads the local image under a temporary name beside path, then publishes it. */
static int upload_disk(struct ssh_tier *t, const char *local, const char *path, bool overwrite)
{
	char dir[PATH_MAX], tmp[PATH_MAX], token[64];
	vp_ssh_stat st;
	int rc;

	parent_of(dir, path);
	make_token(token, sizeof(token));
	if ((rc = mkpath(tmp, "%s/.%s.tmp.%s", dir, strrchr(path, '/') + 1, token)) < 0)
		return rc;
	/* mkdir -p stats every component: only for a pool's first disk. */
	if (vp_ssh_stat_path(t->s, dir, &st) < 0 && (rc = vp_ssh_mkdir_p(t->s, dir, 0755)) < 0)
		return rc;
	vp_error_clear();
	rc = vp_ssh_upload_sparse(t->s, local, tmp, 0600, 0);
	/* The server's umask may have taken bits away: make it exactly 0600. */
	if (rc == 0)
		rc = vp_ssh_chmod(t->s, tmp, 0600);
	if (rc == 0)
		rc = publish(t, tmp, path, overwrite);
	if (rc < 0) {
		char *msg = vp_strdup(vp_error_last()->message);
		vp_ssh_unlink(t->s, tmp);
		vp_error_set(VP_ERR_STORE, rc, "%s", msg ? msg : "cannot upload a disk");
		free(msg);
	}
	return rc;
}

static int check_request(struct ssh_tier *t, const vp_delta_request *req, const char *path)
{
	vp_ssh_stat st;

	if (req->kind == VP_DISK_DELTA && (!req->base_location || req->base_location[0] != '/'))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "delta '%s/%s': the base must be an "
				    "absolute path on '%s'", req->pool, req->clone, t->label);
	if (req->kind == VP_DISK_DATA && !req->size)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "data disk '%s/%s': size is required",
				    req->pool, req->clone);
	/* A flag not known here (VP_DELTA_FULL) is refused, never ignored. */
	if (req->flags & ~(VP_DELTA_PREALLOC_METADATA | VP_DELTA_OVERWRITE | VP_DELTA_EXTENDED_L2))
		return vp_error_set(VP_ERR_STORE, VP_ENOTSUP, "disk '%s/%s': the ssh backend cannot make "
				    "%s (request flags 0x%x)", req->pool, req->clone,
				    req->flags & VP_DELTA_FULL ? "full clones" : "this kind of disk", req->flags);
	if (!(req->flags & VP_DELTA_OVERWRITE) && vp_ssh_stat_path(t->s, path, &st) == 0)
		return vp_error_set(VP_ERR_STORE, VP_EEXIST, "disk '%s' exists on '%s' already",
				    path, t->label);
	vp_error_clear();
	return 0;
}

static int ssh_delta_create(void *tier, const vp_delta_request *req, vp_image_info *out)
{
	struct ssh_tier *t = tier;
	char path[PATH_MAX], ldir[PATH_MAX] = "", lfile[PATH_MAX] = "", fmt[16] = "";
	uint64_t size = req->size;
	int rc;

	if ((rc = disk_path(path, t, req->kind, req->pool, req->clone)) < 0 ||
	    (rc = check_request(t, req, path)) < 0)
		return rc;
	if (req->kind == VP_DISK_DELTA) {
		uint64_t vsize = 0;
		if ((rc = base_shape(t, req->base_location, req->base_format, fmt, &vsize)) < 0)
			return rc;
		if (!size)
			size = vsize;
	}
	rc = build_local(t, req, fmt, size, ldir, lfile);
	if (rc == 0)
		rc = upload_disk(t, lfile, path, (req->flags & VP_DELTA_OVERWRITE) != 0);
	if (lfile[0])
		unlink(lfile);
	if (ldir[0])
		rmdir(ldir);
	if (rc < 0)
		return rc;
	return out ? ssh_delta_stat(tier, req->kind, req->pool, req->clone, out) : 0;
}

static int ssh_delta_remove(void *tier, int kind, const char *pool, const char *clone)
{
	struct ssh_tier *t = tier;
	char path[PATH_MAX], dir[PATH_MAX];
	int rc;

	if ((rc = disk_path(path, t, kind, pool, clone)) < 0)
		return rc;
	/* Already gone is done: removal must be idempotent for crash recovery. */
	if ((rc = vp_ssh_unlink(t->s, path)) < 0)
		return rc;
	/* The pool's directory goes with its last disk (fails while others remain). */
	parent_of(dir, path);
	if (vp_ssh_rmdir(t->s, dir) < 0)
		vp_error_clear();
	return 0;
}

/* Fresh delta on the new base, uploaded beside the old one, then one rename replaces it. */
static int ssh_delta_rebase(void *tier, const char *pool, const char *clone,
			    const char *base_location, const char *base_format)
{
	struct ssh_tier *t = tier;
	vp_delta_request req = { .kind = VP_DISK_DELTA, .pool = pool, .clone = clone,
				 .base_location = base_location, .base_format = base_format };
	char path[PATH_MAX];
	vp_qcow2_info qi;
	uint64_t size;
	bool qcow2 = false;
	int rc;

	if ((rc = disk_path(path, t, VP_DISK_DELTA, pool, clone)) < 0 ||
	    (rc = read_header(t, path, &qcow2, &qi, &size)) < 0)
		return rc;
	/* Keep the delta's flavour: extended L2 means it was preallocated. */
	req.flags = VP_DELTA_OVERWRITE | (qcow2 && qi.extended_l2 ? VP_DELTA_PREALLOC_METADATA : 0);
	return ssh_delta_create(tier, &req, NULL);
}

/* What a disk listing found: a stat line and where it belongs. */
typedef struct rdisk {
	const rstat *st;
	int kind;
	char pool[VP_PLUGIN_NAME_MAX], clone[VP_PLUGIN_NAME_MAX];
} rdisk;

/* ".../{deltas,data}/POOL/CLONE.qcow2" into d; false when it is not one. */
static bool disk_of(const struct ssh_tier *t, const rstat *st, rdisk *d)
{
	size_t rl = strlen(t->root);
	const char *p = st->path + rl, *slash, *file;

	if (strncmp(st->path, t->root, rl) || !ends_with(st->path, ".qcow2"))
		return false;
	if (!strncmp(p, "/deltas/", 8))
		d->kind = VP_DISK_DELTA, p += 8;
	else if (!strncmp(p, "/data/", 6))
		d->kind = VP_DISK_DATA, p += 6;
	else
		return false;
	if (!(slash = strchr(p, '/')) || strchr(slash + 1, '/') || (size_t)(slash - p) >= sizeof(d->pool))
		return false;
	file = slash + 1;
	if (strlen(file) - 6 >= sizeof(d->clone) || strlen(file) <= 6)
		return false;
	snprintf(d->pool, sizeof(d->pool), "%.*s", (int)(slash - p), p);
	snprintf(d->clone, sizeof(d->clone), "%.*s", (int)(strlen(file) - 6), file);
	d->st = st;
	return true;
}

static int cmp_rdisk(const void *a, const void *b)
{
	const rdisk *x = a, *y = b;
	int c = x->kind - y->kind;

	if (!c)
		c = strcmp(x->pool, y->pool);
	return c ? c : strcmp(x->clone, y->clone);
}

static int ssh_delta_list(void *tier, const char *pool, vp_plugin_list_fn fn, void *ctx)
{
	struct ssh_tier *t = tier;
	char dl[PATH_MAX], da[PATH_MAX];
	VP_AUTOFREE char *qdl = NULL, *qda = NULL, *globs = NULL, *pre = NULL, *text = NULL;
	VP_AUTOFREE rstat *sts = NULL;
	VP_AUTOFREE rdisk *v = NULL;
	const char *glob = pool ? "*.qcow2" : "*/*.qcow2";
	size_t n = 0, k = 0;
	int rc;

	if (pool && component_ok("pool name", pool) < 0)
		return VP_EINVAL;
	if ((rc = mkpath(dl, "%s/deltas/%s%s", t->root, pool ? pool : "", pool ? "/" : "")) < 0 ||
	    (rc = mkpath(da, "%s/data/%s%s", t->root, pool ? pool : "", pool ? "/" : "")) < 0)
		return rc;
	/* A pool directory the shell cannot read would silently match nothing. */
	if (!(qdl = vp_ssh_quote(dl)) || !(qda = vp_ssh_quote(da)) ||
	    !(globs = vp_strdup_printf("%s%s %s%s", qdl, glob, qda, glob)) ||
	    !(pre = vp_strdup_printf("for d in %s%s %s%s; do [ ! -e \"$d\" ] || { [ -r \"$d\" ] && "
				     "[ -x \"$d\" ]; } || echo \"cannot read directory $d\" >&2; done; ",
				     qdl, pool ? "" : "*/", qda, pool ? "" : "*/")))
		return oom();
	if ((rc = stat_remote(t, pre, globs, &sts, &n, &text)) < 0)
		return rc;
	if (n && !(v = calloc(n, sizeof(*v))))
		return oom();
	for (size_t i = 0; i < n; i++)
		if (disk_of(t, &sts[i], &v[k]))
			k++;
	if (k)
		qsort(v, k, sizeof(*v), cmp_rdisk);
	for (size_t i = 0; i < k && rc == 0; i++) {
		vp_image_info info;

		memset(&info, 0, sizeof(info));
		if ((rc = disk_info(t, v[i].st, v[i].kind, v[i].pool, v[i].clone, &info)) == 0)
			rc = fn(ctx, &info);
	}
	return rc;
}

/* ---- sweeping --------------------------------------------------------------------------- */

/* Temporaries of this backend older than an hour (see the top of the file); one command. */
static int ssh_sweep(void *tier)
{
	struct ssh_tier *t = tier;
	VP_AUTOFREE char *q = vp_ssh_quote(t->root), *cmd = NULL;

	if (!q)
		return oom();
	cmd = vp_strdup_printf(
		"cd %s 2>/dev/null || exit 0; "
		"if [ -d bases ]; then find bases -mindepth 1 -maxdepth 1 -name '.remove-*-ssh-*' "
		"-mmin +%d -exec rm -rf -- {} + || exit 1; fi; "
		"for k in deltas data; do if [ -d $k ]; then find $k -mindepth 2 -maxdepth 2 "
		"-type f -name '.*.tmp.ssh-*' -mmin +%d -delete || exit 1; fi; done",
		q, SWEEP_AGE_MIN, SWEEP_AGE_MIN);
	return cmd ? run_remote(t, cmd, 0, NULL) : oom();
}

static vp_plugin_ops ssh_ops = {
	.name = "ssh",
	.version = "1.0",
	.description = "a dir tier's layout on another host, over SSH (SFTP)",
	.capabilities = VP_CAP_LINKED_CLONE | VP_CAP_PREALLOC_METADATA | VP_CAP_REBASE,
	.open = ssh_open,
	.close = ssh_close,
	.base_stage = ssh_base_stage,
	.base_commit = ssh_base_commit,
	.base_abort = ssh_base_abort,
	.base_read = ssh_base_read,
	.base_stat = ssh_base_stat,
	.base_manifest = ssh_base_manifest,
	.base_remove = ssh_base_remove,
	.base_list = ssh_base_list,
	.delta_create = ssh_delta_create,
	.delta_stat = ssh_delta_stat,
	.delta_remove = ssh_delta_remove,
	.delta_list = ssh_delta_list,
	.delta_rebase = ssh_delta_rebase,
	.thread_model = VP_THREAD_MODEL_SERIALIZE_REQUESTS, /* one SSH session per handle */
	.sweep = ssh_sweep,
	.base_hash = ssh_base_hash,
};

VP_REGISTER_PLUGIN(ssh_ops);
