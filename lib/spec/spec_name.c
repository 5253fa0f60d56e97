/* spec_name.c: clone name patterns, the template search path, and the spec hash the planner compares. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec.h"
#include "util/fs.h"
#include "util/util.h"

/* ---- name patterns: literal text, {index}, {index:0N}, {pool} ---- */

typedef enum { PH_INDEX, PH_POOL } placeholder;

/* Parses the placeholder that starts at p ('{'); returns its length or -1. */
static int parse_placeholder(const char *p, placeholder *ph, int *width)
{
	const char *end = strchr(p, '}');
	size_t n;

	if (!end)
		return -1;
	n = (size_t)(end - p - 1);
	*width = 0;
	if (n == 5 && !strncmp(p + 1, "index", 5))
		*ph = PH_INDEX;
	else if (n == 4 && !strncmp(p + 1, "pool", 4))
		*ph = PH_POOL;
	else if (n == 8 && !strncmp(p + 1, "index:0", 7) && p[8] >= '1' && p[8] <= '9')
		*ph = PH_INDEX, *width = p[8] - '0';
	else
		return -1;
	return (int)(end - p) + 1;
}

int spec_pattern_check(const char *pattern, char *why, size_t len)
{
	placeholder ph;
	int width, n;
	char q[SPEC_QUOTE_MAX];

	if (!*pattern || strlen(pattern) > 200) {
		snprintf(why, len, "must be a pattern of 1-200 characters, got %s", spec_quote(q, sizeof(q), pattern));
		return -1;
	}
	for (const char *p = pattern; *p; p++) {
		if (*p == '}') {
			snprintf(why, len, "unmatched '}' in name pattern %s", spec_quote(q, sizeof(q), pattern));
			return -1;
		}
		if (*p != '{')
			continue;
		if ((n = parse_placeholder(p, &ph, &width)) < 0) {
			const char *end = strchr(p, '}');
			char bad[64];
			if (!end) {
				snprintf(why, len, "unclosed '{' in name pattern %s", spec_quote(q, sizeof(q), pattern));
				return -1;
			}
			snprintf(bad, sizeof(bad), "%.*s", (int)(end - p + 1), p);
			snprintf(why, len, "unknown placeholder %s, use '{index}', '{index:0N}' (N 1-9) or '{pool}'",
				 spec_quote(q, sizeof(q), bad));
			return -1;
		}
		p += n - 1;
	}
	return 0;
}

int spec_render_name(const char *pattern, const char *pool, unsigned index, char *buf, size_t len)
{
	size_t pos = 0;
	placeholder ph;
	int width, n, w;

	if (!len)
		return -1;
	buf[0] = '\0';
	for (const char *p = pattern; *p; p++) {
		if (*p != '{') {
			if (pos + 1 >= len)
				return -1;
			buf[pos + 1] = '\0';
			buf[pos++] = *p;
			continue;
		}
		if ((n = parse_placeholder(p, &ph, &width)) < 0)
			return -1;
		w = ph == PH_POOL ? snprintf(buf + pos, len - pos, "%s", pool ? pool : "")
				  : snprintf(buf + pos, len - pos, "%0*u", width, index);
		if (w < 0 || (size_t)w >= len - pos)
			return -1;
		pos += (size_t)w;
		p += n - 1;
	}
	buf[pos] = '\0';
	return 0;
}

int vp_spec_clone_name(const vp_spec *spec, unsigned index, char *buf, size_t len)
{
	if (spec_render_name(spec->clones.name, spec->pool, index, buf, len) < 0)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "the name of clone %u does not fit in %zu bytes",
				    index, len);
	return 0;
}

/* ---- templates ---- */

static int check_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return EISDIR;
	return access(path, R_OK) < 0 ? errno : 0;
}

static int find_absolute(char **out, const char *path)
{
	int e;

	if (path[0] != '/')
		return vp_error_set(VP_ERR_SPEC, VP_EINVAL,
				    "template '%s' must be a name (like 'server') or an absolute path", path);
	if ((e = check_file(path)) == ENOENT)
		return vp_error_set(VP_ERR_SPEC, VP_ENOENT, "template '%s' does not exist", path);
	if (e == EISDIR)
		return vp_error_set(VP_ERR_SPEC, VP_EINVAL, "template '%s' is not a regular file", path);
	if (e)
		return vp_error_set(VP_ERR_SPEC, VP_EINVAL, "template '%s' cannot be read: %s", path, strerror(e));
	*out = vp_strdup(path);
	return *out ? 0 : VP_ENOMEM;
}

/* Tries DIR/NAME.xml; 1 when found (*out set), 0 when not, <0 on error.
 * `tried` lists the directories already looked in, for the message. */
static int try_dir(char **out, const char *dir, size_t dlen, const char *name, vp_buf *tried)
{
	char *path, *real;
	int found;

	if (dlen == 0)
		return 0;
	if (!(path = vp_strdup_printf("%.*s/%s.xml", (int)dlen, dir, name)))
		return VP_ENOMEM;
	found = check_file(path) == 0;
	if (!found) {
		vp_buf_printf(tried, "%s%.*s", tried->len ? ", " : "", (int)dlen, dir);
		free(path);
		return tried->oom ? VP_ENOMEM : 0;
	}
	/* Absolute and canonical, whatever form the search path had. */
	real = realpath(path, NULL);
	free(path);
	if (!real)
		return vp_error_set_os(errno, "cannot resolve template '%s'", name);
	*out = real;
	return 1;
}

/* Set once at start-up by the program (the CLI passes $VDIPOOL_TEMPLATE_PATH): the library
 * reads no environment. */
static char *template_path;

int vp_spec_set_template_path(const char *dirs)
{
	char *copy = dirs ? strdup(dirs) : NULL;

	if (dirs && !copy)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	free(template_path);
	template_path = copy;
	return 0;
}

static int search_dirs(char **out, const char *name, vp_buf *tried)
{
	const char *env = template_path;
	const char *builtin[] = {
#ifdef VP_TEMPLATE_DIR
		VP_TEMPLATE_DIR,
#endif
#ifdef VP_SOURCE_TEMPLATE_DIR
		VP_SOURCE_TEMPLATE_DIR,
#endif
		NULL
	};
	int r;

	while (env && *env) {
		const char *colon = strchr(env, ':');
		size_t n = colon ? (size_t)(colon - env) : strlen(env);
		if ((r = try_dir(out, env, n, name, tried)) != 0)
			return r;
		env = colon ? colon + 1 : NULL;
	}
	for (size_t i = 0; builtin[i]; i++)
		if ((r = try_dir(out, builtin[i], strlen(builtin[i]), name, tried)) != 0)
			return r;
	return 0;
}

int vp_spec_find_template(char **out, const char *name)
{
	vp_buf tried = VP_BUF_INIT;
	int r;

	*out = NULL;
	if (strchr(name, '/'))
		return find_absolute(out, name);
	if (!vp_name_valid(name))
		return vp_error_set(VP_ERR_SPEC, VP_EINVAL, "invalid template name '%s': " SPEC_NAME_RULE, name);
	r = search_dirs(out, name, &tried);
	if (r == 0)
		r = vp_error_set(VP_ERR_SPEC, VP_ENOENT, "template '%s' not found: no %s.xml in %s", name, name,
				 tried.len ? vp_buf_cstr(&tried) : "any directory (the search path is empty)");
	vp_buf_release(&tried);
	return r < 0 ? r : 0;
}

#define TEMPLATE_MAX_BYTES (1024 * 1024)

int spec_resolve_template(spec_ctx *c)
{
	vp_spec_domain *d = &c->spec->domain;
	char *path = NULL, *xml = NULL;
	size_t len = 0;
	int r;

	if (vp_spec_find_template(&path, d->template_name) < 0)
		return spec_err_path(c, "domain.template", "%s", vp_error_last()->message);
	r = vp_fs_read_all(path, TEMPLATE_MAX_BYTES, &xml, &len);
	if (r < 0) {
		free(path);
		return spec_err_path(c, "domain.template", "%s", vp_error_last()->message);
	}
	/* The content, not the path, goes into the hash: the same template
	 * installed elsewhere must not look like drift. */
	if (!EVP_Digest(xml, len, d->template_sha256, NULL, EVP_sha256(), NULL))
		r = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "cannot compute sha-256");
	else if (!(d->template_path = spec_strndup(&c->in->arena, path, strlen(path))))
		r = VP_ENOMEM;
	free(xml);
	free(path);
	return r;
}

/* ---- the hash of what shapes a domain definition ---- */

static void hex(char *out, const unsigned char *md, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

/* A tier as a disk source: dir keeps its "dir:PATH" of before rbd tiers, so that their hashes
 * did not change; an rbd disk's source names the cluster and the user too (qemu's
 * "rbd:pool/image:id=..:conf=..:keyring=.."), so they are part of it. */
static void put_tier(vp_buf *b, const vp_spec_tier *t)
{
	if (t->driver == VP_STORAGE_DIR)
		vp_buf_printf(b, "dir:%s", t->path);
	else
		vp_buf_printf(b, "%s id=%s conf=%s keyring=%s", t->where, t->rbd_id, t->rbd_conf,
			      t->rbd_keyring ? t->rbd_keyring : "-");
}

int vp_spec_hash(const vp_spec *s, char out[VP_SPEC_HASH_LEN])
{
	return vp_spec_domain_hash(s, NULL, out);
}

int vp_spec_domain_hash(const vp_spec *s, const char *domain_type, char out[VP_SPEC_HASH_LEN])
{
	vp_buf b = VP_BUF_INIT;
	unsigned char md[32];
	char tmpl[65];
	int ok;

	/* One field per line, values validated free of newlines: unambiguous.
	 * Bump the version line whenever the field list changes. */
	hex(tmpl, s->domain.template_sha256, 32);
	vp_buf_printf(&b, "vdipool-spec-hash 1\npool=%s\nmode=%s\nvcpus=%u\nmemory=%" PRIu64 "\n", s->pool,
		      s->clones.mode == VP_CLONE_FULL ? "full" : "linked", s->domain.vcpus, s->domain.memory_bytes);
	vp_buf_printf(&b, "network=%s\ntemplate=%s\ndeltas=", s->domain.network ? s->domain.network : "none", tmpl);
	put_tier(&b, s->storage.deltas);
	if (s->data_disk.size) {
		vp_buf_printf(&b, "\ndata_disk=%" PRIu64 " ", s->data_disk.size);
		put_tier(&b, s->data_disk.tier);
		vp_buf_puts(&b, "\n");
	} else {
		vp_buf_puts(&b, "\ndata_disk=none\n");
	}
	/* Only LUKS adds a line: the hashes of pools without it stay as they were. */
	if (s->delta.encrypt == VP_SPEC_ENCRYPT_LUKS)
		vp_buf_puts(&b, "encrypt=luks\n");
	/* Only TCG adds a line: pools defined under KVM before domain.accel existed keep their hash. */
	if (domain_type && !strcmp(domain_type, "qemu"))
		vp_buf_puts(&b, "accel=tcg\n");
	if (b.oom) {
		vp_buf_release(&b);
		return VP_ENOMEM;
	}
	ok = EVP_Digest(b.data, b.len, md, NULL, EVP_sha256(), NULL);
	vp_buf_release(&b);
	if (!ok)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "cannot compute sha-256");
	hex(out, md, 32);
	out[64] = '\0';
	return 0;
}
