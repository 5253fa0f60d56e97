/* vdipool/error.h: per-thread "last error" records, in the style of libgit2's git_error_last(). */
#ifndef VDIPOOL_ERROR_H
#define VDIPOOL_ERROR_H

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What part of the system an error came from. */
typedef enum {
	VP_ERR_NONE = 0,
	VP_ERR_OS,      /* a system call failed; the message carries strerror */
	VP_ERR_NOMEM,
	VP_ERR_INVALID, /* a bad argument to an API call or to the CLI */
	VP_ERR_SPEC,    /* the pool spec */
	VP_ERR_QCOW2,   /* reading or writing a qcow2 image */
	VP_ERR_STORE,   /* the base store */
	VP_ERR_PLUGIN,  /* loading or calling a storage plugin */
	VP_ERR_VIRT,    /* libvirt, with libvirt's own text kept */
	VP_ERR_PLAN,
	VP_ERR_EXEC,
	VP_ERR_SSH,
	VP_ERR_COMMAND /* a subprocess (qemu-img) failed */
} vp_error_class;

typedef struct vp_error {
	const char *message;  /* never NULL; "" when no error was recorded */
	vp_error_class klass;
	int code;             /* the vp_errcode that went with it */
	const char *file;     /* where in libvdipool it was recorded */
	int line;
} vp_error;

/* The last error recorded on this thread. Never NULL; borrowed, valid until
 * the next libvdipool call on this thread. */
VP_API const vp_error *vp_error_last(void);

/* Forget the last error of this thread. */
VP_API void vp_error_clear(void);

/* Record an error and return `code` so that callers can write
 * `return vp_error_set(VP_ERR_SPEC, VP_EINVAL, "...")`. Plugins use it too. */
VP_API int vp_error_set_(const char *file, int line, vp_error_class klass, int code,
                         const char *fmt, ...) VP_PRINTF(5, 6);
#define vp_error_set(klass, code, ...) vp_error_set_(__FILE__, __LINE__, (klass), (code), __VA_ARGS__)

/* Like vp_error_set, with ": strerror(errnum)" appended. */
VP_API int vp_error_set_os_(const char *file, int line, int errnum, const char *fmt, ...)
	VP_PRINTF(4, 5);
#define vp_error_set_os(errnum, ...) vp_error_set_os_(__FILE__, __LINE__, (errnum), __VA_ARGS__)

/* Put "prefix: " before the current message (adds context on the way up). */
VP_API void vp_error_prefix(const char *fmt, ...) VP_PRINTF(1, 2);

/* Debug lines (what a backend chose, e.g. how a full clone was copied). The library never
 * prints: each line goes to the handler set here, or nowhere (the default). Set it before any
 * other call; the handler may be called from the library's worker threads. */
typedef void (*vp_debug_fn)(void *ctx, const char *line);
VP_API void vp_set_debug_handler(vp_debug_fn fn, void *ctx);
VP_API void vp_debug(const char *fmt, ...) VP_PRINTF(1, 2);

#ifdef __cplusplus
}
#endif
#endif
