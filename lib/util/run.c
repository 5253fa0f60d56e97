/* run.c: fork/exec with captured output, in the spirit of libvirt's virCommand. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/run.h"

extern char **environ;

static char **build_env(const char *const *extra)
{
	size_t n = 0, m = 0, i, j = 0;
	char **env;

	while (environ[n])
		n++;
	while (extra && extra[m])
		m++;
	env = calloc(n + m + 2, sizeof(*env));
	if (!env)
		return NULL;
	env[j++] = (char *)"LC_ALL=C";
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "LC_ALL=", 7) != 0)
			env[j++] = environ[i];
	for (i = 0; i < m; i++)
		env[j++] = (char *)extra[i];
	return env;
}

/* fork + exec rather than posix_spawn: the child must die with us
 * (PR_SET_PDEATHSIG), so that a killed vdipool leaves no qemu-img behind
 * writing into a half-made image. Only async-signal-safe calls after fork. */
static int spawn(const char *const argv[], const vp_run_opts *opts, char **env, int out_fd, int err_fd,
		 pid_t *pid)
{
	const char *in = opts->stdin_path ? opts->stdin_path : "/dev/null";
	pid_t parent = getpid();
	int errpipe[2];
	int child_errno = 0;
	ssize_t n;

	if (pipe2(errpipe, O_CLOEXEC) < 0)
		return vp_error_set_os(errno, "cannot create pipe for '%s'", argv[0]);
	*pid = fork();
	if (*pid < 0) {
		int e = errno;
		close(errpipe[0]);
		close(errpipe[1]);
		return vp_error_set_os(e, "cannot run '%s'", argv[0]);
	}
	if (*pid == 0) {
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		/* Its own process group, so that a timeout kills what it started too
		 * (a health command's shell and its children), not only itself. */
		setpgid(0, 0);
		fd = open(in, O_RDONLY);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(out_fd, 1) < 0 ||
		    (!opts->passthrough_stderr && dup2(err_fd, 2) < 0) ||
		    (opts->keep_fd > 2 && fcntl(opts->keep_fd, F_SETFD, 0) < 0))
			goto fail;
		execvpe(argv[0], (char *const *)argv, env);
fail:
		child_errno = errno;
		if (write(errpipe[1], &child_errno, sizeof(child_errno)) < 0)
			_exit(127);
		_exit(127);
	}
	/* Also from this side: the group must exist before a timeout kills it. */
	setpgid(*pid, *pid);
	close(errpipe[1]);
	/* The pipe closes on exec (success) or carries errno (failure). */
	while ((n = read(errpipe[0], &child_errno, sizeof(child_errno))) < 0 && errno == EINTR)
		;
	close(errpipe[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(*pid, NULL, 0);
		return vp_error_set(VP_ERR_COMMAND, VP_EIO, "cannot run '%s': %s", argv[0], strerror(child_errno));
	}
	return 0;
}

static int drain(int fd, vp_buf *b)
{
	char chunk[8192];
	ssize_t r = read(fd, chunk, sizeof(chunk));

	if (r > 0)
		vp_buf_add(b, chunk, (size_t)r);
	return (int)r;
}

int vp_run(const char *const argv[], const vp_run_opts *opts, vp_run_result *res)
{
	static const vp_run_opts none;
	int outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char **env = NULL;
	pid_t pid = -1;
	int rc, status, open_fds;
	double deadline;

	if (!opts)
		opts = &none;
	memset(res, 0, sizeof(*res));
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		rc = vp_error_set_os(errno, "cannot create pipe for '%s'", argv[0]);
		goto out;
	}
	env = build_env(opts->env);
	if (!env) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	rc = spawn(argv, opts, env, outp[1], errp[1], &pid);
	if (rc < 0)
		goto out;
	close(outp[1]);
	close(errp[1]);
	outp[1] = errp[1] = -1;

	deadline = opts->timeout > 0 ? vp_now() + opts->timeout : 0;
	open_fds = 2;
	while (open_fds > 0) {
		struct pollfd pfd[2] = { { outp[0], POLLIN, 0 }, { errp[0], POLLIN, 0 } };
		int wait_ms = -1;

		if (deadline) {
			double left = deadline - vp_now();
			if (left <= 0) {
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				break;
			}
			wait_ms = (int)(left * 1000) + 1;
		}
		if (poll(pfd, 2, wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))) {
				int *fdp = i == 0 ? &outp[0] : &errp[0];
				if (drain(*fdp, i == 0 ? &res->out : &res->err) <= 0) {
					close(*fdp);
					*fdp = -1;
					open_fds--;
				}
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = vp_error_set_os(errno, "cannot wait for '%s'", argv[0]);
			goto out;
		}
	}
	if (WIFSIGNALED(status))
		res->signal = WTERMSIG(status);
	else
		res->exit_code = WEXITSTATUS(status);
	rc = 0;
out:
	for (int i = 0; i < 2; i++) {
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	free(env);
	return rc;
}

static const char *last_line(const vp_buf *b, char *tmp, size_t len)
{
	const char *s = vp_buf_cstr(b);
	size_t n = strlen(s);
	const char *start;

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	start = s + n;
	while (start > s && start[-1] != '\n')
		start--;
	snprintf(tmp, len, "%.*s", (int)(s + n - start), start);
	return tmp;
}

int vp_run_ok(const char *const argv[], const vp_run_opts *opts, vp_run_result *res)
{
	vp_run_result local;
	vp_run_result *r = res ? res : &local;
	char line[512];
	int rc = vp_run(argv, opts, r);

	if (rc == 0 && (r->signal || r->exit_code)) {
		VP_AUTOFREE char *cmd = vp_run_format(argv);
		if (r->signal)
			rc = vp_error_set(VP_ERR_COMMAND, VP_EIO, "'%s' was killed by signal %d",
					  cmd ? cmd : argv[0], r->signal);
		else
			rc = vp_error_set(VP_ERR_COMMAND, VP_EIO, "'%s' failed with exit code %d: %s",
					  cmd ? cmd : argv[0], r->exit_code,
					  last_line(&r->err, line, sizeof(line)));
	}
	if (!res)
		vp_run_result_release(&local);
	return rc;
}

void vp_run_result_release(vp_run_result *res)
{
	vp_buf_release(&res->out);
	vp_buf_release(&res->err);
}

char *vp_run_format(const char *const argv[])
{
	vp_buf b = VP_BUF_INIT;

	for (size_t i = 0; argv[i]; i++) {
		const char *a = argv[i];
		if (i)
			vp_buf_putc(&b, ' ');
		if (*a && strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./,:@+%") == strlen(a)) {
			vp_buf_puts(&b, a);
		} else {
			vp_buf_putc(&b, '\'');
			for (; *a; a++) {
				if (*a == '\'')
					vp_buf_puts(&b, "'\\''");
				else
					vp_buf_putc(&b, *a);
			}
			vp_buf_putc(&b, '\'');
		}
	}
	return vp_buf_detach(&b);
}
