/* push.c: pushing an image over SFTP: allocated extents only, pipelined, resumable, hash-checked on the host. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ssh/ssh_int.h"
#include "util/fs.h"

#define DEFAULT_WINDOW (4u << 20)
#define DEFAULT_CHECKPOINT (16u << 20)
#define STATE_MAGIC "vdipool-push 1"

/* ---- extents -------------------------------------------------------------------- */

int vp_extents_add(vp_extents *e, uint64_t off, uint64_t len)
{
	if (len == 0)
		return 0;
	if (e->n && e->v[e->n - 1].off + e->v[e->n - 1].len == off) {
		e->v[e->n - 1].len += len;
	} else {
		if (e->n == e->cap) {
			size_t cap = e->cap ? e->cap * 2 : 64;
			vp_extent *v = realloc(e->v, cap * sizeof(*v));

			if (!v)
				return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			e->v = v;
			e->cap = cap;
		}
		e->v[e->n++] = (vp_extent){ off, len };
	}
	e->data += len;
	return 0;
}

void vp_extents_release(vp_extents *e)
{
	free(e->v);
	memset(e, 0, sizeof(*e));
}

int vp_extents_read(vp_extents *e, int fd, const char *what)
{
	struct stat st;
	uint64_t off = 0;

	memset(e, 0, sizeof(*e));
	if (fstat(fd, &st) < 0)
		return vp_error_set_os(errno, "cannot stat '%s'", what);
	e->size = (uint64_t)st.st_size;
	while (off < e->size) {
		off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

		if (data < 0 && errno == ENXIO)
			break;
		if (data < 0 && (errno == EINVAL || errno == EOPNOTSUPP)) /* no hole support: all data */
			return vp_extents_add(e, off, e->size - off);
		if (data < 0)
			goto fail;
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			goto fail;
		if (vp_extents_add(e, (uint64_t)data, (uint64_t)(hole - data)) < 0)
			return VP_ENOMEM;
		off = (uint64_t)hole;
	}
	return 0;
fail:
	vp_error_set_os(errno, "cannot find the data extents of '%s'", what);
	vp_extents_release(e);
	return VP_EIO;
}

uint64_t vp_extents_data_below(const vp_extents *e, uint64_t done)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < e->n && e->v[i].off < done; i++) {
		uint64_t end = e->v[i].off + e->v[i].len;

		sum += (end < done ? end : done) - e->v[i].off;
	}
	return sum;
}

/* ---- the resume record ------------------------------------------------------------ */

char *vp_push_state_format(const vp_push_state *st)
{
	return vp_strdup_printf(STATE_MAGIC "\nsha256=%s\nsize=%" PRIu64 "\ndata=%" PRIu64
				"\ndone=%" PRIu64 "\n", st->sha256, st->size, st->data, st->done);
}

static bool hex64(const char *s)
{
	for (int i = 0; i < 64; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return s[64] == '\0' || s[64] == '\n' || s[64] == ' ';
}

/* "key=DIGITS\n" at *p; advances *p. Digits only: no sign, no spaces, no overflow. */
static int parse_u64_line(const char **p, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);
	const char *q = *p + klen;
	uint64_t v = 0;

	if (strncmp(*p, key, klen) || !isdigit((unsigned char)*q))
		return -1;
	for (; isdigit((unsigned char)*q); q++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*q - '0');
	}
	if (*q != '\n')
		return -1;
	*out = v;
	*p = q + 1;
	return 0;
}

int vp_push_state_parse(vp_push_state *st, const char *text)
{
	const char *p = text;

	memset(st, 0, sizeof(*st));
	if (strncmp(p, STATE_MAGIC "\nsha256=", strlen(STATE_MAGIC "\nsha256=")))
		goto bad;
	p += strlen(STATE_MAGIC "\nsha256=");
	if (strlen(p) < 65 || !hex64(p) || p[64] != '\n')
		goto bad;
	memcpy(st->sha256, p, 64);
	p += 65;
	if (parse_u64_line(&p, "size=", &st->size) < 0 || parse_u64_line(&p, "data=", &st->data) < 0 ||
	    parse_u64_line(&p, "done=", &st->done) < 0 || *p != '\0' || st->done > st->size ||
	    st->data > st->size)
		goto bad;
	return 0;
bad:
	memset(st, 0, sizeof(*st));
	return vp_error_set(VP_ERR_SSH, VP_EINVAL, "not a push resume record");
}

uint64_t vp_push_resume_offset(const vp_push_state *st, const char *sha256, const vp_extents *e)
{
	if (!st || strcmp(st->sha256, sha256) || st->size != e->size || st->data != e->data)
		return 0;
	return st->done;
}

int vp_ssh_parse_sha256sum(const char *text, char out[65])
{
	const char *p = text;

	if (*p == '\\') /* sha256sum escapes names with odd characters */
		p++;
	if (strlen(p) < 64 || !hex64(p))
		return vp_error_set(VP_ERR_SSH, VP_EINVAL, "unexpected sha256sum output '%.80s'", text);
	memcpy(out, p, 64);
	out[64] = '\0';
	return 0;
}

/* A hash command: head, the quoted path, tail. */
typedef struct hash_cmd {
	const char *head, *tail;
} hash_cmd;

/* Runs one hash command on the host; 1 when it could not run there (exit 127: not
 * installed; or killed: the direct-I/O reader failed). */
static int hash_with(vp_ssh *s, const hash_cmd *hc, const char *quoted, const char *path,
		     double timeout, char out[65])
{
	vp_ssh_exec_result r;
	char *cmd = vp_strdup_printf("%s%s%s", hc->head, quoted, hc->tail);
	int rc;

	if (!cmd)
		return VP_ENOMEM;
	rc = vp_ssh_exec(s, cmd, timeout, &r);
	if (rc == 0 && (r.exit_status == 127 || r.exit_signal[0])) {
		rc = 1;
	} else if (rc == 0 && r.exit_status != 0) {
		char *nl = strchr(r.err, '\n');

		if (nl)
			*nl = '\0';
		rc = vp_error_set(VP_ERR_SSH, VP_EIO, "cannot hash '%s' on '%s': '%s' exited %d: %s",
				  path, vp_ssh_label(s), cmd, r.exit_status, r.err);
	} else if (rc == 0) {
		rc = vp_ssh_parse_sha256sum(r.out, out);
	}
	vp_ssh_exec_result_release(&r);
	free(cmd);
	return rc;
}

/* How the host hashes, best first. Reading a fresh sparse file fills the page cache
 * with its holes, which costs more than the hash (4 GiB holding 256 MiB, first read, on
 * the CI machine: openssl 18.9 s, 15.6 s of it in the kernel); read with O_DIRECT (dd)
 * it takes 7.1 s. Where dd cannot (tmpfs refuses O_DIRECT), the shell is killed and the
 * next way is tried. OpenSSL uses the CPU's SHA instructions (1 GiB in page cache: 1.0 s
 * against sha256sum's 3.5 s); coreutils' sha256sum is the fallback. Same output format. */
static const hash_cmd hash_cmds[] = {
	{ "{ dd if=", " bs=4M iflag=direct status=none || kill -TERM $$; } | openssl dgst -sha256 -r" },
	{ "openssl dgst -sha256 -r ", "" },
	{ "sha256sum -b -- ", "" },
};

int vp_ssh_sha256(vp_ssh *s, const char *path, char out[65])
{
	char *q;
	vp_ssh_stat st;
	double timeout;
	int rc = 1;

	if (path[0] != '/') /* so that no tool takes it for an option */
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "remote path '%s' must be absolute", path);
	if (!(q = vp_ssh_quote(path)))
		return VP_ENOMEM;
	/* Reading the file on the host takes time: allow 60 s plus 20 s per GiB. */
	timeout = 60.0 + (vp_ssh_stat_path(s, path, &st) == 0 ? (double)st.size / (50 << 20) : 0);
	vp_error_clear();
	for (size_t i = 0; i < VP_ARRAY_SIZE(hash_cmds) && rc == 1; i++)
		rc = hash_with(s, &hash_cmds[i], q, path, timeout, out);
	if (rc == 1)
		rc = vp_error_set(VP_ERR_SSH, VP_ENOTSUP, "cannot hash '%s' on '%s': neither openssl "
				  "nor sha256sum runs there; install coreutils", path, vp_ssh_label(s));
	free(q);
	return rc;
}

/* ---- the push --------------------------------------------------------------------- */

typedef struct push {
	vp_ssh *s;
	const vp_ssh_push_opts *o;
	vp_ssh_push_result *res;
	int fd;
	const char *local;
	char *part, *state, *state_new;
	vp_extents e;
	LIBSSH2_SFTP_HANDLE *h;
	char *buf;
	size_t window;
	uint64_t done_data; /* extent bytes on the host, resumed ones included */
} push;

/* The record is replaced whole, never rewritten in place: written to STATE.new (flushed),
 * then STATE removed and STATE.new renamed to it (SFTP v3 cannot rename over a file). A push
 * killed at any point leaves STATE or STATE.new complete, and find_resume takes the larger
 * of the two (a record cut short does not parse). */
static int save_state(push *p, uint64_t done)
{
	vp_push_state st = { .size = p->e.size, .data = p->e.data, .done = done };
	char *text;
	int rc;

	/* The record may only claim what the host has flushed. */
	if (p->h && libssh2_sftp_fsync(p->h) < 0)
		return vp_ssh_sftp_fail(p->s, "cannot flush '%s'", p->part);
	memcpy(st.sha256, p->o->sha256, sizeof(st.sha256));
	text = vp_push_state_format(&st);
	if (!text)
		return VP_ENOMEM;
	rc = vp_ssh_write_file(p->s, p->state_new, text, strlen(text), 0600);
	free(text);
	if (rc == 0)
		rc = vp_ssh_unlink(p->s, p->state);
	if (rc == 0)
		rc = vp_ssh_rename(p->s, p->state_new, p->state);
	return rc;
}

/* The resume offset one record file gives (0: none, or not this image's). */
static uint64_t record_offset(push *p, const char *path)
{
	vp_push_state st;
	char *text = NULL;
	uint64_t done = 0;

	if (vp_ssh_read_file(p->s, path, 4096, &text, NULL) == 0 && vp_push_state_parse(&st, text) == 0)
		done = vp_push_resume_offset(&st, p->o->sha256, &p->e);
	free(text);
	vp_error_clear();
	return done;
}

/* Resume offset from the host's record, provided the partial file is still there. */
static uint64_t find_resume(push *p)
{
	vp_ssh_stat pst;
	uint64_t a, b;

	if (vp_ssh_stat_path(p->s, p->part, &pst) < 0 || !S_ISREG(pst.mode)) {
		vp_error_clear();
		return 0;
	}
	/* Both may be there (killed between the write of STATE.new and the rename): the part
	 * is only truncated after a record of 0 is in place, so the larger one holds. */
	a = record_offset(p, p->state);
	b = record_offset(p, p->state_new);
	return a > b ? a : b;
}

/* Writes [off, off+len) of the local file at the same offset on the host. libssh2
 * splits a write into 30000-byte SFTP packets and sends them all before it waits
 * for acknowledgements; handing it the rest of the window again on a partial
 * return keeps the whole window in flight (libssh2_sftp_write's pipelining). */
static int send_range(push *p, uint64_t off, uint64_t len, uint64_t *since_checkpoint)
{
	uint64_t checkpoint = p->o->checkpoint ? p->o->checkpoint : DEFAULT_CHECKPOINT;

	libssh2_sftp_seek64(p->h, off);
	while (len > 0) {
		size_t n = len < p->window ? (size_t)len : p->window;
		const char *q = p->buf;
		size_t left = n;

		if (vp_fs_pread_all(p->fd, p->buf, n, off, p->local) < 0)
			return VP_EIO;
		while (left > 0) {
			ssize_t w = libssh2_sftp_write(p->h, q, left);

			if (w < 0)
				return vp_ssh_sftp_fail(p->s, "cannot write '%s' at offset %" PRIu64
							" (push again: it continues from what arrived)",
							p->part, off);
			q += w;
			left -= (size_t)w;
			p->res->sent += (uint64_t)w;
			p->done_data += (uint64_t)w;
			if (p->o->progress)
				p->o->progress(p->o->progress_ctx, p->done_data, p->e.data);
		}
		off += n;
		len -= n;
		*since_checkpoint += n;
		if (*since_checkpoint >= checkpoint) {
			if (save_state(p, off) < 0)
				return VP_EIO;
			*since_checkpoint = 0;
		}
	}
	return 0;
}

static int send_extents(push *p, uint64_t resume)
{
	LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_SIZE, .filesize = p->e.size };
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(p->s);
	uint64_t since = 0;
	int rc;

	/* From the start: a record of 0 first, then the truncation, so that no record ever
	 * claims bytes a truncated part no longer has. */
	if (!resume && (rc = save_state(p, 0)) < 0)
		return rc;
	p->h = libssh2_sftp_open_ex(sftp, p->part, (unsigned)strlen(p->part),
				    LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | (resume ? 0 : LIBSSH2_FXF_TRUNC),
				    0600, LIBSSH2_SFTP_OPENFILE);
	if (!p->h)
		return vp_ssh_sftp_fail(p->s, "cannot open '%s' for writing", p->part);
	for (size_t i = 0; i < p->e.n; i++) {
		uint64_t off = p->e.v[i].off, end = off + p->e.v[i].len;

		if (end <= resume)
			continue;
		if (off < resume)
			off = resume;
		if ((rc = send_range(p, off, end - off, &since)) < 0)
			return rc;
	}
	/* Holes at the end are not written: the size makes them (ftruncate on the host). */
	if (libssh2_sftp_fsetstat(p->h, &a) < 0)
		return vp_ssh_sftp_fail(p->s, "cannot set the size of '%s'", p->part);
	if ((rc = save_state(p, p->e.size)) < 0)
		return rc;
	rc = libssh2_sftp_close_handle(p->h);
	p->h = NULL;
	if (rc < 0)
		return vp_ssh_sftp_fail(p->s, "cannot close '%s'", p->part);
	return 0;
}

/* The host's copy gets the local file's mtime, nanoseconds included (SFTP v3 has
 * only seconds), so that a manifest recording the image's mtime holds there too. */
static int copy_mtime(push *p)
{
	struct stat st;
	vp_ssh_exec_result r;
	char *q = vp_ssh_quote(p->part), *cmd = NULL;
	int rc;

	if (fstat(p->fd, &st) < 0) {
		free(q);
		return vp_error_set_os(errno, "cannot stat '%s'", p->local);
	}
	cmd = q ? vp_strdup_printf("touch -c -m -d @%lld.%09ld -- %s", (long long)st.st_mtim.tv_sec,
				   st.st_mtim.tv_nsec, q) : NULL;
	free(q);
	if (!cmd)
		return VP_ENOMEM;
	rc = vp_ssh_exec(p->s, cmd, 0, &r);
	if (rc == 0 && (r.exit_status != 0 || r.exit_signal[0]))
		rc = vp_error_set(VP_ERR_SSH, VP_EIO, "cannot set the mtime of '%s' on '%s' ('%s' "
				  "exited %d: %.200s); the host needs GNU coreutils' touch", p->part,
				  vp_ssh_label(p->s), cmd, r.exit_status, r.err);
	vp_ssh_exec_result_release(&r);
	free(cmd);
	return rc;
}

static int check_and_publish(push *p, const char *remote)
{
	double t0 = vp_now();
	int rc = vp_ssh_sha256(p->s, p->part, p->res->sha256);

	p->res->hash_seconds = vp_now() - t0;
	if (rc < 0)
		return rc;
	if (strcmp(p->res->sha256, p->o->sha256)) {
		vp_ssh_unlink(p->s, p->part);
		vp_ssh_unlink(p->s, p->state);
		vp_ssh_unlink(p->s, p->state_new);
		return vp_error_set(VP_ERR_SSH, VP_EIO, "'%s' arrived damaged on '%s': its SHA-256 there "
				    "is %s, expected %s; the partial copy was deleted, push again",
				    remote, vp_ssh_label(p->s), p->res->sha256, p->o->sha256);
	}
	if ((rc = vp_ssh_chmod(p->s, p->part, 0444)) < 0 || (rc = vp_ssh_rename(p->s, p->part, remote)) < 0)
		return rc;
	if ((rc = vp_ssh_unlink(p->s, p->state_new)) < 0)
		return rc;
	return vp_ssh_unlink(p->s, p->state);
}

static int check_args(vp_ssh *s, const char *remote, const vp_ssh_push_opts *o)
{
	vp_ssh_stat st;

	if (!o || !o->sha256 || strlen(o->sha256) != 64 || !hex64(o->sha256))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "push of '%s': the expected SHA-256 "
				    "(64 lowercase hex digits) is required", remote);
	if (remote[0] != '/')
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "push: remote path '%s' must be absolute",
				    remote);
	if (vp_ssh_stat_path(s, remote, &st) == 0)
		return vp_error_set(VP_ERR_SSH, VP_EEXIST, "'%s' exists on '%s' already; not "
				    "overwriting it", remote, vp_ssh_label(s));
	vp_error_clear();
	return 0;
}

int vp_ssh_push_file(vp_ssh *s, const char *local, const char *remote, const vp_ssh_push_opts *o,
		     vp_ssh_push_result *out)
{
	vp_ssh_push_result res = { 0 };
	push p = { .s = s, .o = o, .res = &res, .fd = -1, .local = local };
	char *dcopy = vp_strdup(remote), *bcopy = vp_strdup(remote);
	double t0 = vp_now();
	uint64_t wire0 = s->wire_sent, resume;
	int rc;

	if (!dcopy || !bcopy) {
		rc = VP_ENOMEM;
		goto out;
	}
	if ((rc = check_args(s, remote, o)) < 0)
		goto out;
	p.part = vp_strdup_printf("%s/.%s.part", dirname(dcopy), basename(bcopy));
	p.state = p.part ? vp_strdup_printf("%s.state", p.part) : NULL;
	p.state_new = p.state ? vp_strdup_printf("%s.new", p.state) : NULL;
	p.window = o->window ? o->window : DEFAULT_WINDOW;
	p.buf = malloc(p.window);
	if (!p.state_new || !p.buf) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	p.fd = open(local, O_RDONLY | O_CLOEXEC);
	if (p.fd < 0) {
		rc = vp_error_set_os(errno, "cannot open '%s'", local);
		goto out;
	}
	if ((rc = vp_extents_read(&p.e, p.fd, local)) < 0)
		goto out;
	res.size = p.e.size;
	res.data = p.e.data;
	resume = find_resume(&p);
	res.resumed = vp_extents_data_below(&p.e, resume);
	p.done_data = res.resumed;
	if (resume < p.e.size || !resume)
		rc = send_extents(&p, resume);
	if (rc == 0)
		rc = copy_mtime(&p);
	if (rc == 0)
		rc = check_and_publish(&p, remote);
out:
	if (p.h)
		libssh2_sftp_close_handle(p.h);
	if (p.fd >= 0)
		close(p.fd);
	res.wire_sent = s->wire_sent - wire0;
	res.seconds = vp_now() - t0;
	if (out)
		*out = res;
	vp_extents_release(&p.e);
	free(p.buf);
	free(p.part);
	free(p.state);
	free(p.state_new);
	free(dcopy);
	free(bcopy);
	return rc;
}

/* ---- uploading a sparse file --------------------------------------------------------- */

/* Writes [off, off+len) of fd at the same offset of h, window bytes per call. */
static int upload_range(vp_ssh *s, LIBSSH2_SFTP_HANDLE *h, int fd, char *buf, size_t window,
			uint64_t off, uint64_t len, const char *local, const char *remote)
{
	libssh2_sftp_seek64(h, off);
	while (len > 0) {
		size_t n = len < window ? (size_t)len : window, left = n;
		const char *q = buf;

		if (vp_fs_pread_all(fd, buf, n, off, local) < 0)
			return VP_EIO;
		while (left > 0) {
			ssize_t w = libssh2_sftp_write(h, q, left);

			if (w < 0)
				return vp_ssh_sftp_fail(s, "cannot write '%s' at offset %" PRIu64, remote, off);
			q += w;
			left -= (size_t)w;
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int upload_extents(vp_ssh *s, LIBSSH2_SFTP_HANDLE *h, int fd, size_t window,
			  const char *local, const char *remote)
{
	vp_extents e;
	char *buf = NULL;
	int rc;

	if ((rc = vp_extents_read(&e, fd, local)) < 0)
		return rc;
	if (e.data && !(buf = malloc(window)))
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; rc == 0 && i < e.n; i++)
		rc = upload_range(s, h, fd, buf, window, e.v[i].off, e.v[i].len, local, remote);
	if (rc == 0) {
		LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_SIZE, .filesize = e.size };

		/* Trailing holes are not written: the size makes them (ftruncate on the host). */
		if (libssh2_sftp_fsetstat(h, &a) < 0)
			rc = vp_ssh_sftp_fail(s, "cannot set the size of '%s'", remote);
	}
	if (rc == 0 && libssh2_sftp_fsync(h) < 0)
		rc = vp_ssh_sftp_fail(s, "cannot flush '%s'", remote);
	free(buf);
	vp_extents_release(&e);
	return rc;
}

int vp_ssh_upload_sparse(vp_ssh *s, const char *local, const char *remote, unsigned mode,
			 size_t window)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_HANDLE *h;
	int fd, rc;

	if (!sftp)
		return VP_EIO;
	fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return vp_error_set_os(errno, "cannot open '%s'", local);
	h = libssh2_sftp_open_ex(sftp, remote, (unsigned)strlen(remote),
				 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, (long)mode,
				 LIBSSH2_SFTP_OPENFILE);
	if (!h) {
		close(fd);
		return vp_ssh_sftp_fail(s, "cannot create '%s'", remote);
	}
	rc = upload_extents(s, h, fd, window ? window : DEFAULT_WINDOW, local, remote);
	if (libssh2_sftp_close_handle(h) < 0 && rc == 0)
		rc = vp_ssh_sftp_fail(s, "cannot close '%s'", remote);
	close(fd);
	return rc;
}
