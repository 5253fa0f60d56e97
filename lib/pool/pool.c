/* pool.c: a pool's handle: its spec, its libvirt connection, its storage tiers, and the base it
 * resolves in the store. The rest of the pool subsystem works on this handle. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"

static int open_tier(disk_tier *t, const vp_spec_tier *st)
{
	const vp_plugin *plugin;
	vp_tier_config cfg = { .tier = st->name, .path = st->path };
	int rc = vp_plugin_find(&plugin, "dir");

	if (rc < 0)
		return rc;
	t->ops = vp_plugin_get_ops(plugin);
	t->spec = st;
	if ((rc = t->ops->open(&cfg, &t->handle)) < 0)
		vp_error_prefix("cannot open storage tier '%s'", st->name);
	return rc;
}

static void close_tier(disk_tier *t)
{
	if (t->handle && t->ops->close)
		t->ops->close(t->handle);
	t->handle = NULL;
}

static int open_store(vp_pool *p)
{
	const vp_spec_storage *s = &p->spec->storage;
	vp_store_tier base = { "dir", { .tier = s->bases->name, .path = s->bases->path } };
	vp_store_tier deltas[2];
	size_t n = 0;

	deltas[n++] = (vp_store_tier){ "dir", { .tier = s->deltas->name, .path = s->deltas->path } };
	if (p->data_separate)
		deltas[n++] = (vp_store_tier){ "dir", { .tier = p->spec->data_disk.tier->name,
							.path = p->spec->data_disk.tier->path } };
	return vp_store_open(&p->store, &base, deltas, n);
}

int vp_pool_open(vp_pool **out, const vp_spec *spec)
{
	vp_pool *p;
	int rc;

	*out = NULL;
	if (spec->host_count > 1)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "pool '%s': several hosts are not supported yet (%zu given)", spec->pool,
				    spec->host_count);
	if (spec->clones.mode == VP_CLONE_FULL)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "pool '%s': clones.mode 'full' is not supported yet", spec->pool);
	p = calloc(1, sizeof(*p));
	if (!p)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	p->spec = spec;
	p->lock_fd = -1;
	pthread_mutex_init(&p->validate_lock, NULL);
	p->data_separate = spec->data_disk.size && spec->data_disk.tier != spec->storage.deltas;
	{
		char real[PATH_MAX];
		snprintf(p->tier_real, sizeof(p->tier_real), "%s",
			 realpath(spec->storage.deltas->path, real) ? real : spec->storage.deltas->path);
	}
	if ((rc = vp_spec_hash(spec, p->spec_hash)) < 0 ||
	    (rc = vp_virt_open(&p->virt, spec->hosts[0].uri)) < 0 ||
	    (rc = open_store(p)) < 0 ||
	    (rc = open_tier(&p->deltas, spec->storage.deltas)) < 0)
		goto fail;
	if (p->data_separate)
		rc = open_tier(&p->data, spec->data_disk.tier);
	else
		p->data = p->deltas;
	if (rc < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	vp_pool_free(p);
	return rc;
}

void vp_pool_free(vp_pool *p)
{
	if (!p)
		return;
	pool_clear_inventory(p);
	if (p->data_separate)
		close_tier(&p->data);
	close_tier(&p->deltas);
	vp_store_free(p->store);
	vp_virt_free(p->virt);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	pthread_mutex_destroy(&p->validate_lock);
	free(p);
}

const char *vp_pool_base_ref(const vp_pool *p)
{
	return p->base_ref;
}

int pool_resolve_base(vp_pool *p, const char *version)
{
	const vp_spec_base *b = &p->spec->base;
	char ref[2 * VP_PLUGIN_NAME_MAX + 2];
	int rc;

	snprintf(ref, sizeof(ref), "%s@%s", b->name, version);
	rc = vp_store_stat(p->store, ref, &p->base);
	if (rc == VP_ENOENT)
		return vp_error_set(VP_ERR_STORE, VP_ENOENT,
				    "pool '%s': base '%s' is not in the store on tier '%s'; import it with "
				    "'vdipool base import %s FILE --version V'",
				    p->spec->pool, ref, p->spec->storage.bases->name, b->name);
	if (rc < 0) {
		/* The spec was checked: what is wrong is the store (exit 1). */
		vp_error_prefix("pool '%s'", p->spec->pool);
		return rc == VP_EINVAL ? VP_ECONFLICT : rc;
	}
	snprintf(p->base_ref, sizeof(p->base_ref), "%s@%s", p->base.name, p->base.version);
	p->base_resolved = true;
	return 0;
}

int vp_pool_use_base_version(vp_pool *p, const char *version)
{
	return pool_resolve_base(p, version);
}
