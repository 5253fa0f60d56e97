/* spec_value.c: typed spec values: integers, bools, sizes, durations, enums, names, versions, paths, URIs. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "spec.h"
#include "util/util.h"

/* Scalars carry their text as written; only the schema decides its type, so
 * "1.10" stays a version and "no" stays a network name (no YAML 1.1 guessing). */
int spec_scalar(spec_ctx *c, const spec_node *v, const char *what, const char **out)
{
	char got[SPEC_QUOTE_MAX];

	if (v->kind != SPEC_SCALAR || spec_is_null(v))
		return spec_err(c, v, "expected %s, got %s", what, spec_describe(got, sizeof(got), v));
	*out = v->str;
	return 0;
}

/* Quoted text where a number or bool belongs: say so, it is an easy slip. */
static int typed_scalar(spec_ctx *c, const spec_node *v, const char *what, const char **out)
{
	char got[SPEC_QUOTE_MAX];
	int r;

	if ((r = spec_scalar(c, v, what, out)) < 0)
		return r;
	if (!v->plain)
		return spec_err(c, v, "expected %s, got the quoted string %s, drop the quotes", what,
				spec_quote(got, sizeof(got), v->str));
	return 0;
}

static bool all_digits(const char *s)
{
	if (*s == '+' || *s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

int spec_fn_uint(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	long long n;
	char *end;
	int r;

	if ((r = typed_scalar(c, v, "an integer", &s)) < 0)
		return r;
	if (!all_digits(s))
		return spec_err(c, v, "expected an integer, got %s", spec_quote(got, sizeof(got), s));
	/* YAML 1.1 reads 010 as 8, YAML 1.2 as 10: refuse rather than pick one. */
	if (s[*s == '+' || *s == '-'] == '0' && s[(*s == '+' || *s == '-') + 1])
		return spec_err(c, v, "expected an integer without leading zeros, got %s",
				spec_quote(got, sizeof(got), s));
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno || n < f->min || n > f->max)
		return spec_err(c, v, "must be between %" PRId64 " and %" PRId64 ", got %s", f->min, f->max,
				s);
	*(unsigned *)dst = (unsigned)n;
	return 0;
}

int spec_fn_bool(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = typed_scalar(c, v, "true or false", &s)) < 0)
		return r;
	/* YAML 1.2's booleans only: "yes", "on" and friends are typos here. */
	if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
		*(bool *)dst = true;
	else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
		*(bool *)dst = false;
	else
		return spec_err(c, v, "expected true or false, got %s", spec_quote(got, sizeof(got), s));
	return 0;
}

/* "16M", "4T": the largest binary unit that divides n. */
static const char *fmt_size(char *buf, size_t len, uint64_t n)
{
	static const char units[] = "KMGTP";
	int u = -1;

	while (u < 4 && n && n % 1024 == 0) {
		n /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(buf, len, "%" PRIu64, n);
	else
		snprintf(buf, len, "%" PRIu64 "%c", n, units[u]);
	return buf;
}

static int parse_size(spec_ctx *c, const spec_node *v, uint64_t *out)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a size like '512M' or '20G'", &s)) < 0)
		return r;
	if (vp_parse_size(s, out) < 0)
		return spec_err(c, v, "expected a size like '512M' or '20G', got %s",
				spec_quote(got, sizeof(got), s));
	return 0;
}

int spec_fn_size(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX], lo[32], hi[32], al[32];
	uint64_t n;
	int r;

	if ((r = parse_size(c, v, &n)) < 0)
		return r;
	spec_quote(got, sizeof(got), v->str);
	if (n < (uint64_t)f->min || n > (uint64_t)f->max)
		return spec_err(c, v, "must be between %s and %s, got %s", fmt_size(lo, sizeof(lo), (uint64_t)f->min),
				fmt_size(hi, sizeof(hi), (uint64_t)f->max), got);
	if (f->align && n % f->align)
		return spec_err(c, v, "must be a multiple of %s, got %s", fmt_size(al, sizeof(al), f->align), got);
	*(uint64_t *)dst = n;
	return 0;
}

int spec_fn_cluster(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	uint64_t n;
	int r;

	if ((r = parse_size(c, v, &n)) < 0)
		return r;
	if (n < (uint64_t)f->min || n > (uint64_t)f->max || (n & (n - 1)))
		return spec_err(c, v, "must be a power of two from 16K to 2M, got %s",
				spec_quote(got, sizeof(got), v->str));
	*(uint64_t *)dst = n;
	return 0;
}

/* "4", "4.0", "1.5", "0.125": a decimal in thousandths, -1 when malformed.
 * Fixed point, so that capacity math is exact integer math everywhere. */
static int64_t parse_milli(const char *s)
{
	int64_t n = 0, scale = 1000;

	if (!isdigit((unsigned char)*s))
		return -1;
	for (; isdigit((unsigned char)*s); s++)
		if ((n = n * 10 + (*s - '0')) > 1000000000)
			return -1;
	n *= 1000;
	if (*s == '.') {
		if (!isdigit((unsigned char)*++s))
			return -1;
		for (; isdigit((unsigned char)*s); s++) {
			if ((scale /= 10) == 0)
				return -1; /* more than three decimals */
			n += (*s - '0') * scale;
		}
	}
	return *s ? -1 : n;
}

static const char *fmt_milli(char *buf, size_t len, int64_t milli)
{
	int w = 3;
	int64_t frac = milli % 1000;

	while (w > 1 && frac % 10 == 0) {
		frac /= 10;
		w--;
	}
	snprintf(buf, len, "%" PRId64 ".%0*" PRId64, milli / 1000, w, frac);
	return buf;
}

int spec_fn_milli(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	static const char what[] = "a decimal number like '1.5'";
	char got[SPEC_QUOTE_MAX], lo[32], hi[32];
	const char *s = NULL;
	int64_t n;
	int r;

	if ((r = typed_scalar(c, v, what, &s)) < 0)
		return r;
	if ((n = parse_milli(s)) < 0)
		return spec_err(c, v, "expected %s (at most 3 decimals), got %s", what, spec_quote(got, sizeof(got), s));
	if (n < f->min || n > f->max)
		return spec_err(c, v, "must be between %s and %s, got %s", fmt_milli(lo, sizeof(lo), f->min),
				fmt_milli(hi, sizeof(hi), f->max), spec_quote(got, sizeof(got), s));
	*(unsigned *)dst = (unsigned)n;
	return 0;
}

/* "90", "30s", "5m", "1h30m": seconds; -1 when malformed or absurd. */
static int64_t parse_duration(const char *s)
{
	int64_t total = 0;

	if (all_digits(s) && *s != '-' && *s != '+')
		return strlen(s) > 9 ? -1 : strtoll(s, NULL, 10);
	while (*s) {
		int64_t n = 0, unit;
		if (!isdigit((unsigned char)*s))
			return -1;
		for (; isdigit((unsigned char)*s); s++)
			if ((n = n * 10 + (*s - '0')) > 1000000000)
				return -1;
		unit = *s == 's' ? 1 : *s == 'm' ? 60 : *s == 'h' ? 3600 : 0;
		if (!unit || (total += n * unit) > 1000000000)
			return -1;
		s++;
	}
	return total;
}

int64_t vp_spec_parse_duration(const char *text)
{
	return text && *text ? parse_duration(text) : -1;
}

static const char *fmt_duration(char *buf, size_t len, int64_t sec)
{
	if (sec % 3600 == 0)
		snprintf(buf, len, "%" PRId64 "h", sec / 3600);
	else if (sec % 60 == 0)
		snprintf(buf, len, "%" PRId64 "m", sec / 60);
	else
		snprintf(buf, len, "%" PRId64 "s", sec);
	return buf;
}

int spec_fn_duration(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	static const char what[] = "a duration like '30s', '5m' or '1h', or seconds";
	char got[SPEC_QUOTE_MAX], lo[32], hi[32];
	const char *s = NULL;
	int64_t n;
	int r;

	if ((r = spec_scalar(c, v, what, &s)) < 0)
		return r;
	if ((n = parse_duration(s)) < 0)
		return spec_err(c, v, "expected %s, got %s", what, spec_quote(got, sizeof(got), s));
	if (n < f->min || n > f->max)
		return spec_err(c, v, "must be between %s and %s, got %s", fmt_duration(lo, sizeof(lo), f->min),
				fmt_duration(hi, sizeof(hi), f->max), spec_quote(got, sizeof(got), s));
	*(unsigned *)dst = (unsigned)n;
	return 0;
}

/* "'a', 'b' or 'c'" */
static const char *fmt_choices(char *buf, size_t len, const char *const *choices)
{
	size_t pos = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices[i] && pos < len; i++)
		pos += (size_t)snprintf(buf + pos, len - pos, "%s'%s'", i == 0 ? "" : choices[i + 1] ? ", " : " or ",
					choices[i]);
	return buf;
}

int spec_fn_enum(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX], list[128];
	const char *s = NULL;
	int r;

	fmt_choices(list, sizeof(list), f->choices);
	if ((r = spec_scalar(c, v, list, &s)) < 0)
		return r;
	for (int i = 0; f->choices[i]; i++) {
		if (!strcmp(s, f->choices[i])) {
			*(int *)dst = i;
			return 0;
		}
	}
	return spec_err(c, v, "must be %s, got %s", list, spec_quote(got, sizeof(got), s));
}

int spec_fn_name(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a name", &s)) < 0)
		return r;
	if (!vp_name_valid(s))
		return spec_err(c, v, SPEC_NAME_RULE ", got %s", spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

/* Versions become directory names in the base store: nothing that could
 * climb out of it or hide (no '/', no "..", no leading '.'). */
static bool version_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.' || strstr(s, ".."))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._+-", *s))
			return false;
	return true;
}

int spec_fn_version(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a version or 'latest'", &s)) < 0)
		return r;
	if (!strcmp(s, "latest")) {
		*(const char **)dst = NULL;
		return 0;
	}
	if (!version_valid(s))
		return spec_err(c, v,
				"must be 'latest' or 1-64 characters of A-Z, a-z, 0-9, '.', '_', '+' and '-', "
				"not starting with '.' and without '..', got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

static bool has_space_or_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || *s == 0x7f)
			return true;
	return false;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

int spec_fn_abs_path(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	size_t n;
	int r;

	if ((r = spec_scalar(c, v, "an absolute path", &s)) < 0)
		return r;
	if (s[0] != '/' || has_control(s) || strlen(s) > 4000)
		return spec_err(c, v, "must be an absolute path, got %s", spec_quote(got, sizeof(got), s));
	for (n = strlen(s); n > 1 && s[n - 1] == '/'; n--)
		; /* "/srv/x/" and "/srv/x" are one directory */
	*(const char **)dst = n == strlen(s) ? s : spec_strndup(&c->in->arena, s, n);
	return *(const char **)dst ? 0 : VP_ENOMEM;
}

/* Any text without control characters (tier references, before they are resolved). */
int spec_fn_text(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a string", &s)) < 0)
		return r;
	if (has_control(s))
		return spec_err(c, v, "must not contain control characters, got %s", spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

/* scheme[+transport]:// as libvirt writes them: qemu:///system, qemu+ssh://h/system. */
int spec_fn_uri(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL, *p;
	int r;

	if ((r = spec_scalar(c, v, "a libvirt uri", &s)) < 0)
		return r;
	for (p = s; isalnum((unsigned char)*p) || (*p && strchr("+.-", *p)); p++)
		;
	if (!isalpha((unsigned char)s[0]) || strncmp(p, "://", 3) || has_space_or_control(s) || strlen(s) > 1024)
		return spec_err(c, v, "must be a libvirt uri like 'qemu:///system', got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

/* A host name or an IP address as ssh takes it: letters, digits, '.', '-', '_' and ':' (IPv6),
 * not starting with '-' (it lands in argv and known_hosts lookups) nor '.'. */
bool spec_ssh_host_valid(const char *s, size_t n)
{
	if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-_:", s[i]))
			return false;
	return true;
}

int spec_fn_ssh_host(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a host name or address", &s)) < 0)
		return r;
	if (!spec_ssh_host_valid(s, strlen(s)))
		return spec_err(c, v,
				"must be a host name or IP address (1-253 of letters, digits, '.', '-', '_' and ':', "
				"IPv6 without brackets), got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

/* libvirt URIs are scheme[+transport]://[user@]host[:port]/path[?query]: the host part, IPv6 in
 * brackets ("[::1]", returned without them). None (length 0) for "qemu:///system". */
size_t spec_uri_host(const char *uri, const char **host)
{
	const char *a = strstr(uri, "://"), *end, *at;

	*host = NULL;
	if (!a)
		return 0;
	a += 3;
	end = a + strcspn(a, "/?#");
	for (at = a; at < end; at++)
		if (*at == '@')
			a = at + 1;
	if (a < end && *a == '[') {
		const char *close = memchr(a, ']', (size_t)(end - a));
		if (!close)
			return 0;
		*host = a + 1;
		return (size_t)(close - a - 1);
	}
	at = memchr(a, ':', (size_t)(end - a));
	*host = a;
	return (size_t)((at ? at : end) - a);
}

int spec_fn_user(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL, *p;
	int r;

	if ((r = spec_scalar(c, v, "a user name", &s)) < 0)
		return r;
	for (p = s; isalnum((unsigned char)*p) || (*p && strchr("._-", *p)); p++)
		;
	if (*p || p == s || p - s > 32 || s[0] == '-')
		return spec_err(c, v,
				"must be a user name of 1-32 letters, digits, '.', '_' and '-', not starting "
				"with '-', got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

int spec_fn_network(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a libvirt network name or 'none'", &s)) < 0)
		return r;
	if (!strcmp(s, "none")) {
		*(const char **)dst = NULL;
		return 0;
	}
	if (strlen(s) > 64 || strchr(s, '/') || has_space_or_control(s))
		return spec_err(c, v,
				"must be a libvirt network name (1-64 characters, no spaces or '/') or 'none', got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

int spec_fn_pattern(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char why[256];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a name pattern like 'ci-{index:03}'", &s)) < 0)
		return r;
	if (spec_pattern_check(s, why, sizeof(why)) < 0)
		return spec_err(c, v, "%s", why);
	*(const char **)dst = s;
	return 0;
}

/* Only the form is checked here; the search runs once the walk is done, so
 * that a default template is found the same way as a written one. */
int spec_fn_template(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s = NULL;
	int r;

	if ((r = spec_scalar(c, v, "a template name or an absolute path", &s)) < 0)
		return r;
	if (strchr(s, '/') ? s[0] != '/' || has_control(s) : !vp_name_valid(s))
		return spec_err(c, v, "must be a template name (like 'server') or an absolute path, got %s",
				spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}
