/* util.h: small helpers shared by libvdipool and the CLI (growable buffer, strings, cleanup). */
#ifndef VP_UTIL_H
#define VP_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "vdipool/common.h"
#include "vdipool/error.h"

#define VP_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Cleanup attribute for owning locals (nbdkit's CLEANUP_FREE); never in public headers. */
static inline void vp_autofree_fn(void *p) { free(*(void **)p); }
#define VP_AUTOFREE __attribute__((cleanup(vp_autofree_fn)))

/* A growable, always NUL-terminated byte buffer. Zero-initialise, then append. */
typedef struct vp_buf {
	char *data;
	size_t len;
	size_t cap;
	bool oom; /* set once an allocation failed; later appends do nothing */
} vp_buf;

#define VP_BUF_INIT { NULL, 0, 0, false }

int vp_buf_grow(vp_buf *b, size_t extra);
int vp_buf_add(vp_buf *b, const void *data, size_t len);
int vp_buf_puts(vp_buf *b, const char *s);
int vp_buf_putc(vp_buf *b, char c);
int vp_buf_printf(vp_buf *b, const char *fmt, ...) VP_PRINTF(2, 3);
int vp_buf_vprintf(vp_buf *b, const char *fmt, va_list ap) VP_PRINTF(2, 0);
/* Appends s as a JSON string literal, quotes included. */
int vp_buf_json_str(vp_buf *b, const char *s);
/* The text so far ("" if empty); borrowed. */
const char *vp_buf_cstr(const vp_buf *b);
/* Hands the storage to the caller (never NULL unless out of memory). */
char *vp_buf_detach(vp_buf *b);
void vp_buf_release(vp_buf *b);

/* asprintf that records VP_ERR_NOMEM on failure; result is the caller's. */
char *vp_strdup_printf(const char *fmt, ...) VP_PRINTF(1, 2);
char *vp_strdup(const char *s);

/* Two image locations name the same image: equal strings, or the same RBD image
 * ("rbd:pool/[ns/]image[@snap]") reached with other client options (":id=..:conf=.."). */
bool vp_location_same(const char *a, const char *b);

/* Valid object name: [a-z0-9][a-z0-9-]{0,62}. */
bool vp_name_valid(const char *s);

/* Formats a byte count for humans ("1.5 GiB") into buf. */
const char *vp_fmt_bytes(uint64_t bytes, char *buf, size_t len);

/* Parses "20G", "512M", "1048576", "1GiB" into bytes. 0 ok, -1 malformed or overflow. */
int vp_parse_size(const char *s, uint64_t *out);

/* The current UTC time as "2026-01-02T03:04:05.123456Z" into buf (40 bytes suffice). */
void vp_now_iso8601(char *buf, size_t len);

/* Monotonic time in seconds. */
double vp_now(void);

#endif
