/* util.c: growable buffer, string and number helpers used everywhere. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

int vp_buf_grow(vp_buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (b->oom)
		return VP_ENOMEM;
	if (extra > SIZE_MAX - b->len - 1)
		goto oom;
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	p = realloc(b->data, cap);
	if (!p)
		goto oom;
	b->data = p;
	b->cap = cap;
	return 0;
oom:
	b->oom = true;
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

int vp_buf_add(vp_buf *b, const void *data, size_t len)
{
	if (vp_buf_grow(b, len) < 0)
		return VP_ENOMEM;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int vp_buf_puts(vp_buf *b, const char *s) { return vp_buf_add(b, s, strlen(s)); }
int vp_buf_putc(vp_buf *b, char c) { return vp_buf_add(b, &c, 1); }

int vp_buf_vprintf(vp_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "bad format string");
	if (vp_buf_grow(b, (size_t)n) < 0)
		return VP_ENOMEM;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int vp_buf_printf(vp_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vp_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

int vp_buf_json_str(vp_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");

	vp_buf_putc(b, '"');
	for (; *p; p++) {
		switch (*p) {
		case '"': vp_buf_puts(b, "\\\""); break;
		case '\\': vp_buf_puts(b, "\\\\"); break;
		case '\n': vp_buf_puts(b, "\\n"); break;
		case '\r': vp_buf_puts(b, "\\r"); break;
		case '\t': vp_buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20)
				vp_buf_printf(b, "\\u%04x", *p);
			else
				vp_buf_putc(b, (char)*p);
		}
	}
	return vp_buf_putc(b, '"');
}

const char *vp_buf_cstr(const vp_buf *b) { return b->data ? b->data : ""; }

char *vp_buf_detach(vp_buf *b)
{
	char *p;

	if (b->oom) {
		vp_buf_release(b);
		return NULL;
	}
	p = b->data ? b->data : strdup("");
	*b = (vp_buf)VP_BUF_INIT;
	if (!p)
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return p;
}

void vp_buf_release(vp_buf *b)
{
	free(b->data);
	*b = (vp_buf)VP_BUF_INIT;
}

char *vp_strdup_printf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0) {
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		return NULL;
	}
	return s;
}

char *vp_strdup(const char *s)
{
	char *p = strdup(s ? s : "");

	if (!p)
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return p;
}

static size_t rbd_key_len(const char *loc)
{
	const char *opt = strncmp(loc, "rbd:", 4) ? NULL : strchr(loc + 4, ':');

	return opt ? (size_t)(opt - loc) : strlen(loc);
}

bool vp_location_same(const char *a, const char *b)
{
	size_t na, nb;

	if (!a || !b)
		return false;
	if (!strcmp(a, b))
		return true;
	na = rbd_key_len(a);
	nb = rbd_key_len(b);
	return !strncmp(a, "rbd:", 4) && na == nb && !strncmp(a, b, na);
}

bool vp_name_valid(const char *s)
{
	size_t i;

	if (!s || !*s)
		return false;
	if (!(islower((unsigned char)s[0]) || isdigit((unsigned char)s[0])))
		return false;
	for (i = 1; s[i]; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i > 62 || !(islower(c) || isdigit(c) || c == '-'))
			return false;
	}
	return true;
}

const char *vp_fmt_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < VP_ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
	return buf;
}

int vp_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mult = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mult = 1ULL << 10; end++; break;
	case 'M': mult = 1ULL << 20; end++; break;
	case 'G': mult = 1ULL << 30; end++; break;
	case 'T': mult = 1ULL << 40; end++; break;
	case 'P': mult = 1ULL << 50; end++; break;
	case 'B': end++; if (*end) return -1; break;
	default: return -1;
	}
	if (mult > 1) {
		if (*end == 'i' && end[1] == 'B')
			end += 2;
		else if (*end == 'B')
			end++;
	}
	if (*end)
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = (uint64_t)v * mult;
	return 0;
}

double vp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void vp_now_iso8601(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%.19s.%06uZ", sec, (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}
