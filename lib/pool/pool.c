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

/* The probe guest is a clone of the pool's base from the pool's template: nested KVM can start
 * a bare guest and still stop this one while it boots. */
static int set_probe(vp_pool *p)
{
	const vp_spec_domain *sd = &p->spec->domain;
	char name[64];
	vp_domain_params dp = {
		.name = name, .domain_type = "kvm", .network = "none",
		.memory_bytes = sd->memory_bytes, .vcpus = sd->vcpus, .delta_format = p->base.format,
		.meta = { .pool = (char *)p->spec->pool, .delta_path = p->base.location },
	};
	char *xml = NULL, *key = NULL;
	int rc;

	if (!p->base_resolved)
		return 0;
	/* The name the probe gives its guest, so that the serial log it names is the probe's. */
	snprintf(name, sizeof(name), "vdipool-kvm-probe-%ld", (long)getpid());
	vp_domain_identity(p->spec->pool, dp.name, dp.uuid, dp.mac);
	if ((rc = vp_domain_render(&xml, sd->template_path, &dp)) < 0)
		return rc;
	/* What the probe boots: the base version, and the definition (template content, memory,
	 * vcpus...) the spec hash covers; taken before vp_pool_accel mixes the accelerator in. */
	key = vp_strdup_printf("%s %s %s", p->base_ref, p->base.location, p->spec_hash);
	if (key)
		vp_virt_set_accel_probe(p->virt, xml, key);
	free(xml);
	rc = key ? 0 : vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	free(key);
	return rc;
}

int vp_pool_accel(vp_pool *p, const vp_accel **out)
{
	static const vp_accel_mode modes[] = { [VP_SPEC_ACCEL_AUTO] = VP_ACCEL_AUTO,
					       [VP_SPEC_ACCEL_KVM] = VP_ACCEL_KVM,
					       [VP_SPEC_ACCEL_TCG] = VP_ACCEL_TCG };
	int rc;

	if (!p->accel_done) {
		if (p->spec->domain.accel != VP_SPEC_ACCEL_TCG && (rc = set_probe(p)) < 0)
			return rc;
		if ((rc = vp_virt_accel(p->virt, modes[p->spec->domain.accel], &p->accel)) < 0) {
			vp_error_prefix("pool '%s'", p->spec->pool);
			return rc;
		}
		if ((rc = vp_spec_domain_hash(p->spec, p->accel.domain_type, p->spec_hash)) < 0)
			return rc;
		p->accel_done = true;
	}
	if (out)
		*out = &p->accel;
	return 0;
}

const char *vp_pool_accel_warning(const vp_pool *p)
{
	return p->accel_done && p->accel.reason[0] ? p->accel.reason : NULL;
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
