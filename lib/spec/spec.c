/* spec.c: the spec's public entry points, error messages in "file:line:col: path: message" shape, key positions. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spec.h"
#include "util/util.h"

/* Messages longer than the error record are cut; that is intended. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

/* ---- errors ---------------------------------------------------------------- */

static int verr_at(const char *file, unsigned line, unsigned col, const char *path, const char *fmt,
		   va_list ap) VP_PRINTF(5, 0);
static int verr_at(const char *file, unsigned line, unsigned col, const char *path, const char *fmt,
		   va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return vp_error_set(VP_ERR_SPEC, VP_EINVAL, "%s:%u:%u: %s%s%s", file, line, col, path ? path : "",
			    path && *path ? ": " : "", msg);
}

int spec_err_at(spec_ctx *c, unsigned line, unsigned col, const char *path, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = verr_at(c->file, line, col, path, fmt, ap);
	va_end(ap);
	return r;
}

int spec_err(spec_ctx *c, const spec_node *n, const char *fmt, ...)
{
	char path[512];
	va_list ap;
	int r;

	spec_node_path(n, path, sizeof(path));
	va_start(ap, fmt);
	r = verr_at(c->file, n->line, n->col, path, fmt, ap);
	va_end(ap);
	return r;
}

int spec_err_path(spec_ctx *c, const char *path, const char *fmt, ...)
{
	vp_spec_loc loc;
	va_list ap;
	int r;

	vp_spec_locate(c->spec, path, &loc);
	va_start(ap, fmt);
	r = verr_at(c->file, loc.line, loc.column, path, fmt, ap);
	va_end(ap);
	return r;
}

int vp_spec_error(const vp_spec *spec, const char *path, const char *fmt, ...)
{
	vp_spec_loc loc;
	va_list ap;
	int r;

	vp_spec_locate(spec, path, &loc);
	va_start(ap, fmt);
	r = verr_at(spec->file, loc.line, loc.column, path, fmt, ap);
	va_end(ap);
	return r;
}

/* ---- text for messages -------------------------------------------------------- */

/* Appends s to buf (at *pos), control bytes escaped, at most `max` input
 * bytes, never cutting a UTF-8 sequence; true when s was cut. */
static bool put_text(char *buf, size_t len, size_t *pos, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (i >= max && (ch & 0xc0) != 0x80)
			return true;
		if (*pos + 5 >= len)
			return true;
		if (ch == '\n')
			*pos += (size_t)snprintf(buf + *pos, len - *pos, "\\n");
		else if (ch < 0x20 || ch == 0x7f)
			*pos += (size_t)snprintf(buf + *pos, len - *pos, "\\x%02x", ch);
		else
			buf[(*pos)++] = (char)ch;
	}
	return false;
}

const char *spec_quote(char *buf, size_t len, const char *s)
{
	size_t pos = 1;
	bool cut;

	buf[0] = '\'';
	cut = put_text(buf, len - 5, &pos, s ? s : "", 64);
	if (cut) {
		memcpy(buf + pos, "...", 3);
		pos += 3;
	}
	buf[pos++] = '\'';
	buf[pos] = '\0';
	return buf;
}

bool spec_is_null(const spec_node *n)
{
	return n->kind == SPEC_SCALAR && n->plain &&
	       (n->len == 0 || !strcmp(n->str, "~") || !strcmp(n->str, "null") || !strcmp(n->str, "Null") ||
		!strcmp(n->str, "NULL"));
}

const char *spec_describe(char *buf, size_t len, const spec_node *n)
{
	if (n->kind == SPEC_MAP)
		snprintf(buf, len, "a mapping");
	else if (n->kind == SPEC_SEQ)
		snprintf(buf, len, "a sequence");
	else if (spec_is_null(n))
		snprintf(buf, len, "null");
	else
		spec_quote(buf, len, n->str);
	return buf;
}

void spec_node_path(const spec_node *n, char *buf, size_t len)
{
	const spec_node *chain[VP_SPEC_MAX_DEPTH + 2];
	size_t depth = 0, pos = 0;

	buf[0] = '\0';
	if (n && n->is_key)
		n = n->parent;
	for (; n && n->parent && depth < VP_ARRAY_SIZE(chain); n = n->parent)
		chain[depth++] = n;
	while (depth-- > 0 && pos + 8 < len) {
		n = chain[depth];
		if (n->key) {
			if (pos)
				buf[pos++] = '.';
			put_text(buf, len, &pos, n->key->str, 64);
		} else {
			pos += (size_t)snprintf(buf + pos, len - pos, "[%zu]", n->index);
		}
		buf[pos < len ? pos : len - 1] = '\0';
	}
}

/* ---- where keys were written ---------------------------------------------------- */

int spec_loc_add(vp_spec_internal *in, const char *path, const spec_node *key, const spec_node *val)
{
	spec_loc_entry *e;

	if (in->nlocs == in->caplocs) {
		size_t cap = in->caplocs ? in->caplocs * 2 : 64;
		e = realloc(in->locs, cap * sizeof(*e));
		if (!e)
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		in->locs = e;
		in->caplocs = cap;
	}
	e = &in->locs[in->nlocs];
	e->path = spec_strndup(&in->arena, path, strlen(path));
	if (!e->path)
		return VP_ENOMEM;
	if (!key)
		key = val;
	e->loc.key_line = key->line;
	e->loc.key_column = key->col;
	e->loc.line = val->kind == SPEC_SCALAR ? val->line : key->line;
	e->loc.column = val->kind == SPEC_SCALAR ? val->col : key->col;
	in->nlocs++;
	return 0;
}

static const spec_loc_entry *loc_find(const vp_spec_internal *in, const char *path, size_t n)
{
	for (size_t i = 0; i < in->nlocs; i++)
		if (!strncmp(in->locs[i].path, path, n) && in->locs[i].path[n] == '\0')
			return &in->locs[i];
	return NULL;
}

int vp_spec_locate(const vp_spec *spec, const char *path, vp_spec_loc *out)
{
	size_t n = strlen(path);
	const spec_loc_entry *e;
	bool exact = true;

	for (;;) {
		if ((e = loc_find(spec->internal, path, n))) {
			*out = e->loc;
			return exact ? 0 : VP_ENOENT;
		}
		if (n == 0)
			break;
		/* Drop the last component: ".key" or "[i]". */
		while (n > 0 && path[n - 1] != '.' && path[n - 1] != '[')
			n--;
		if (n > 0)
			n--;
		exact = false;
	}
	*out = (vp_spec_loc){ 1, 1, 1, 1 };
	return VP_ENOENT;
}

/* ---- entry points ---------------------------------------------------------------- */

void vp_spec_free(vp_spec *spec)
{
	if (!spec)
		return;
	if (spec->internal) {
		free(spec->internal->locs);
		spec_arena_release(&spec->internal->arena);
		free(spec->internal);
	}
	free(spec);
}

int vp_spec_parse(vp_spec **out, const char *display_name, const char *data, size_t len)
{
	const char *name = display_name ? display_name : "<input>";
	spec_node *root = NULL;
	spec_ctx c = { 0 };
	vp_spec *s;
	int r;

	*out = NULL;
	if (!data)
		data = ""; /* libyaml asserts on a NULL input, even an empty one */
	s = calloc(1, sizeof(*s));
	if (!s || !(s->internal = calloc(1, sizeof(*s->internal)))) {
		free(s);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	c.spec = s;
	c.in = s->internal;
	c.file = s->file = spec_strndup(&c.in->arena, name, strlen(name));
	if (!c.file)
		r = VP_ENOMEM;
	else if ((r = spec_yaml_parse(&c, data, len, &root)) == 0)
		r = spec_walk(&c, root);
	if (r < 0) {
		vp_spec_free(s);
		return r;
	}
	*out = s;
	return 0;
}

/* Reads at most VP_SPEC_MAX_BYTES; a larger file is refused before reading
 * when its size is known, as soon as it overflows otherwise. */
static int read_spec(const char *path, char **out, size_t *len)
{
	spec_ctx c = { .file = path };
	struct stat st;
	size_t cap = VP_SPEC_MAX_BYTES + 1, n = 0;
	char *buf;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return vp_error_set_os(errno, "cannot open '%s'", path);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)VP_SPEC_MAX_BYTES) {
		close(fd);
		return spec_err_at(&c, 1, 1, NULL, "the file is too large (%lld bytes), the limit is 4 MiB",
				   (long long)st.st_size);
	}
	if (!(buf = malloc(cap))) {
		close(fd);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return vp_error_set_os(e, "cannot read '%s'", path);
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > VP_SPEC_MAX_BYTES) {
		free(buf);
		return spec_err_at(&c, 1, 1, NULL, "the file is too large (over %u bytes), the limit is 4 MiB",
				   VP_SPEC_MAX_BYTES);
	}
	*out = buf;
	*len = n;
	return 0;
}

int vp_spec_load(vp_spec **out, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = read_spec(path, &data, &len)) < 0)
		return r;
	r = vp_spec_parse(out, path, data, len);
	free(data);
	return r;
}
