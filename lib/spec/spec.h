/* spec.h (private): the YAML node tree, arena, error helpers and loc table shared by lib/spec*.c. */
#ifndef VP_SPEC_PRIV_H
#define VP_SPEC_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/spec.h"

/* ---- arena: everything a spec points to lives in one, freed at once ---- */

typedef struct spec_block spec_block;
typedef struct spec_arena {
	spec_block *head;
} spec_arena;

/* Zeroed memory; NULL (with VP_ERR_NOMEM recorded) when out of memory. */
void *spec_alloc(spec_arena *a, size_t n);
char *spec_strndup(spec_arena *a, const char *s, size_t n);
void spec_arena_release(spec_arena *a);

/* ---- the YAML tree ---- */

typedef enum { SPEC_SCALAR, SPEC_MAP, SPEC_SEQ } spec_kind;

typedef struct spec_node spec_node;
struct spec_node {
	spec_kind kind;
	bool plain;              /* scalar written unquoted: may be null, a number, a bool */
	bool is_key;             /* a mapping key (its path is its mapping's) */
	unsigned line, col;      /* 1-based start */
	const char *str;         /* scalar text, NUL-terminated, never holds a NUL */
	size_t len;
	spec_node *parent;       /* the enclosing mapping or sequence; NULL for the root */
	const spec_node *key;    /* a mapping value: its key */
	size_t index;            /* a sequence item: its position */
	spec_node *first, *next; /* children: items, or key, value, key, value... */
	spec_node *last;
	size_t count;            /* items, or pairs */
};

/* ---- parse context ---- */

typedef struct spec_loc_entry {
	const char *path;
	vp_spec_loc loc;
} spec_loc_entry;

struct vp_spec_internal {
	spec_arena arena;
	spec_loc_entry *locs;    /* every key the walk visited, in document order */
	size_t nlocs, caplocs;
};

/* Raw text of keys that refer to other sections, resolved after the walk. */
typedef struct spec_refs {
	const char *bases, *deltas, *data_tier;
	bool cluster_size_set, prealloc_set;
} spec_refs;

typedef struct spec_ctx {
	vp_spec *spec;
	vp_spec_internal *in;
	const char *file;
	spec_refs refs;
} spec_ctx;

/* Builds the tree from the bytes, enforcing every byte-level, syntax and
 * structure rule. */
int spec_yaml_parse(spec_ctx *c, const char *data, size_t len, spec_node **root);

/* Validates the tree into c->spec (defaults applied, references resolved). */
int spec_walk(spec_ctx *c, const spec_node *root);

/* ---- errors, all "FILE:LINE:COL: PATH: message" ---- */

/* At a node: a value's own position and path. */
int spec_err(spec_ctx *c, const spec_node *n, const char *fmt, ...) VP_PRINTF(3, 4);
/* At a position with a path (NULL or "" for none). */
int spec_err_at(spec_ctx *c, unsigned line, unsigned col, const char *path, const char *fmt, ...)
	VP_PRINTF(5, 6);
/* At a key path through the loc table (nearest written ancestor when absent). */
int spec_err_path(spec_ctx *c, const char *path, const char *fmt, ...) VP_PRINTF(3, 4);

/* The key path of a node into buf ("" for the root); keys are written for
 * their mapping's path. */
void spec_node_path(const spec_node *n, char *buf, size_t len);

/* User text for a message, quoted: 'abc', control bytes escaped, long text cut. */
const char *spec_quote(char *buf, size_t len, const char *s);
#define SPEC_QUOTE_MAX 96

/* "got ..." wording for a node: 'text', null, a mapping, a sequence. */
const char *spec_describe(char *buf, size_t len, const spec_node *n);

bool spec_is_null(const spec_node *n);

/* Records a key's position under `path`. */
int spec_loc_add(vp_spec_internal *in, const char *path, const spec_node *key, const spec_node *val);

/* ---- the schema: one table of fields per mapping ---- */

typedef struct spec_field spec_field;
/* Checks one value and stores it, typed, at dst. */
typedef int (*spec_field_fn)(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);

struct spec_field {
	const char *key;
	spec_field_fn fn;
	size_t off;          /* of the destination in the mapping's struct (or in c->refs) */
	bool raw;            /* the destination is in c->refs */
	bool required;
	int64_t min, max;    /* numbers, sizes (bytes), durations (seconds) */
	uint64_t align;      /* sizes: must be a multiple of this */
	const char *const *choices; /* enums: NULL-terminated, stored as their index */
};

#define SPEC_MAX_FIELDS 16

/* Checks that m is a mapping whose keys are all in fields, calls each
 * field's fn, then reports missing required keys. seen[i] gets the value
 * node of fields[i] (NULL when absent); seen may be NULL. */
int spec_walk_map(spec_ctx *c, const spec_node *m, const spec_field *fields, size_t n, void *base,
		  const spec_node **seen);

/* Value checkers, used as spec_field_fn. */
int spec_fn_uint(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_bool(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_size(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_cluster(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_duration(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
/* A decimal like 1.5, stored in thousandths (unsigned); min/max in thousandths too. */
int spec_fn_milli(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_enum(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_name(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_version(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_abs_path(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_text(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_uri(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_user(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_ssh_host(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
bool spec_ssh_host_valid(const char *s, size_t n);
/* The host part of a libvirt URI (without user, port, IPv6 brackets) as a pointer into uri and
 * its length; 0 (and NULL) when the URI names none ("qemu:///system"). */
size_t spec_uri_host(const char *uri, const char **host);
int spec_fn_network(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_pattern(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);
int spec_fn_template(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f);

/* A scalar that is not null, as text; else an "expected <what>" error. */
int spec_scalar(spec_ctx *c, const spec_node *v, const char *what, const char **out);

/* The rule texts every name and version error repeats. */
#define SPEC_NAME_RULE "must be 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"

/* Checks a clone name pattern; on error writes why into `why`. */
int spec_pattern_check(const char *pattern, char *why, size_t len);

/* Resolves domain.template and takes its digest (after the walk). */
int spec_resolve_template(spec_ctx *c);

/* Renders a clone name pattern; -1 when the pattern is malformed or buf too small. */
int spec_render_name(const char *pattern, const char *pool, unsigned index, char *buf, size_t len);

#endif
