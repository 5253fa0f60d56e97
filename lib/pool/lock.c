/* lock.c: one changer per pool at a time (flock on a file in the runtime directory). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/fs.h"

#define VP_LOCK_DIR "/run/lock/vdipool"

int vp_pool_lock(vp_pool *p, bool wait)
{
	char *path;
	int fd, rc;

	if (p->lock_fd >= 0)
		return 0;
	/* Locks live in /run/lock (tmpfs), not in the tier, so that a destroyed
	 * pool leaves nothing behind on its storage. The tier's path is part of
	 * the name: two specs of the same pool name on other tiers do not clash. */
	if ((rc = vp_fs_mkdir_p(VP_LOCK_DIR, 0755)) < 0)
		return rc;
	path = vp_strdup_printf(VP_LOCK_DIR "/%s-%016llx.lock", p->spec->pool,
				(unsigned long long)vp_hash_str(p->spec->storage.deltas->path));
	if (!path)
		return VP_ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = vp_error_set_os(errno, "cannot open lock '%s'", path);
		free(path);
		return rc;
	}
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		rc = errno == EWOULDBLOCK
			     ? vp_error_set(VP_ERR_EXEC, VP_EBUSY,
					    "pool '%s' is being changed by another vdipool (lock '%s' is held); "
					    "wait for it or pass --wait",
					    p->spec->pool, path)
			     : vp_error_set_os(errno, "cannot lock '%s'", path);
		close(fd);
		free(path);
		return rc;
	}
	free(path);
	p->lock_fd = fd;
	return 0;
}
