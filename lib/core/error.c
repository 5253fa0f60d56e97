/* error.c: per-thread last-error storage behind vp_error_set()/vp_error_last(). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/version.h"

/* Messages longer than this are cut; that is intended, so GCC need not warn. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#define VP_ERRMSG_MAX 2048

static _Thread_local char tls_msg[VP_ERRMSG_MAX];
static _Thread_local vp_error tls_err = { .message = "", .klass = VP_ERR_NONE };

const vp_error *vp_error_last(void)
{
	tls_err.message = tls_msg;
	return &tls_err;
}

void vp_error_clear(void)
{
	tls_msg[0] = '\0';
	tls_err = (vp_error){ .message = tls_msg, .klass = VP_ERR_NONE };
}

static void record(const char *file, int line, vp_error_class klass, int code)
{
	tls_err.message = tls_msg;
	tls_err.klass = klass;
	tls_err.code = code;
	tls_err.file = file;
	tls_err.line = line;
}

int vp_error_set_(const char *file, int line, vp_error_class klass, int code, const char *fmt, ...)
{
	va_list ap;
	char tmp[VP_ERRMSG_MAX];

	/* Format into a scratch buffer first: the arguments may point into the
	 * current message (re-raising with context). */
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(tls_msg, tmp, sizeof(tmp));
	record(file, line, klass, code);
	return code;
}

int vp_error_set_os_(const char *file, int line, int errnum, const char *fmt, ...)
{
	va_list ap;
	char tmp[VP_ERRMSG_MAX];
	int n;
	int code = errnum == ENOMEM ? VP_ENOMEM : errnum == ENOENT ? VP_ENOENT
		 : errnum == EEXIST ? VP_EEXIST : errnum == EBUSY ? VP_EBUSY : VP_EIO;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(tmp))
		snprintf(tmp + n, sizeof(tmp) - (size_t)n, ": %s", strerror(errnum));
	memcpy(tls_msg, tmp, sizeof(tmp));
	record(file, line, errnum == ENOMEM ? VP_ERR_NOMEM : VP_ERR_OS, code);
	return code;
}

void vp_error_prefix(const char *fmt, ...)
{
	va_list ap;
	char tmp[VP_ERRMSG_MAX];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(tmp))
		snprintf(tmp + n, sizeof(tmp) - (size_t)n, ": %s", tls_msg);
	memcpy(tls_msg, tmp, sizeof(tmp));
}

const char *vp_version(void)
{
	return VP_VERSION_STRING;
}

/* ---- debug lines ------------------------------------------------------------ */

static vp_debug_fn debug_fn;
static void *debug_ctx;

void vp_set_debug_handler(vp_debug_fn fn, void *ctx)
{
	debug_fn = fn;
	debug_ctx = ctx;
}

void vp_debug(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (!debug_fn)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	debug_fn(debug_ctx, line);
}
