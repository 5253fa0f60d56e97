/* detach.c: `vdipool detach`: a linked clone becomes a standalone one (its disk flattened by the
 * backend), marked detached in its domain's metadata so it no longer pins its base. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"

#ifdef VP_TEST_HOOKS
/* VDIPOOL_TEST_CRASH_DETACH=marked: SIGKILL once the clone is marked detached, before its disk
 * is flattened (test builds only), for the kill -9 test. */
static void crash_point(const char *where)
{
	const char *v = getenv("VDIPOOL_TEST_CRASH_DETACH");

	if (v && !strcmp(v, where))
		kill(getpid(), SIGKILL);
}
#else
static void crash_point(const char *where) { (void)where; }
#endif

/* Order: mark first, flatten second. The mark is the intent: a clone killed in between is
 * detached with a linked disk, which still pins its base through the disk's own backing chain,
 * is left alone by apply, and is flattened by the next detach. Never the other way round: a
 * flattened clone without the mark would look like a full copy in a linked pool and be made
 * again (its guest's changes discarded) by the next apply. */
int vp_pool_detach(vp_pool *p, const char *name, bool *already)
{
	const vp_observed_clone *o = pool_find_obs(p, name);
	const vp_virt_domain *d = pool_dom_of(p, name);
	bool standalone, running;
	int rc;

	*already = false;
	if (!o || !(o->flags & VP_OBS_OURS) || !o->pool || strcmp(o->pool, p->spec->pool) || !d || !d->has_meta)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is not a clone of pool '%s'", name,
				    p->spec->pool);
	if (!(o->flags & VP_OBS_DELTA))
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "cannot detach '%s': its disk is missing; run 'vdipool apply' to repair it", name);
	/* A flatten reads and writes the disk without its key: an encrypted clone cannot be
	 * flattened this way (and must not become a plain copy). */
	if (p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "cannot detach '%s': pool '%s' has encrypted disks (delta.encrypt: luks), "
				    "which detach does not flatten yet",
				    name, p->spec->pool);
	standalone = o->flags & VP_OBS_STANDALONE;
	running = o->flags & VP_OBS_RUNNING;
	if (!standalone && !(p->deltas.ops->capabilities & VP_CAP_FLATTEN))
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "cannot detach '%s': tier '%s' (backend '%s') cannot flatten a clone's disk",
				    name, p->spec->storage.deltas->name, p->deltas.ops->name);
	if (d->meta.detached && standalone) {
		*already = true;
		return 0;
	}
	if (!d->meta.detached) {
		vp_domain_meta m = d->meta; /* borrowed strings, written back as they are */
		m.detached = true;
		if ((rc = vp_virt_set_meta(p->virt, name, &m)) < 0)
			return rc;
	}
	crash_point("marked");
	if (standalone)
		return 0;
	/* A file backend replaces the disk by a rename: QEMU must not hold the old one open. A
	 * shared backend (rbd) flattens the image in place, with QEMU's client doing the work
	 * while it holds the image (and a flat image is left as it is). */
	if (p->deltas.ops->capabilities & VP_CAP_SHARED)
		running = false;
	if (running && (rc = vp_virt_stop(p->virt, name, p->spec->rollout.shutdown_timeout_sec)) < 0)
		return rc;
	rc = p->deltas.ops->delta_flatten(p->deltas.handle, p->spec->pool, name);
	if (rc < 0) {
		vp_error_prefix("cannot detach '%s'", name);
		return rc;
	}
	if (running)
		return vp_virt_start(p->virt, name);
	return 0;
}
