/* sftp.c: remote file operations over libssh2's SFTP: stat, mkdir -p, rename, chmod, small files. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ssh/ssh_int.h"

LIBSSH2_SFTP *vp_ssh_sftp(vp_ssh *s)
{
	if (!s->sftp) {
		s->sftp = libssh2_sftp_init(s->session);
		if (!s->sftp)
			vp_ssh_fail(s, VP_EIO, "cannot start SFTP on '%s' (is the sftp subsystem enabled "
				    "in its sshd_config?)", s->label);
	}
	return s->sftp;
}

static const char *fx_text(unsigned long fx)
{
	switch (fx) {
	case LIBSSH2_FX_NO_SUCH_FILE: return "no such file or directory";
	case LIBSSH2_FX_PERMISSION_DENIED: return "permission denied";
	case LIBSSH2_FX_FAILURE: return "failure (e.g. it exists already)";
	case LIBSSH2_FX_NO_SPACE_ON_FILESYSTEM: return "no space left on the host";
	case LIBSSH2_FX_QUOTA_EXCEEDED: return "quota exceeded";
	case LIBSSH2_FX_FILE_ALREADY_EXISTS: return "file exists";
	case LIBSSH2_FX_NO_CONNECTION:
	case LIBSSH2_FX_CONNECTION_LOST: return "connection lost";
	default: return NULL;
	}
}

int vp_ssh_sftp_fail(vp_ssh *s, const char *fmt, ...)
{
	char what[1024];
	unsigned long fx = 0;
	int err = libssh2_session_last_errno(s->session);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (err == LIBSSH2_ERROR_SFTP_PROTOCOL && s->sftp) {
		fx = libssh2_sftp_last_error(s->sftp);
		if (fx_text(fx))
			return vp_error_set(VP_ERR_SSH, fx == LIBSSH2_FX_NO_SUCH_FILE ? VP_ENOENT : VP_EIO,
					    "%s on '%s': %s", what, s->label, fx_text(fx));
		return vp_error_set(VP_ERR_SSH, VP_EIO, "%s on '%s': SFTP status %lu", what, s->label, fx);
	}
	return vp_ssh_fail(s, VP_EIO, "%s on '%s'", what, s->label);
}

int vp_ssh_stat_path(vp_ssh *s, const char *path, vp_ssh_stat *out)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_ATTRIBUTES a;

	if (!sftp)
		return VP_EIO;
	if (libssh2_sftp_stat_ex(sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_LSTAT, &a) < 0)
		return vp_ssh_sftp_fail(s, "cannot stat '%s'", path);
	out->size = a.filesize;
	out->mode = (unsigned)a.permissions;
	out->mtime = (a.flags & LIBSSH2_SFTP_ATTR_ACMODTIME) ? (int64_t)a.mtime : 0;
	return 0;
}

int vp_ssh_mkdir_p(vp_ssh *s, const char *path, unsigned mode)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	char buf[4096];
	size_t len = strlen(path);

	if (!sftp)
		return VP_EIO;
	if (len == 0 || len >= sizeof(buf))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "bad remote directory '%s'", path);
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;
			vp_ssh_stat st;

			*p = '\0';
			if (vp_ssh_stat_path(s, buf, &st) < 0) {
				if (libssh2_sftp_mkdir_ex(sftp, buf, (unsigned)strlen(buf), (long)mode) < 0 &&
				    vp_ssh_stat_path(s, buf, &st) < 0)
					return vp_ssh_sftp_fail(s, "cannot create directory '%s'", buf);
			} else if (!S_ISDIR(st.mode)) {
				return vp_error_set(VP_ERR_SSH, VP_ECONFLICT, "'%s' on '%s' is not a "
						    "directory; remove it or choose another path", buf,
						    s->label);
			}
			*p = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int vp_ssh_rename(vp_ssh *s, const char *from, const char *to)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	vp_ssh_stat st;

	if (!sftp)
		return VP_EIO;
	/* SFTP v3 servers (OpenSSH) never replace an existing target; check anyway, so
	 * that another server cannot overwrite a published version. */
	if (vp_ssh_stat_path(s, to, &st) == 0)
		return vp_error_set(VP_ERR_SSH, VP_EEXIST, "cannot rename '%s' to '%s' on '%s': the "
				    "target exists", from, to, s->label);
	if (libssh2_sftp_rename_ex(sftp, from, (unsigned)strlen(from), to, (unsigned)strlen(to),
				   LIBSSH2_SFTP_RENAME_ATOMIC | LIBSSH2_SFTP_RENAME_NATIVE) < 0)
		return vp_ssh_sftp_fail(s, "cannot rename '%s' to '%s'", from, to);
	return 0;
}

int vp_ssh_chmod(vp_ssh *s, const char *path, unsigned mode)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_ATTRIBUTES a = { .flags = LIBSSH2_SFTP_ATTR_PERMISSIONS, .permissions = mode };

	if (!sftp)
		return VP_EIO;
	if (libssh2_sftp_stat_ex(sftp, path, (unsigned)strlen(path), LIBSSH2_SFTP_SETSTAT, &a) < 0)
		return vp_ssh_sftp_fail(s, "cannot chmod '%s'", path);
	return 0;
}

int vp_ssh_unlink(vp_ssh *s, const char *path)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	int rc;

	if (!sftp)
		return VP_EIO;
	if (libssh2_sftp_unlink_ex(sftp, path, (unsigned)strlen(path)) == 0)
		return 0;
	rc = vp_ssh_sftp_fail(s, "cannot remove '%s'", path);
	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	return rc;
}

int vp_ssh_list_dir(vp_ssh *s, const char *dir, char ***out, size_t *n)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_HANDLE *h;
	char **v = NULL;
	size_t cnt = 0;
	char name[1024];
	int rc = 0;

	*out = NULL;
	*n = 0;
	if (!sftp)
		return VP_EIO;
	h = libssh2_sftp_open_ex(sftp, dir, (unsigned)strlen(dir), 0, 0, LIBSSH2_SFTP_OPENDIR);
	if (!h)
		return vp_ssh_sftp_fail(s, "cannot list '%s'", dir);
	for (;;) {
		LIBSSH2_SFTP_ATTRIBUTES a;
		int len = libssh2_sftp_readdir(h, name, sizeof(name) - 1, &a);
		char **nv;

		if (len == 0)
			break;
		if (len < 0) {
			rc = vp_ssh_sftp_fail(s, "cannot list '%s'", dir);
			break;
		}
		name[len] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		nv = realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv || !(nv[cnt] = vp_strdup(name))) {
			v = nv ? nv : v;
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			break;
		}
		v = nv;
		cnt++;
	}
	libssh2_sftp_close_handle(h);
	if (rc < 0) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return rc;
	}
	*out = v;
	*n = cnt;
	return 0;
}

int vp_ssh_rmdir(vp_ssh *s, const char *dir)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	int rc;

	if (!sftp)
		return VP_EIO;
	if (libssh2_sftp_rmdir_ex(sftp, dir, (unsigned)strlen(dir)) == 0)
		return 0;
	rc = vp_ssh_sftp_fail(s, "cannot remove directory '%s'", dir);
	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	return rc;
}

int vp_ssh_rmdir_files(vp_ssh *s, const char *dir)
{
	char **names = NULL;
	size_t n = 0;
	int rc = vp_ssh_list_dir(s, dir, &names, &n);

	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		char *p = vp_strdup_printf("%s/%s", dir, names[i]);

		if (rc == 0 && (!p || vp_ssh_unlink(s, p) < 0))
			rc = VP_EIO;
		free(p);
		free(names[i]);
	}
	free(names);
	if (rc == 0 && libssh2_sftp_rmdir_ex(s->sftp, dir, (unsigned)strlen(dir)) < 0)
		rc = vp_ssh_sftp_fail(s, "cannot remove directory '%s'", dir);
	return rc;
}

int vp_ssh_read_file(vp_ssh *s, const char *path, size_t max, char **out, size_t *len)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_HANDLE *h;
	vp_buf b = VP_BUF_INIT;
	char buf[16384];
	int rc = 0;

	*out = NULL;
	if (!sftp)
		return VP_EIO;
	h = libssh2_sftp_open_ex(sftp, path, (unsigned)strlen(path), LIBSSH2_FXF_READ, 0,
				 LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return vp_ssh_sftp_fail(s, "cannot open '%s'", path);
	for (;;) {
		ssize_t n = libssh2_sftp_read(h, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			rc = vp_ssh_sftp_fail(s, "cannot read '%s'", path);
			break;
		}
		if (b.len + (size_t)n > max) {
			rc = vp_error_set(VP_ERR_SSH, VP_EINVAL, "'%s' on '%s' is larger than %zu bytes",
					  path, s->label, max);
			break;
		}
		vp_buf_add(&b, buf, (size_t)n);
	}
	libssh2_sftp_close_handle(h);
	if (rc == 0 && b.oom)
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (rc < 0) {
		vp_buf_release(&b);
		return rc;
	}
	if (len)
		*len = b.len;
	*out = vp_buf_detach(&b);
	return 0;
}

int vp_ssh_write_file(vp_ssh *s, const char *path, const void *data, size_t len, unsigned mode)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_HANDLE *h;
	const char *p = data;
	int rc = 0;

	if (!sftp)
		return VP_EIO;
	h = libssh2_sftp_open_ex(sftp, path, (unsigned)strlen(path),
				 LIBSSH2_FXF_WRITE | LIBSSH2_FXF_CREAT | LIBSSH2_FXF_TRUNC, (long)mode,
				 LIBSSH2_SFTP_OPENFILE);
	if (!h)
		return vp_ssh_sftp_fail(s, "cannot create '%s'", path);
	while (len > 0) {
		ssize_t n = libssh2_sftp_write(h, p, len);

		if (n < 0) {
			rc = vp_ssh_sftp_fail(s, "cannot write '%s'", path);
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	if (rc == 0 && libssh2_sftp_fsync(h) < 0)
		rc = vp_ssh_sftp_fail(s, "cannot flush '%s'", path);
	if (libssh2_sftp_close_handle(h) < 0 && rc == 0)
		rc = vp_ssh_sftp_fail(s, "cannot close '%s'", path);
	return rc;
}

/* ---- reading at offsets ------------------------------------------------------------ */

struct vp_ssh_file {
	vp_ssh *s;
	LIBSSH2_SFTP_HANDLE *h;
	char *path;
};

int vp_ssh_file_open(vp_ssh *s, const char *path, vp_ssh_file **out, uint64_t *size)
{
	LIBSSH2_SFTP *sftp = vp_ssh_sftp(s);
	LIBSSH2_SFTP_ATTRIBUTES a;
	vp_ssh_file *f;

	*out = NULL;
	if (!sftp)
		return VP_EIO;
	if (!(f = calloc(1, sizeof(*f))) || !(f->path = vp_strdup(path))) {
		free(f);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	f->s = s;
	f->h = libssh2_sftp_open_ex(sftp, path, (unsigned)strlen(path), LIBSSH2_FXF_READ, 0,
				    LIBSSH2_SFTP_OPENFILE);
	if (!f->h) {
		int rc = vp_ssh_sftp_fail(s, "cannot open '%s'", path);
		vp_ssh_file_close(f);
		return rc;
	}
	if (size) {
		if (libssh2_sftp_fstat_ex(f->h, &a, 0) < 0) {
			int rc = vp_ssh_sftp_fail(s, "cannot stat '%s'", path);
			vp_ssh_file_close(f);
			return rc;
		}
		*size = a.filesize;
	}
	*out = f;
	return 0;
}

int vp_ssh_file_pread(vp_ssh_file *f, void *buf, size_t len, uint64_t off)
{
	char *p = buf;

	libssh2_sftp_seek64(f->h, off);
	while (len > 0) {
		ssize_t n = libssh2_sftp_read(f->h, p, len);

		if (n < 0)
			return vp_ssh_sftp_fail(f->s, "cannot read '%s' at offset %llu", f->path,
						(unsigned long long)off);
		if (n == 0)
			return vp_error_set(VP_ERR_SSH, VP_EIO, "cannot read '%s' on '%s': it ends "
					    "before offset %llu", f->path, f->s->label,
					    (unsigned long long)(off + (uint64_t)(p - (char *)buf) + len));
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void vp_ssh_file_close(vp_ssh_file *f)
{
	if (!f)
		return;
	if (f->h)
		libssh2_sftp_close_handle(f->h);
	free(f->path);
	free(f);
}
