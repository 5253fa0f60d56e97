/* lock.c: one changer per pool at a time, a shared hold on the store (flocks in /run/vdipool), then the sweep of dead temporaries. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/strmap.h"

int vp_pool_lock(vp_pool *p, bool wait)
{
	char file[160];
	int fd, rc;

	if (p->lock_fd >= 0)
		return 0;
	/* Locks live in the root-only runtime directory (tmpfs), not in the
	 * tier, so that a destroyed pool leaves nothing behind on its storage.
	 * The tier's path is part of the name: two specs of the same pool name
	 * on other tiers do not clash. */
	snprintf(file, sizeof(file), "%s-%016llx.lock", p->spec->pool,
		 (unsigned long long)vp_hash_str(p->spec->storage.deltas->path));
	if ((fd = vp_store_lockfile_open(VP_RUNTIME_DIR, file)) < 0)
		return fd;
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		rc = errno == EWOULDBLOCK
			     ? vp_error_set(VP_ERR_EXEC, VP_EBUSY,
					    "pool '%s' is being changed by another vdipool (lock '%s/%s' is "
					    "held); wait for it or pass --wait",
					    p->spec->pool, VP_RUNTIME_DIR, file)
			     : vp_error_set_os(errno, "cannot lock '%s/%s'", VP_RUNTIME_DIR, file);
		close(fd);
		return rc;
	}
	/* Shared with other pools' apply, exclusive against gc and base rm: no
	 * base or delta goes while this pool creates deltas on it. */
	if ((rc = vp_store_lock(p->store, VP_STORE_LOCK_SHARED, wait)) < 0) {
		close(fd);
		return rc;
	}
	/* Every changer (apply, rollout, reset, destroy) passes here: what killed
	 * vdipools left behind goes before anything new is made. */
	if ((rc = vp_store_sweep(p->store)) < 0) {
		vp_store_unlock(p->store);
		close(fd);
		return rc;
	}
	p->lock_fd = fd;
	return 0;
}
