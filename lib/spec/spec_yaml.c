/* spec_yaml.c: spec bytes -> YAML node tree via libyaml events, with every limit enforced as it goes. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "spec.h"
#include "util/strmap.h"
#include "util/util.h"

/* ---- arena ------------------------------------------------------------------ */

struct spec_block {
	spec_block *next;
	size_t used, cap;
	max_align_t data[];
};

#define SPEC_BLOCK_SIZE (32u * 1024)

void *spec_alloc(spec_arena *a, size_t n)
{
	spec_block *b = a->head;
	size_t need = (n + 15) & ~(size_t)15;
	void *p;

	if (!b || b->cap - b->used < need) {
		size_t cap = need > SPEC_BLOCK_SIZE ? need : SPEC_BLOCK_SIZE;
		b = malloc(sizeof(*b) + cap);
		if (!b) {
			vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			return NULL;
		}
		b->used = 0;
		b->cap = cap;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += need;
	memset(p, 0, n);
	return p;
}

char *spec_strndup(spec_arena *a, const char *s, size_t n)
{
	char *p = spec_alloc(a, n + 1);

	if (p && n)
		memcpy(p, s, n);
	return p;
}

void spec_arena_release(spec_arena *a)
{
	while (a->head) {
		spec_block *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* ---- bytes: UTF-8 and control characters, checked before libyaml sees them ---- */

/* Length of the UTF-8 sequence at p (strict: no overlongs, surrogates or
 * values past U+10FFFF), or 0 when it is invalid. */
static size_t utf8_decode(const unsigned char *p, size_t avail, uint32_t *cp)
{
	size_t n, i;
	uint32_t v, min;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	} else if ((p[0] & 0xe0) == 0xc0) {
		n = 2, v = p[0] & 0x1f, min = 0x80;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3, v = p[0] & 0x0f, min = 0x800;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4, v = p[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

/* YAML's printable set (what libyaml accepts). */
static bool yaml_printable(uint32_t c)
{
	return c == 0x09 || c == 0x0a || c == 0x0d || (c >= 0x20 && c <= 0x7e) || c == 0x85 ||
	       (c >= 0xa0 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd) ||
	       (c >= 0x10000 && c <= 0x10ffff);
}

static bool is_break(uint32_t c)
{
	return c == '\n' || c == 0x85 || c == 0x2028 || c == 0x2029;
}

/* Walks the text the way libyaml counts lines and columns (characters, not
 * bytes). Stops at byte offset `stop` and reports its position; on bad bytes
 * records the error and returns it. */
static int scan_text(spec_ctx *c, const unsigned char *p, size_t len, size_t stop,
		     unsigned *line_out, unsigned *col_out)
{
	unsigned line = 1, col = 1;
	size_t i = 0, n;
	uint32_t cp;

	if (len >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf)
		i = 3; /* a byte order mark takes no column */
	for (; i < len && i < stop; i += n) {
		n = utf8_decode(p + i, len - i, &cp);
		if (!n)
			return spec_err_at(c, line, col, NULL,
					   "invalid utf-8 byte 0x%02x, the spec must be utf-8 text", p[i]);
		if (cp == 0)
			return spec_err_at(c, line, col, NULL, "nul byte found, the spec must be text");
		if (!yaml_printable(cp))
			return spec_err_at(c, line, col, NULL, cp < 0x80 ? "control character 0x%02x is not allowed"
								  : "character U+%04X is not allowed",
					   (unsigned)cp);
		if (cp == '\r' && i + 1 < len && p[i + 1] == '\n')
			continue; /* the '\n' ends the line */
		if (is_break(cp) || cp == '\r') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	*line_out = line;
	*col_out = col;
	return 0;
}

/* The byte offset of 1-based (line, col), or len when past the end. */
static size_t offset_of(const unsigned char *p, size_t len, unsigned line, unsigned col)
{
	unsigned l = 1, k = 1;
	size_t i = 0;

	while (i < len && (l < line || (l == line && k < col))) {
		unsigned char ch = p[i];
		size_t n = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3 : 4;
		if (ch == '\r' && i + 1 < len && p[i + 1] == '\n') {
			i++;
			continue;
		}
		if (ch == '\n' || ch == '\r') {
			l++;
			k = 1;
		} else {
			k++;
		}
		i += n;
	}
	return i < len ? i : len;
}

/* ---- libyaml errors into our shape ---- */

typedef struct builder {
	spec_ctx *c;
	const unsigned char *data;
	size_t len;
	struct {
		spec_node *node;
		vp_strmap keys;
	} stack[VP_SPEC_MAX_DEPTH];
	size_t depth;
	spec_node *root;
	size_t nodes;
	unsigned docs;
} builder;

/* "mapping" or "list" for libyaml's context text, NULL when neither. */
static const char *context_noun(const char *context)
{
	if (strstr(context, "mapping"))
		return "mapping";
	if (strstr(context, "collection") || strstr(context, "sequence"))
		return "list";
	return NULL;
}

/* libyaml's wording for the problems people actually make, said plainly. */
static void problem_text(char *buf, size_t len, const char *problem, int ch)
{
	static const struct {
		const char *problem, *text;
	} table[] = {
		{ "did not find expected key", "expected a key, check the indentation" },
		{ "did not find expected '-' indicator", "expected a '-' list item, check the indentation" },
		{ "mapping values are not allowed in this context",
		  "unexpected ':', check the indentation or quote the value" },
		{ "found unknown escape character",
		  "unknown escape sequence in a double-quoted string, use single quotes to keep backslashes" },
	};

	for (size_t i = 0; i < VP_ARRAY_SIZE(table); i++) {
		if (!strcmp(problem, table[i].problem)) {
			snprintf(buf, len, "%s", table[i].text);
			return;
		}
	}
	if (!strcmp(problem, "found character that cannot start any token") && ch > 0x20 && ch < 0x7f)
		snprintf(buf, len, "character '%c' cannot start a value, quote the value", ch);
	else
		snprintf(buf, len, "%s", problem);
	for (char *q = buf; *q; q++)
		*q = (char)tolower((unsigned char)*q);
}

static int yaml_failure(builder *b, const yaml_parser_t *p)
{
	unsigned line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
	unsigned cline = p->context_mark.line + 1, ccol = p->context_mark.column + 1;
	const char *noun;
	char msg[256];
	size_t off;
	int ch;

	if (p->error == YAML_MEMORY_ERROR)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (p->error == YAML_READER_ERROR) {
		/* Our own byte scan normally catches these first, with a better message. */
		int r = scan_text(b->c, b->data, b->len, p->problem_offset, &line, &col);
		if (r < 0)
			return r;
	}
	off = offset_of(b->data, b->len, line, col);
	ch = off < b->len ? b->data[off] : -1;
	if (ch == '\t')
		return spec_err_at(b->c, line, col, NULL, "tab character found, indent with spaces");
	if (p->context && !strcmp(p->context, "while scanning a quoted scalar") && p->problem &&
	    !strcmp(p->problem, "found unexpected end of stream"))
		return spec_err_at(b->c, cline, ccol, NULL, "unclosed quote: the string that starts here never ends");
	problem_text(msg, sizeof(msg), p->problem ? p->problem : "malformed yaml", ch);
	if (!p->context || (cline == line && ccol == col))
		return spec_err_at(b->c, line, col, NULL, "%s", msg);
	if ((noun = context_noun(p->context)))
		return spec_err_at(b->c, line, col, NULL, "%s (in the %s that starts at line %u, column %u)", msg,
				   noun, cline, ccol);
	return spec_err_at(b->c, line, col, NULL, "%s (%s that starts at line %u, column %u)", msg, p->context,
			   cline, ccol);
}

/* ---- events into nodes ---- */

static spec_node *new_node(builder *b, const yaml_event_t *ev, spec_kind kind)
{
	spec_node *n;

	if (++b->nodes > VP_SPEC_MAX_NODES) {
		spec_err_at(b->c, ev->start_mark.line + 1, ev->start_mark.column + 1, NULL,
			    "too many yaml nodes, the limit is %u", VP_SPEC_MAX_NODES);
		return NULL;
	}
	n = spec_alloc(&b->c->in->arena, sizeof(*n));
	if (!n)
		return NULL;
	n->kind = kind;
	n->line = ev->start_mark.line + 1;
	n->col = ev->start_mark.column + 1;
	return n;
}

static void append(spec_node *parent, spec_node *n)
{
	n->parent = parent;
	if (parent->last)
		parent->last->next = n;
	else
		parent->first = n;
	parent->last = n;
}

static int add_key(builder *b, spec_node *map, spec_node *n)
{
	vp_strmap *keys = &b->stack[b->depth - 1].keys;
	const spec_node *prev;
	char q[SPEC_QUOTE_MAX];

	n->is_key = true;
	append(map, n);
	if (n->kind != SPEC_SCALAR)
		return spec_err(b->c, n, "mapping keys must be strings, got a %s",
				n->kind == SPEC_MAP ? "mapping" : "sequence");
	prev = vp_strmap_get(keys, n->str);
	if (prev)
		return spec_err(b->c, n, "duplicate key %s, first defined at line %u, column %u",
				spec_quote(q, sizeof(q), n->str), prev->line, prev->col);
	return vp_strmap_put(keys, n->str, n);
}

/* Hangs n under the open container (or makes it the root). */
static int attach(builder *b, spec_node *n)
{
	spec_node *top;

	if (b->depth == 0) {
		b->root = n;
		return 0;
	}
	top = b->stack[b->depth - 1].node;
	if (top->kind == SPEC_SEQ) {
		n->index = top->count++;
		append(top, n);
		return 0;
	}
	if (top->last && top->last->is_key) {
		n->key = top->last;
		top->count++;
		append(top, n);
		return 0;
	}
	return add_key(b, top, n);
}

static const char *show_tag(char *buf, size_t len, const unsigned char *tag)
{
	static const char std[] = "tag:yaml.org,2002:";
	const char *t = (const char *)tag;
	char raw[SPEC_QUOTE_MAX];

	if (!strncmp(t, std, sizeof(std) - 1)) {
		snprintf(raw, sizeof(raw), "!!%s", t + sizeof(std) - 1);
		t = raw;
	}
	return spec_quote(buf, len, t);
}

/* Anchors, aliases and tags are refused: aliases make exponential documents
 * (billion laughs) and tags ask for types the schema never has. */
static int check_props(builder *b, const spec_node *n, const yaml_char_t *anchor, const yaml_char_t *tag)
{
	char q[SPEC_QUOTE_MAX];

	if (anchor)
		return spec_err(b->c, n, "yaml anchors are not allowed (found '&%s'), write the value out",
				(const char *)anchor);
	if (tag)
		return spec_err(b->c, n, "yaml tags are not allowed (found %s)", show_tag(q, sizeof(q), tag));
	return 0;
}

static int on_scalar(builder *b, const yaml_event_t *ev)
{
	spec_node *n = new_node(b, ev, SPEC_SCALAR);
	int r;

	if (!n)
		return VP_EINVAL;
	n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	n->len = ev->data.scalar.length;
	n->str = spec_strndup(&b->c->in->arena, (const char *)ev->data.scalar.value, n->len);
	if (!n->str)
		return VP_ENOMEM;
	/* Attach first so that errors below know the node's key path. */
	if ((r = attach(b, n)) < 0)
		return r;
	if (strlen(n->str) != n->len)
		return spec_err(b->c, n, "strings must not contain nul characters");
	return check_props(b, n, ev->data.scalar.anchor, ev->data.scalar.tag);
}

static int on_start(builder *b, const yaml_event_t *ev, spec_kind kind)
{
	spec_node *n = new_node(b, ev, kind);
	const yaml_char_t *anchor, *tag;
	int r;

	if (!n)
		return VP_EINVAL;
	if ((r = attach(b, n)) < 0)
		return r;
	if (kind == SPEC_MAP) {
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
	} else {
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
	}
	if ((r = check_props(b, n, anchor, tag)) < 0)
		return r;
	if (b->depth == VP_SPEC_MAX_DEPTH)
		return spec_err_at(b->c, n->line, n->col, NULL, "nesting is deeper than %u levels",
				   VP_SPEC_MAX_DEPTH);
	b->stack[b->depth].node = n;
	b->stack[b->depth].keys = (vp_strmap)VP_STRMAP_INIT;
	b->depth++;
	return 0;
}

static void on_end(builder *b)
{
	b->depth--;
	vp_strmap_release(&b->stack[b->depth].keys);
}

static int on_alias(builder *b, const yaml_event_t *ev)
{
	spec_node *n = new_node(b, ev, SPEC_SCALAR);
	int r;

	if (!n)
		return VP_EINVAL;
	n->str = "";
	if ((r = attach(b, n)) < 0)
		return r;
	return spec_err(b->c, n, "yaml aliases are not allowed (found '*%s'), write the value out",
			(const char *)ev->data.alias.anchor);
}

/* One event; 1 at the end of the stream. */
static int on_event(builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->docs++)
			return spec_err_at(b->c, ev->start_mark.line + 1, ev->start_mark.column + 1, NULL,
					   "only one yaml document is allowed, this is a second one");
		return 0;
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, SPEC_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, SPEC_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		on_end(b);
		return 0;
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	case YAML_STREAM_END_EVENT:
		return 1;
	default:
		return 0;
	}
}

static int empty_input(spec_ctx *c, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!data[i] || !strchr(" \t\r\n", data[i]))
			return spec_err_at(c, 1, 1, NULL, "no yaml content, the file holds only comments");
	return spec_err_at(c, 1, 1, NULL, "the file is empty");
}

static int run_parser(builder *b, yaml_parser_t *p)
{
	yaml_event_t ev;
	int r;

	do {
		if (!yaml_parser_parse(p, &ev))
			return yaml_failure(b, p);
		r = on_event(b, &ev);
		yaml_event_delete(&ev);
	} while (r == 0);
	return r < 0 ? r : 0;
}

int spec_yaml_parse(spec_ctx *c, const char *data, size_t len, spec_node **root)
{
	builder *b;
	yaml_parser_t p;
	unsigned line, col;
	int r;

	if (len > VP_SPEC_MAX_BYTES)
		return spec_err_at(c, 1, 1, NULL, "the file is too large (%zu bytes), the limit is 4 MiB", len);
	if ((r = scan_text(c, (const unsigned char *)data, len, len, &line, &col)) < 0)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	b->c = c;
	b->data = (const unsigned char *)data;
	b->len = len;
	if (!yaml_parser_initialize(&p)) {
		free(b);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	r = run_parser(b, &p);
	while (b->depth)
		on_end(b);
	yaml_parser_delete(&p);
	*root = b->root;
	free(b);
	if (r == 0 && !*root)
		return empty_input(c, data, len);
	return r;
}
