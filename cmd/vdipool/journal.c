/* journal.c: apply, rollout, release and gc decisions to syslog / the journal, as key=value fields. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Our own datagram to the syslog socket (what syslog(3) sends to /dev/log, which journald
 * reads): the socket's path is configurable (syslog_socket), so a test can listen on one. */
static int log_fd = -2; /* -2 not opened yet, -1 none */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static int log_socket(cli *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (log_fd != -2)
		return log_fd;
	log_fd = -1;
	if (!c->syslog || !c->syslog_socket || strlen(c->syslog_socket) >= sizeof(sa.sun_path))
		return -1;
	strcpy(sa.sun_path, c->syslog_socket);
	log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (log_fd >= 0 && connect(log_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(log_fd);
		log_fd = -1;
	}
	return log_fd;
}

/* A value goes in quotes when it has a space, a quote or '=' (journalctl shows it as written). */
static size_t put_field(char *b, size_t n, size_t pos, const char *key, const char *val)
{
	bool quote = !*val || strpbrk(val, " \"=\t") != NULL;

	if (pos >= n)
		return pos;
	pos += (size_t)snprintf(b + pos, n - pos, "%s%s=%s", pos ? " " : "", key, quote ? "\"" : "");
	for (const char *s = val; *s && pos + 3 < n; s++) {
		if (*s == '"' || *s == '\\')
			b[pos++] = '\\';
		b[pos++] = *s == '\n' ? ' ' : *s;
	}
	if (pos + 2 < n && quote)
		b[pos++] = '"';
	b[pos < n ? pos : n - 1] = '\0';
	return pos;
}

void cli_log(cli *c, int prio, const char *pool, const char *clone, const char *action, const char *fmt, ...)
{
	char msg[2048] = "", line[2304], stamp[32];
	size_t pos = 0;
	time_t now = time(NULL);
	struct tm tm;
	va_list ap;
	int n;

	if (!c->syslog)
		return;
	if (pool)
		pos = put_field(msg, sizeof(msg), pos, "pool", pool);
	if (clone)
		pos = put_field(msg, sizeof(msg), pos, "clone", clone);
	if (action)
		pos = put_field(msg, sizeof(msg), pos, "action", action);
	if (fmt && pos + 1 < sizeof(msg)) {
		va_start(ap, fmt);
		vsnprintf(msg + pos + (pos ? 1 : 0), sizeof(msg) - pos - 1, fmt, ap);
		va_end(ap);
		if (pos)
			msg[pos] = ' ';
	}
	strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", localtime_r(&now, &tm));
	/* LOG_DAEMON (3 << 3) | prio */
	n = snprintf(line, sizeof(line), "<%d>%s vdipool[%d]: %s", (3 << 3) | (prio & 7), stamp, (int)getpid(), msg);
	if (n < 0)
		return;
	pthread_mutex_lock(&log_lock);
	if (log_socket(c) >= 0 && send(log_fd, line, strlen(line), MSG_NOSIGNAL) < 0 && errno == ENOTCONN) {
		close(log_fd);
		log_fd = -2; /* the listener restarted: connect again next time */
	}
	pthread_mutex_unlock(&log_lock);
}
