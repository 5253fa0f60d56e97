/* fs.c: durable file operations; every rename into place is followed by a directory fsync. */
#include <dirent.h>
#include <stdlib.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

int vp_fs_mkdir_p(const char *path, mode_t mode)
{
	VP_AUTOFREE char *p = vp_strdup(path);
	struct stat st;

	if (!p)
		return VP_ENOMEM;
	for (char *s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST)
				return vp_error_set_os(errno, "cannot create directory '%s'", p);
			if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode))
				return vp_error_set(VP_ERR_OS, VP_EIO, "'%s' exists and is not a directory", p);
			*s = c;
			if (!c)
				break;
		}
	}
	return 0;
}

int vp_fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return vp_error_set_os(errno, "cannot open directory '%s'", dir);
	if (fsync(fd) < 0 && errno != EINVAL) {
		int e = errno;
		close(fd);
		return vp_error_set_os(e, "cannot fsync directory '%s'", dir);
	}
	close(fd);
	return 0;
}

int vp_fs_fsync_parent(const char *path)
{
	VP_AUTOFREE char *p = vp_strdup(path);

	if (!p)
		return VP_ENOMEM;
	return vp_fs_fsync_dir(dirname(p));
}

char *vp_fs_tmpname(const char *path)
{
	static atomic_uint counter;
	const char *slash = strrchr(path, '/');
	unsigned n = atomic_fetch_add(&counter, 1);

	if (!slash)
		return vp_strdup_printf(".%s.tmp.%ld.%u", path, (long)getpid(), n);
	return vp_strdup_printf("%.*s/.%s.tmp.%ld.%u", (int)(slash - path), path, slash + 1,
				(long)getpid(), n);
}

int vp_fs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return vp_error_set_os(errno, "cannot write '%s'", what);
		}
		if (w == 0)
			return vp_error_set_os(ENOSPC, "cannot write '%s'", what);
		p += w;
		len -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int vp_fs_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *what)
{
	char *p = buf;

	while (len > 0) {
		ssize_t r = pread(fd, p, len, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return vp_error_set_os(errno, "cannot read '%s'", what);
		}
		if (r == 0)
			return vp_error_set(VP_ERR_OS, VP_EIO, "cannot read '%s': unexpected end of file", what);
		p += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

void vp_fs_sweep_tmp(const char *path)
{
	const char *slash = strrchr(path, '/');
	VP_AUTOFREE char *dir = slash ? vp_strdup_printf("%.*s", (int)(slash - path), path) : vp_strdup(".");
	VP_AUTOFREE char *prefix = vp_strdup_printf(".%s.tmp.", slash ? slash + 1 : path);
	struct dirent *e;
	DIR *d;

	if (!dir || !prefix || !(d = opendir(dir)))
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(prefix);
		char *end;
		long pid;

		if (strncmp(e->d_name, prefix, n))
			continue;
		pid = strtol(e->d_name + n, &end, 10);
		if (end == e->d_name + n || *end != '.' || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

int vp_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	VP_AUTOFREE char *tmp = vp_fs_tmpname(path);
	int fd, rc;

	if (!tmp)
		return VP_ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return vp_error_set_os(errno, "cannot create '%s'", tmp);
	rc = vp_fs_pwrite_all(fd, data, len, 0, tmp);
	if (rc == 0 && fsync(fd) < 0)
		rc = vp_error_set_os(errno, "cannot fsync '%s'", tmp);
	if (close(fd) < 0 && rc == 0)
		rc = vp_error_set_os(errno, "cannot close '%s'", tmp);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = vp_error_set_os(errno, "cannot rename '%s' to '%s'", tmp, path);
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	return vp_fs_fsync_parent(path);
}

int vp_fs_read_all(const char *path, size_t max, char **out, size_t *len)
{
	vp_buf b = VP_BUF_INIT;
	char chunk[65536];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return vp_error_set_os(errno, "cannot open '%s'", path);
	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			vp_buf_release(&b);
			return vp_error_set_os(e, "cannot read '%s'", path);
		}
		if (b.len + (size_t)r > max) {
			close(fd);
			vp_buf_release(&b);
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is larger than %zu bytes", path, max);
		}
		if (vp_buf_add(&b, chunk, (size_t)r) < 0) {
			close(fd);
			vp_buf_release(&b);
			return VP_ENOMEM;
		}
	}
	close(fd);
	if (len)
		*len = b.len;
	*out = vp_buf_detach(&b);
	return *out ? 0 : VP_ENOMEM;
}

int vp_fs_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

int vp_fs_rm_rf(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : vp_error_set_os(errno, "cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return vp_error_set_os(errno, "cannot remove '%s'", path);
		return 0;
	}
	d = opendir(path);
	if (!d)
		return vp_error_set_os(errno, "cannot open directory '%s'", path);
	while (rc == 0 && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *child = vp_strdup_printf("%s/%s", path, e->d_name);
		rc = child ? vp_fs_rm_rf(child) : VP_ENOMEM;
		free(child);
	}
	closedir(d);
	if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
		rc = vp_error_set_os(errno, "cannot remove directory '%s'", path);
	return rc;
}

int vp_fs_disk_usage(const char *path, uint64_t *out)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return vp_error_set_os(errno, "cannot stat '%s'", path);
	*out = (uint64_t)st.st_blocks * 512u;
	return 0;
}

/* Calls fn on each allocated range [off, end) of fd, up to size. */
static int each_data_range(int fd, off_t size, int (*fn)(int fd, off_t off, off_t end, void *ctx), void *ctx)
{
	off_t off = 0;

	while (off < size) {
		off_t data = lseek(fd, off, SEEK_DATA), hole;
		int rc;

		if (data < 0 && errno == ENXIO)
			return 0; /* only a hole is left */
		if (data < 0) /* no SEEK_DATA here: all of it is data */
			return fn(fd, off, size, ctx);
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		if ((rc = fn(fd, data, hole, ctx)) < 0)
			return rc;
		off = hole;
	}
	return 0;
}

static int advise(int fd, off_t off, off_t end, void *ctx)
{
	*(uint64_t *)ctx += (uint64_t)(end - off);
	(void)posix_fadvise(fd, off, end - off, POSIX_FADV_WILLNEED); /* a hint: its failure costs nothing */
	return 0;
}

static int read_through(int fd, off_t off, off_t end, void *ctx)
{
	char *buf = ctx;

	while (off < end) {
		size_t n = end - off < (off_t)(1u << 20) ? (size_t)(end - off) : 1u << 20;
		ssize_t r = pread(fd, buf, n, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return vp_error_set_os(errno, "cannot read");
		if (r == 0)
			break;
		off += r;
	}
	return 0;
}

int vp_fs_warm(const char *path, uint64_t *bytes)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	uint64_t total = 0;
	struct stat st;
	char *buf = NULL;
	int rc;

	if (fd < 0)
		return vp_error_set_os(errno, "cannot open '%s' to warm it", path);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = vp_error_set(VP_ERR_OS, VP_EINVAL, "'%s' is not a regular file: nothing to warm", path);
		goto out;
	}
	if (!(buf = malloc(1u << 20))) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = each_data_range(fd, st.st_size, advise, &total)) == 0)
		rc = each_data_range(fd, st.st_size, read_through, buf);
	if (rc < 0)
		vp_error_prefix("warming '%s'", path);
	else if (bytes)
		*bytes = total;
out:
	free(buf);
	close(fd);
	return rc;
}
