/* lock.c: one changer per pool at a time, a shared hold on the store (flocks in /run/vdipool), then the sweep of dead temporaries. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/strmap.h"

int pool_lock_file(const vp_spec *spec, bool wait, int *out)
{
	char file[160];
	int fd, rc;

	*out = -1;
	/* Locks live in the root-only runtime directory (tmpfs), not in the
	 * tier, so that a destroyed pool leaves nothing behind on its storage.
	 * The tier's path is part of the name: two specs of the same pool name
	 * on other tiers do not clash. A pool of many hosts has one lock, on the
	 * machine that drives it. */
	snprintf(file, sizeof(file), "%s-%016llx.lock", spec->pool,
		 (unsigned long long)vp_hash_str(spec->storage.deltas->where));
	if ((fd = vp_store_lockfile_open(VP_RUNTIME_DIR, file)) < 0)
		return fd;
	if (flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB)) < 0) {
		rc = errno == EWOULDBLOCK
			     ? vp_error_set(VP_ERR_EXEC, VP_EBUSY,
					    "pool '%s' is being changed by another vdipool (lock '%s/%s' is "
					    "held); wait for it or pass --wait",
					    spec->pool, VP_RUNTIME_DIR, file)
			     : vp_error_set_os(errno, "cannot lock '%s/%s'", VP_RUNTIME_DIR, file);
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

int vp_pool_lock(vp_pool *p, bool wait)
{
	int fd = -1, rc;

	if (p->locked)
		return 0;
	if (!p->fleet_locked && (rc = pool_lock_file(p->spec, wait, &fd)) < 0)
		return rc;
	/* Shared with other pools' apply, exclusive against gc and base rm: no
	 * base or delta goes while this pool creates deltas on it. */
	if ((rc = vp_store_lock(p->store, VP_STORE_LOCK_SHARED, wait)) < 0) {
		if (fd >= 0)
			close(fd);
		return rc;
	}
	/* Every changer (apply, rollout, reset, destroy) passes here: what killed
	 * vdipools left behind goes before anything new is made. */
	if ((rc = vp_store_sweep(p->store)) < 0) {
		vp_store_unlock(p->store);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	p->lock_fd = fd;
	p->locked = true;
	return 0;
}
