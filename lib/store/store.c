/* store.c: the base store: tiers, import (qemu-img, staging, SHA-256, manifest), stat, list, verify. */
#include <errno.h>
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
#include "util/run.h"
#include "vdipool/qcow2.h"

#define HASH_CHUNK (4u << 20)

/* ---- opening ------------------------------------------------------------------ */

static int open_tier(store_tier *t, const vp_store_tier *cfg)
{
	const vp_plugin *p;
	int rc;

	if ((rc = vp_plugin_find(&p, cfg->driver)) < 0)
		return rc;
	t->ops = vp_plugin_get_ops(p);
	snprintf(t->name, sizeof(t->name), "%s", cfg->config.tier ? cfg->config.tier : "default");
	t->path[0] = '\0';
	if (cfg->config.path && cfg->config.path[0] == '/' && !realpath(cfg->config.path, t->path))
		snprintf(t->path, sizeof(t->path), "%s", cfg->config.path);
	if ((rc = t->ops->open(&cfg->config, &t->h)) < 0) {
		vp_error_prefix("cannot open tier '%s'", t->name);
		t->ops = NULL;
		return rc;
	}
	return 0;
}

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
	if ((rc = open_tier(&s->base, base)) < 0)
		goto fail;
	s->ndelta = ndelta ? ndelta : 1;
	if (!ndelta) {
		s->deltas[0] = s->base;
		s->deltas[0].borrowed = true;
	}
	for (size_t i = 0; i < ndelta; i++)
		if ((rc = open_tier(&s->deltas[i], &deltas[i])) < 0)
			goto fail;
	*out = s;
	return 0;
fail:
	vp_store_free(s);
	return rc;
}

int vp_store_open_root(vp_store **out, const char *root)
{
	vp_store_tier t = { .driver = "dir", .config = { .tier = "default", .path = root } };

	return vp_store_open(out, &t, NULL, 0);
}

void vp_store_free(vp_store *s)
{
	if (!s)
		return;
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
	if (rc < 0)
		return rc;
	if (strcmp(out->name, name) || strcmp(out->version, version))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s names '%s@%s': was it moved?", what,
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
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char *buf = malloc(HASH_CHUNK);
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	uint64_t off = 0;
	int rc = 0;

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
		EVP_DigestUpdate(md, buf, got);
		off += got;
		if (progress)
			progress(ctx, "hash", off, total);
	}
	EVP_DigestFinal_ex(md, digest, &dlen);
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
