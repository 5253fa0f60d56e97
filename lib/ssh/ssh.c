/* ssh.c: libssh2 sessions: TCP connect with a timeout, known_hosts check, key or agent auth, exec. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ssh/ssh_int.h"

#define DEFAULT_TIMEOUT 30.0
#define EXEC_OUTPUT_MAX (16u << 20)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc;

static void ssh_global_init(void)
{
	init_rc = libssh2_init(0);
}

int vp_ssh_fail(vp_ssh *s, int code, const char *fmt, ...)
{
	char what[512];
	char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (s && s->session)
		libssh2_session_last_error(s->session, &msg, NULL, 0);
	return vp_error_set(VP_ERR_SSH, code, "%s: %s", what, msg && *msg ? msg : "connection failed");
}

int vp_ssh_fingerprint_format(const unsigned char *key, size_t len, char *out, size_t outlen)
{
	unsigned char md[32];
	unsigned char b64[48];
	unsigned int mdlen = 0;
	int n;

	if (!EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != sizeof(md))
		return vp_error_set(VP_ERR_SSH, VP_EGENERIC, "cannot hash the host key");
	n = EVP_EncodeBlock(b64, md, (int)mdlen);
	while (n > 0 && b64[n - 1] == '=') /* OpenSSH prints it unpadded */
		n--;
	if ((size_t)n + 8 > outlen)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "fingerprint buffer too small");
	snprintf(out, outlen, "SHA256:%.*s", n, (const char *)b64);
	return 0;
}

char *vp_ssh_quote(const char *arg)
{
	vp_buf b = VP_BUF_INIT;

	vp_buf_putc(&b, '\'');
	for (const char *p = arg; *p; p++) {
		if (*p == '\'')
			vp_buf_puts(&b, "'\\''");
		else
			vp_buf_putc(&b, *p);
	}
	vp_buf_putc(&b, '\'');
	if (b.oom) {
		vp_buf_release(&b);
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		return NULL;
	}
	return vp_buf_detach(&b);
}

/* libssh2's socket I/O goes through these, so the bytes on the wire are counted
 * (and, in test builds, a connection can be cut after a given number of bytes). */
static ssize_t count_send(libssh2_socket_t fd, const void *buf, size_t len, int flags, void **abstract)
{
	vp_ssh *s = *abstract;
	ssize_t n;

#ifdef VP_TEST_HOOKS
	if (s->cut_after && s->wire_sent >= s->cut_after) {
		shutdown(fd, SHUT_RDWR);
		return -ECONNRESET;
	}
#endif
	n = send(fd, buf, len, flags | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	s->wire_sent += (uint64_t)n;
	return n;
}

static ssize_t count_recv(libssh2_socket_t fd, void *buf, size_t len, int flags, void **abstract)
{
	vp_ssh *s = *abstract;
	ssize_t n = recv(fd, buf, len, flags);

	if (n < 0)
		return -errno;
	s->wire_recv += (uint64_t)n;
	return n;
}

static int tcp_connect(vp_ssh *s, const char *host, int port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	char portstr[16];
	int err = 0, rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0)
		return vp_error_set(VP_ERR_SSH, VP_EIO, "cannot resolve '%s': %s; check the host name",
				    host, gai_strerror(rc));
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t elen = sizeof(err);
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
				ai->ai_protocol);

		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		rc = poll(&pfd, 1, (int)(s->timeout * 1000));
		if (rc == 0)
			err = ETIMEDOUT;
		else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
			err = errno;
		if (rc > 0 && err == 0) {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
			s->sock = fd;
			freeaddrinfo(res);
			return 0;
		}
		close(fd);
	}
	freeaddrinfo(res);
	return vp_error_set_os(err ? err : EHOSTUNREACH, "cannot connect to '%s' port %d", host, port);
}

static int knownhost_keybit(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
	}
}

static const char *hostkey_type_name(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return "ssh-rsa";
	case LIBSSH2_HOSTKEY_TYPE_DSS: return "ssh-dss";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return "ecdsa-sha2-nistp256";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return "ecdsa-sha2-nistp384";
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return "ecdsa-sha2-nistp521";
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return "ssh-ed25519";
	default: return "unknown";
	}
}

/* Only keys listed in known_hosts are accepted: there is no trust on first use. */
static int check_host_key(vp_ssh *s, const vp_ssh_opts *o, int port)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	struct libssh2_knownhost *entry = NULL;
	const char *key;
	size_t len = 0;
	int type = 0, rc, ret;
	char hostname[300];

	key = libssh2_session_hostkey(s->session, &len, &type);
	if (!key)
		return vp_ssh_fail(s, VP_EIO, "cannot read the host key of '%s'", s->label);
	if (vp_ssh_fingerprint_format((const unsigned char *)key, len, s->fingerprint,
				      sizeof(s->fingerprint)) < 0)
		return VP_EGENERIC;
	if (port == 22)
		snprintf(hostname, sizeof(hostname), "%s", o->host);
	else
		snprintf(hostname, sizeof(hostname), "[%s]:%d", o->host, port);

	kh = libssh2_knownhost_init(s->session);
	if (!kh)
		return vp_ssh_fail(s, VP_ENOMEM, "cannot check host keys");
	rc = libssh2_knownhost_readfile(kh, o->known_hosts, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	if (rc < 0) {
		ret = vp_ssh_fail(s, VP_EIO, "cannot read known hosts file '%s' (the host key of '%s' "
				  "is %s %s; add it there)", o->known_hosts, hostname,
				  hostkey_type_name(type), s->fingerprint);
		goto out;
	}
	rc = libssh2_knownhost_checkp(kh, o->host, port, key, len,
				      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
				      knownhost_keybit(type), &entry);
	switch (rc) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		ret = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		ret = vp_error_set(VP_ERR_SSH, VP_ECONFLICT,
				   "host key of '%s' has changed: it is now %s %s, which does not match "
				   "'%s'; refusing the host; if the host was really re-keyed, replace its "
				   "line in '%s' (ssh-keygen -R '%s' -f '%s')", hostname,
				   hostkey_type_name(type), s->fingerprint, o->known_hosts,
				   o->known_hosts, hostname, o->known_hosts);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		ret = vp_error_set(VP_ERR_SSH, VP_ECONFLICT,
				   "host key of '%s' is not known: %s %s is in no line of '%s'; refusing "
				   "the host; check the fingerprint with the host's administrator, then add "
				   "the key to '%s'", hostname, hostkey_type_name(type), s->fingerprint,
				   o->known_hosts, o->known_hosts);
		break;
	default:
		ret = vp_ssh_fail(s, VP_EIO, "cannot check the host key of '%s' against '%s'",
				  hostname, o->known_hosts);
		break;
	}
out:
	libssh2_knownhost_free(kh);
	return ret;
}

static int auth_agent(vp_ssh *s, const char *user)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(s->session);
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int ret = VP_EGENERIC, rc;

	if (!agent)
		return vp_ssh_fail(s, VP_ENOMEM, "cannot use ssh-agent");
	if (libssh2_agent_connect(agent) < 0) {
		ret = vp_ssh_fail(s, VP_EIO, "no identity file given and cannot reach ssh-agent "
				  "(SSH_AUTH_SOCK) for '%s'; pass --identity FILE or start an agent",
				  s->label);
		goto out;
	}
	if (libssh2_agent_list_identities(agent) < 0) {
		ret = vp_ssh_fail(s, VP_EIO, "cannot list the keys of ssh-agent");
		goto out;
	}
	while ((rc = libssh2_agent_get_identity(agent, &id, prev)) == 0) {
		if (libssh2_agent_userauth(agent, user, id) == 0) {
			ret = 0;
			goto out;
		}
		prev = id;
	}
	ret = vp_error_set(VP_ERR_SSH, VP_EIO, "authentication as '%s' failed: ssh-agent offered "
			   "no key that '%s' accepts; add the key to the user's authorized_keys",
			   user, s->label);
out:
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return ret;
}

static int authenticate(vp_ssh *s, const vp_ssh_opts *o)
{
	char pub[4096];

	if (!o->identity)
		return auth_agent(s, o->user);
	if (access(o->identity, R_OK) < 0)
		return vp_error_set_os(errno, "cannot read identity file '%s'", o->identity);
	snprintf(pub, sizeof(pub), "%s.pub", o->identity);
	/* Without the .pub beside it, libssh2 derives the public key from the private one. */
	if (libssh2_userauth_publickey_fromfile(s->session, o->user, access(pub, R_OK) == 0 ? pub : NULL,
						o->identity, o->passphrase) < 0)
		return vp_ssh_fail(s, VP_EIO, "authentication as '%s' with key '%s' failed on '%s'; "
				   "is its public key in the user's authorized_keys?", o->user,
				   o->identity, s->label);
	return 0;
}

static int session_start(vp_ssh *s, const vp_ssh_opts *o)
{
	s->session = libssh2_session_init_ex(NULL, NULL, NULL, s);
	if (!s->session)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "cannot start an SSH session");
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_SEND, (void *)count_send);
	libssh2_session_callback_set(s->session, LIBSSH2_CALLBACK_RECV, (void *)count_recv);
	libssh2_session_set_timeout(s->session, (long)(s->timeout * 1000));
	if (o->compress) {
		libssh2_session_flag(s->session, LIBSSH2_FLAG_COMPRESS, 1);
		libssh2_session_method_pref(s->session, LIBSSH2_METHOD_COMP_CS,
					    "zlib@openssh.com,zlib,none");
		libssh2_session_method_pref(s->session, LIBSSH2_METHOD_COMP_SC,
					    "zlib@openssh.com,zlib,none");
	}
	if (libssh2_session_handshake(s->session, s->sock) < 0)
		return vp_ssh_fail(s, VP_EIO, "ssh handshake with '%s' failed", s->label);
	return 0;
}

int vp_ssh_connect(vp_ssh **out, const vp_ssh_opts *o)
{
	vp_ssh *s;
	int port, rc;

	*out = NULL;
	if (!o || !o->host || !*o->host || !o->user || !*o->user || !o->known_hosts)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "ssh: host, user and known_hosts file are required");
	pthread_once(&init_once, ssh_global_init);
	if (init_rc != 0)
		return vp_error_set(VP_ERR_SSH, VP_EGENERIC, "cannot initialise libssh2");
	port = o->port > 0 ? o->port : 22;
	s = calloc(1, sizeof(*s));
	if (!s)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	s->sock = -1;
	s->timeout = o->timeout > 0 ? o->timeout : DEFAULT_TIMEOUT;
	snprintf(s->label, sizeof(s->label), "%s@%s:%d", o->user, o->host, port);
#ifdef VP_TEST_HOOKS
	{
		const char *cut = getenv("VDIPOOL_TEST_SSH_CUT_AFTER");

		s->cut_after = cut ? strtoull(cut, NULL, 10) : 0;
	}
#endif
	if ((rc = tcp_connect(s, o->host, port)) < 0 || (rc = session_start(s, o)) < 0 ||
	    (rc = check_host_key(s, o, port)) < 0 || (rc = authenticate(s, o)) < 0) {
		vp_ssh_free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void vp_ssh_free(vp_ssh *s)
{
	if (!s)
		return;
	if (s->session)
		libssh2_session_set_blocking(s->session, 1);
	if (s->sftp)
		libssh2_sftp_shutdown(s->sftp);
	if (s->session) {
		libssh2_session_disconnect(s->session, "bye");
		libssh2_session_free(s->session);
	}
	if (s->sock >= 0)
		close(s->sock);
	free(s);
}

const char *vp_ssh_label(const vp_ssh *s) { return s->label; }
const char *vp_ssh_fingerprint(const vp_ssh *s) { return s->fingerprint; }

const char *vp_ssh_cipher(const vp_ssh *s)
{
	const char *m = libssh2_session_methods(s->session, LIBSSH2_METHOD_CRYPT_CS);

	return m ? m : "";
}

bool vp_ssh_compressed(const vp_ssh *s)
{
	const char *m = libssh2_session_methods(s->session, LIBSSH2_METHOD_COMP_CS);

	return m && strcmp(m, "none") != 0;
}

void vp_ssh_wire_bytes(const vp_ssh *s, uint64_t *sent, uint64_t *received)
{
	if (sent)
		*sent = s->wire_sent;
	if (received)
		*received = s->wire_recv;
}

/* ---- exec ----------------------------------------------------------------------- */

/* Waits until the socket is ready in the direction libssh2 asks for; VP_EIO at the deadline. */
static int wait_socket(vp_ssh *s, double deadline)
{
	int dir = libssh2_session_block_directions(s->session);
	struct pollfd pfd = { .fd = s->sock };
	double left = deadline - vp_now();

	if (left <= 0)
		return -1;
	if (dir & LIBSSH2_SESSION_BLOCK_INBOUND)
		pfd.events |= POLLIN;
	if (dir & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pfd.events |= POLLOUT;
	if (!pfd.events)
		pfd.events = POLLIN;
	return poll(&pfd, 1, (int)(left * 1000) + 1) < 0 && errno != EINTR ? -1 : 0;
}

/* Reads what a stream has now; 1 at its end, 0 for "more later", <0 on error. */
static int drain(LIBSSH2_CHANNEL *ch, int stream, vp_buf *b)
{
	char buf[16384];

	for (;;) {
		ssize_t n = libssh2_channel_read_ex(ch, stream, buf, sizeof(buf));

		if (n == LIBSSH2_ERROR_EAGAIN)
			return 0;
		if (n < 0)
			return (int)n;
		if (n == 0)
			return 1;
		if (b->len + (size_t)n > EXEC_OUTPUT_MAX || vp_buf_add(b, buf, (size_t)n) < 0)
			return LIBSSH2_ERROR_ALLOC;
	}
}

#define NB(call) \
	while ((rc = (call)) == LIBSSH2_ERROR_EAGAIN) \
		if (wait_socket(s, deadline) < 0) \
			goto timeout;

static int exec_run(vp_ssh *s, const char *command, double deadline, vp_ssh_exec_result *res,
		    vp_buf *out, vp_buf *err)
{
	LIBSSH2_CHANNEL *ch = NULL;
	char *sig = NULL;
	int rc, ret;

	while (!(ch = libssh2_channel_open_session(s->session))) {
		if (libssh2_session_last_errno(s->session) != LIBSSH2_ERROR_EAGAIN)
			return vp_ssh_fail(s, VP_EIO, "cannot open a channel to '%s'", s->label);
		if (wait_socket(s, deadline) < 0)
			goto timeout;
	}
	NB(libssh2_channel_exec(ch, command));
	if (rc < 0) {
		ret = vp_ssh_fail(s, VP_EIO, "cannot run '%s' on '%s'", command, s->label);
		goto out;
	}
	for (bool eo = false, ee = false; !(eo && ee);) {
		int a = eo ? 1 : drain(ch, 0, out), b = ee ? 1 : drain(ch, SSH_EXTENDED_DATA_STDERR, err);

		if (a < 0 || b < 0) {
			ret = a == LIBSSH2_ERROR_ALLOC || b == LIBSSH2_ERROR_ALLOC
				? vp_error_set(VP_ERR_SSH, VP_EIO, "output of '%s' on '%s' is over 16 MiB",
					       command, s->label)
				: vp_ssh_fail(s, VP_EIO, "reading the output of '%s' on '%s'", command,
					      s->label);
			goto out;
		}
		eo = a == 1, ee = b == 1;
		if (!(eo && ee) && !libssh2_channel_eof(ch) && wait_socket(s, deadline) < 0)
			goto timeout;
		if (libssh2_channel_eof(ch) && !(eo && ee)) {
			eo = eo || drain(ch, 0, out) != 0;
			ee = ee || drain(ch, SSH_EXTENDED_DATA_STDERR, err) != 0;
		}
	}
	NB(libssh2_channel_close(ch));
	NB(libssh2_channel_wait_closed(ch));
	res->exit_status = libssh2_channel_get_exit_status(ch);
	libssh2_channel_get_exit_signal(ch, &sig, NULL, NULL, NULL, NULL, NULL);
	if (sig)
		snprintf(res->exit_signal, sizeof(res->exit_signal), "%s", sig);
	free(sig);
	ret = 0;
out:
	if (ch)
		libssh2_channel_free(ch);
	return ret;
timeout:
	ret = vp_error_set(VP_ERR_SSH, VP_EIO, "'%s' on '%s' did not finish in time; the host is "
			   "slow or unreachable", command, s->label);
	/* The session is in an unknown state after a timeout: do not reuse the channel. */
	ch = NULL;
	return ret;
}

int vp_ssh_exec(vp_ssh *s, const char *command, double timeout, vp_ssh_exec_result *res)
{
	vp_buf out = VP_BUF_INIT, err = VP_BUF_INIT;
	double deadline = vp_now() + (timeout > 0 ? timeout : s->timeout);
	int rc;

	memset(res, 0, sizeof(*res));
	libssh2_session_set_blocking(s->session, 0);
	rc = exec_run(s, command, deadline, res, &out, &err);
	libssh2_session_set_blocking(s->session, 1);
	if (rc < 0 || vp_buf_add(&out, "", 0) < 0 || vp_buf_add(&err, "", 0) < 0) {
		vp_buf_release(&out);
		vp_buf_release(&err);
		return rc < 0 ? rc : vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	res->out_len = out.len;
	res->err_len = err.len;
	res->out = vp_buf_detach(&out);
	res->err = vp_buf_detach(&err);
	return 0;
}

void vp_ssh_exec_result_release(vp_ssh_exec_result *res)
{
	if (!res)
		return;
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}
