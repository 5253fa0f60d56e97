/* run.h: the one subprocess runner: argv arrays (never a shell), LC_ALL=C, output captured. */
#ifndef VP_UTIL_RUN_H
#define VP_UTIL_RUN_H

#include "util/util.h"

typedef struct vp_run_result {
	int exit_code;  /* valid when signal == 0 */
	int signal;     /* the signal that killed it, or 0 */
	vp_buf out;     /* captured stdout */
	vp_buf err;     /* captured stderr */
} vp_run_result;

/* Extra environment for the child, NULL-terminated "KEY=VALUE" strings. */
typedef struct vp_run_opts {
	const char *const *env;   /* added to the inherited environment */
	const char *stdin_path;   /* NULL: /dev/null */
	double timeout;           /* seconds, 0 = none; the child's whole process group
	                           * (it runs in its own) is killed with SIGKILL */
	int passthrough_stderr;   /* 1: stderr goes to ours instead of being captured */
	int keep_fd;              /* > 2: this close-on-exec descriptor stays open in the child
	                           * (and only in it), at the same number */
} vp_run_opts;

/* Runs argv[0] (looked up in PATH) and waits. Returns 0 when the child could
 * be run (whatever its exit status: look at res), negative when it could not.
 * res must be released with vp_run_result_release(). */
int vp_run(const char *const argv[], const vp_run_opts *opts, vp_run_result *res);

/* Runs and requires exit status 0; on failure records an error that quotes
 * the command and the last line of its stderr. res may be NULL. */
int vp_run_ok(const char *const argv[], const vp_run_opts *opts, vp_run_result *res);

void vp_run_result_release(vp_run_result *res);

/* "qemu-img info --output=json 'a b'": printable form for logs and --dry-run. */
char *vp_run_format(const char *const argv[]);

#endif
