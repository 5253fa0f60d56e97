/* store_lock.c: the store-wide lock (shared for apply, exclusive for removal) in a root-only runtime directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "util/strmap.h"

/* Opens dir without following a symlink and checks that only root can
 * change it: anyone else could hold our locks or swap the files in it. */
static int open_runtime_dir(const char *dir)
{
	struct stat st;
	int fd;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return vp_error_set_os(errno, "cannot create the runtime directory '%s'", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ELOOP || errno == ENOTDIR
			       ? vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
					      "runtime directory '%s' is not a directory (a symlink?): "
					      "remove it so vdipool can create it", dir)
			       : vp_error_set_os(errno, "cannot open the runtime directory '%s'", dir);
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return vp_error_set_os(e, "cannot stat the runtime directory '%s'", dir);
	}
	if (st.st_uid != 0 || (st.st_mode & 077)) {
		close(fd);
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
				    "runtime directory '%s' is owned by uid %u with mode %04o; it must be "
				    "owned by root with mode 0700 (someone else could hold or redirect "
				    "vdipool's locks): remove it so vdipool can create it",
				    dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	}
	return fd;
}

int vp_store_lockfile_open(const char *dir, const char *file)
{
	struct stat st;
	int dfd = open_runtime_dir(dir), fd, e;

	if (dfd < 0)
		return dfd;
	fd = openat(dfd, file, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	e = errno;
	close(dfd);
	if (fd < 0)
		return e == ELOOP ? vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
						 "lock file '%s/%s' is a symlink: remove it", dir, file)
				  : vp_error_set_os(e, "cannot open lock file '%s/%s'", dir, file);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != 0) {
		close(fd);
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT,
				    "lock file '%s/%s' is not a regular file owned by root: remove it",
				    dir, file);
	}
	return fd;
}

int vp_store_set_runtime_dir(vp_store *s, const char *dir)
{
	if (!dir || dir[0] != '/' || strlen(dir) >= sizeof(s->runtime_dir))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "runtime directory '%s': expected an absolute path", dir ? dir : "");
	snprintf(s->runtime_dir, sizeof(s->runtime_dir), "%s", dir);
	return 0;
}

/* One lock per base tier: stores opened from a spec and from --root share it,
 * so the key is what the tier is (driver, canonical path and, for a store on
 * another host, that host: see store_tier.where), not its name. */
static int store_lock_name(vp_store *s, char *buf, size_t len)
{
	snprintf(buf, len, "store-%016llx.lock", (unsigned long long)vp_hash_str(s->base.where));
	return 0;
}

int vp_store_lock(vp_store *s, int mode, bool wait)
{
	char file[64];
	int fd, rc;

	if (mode != VP_STORE_LOCK_SHARED && mode != VP_STORE_LOCK_EXCLUSIVE)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid store lock mode %d", mode);
	if (s->lock_mode == mode)
		return 0;
	if (s->lock_mode)
		return vp_error_set(VP_ERR_STORE, VP_EBUSY,
				    "store lock of tier '%s' is held in another mode already; release it first",
				    s->base.name);
	if ((rc = store_lock_name(s, file, sizeof(file))) < 0)
		return rc;
	if ((fd = vp_store_lockfile_open(s->runtime_dir, file)) < 0)
		return fd;
	if (flock(fd, (mode == VP_STORE_LOCK_SHARED ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB)) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return vp_error_set(VP_ERR_STORE, VP_EBUSY,
					    "the store on tier '%s' is in use by another vdipool (%s); "
					    "try again when it has finished (lock '%s/%s')", s->base.name,
					    mode == VP_STORE_LOCK_SHARED ? "gc, base rm, derive or seal"
									 : "apply, rollout, reset, gc or base rm",
					    s->runtime_dir, file);
		return vp_error_set_os(e, "cannot lock '%s/%s'", s->runtime_dir, file);
	}
	s->lock_fd = fd;
	s->lock_mode = mode;
	return 0;
}

void vp_store_unlock(vp_store *s)
{
	if (!s || s->lock_fd < 0)
		return;
	close(s->lock_fd);
	s->lock_fd = -1;
	s->lock_mode = 0;
}

int store_excl_begin(vp_store *s, const char *what, bool *took)
{
	int rc;

	*took = false;
	if (s->lock_mode == VP_STORE_LOCK_EXCLUSIVE)
		return 0;
	if ((rc = vp_store_lock(s, VP_STORE_LOCK_EXCLUSIVE, false)) < 0) {
		vp_error_prefix("cannot %s", what);
		return rc;
	}
	*took = true;
	return 0;
}

void store_excl_end(vp_store *s, bool took)
{
	if (took)
		vp_store_unlock(s);
}
