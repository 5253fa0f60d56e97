/* store.c: the base store: tiers, import (qemu-img, staging, SHA-256, manifest), stat, list, verify. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util/fs.h"
#include "util/run.h"
#include "vdipool/qcow2.h"

#define HASH_CHUNK (4u << 20)

/* ---- opening ------------------------------------------------------------------ */

/* Two hosts' stores at the same path are two stores: each gets its own lock. */
static void tier_where(store_tier *t, const vp_store_tier *cfg)
{
	size_t len = (size_t)snprintf(t->where, sizeof(t->where), "%s:%s", cfg->driver, t->path);

	for (size_t i = 0; i < cfg->config.nparams && len < sizeof(t->where); i++) {
		const vp_plugin_param *p = &cfg->config.params[i];
		if (!strcmp(p->key, "host") || !strcmp(p->key, "port"))
			len += (size_t)snprintf(t->where + len, sizeof(t->where) - len, "|%s=%s", p->key,
						p->value);
	}
}

static int open_tier(store_tier *t, const vp_store_tier *cfg)
{
	const vp_plugin *p;
	int rc;

	if ((rc = vp_plugin_find(&p, cfg->driver)) < 0)
		return rc;
	t->ops = vp_plugin_get_ops(p);
	snprintf(t->name, sizeof(t->name), "%s", cfg->config.tier ? cfg->config.tier : "default");
	t->path[0] = '\0';
	/* Only a local directory can be made canonical here; other backends'
	 * paths (a directory on another host, a RADOS pool) stay as given. */
	if (cfg->config.path && cfg->config.path[0] == '/' &&
	    (strcmp(cfg->driver, "dir") || !realpath(cfg->config.path, t->path)))
		snprintf(t->path, sizeof(t->path), "%s", cfg->config.path);
	tier_where(t, cfg);
	if ((rc = t->ops->open(&cfg->config, &t->h)) < 0) {
		vp_error_prefix("cannot open tier '%s'", t->name);
		t->ops = NULL;
		return rc;
	}
	return 0;
}

static int record_tier(const store_tier *base, const vp_store_tier *t);

static void close_tier(store_tier *t)
{
	if (t->ops && t->h && !t->borrowed)
		t->ops->close(t->h);
}

int vp_store_open(vp_store **out, const vp_store_tier *base, const vp_store_tier *deltas,
		  size_t ndelta)
{
	vp_store *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s || !(s->deltas = calloc(ndelta ? ndelta : 1, sizeof(*s->deltas)))) {
		free(s);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	s->lock_fd = -1;
	snprintf(s->runtime_dir, sizeof(s->runtime_dir), "%s", VP_RUNTIME_DIR);
	if ((rc = open_tier(&s->base, base)) < 0)
		goto fail;
	s->ndelta = ndelta ? ndelta : 1;
	if (!ndelta) {
		s->deltas[0] = s->base;
		s->deltas[0].borrowed = true;
	}
	for (size_t i = 0; i < ndelta; i++)
		if ((rc = open_tier(&s->deltas[i], &deltas[i])) < 0 ||
		    (rc = record_tier(&s->base, &deltas[i])) < 0)
			goto fail;
	*out = s;
	return 0;
fail:
	vp_store_free(s);
	return rc;
}

/* ---- temporaries of dead processes ------------------------------------------------------ */

int vp_store_sweep(vp_store *s)
{
	int rc = 0;

	if (s->base.ops->sweep)
		rc = s->base.ops->sweep(s->base.h);
	for (size_t i = 0; rc == 0 && i < s->ndelta; i++)
		if (!s->deltas[i].borrowed && s->deltas[i].ops->sweep)
			rc = s->deltas[i].ops->sweep(s->deltas[i].h);
	if (rc < 0)
		vp_error_prefix("cannot sweep the temporaries of dead vdipool processes");
	return rc;
}

/* ---- the registry of delta tiers ------------------------------------------------------
 * gc and base rm open the store from its root alone, but deltas that back
 * onto its bases may live on any tier a spec used. Each vp_store_open with
 * delta tiers records them in <base tier>/tiers ("driver<TAB>name<TAB>path"
 * lines); vp_store_open_root opens them all. */

#define TIERS_FILE "tiers"
#define TIERS_MAX (1u << 20)

static int tiers_path(const store_tier *base, char *buf, size_t len)
{
	if (strcmp(base->ops->name, "dir") || base->path[0] != '/')
		return 1; /* only a dir base tier has a place for it */
	snprintf(buf, len, "%s/" TIERS_FILE, base->path);
	return 0;
}

static int record_tier(const store_tier *base, const vp_store_tier *t)
{
	char path[PATH_MAX + 16], line[PATH_MAX + 200];
	VP_AUTOFREE char *text = NULL;
	int fd, n, rc;

	if (strcmp(t->driver, "dir") || tiers_path(base, path, sizeof(path)) || !t->config.path || strchr(t->config.path, '\n') ||
	    strchr(t->config.path, '\t'))
		return 0;
	n = snprintf(line, sizeof(line), "%s\t%s\t%s\n", t->driver,
		     t->config.tier ? t->config.tier : "default", t->config.path);
	if (n < 0 || (size_t)n >= sizeof(line))
		return 0;
	rc = vp_fs_read_all(path, TIERS_MAX, &text, NULL);
	for (const char *at = rc == 0 ? text : NULL; at && (at = strstr(at, line)); at++)
		if (at == text || at[-1] == '\n')
			return 0; /* recorded already */
	vp_error_clear();
	/* One short O_APPEND write: concurrent recorders never interleave. */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return vp_error_set_os(errno, "cannot record tier '%s' in '%s'", t->config.tier ? t->config.tier : "default", path);
	if (write(fd, line, (size_t)n) != n) {
		rc = vp_error_set_os(errno, "cannot record tier in '%s'", path);
		close(fd);
		return rc;
	}
	if (fsync(fd) < 0 || close(fd) < 0)
		return vp_error_set_os(errno, "cannot record tier in '%s'", path);
	return 0;
}

/* The recorded tiers other than the root itself, into cfg (strings point into text). */
static size_t parse_tiers(char *text, const char *root, vp_store_tier *cfg, size_t max)
{
	size_t n = 0;

	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l && n < max; l = strtok_r(NULL, "\n", &save)) {
		char *t1 = strchr(l, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
		char canon[PATH_MAX];
		bool dup = false;
		if (!t2)
			continue;
		*t1 = *t2 = '\0';
		if (!realpath(t2 + 1, canon))
			continue; /* the tier is gone, with its deltas */
		if (!strcmp(canon, root))
			continue;
		for (size_t i = 0; i < n && !dup; i++)
			dup = !strcmp(cfg[i].driver, l) && !strcmp(cfg[i].config.path, t2 + 1);
		if (dup)
			continue;
		cfg[n++] = (vp_store_tier){ .driver = l, .config = { .tier = t1 + 1, .path = t2 + 1 } };
	}
	return n;
}

int vp_store_open_root(vp_store **out, const char *root)
{
	vp_store_tier t = { .driver = "dir", .config = { .tier = "default", .path = root } };
	vp_store_tier cfg[64];
	char path[PATH_MAX + 16], canon[PATH_MAX];
	VP_AUTOFREE char *text = NULL;
	size_t n = 0;
	int rc;

	if (root[0] == '/' && realpath(root, canon)) {
		snprintf(path, sizeof(path), "%s/" TIERS_FILE, canon);
		rc = vp_fs_read_all(path, TIERS_MAX, &text, NULL);
		if (rc == VP_ENOENT)
			vp_error_clear();
		else if (rc < 0)
			return rc;
		else
			n = parse_tiers(text, canon, cfg + 1, sizeof(cfg) / sizeof(cfg[0]) - 1);
	}
	if (!n)
		return vp_store_open(out, &t, NULL, 0);
	/* The root holds deltas too (a spec without delta tiers). */
	cfg[0] = t;
	return vp_store_open(out, &t, cfg, n + 1);
}

int vp_store_open_registered(vp_store **out, const vp_store_tier *base, const vp_store_tier *deltas,
			     size_t ndelta)
{
	vp_store_tier cfg[72], reg[64];
	char path[PATH_MAX + 16], canon[PATH_MAX], dcanon[PATH_MAX];
	VP_AUTOFREE char *text = NULL;
	size_t n = 0, nreg = 0;
	int rc;

	if (strcmp(base->driver, "dir") || !base->config.path || base->config.path[0] != '/' ||
	    !realpath(base->config.path, canon) || ndelta > 7)
		return vp_store_open(out, base, deltas, ndelta);
	snprintf(path, sizeof(path), "%s/" TIERS_FILE, canon);
	rc = vp_fs_read_all(path, TIERS_MAX, &text, NULL);
	if (rc == VP_ENOENT)
		vp_error_clear();
	else if (rc < 0)
		return rc;
	for (size_t i = 0; i < ndelta; i++)
		cfg[n++] = deltas[i];
	/* The base tier's own deltas (specs without a separate delta tier) count too. */
	cfg[n++] = (vp_store_tier){ .driver = "dir", .config = { .tier = base->config.tier, .path = canon } };
	if (text)
		nreg = parse_tiers(text, canon, reg, sizeof(reg) / sizeof(reg[0]));
	for (size_t i = 0; i < nreg; i++) {
		bool dup = false;
		for (size_t j = 0; j < ndelta && !dup; j++)
			dup = !strcmp(deltas[j].driver, "dir") && deltas[j].config.path &&
			      realpath(deltas[j].config.path, dcanon) && !strcmp(dcanon, reg[i].config.path);
		if (!dup)
			cfg[n++] = reg[i];
	}
	return vp_store_open(out, base, cfg, n);
}

void vp_store_free(vp_store *s)
{
	if (!s)
		return;
	vp_store_unlock(s);
	for (size_t i = 0; i < s->ndelta; i++)
		close_tier(&s->deltas[i]);
	close_tier(&s->base);
	free(s->deltas);
	free(s);
}

/* ---- names and references ----------------------------------------------------- */

bool vp_store_version_valid(const char *v)
{
	size_t n = strlen(v);

	if (n < 1 || n > 64 || v[0] == '.' || !strcmp(v, "latest") || strstr(v, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

/* "name@version" or "name" (= name@latest) into name and version. */
int store_parse_ref(const char *ref, char *name, char *version)
{
	const char *at = strchr(ref, '@');
	size_t nlen = at ? (size_t)(at - ref) : strlen(ref);
	const char *v = at ? at + 1 : "latest";

	if (nlen >= VP_PLUGIN_NAME_MAX || strlen(v) >= VP_PLUGIN_NAME_MAX)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid base reference '%s'", ref);
	snprintf(name, VP_PLUGIN_NAME_MAX, "%.*s", (int)nlen, ref);
	snprintf(version, VP_PLUGIN_NAME_MAX, "%s", v);
	if (!vp_name_valid(name))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "invalid base name '%s': use [a-z0-9][a-z0-9-]*, at most 63 characters", name);
	if (strcmp(version, "latest") && !vp_store_version_valid(version))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "invalid version '%s': use 1 to 64 of [A-Za-z0-9._+-], not starting with '.'",
				    version);
	return 0;
}

/* Reads a published version: the plugin's stat plus the parsed manifest. */
int store_load(vp_store *s, const char *name, const char *version, vp_base_info *out,
	       vp_image_info *img)
{
	vp_image_info local;
	vp_image_info *st = img ? img : &local;
	char what[200];
	char *text = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(st, 0, sizeof(*st));
	if ((rc = s->base.ops->base_stat(s->base.h, name, version, 0, st)) < 0 ||
	    (rc = s->base.ops->base_manifest(s->base.h, name, version, &text)) < 0)
		return rc;
	snprintf(what, sizeof(what), "manifest of base '%s@%s'", name, version);
	rc = vp_store_manifest_parse(out, text, what);
	free(text);
	if (rc == VP_EINVAL) {
		/* A damaged store is not bad input from the user (exit 1, not 2). */
		VP_AUTOFREE char *msg = vp_strdup(vp_error_last()->message);
		return vp_error_set(VP_ERR_STORE, VP_EIO, "%s", msg ? msg : what);
	}
	if (rc < 0)
		return rc;
	if (strcmp(out->name, name) || strcmp(out->version, version))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "%s names '%s@%s': was it moved?", what,
				    out->name, out->version);
	snprintf(out->location, sizeof(out->location), "%s", st->location);
	snprintf(out->tier, sizeof(out->tier), "%s", s->base.name);
	out->allocated = st->allocated;
	return 0;
}

/* Oldest first: import time, then version (strverscmp: 1.9 < 1.10). */
int store_cmp_age(const vp_base_info *a, const vp_base_info *b)
{
	int c = strcmp(a->imported, b->imported);

	return c ? c : strverscmp(a->version, b->version);
}

/* Turns name@latest into the newest version; others pass through. */
int store_resolve(vp_store *s, const char *ref, char *name, char *version)
{
	vp_base_info *list = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_parse_ref(ref, name, version)) < 0 || strcmp(version, "latest"))
		return rc;
	if ((rc = store_list_plain(s, name, &list, &n)) < 0)
		return rc;
	if (n == 0)
		rc = vp_error_set(VP_ERR_STORE, VP_ENOENT, "no base '%s' in the store", name);
	else
		snprintf(version, VP_PLUGIN_NAME_MAX, "%s", list[n - 1].version); /* sorted oldest first */
	free(list);
	return rc;
}

int vp_store_stat(vp_store *s, const char *ref, vp_base_info *out)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	int rc;

	if ((rc = store_resolve(s, ref, name, version)) < 0)
		return rc;
	return store_load(s, name, version, out, NULL);
}

/* ---- hashing ------------------------------------------------------------------ */

/* SHA-256 of a base's stored bytes, read through the plugin (so it works for
 * any backend), streamed in 4 MiB chunks. */
int store_hash(vp_store *s, const char *name, const char *version, int staged, uint64_t total,
	       vp_store_progress_fn progress, void *ctx, char hex[65])
{
	EVP_MD_CTX *md;
	unsigned char *buf;
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	uint64_t off = 0;
	int rc = 0;

	/* Where the backend can hash where the data lives (a remote host), the
	 * image does not cross the network; staged imports are always read here. */
	if (!staged && s->base.ops->base_hash) {
		if ((rc = s->base.ops->base_hash(s->base.h, name, version, hex)) == 0 && progress)
			progress(ctx, "hash", total, total);
		return rc;
	}
	md = EVP_MD_CTX_new();
	buf = malloc(HASH_CHUNK);
	if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "cannot start SHA-256");
		goto out;
	}
	for (;;) {
		size_t got = 0;
		if ((rc = s->base.ops->base_read(s->base.h, name, version, staged, buf, HASH_CHUNK, off,
						 &got)) < 0)
			goto out;
		if (got == 0)
			break;
		if (!EVP_DigestUpdate(md, buf, got)) {
			rc = vp_error_set(VP_ERR_STORE, VP_EIO, "SHA-256 of '%s@%s' failed", name, version);
			goto out;
		}
		off += got;
		if (progress)
			progress(ctx, "hash", off, total);
	}
	if (!EVP_DigestFinal_ex(md, digest, &dlen) || dlen != 32) {
		rc = vp_error_set(VP_ERR_STORE, VP_EIO, "SHA-256 of '%s@%s' failed", name, version);
		goto out;
	}
	for (unsigned i = 0; i < dlen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

int vp_store_verify(vp_store *s, const char *ref, vp_store_progress_fn progress, void *ctx)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX], hex[65] = "";
	vp_base_info info;
	vp_image_info img;
	int rc;

	if ((rc = store_resolve(s, ref, name, version)) < 0 ||
	    (rc = store_load(s, name, version, &info, &img)) < 0 ||
	    (rc = store_hash(s, name, version, 0, img.size, progress, ctx, hex)) < 0)
		return rc;
	if (strcmp(hex, info.sha256))
		return vp_error_set(VP_ERR_STORE, VP_EIO,
				    "base '%s@%s' is corrupted: its sha256 is %s but the manifest says %s",
				    name, version, hex, info.sha256);
	return 0;
}

int vp_store_check_unchanged(vp_store *s, const char *ref)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	vp_base_info info;
	vp_image_info img;
	int rc;

	if ((rc = store_resolve(s, ref, name, version)) < 0 ||
	    (rc = store_load(s, name, version, &info, &img)) < 0)
		return rc;
	if (img.size != info.image_size)
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
				    "base '%s@%s' changed since it was imported: its size is %llu bytes, "
				    "the manifest says %llu; run 'vdipool base verify %s@%s'", name, version,
				    (unsigned long long)img.size, (unsigned long long)info.image_size,
				    name, version);
	/* mtime 0 in the manifest: the backend cannot tell (see plugin.h). */
	if (info.image_mtime_sec &&
	    (img.mtime_sec != info.image_mtime_sec || img.mtime_nsec != info.image_mtime_nsec))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
				    "base '%s@%s' changed since it was imported: its mtime is %lld.%09ld, "
				    "the manifest says %lld.%09ld; run 'vdipool base verify %s@%s'", name,
				    version, (long long)img.mtime_sec, img.mtime_nsec,
				    (long long)info.image_mtime_sec, info.image_mtime_nsec, name, version);
	return 0;
}
