/* apply.c: the executor's steps carried out on the real parts (storage plugin, libvirt), and
 * vp_pool_apply: wave 0 (everything outside a rollout), then the rollout. */
#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"

static unsigned delta_flags(const vp_pool *p)
{
	return (p->spec->delta.preallocation == VP_SPEC_PREALLOC_METADATA ? VP_DELTA_PREALLOC_METADATA : 0) |
	       (p->spec->delta.extended_l2 ? VP_DELTA_EXTENDED_L2 : 0);
}

static int create_delta(vp_pool *p, const vp_plan_item *it)
{
	vp_delta_request req = {
		.kind = VP_DISK_DELTA, .pool = p->spec->pool, .clone = it->name,
		.base_location = p->base.location, .base_format = p->base.format,
		.flags = delta_flags(p) | (p->reset_mode ? VP_DELTA_OVERWRITE : 0),
		.cluster_size = (uint32_t)p->spec->delta.cluster_size,
	};
	vp_image_info info;

	return p->deltas.ops->delta_create(p->deltas.handle, &req, &info);
}

static int create_data(vp_pool *p, const vp_plan_item *it)
{
	vp_delta_request req = { .kind = VP_DISK_DATA, .pool = p->spec->pool, .clone = it->name,
				 .size = p->spec->data_disk.size };
	vp_image_info info;

	return p->data.ops->delta_create(p->data.handle, &req, &info);
}

/* Every clone's XML comes from one template and differs only in names and
 * paths: the first define of an apply is checked against libvirt's schema
 * (the others wait for it), the rest are defined without the check. */
static int define_validated_once(vp_pool *p, const char *xml)
{
	int rc;

	pthread_mutex_lock(&p->validate_lock);
	if (p->validated) {
		pthread_mutex_unlock(&p->validate_lock);
		return vp_virt_define(p->virt, xml, false);
	}
	rc = vp_virt_define(p->virt, xml, true);
	p->validated = rc == 0;
	pthread_mutex_unlock(&p->validate_lock);
	return rc;
}


/* The version part of "name@version". */
static const char *version_of(const char *ref)
{
	const char *at = ref ? strrchr(ref, '@') : NULL;

	return at ? at + 1 : NULL;
}

static int define_domain(vp_pool *p, const vp_plan_item *it)
{
	const vp_virt_domain *old = pool_dom_of(p, it->name);
	const vp_spec_domain *sd = &p->spec->domain;
	vp_image_info delta, data;
	vp_domain_params dp = {
		.name = it->name, .domain_type = vp_virt_domain_type(p->virt),
		.network = sd->network, .memory_bytes = sd->memory_bytes, .vcpus = sd->vcpus,
		.delta_format = "qcow2", .data_format = "qcow2",
	};
	char *xml = NULL;
	int rc;

	if ((rc = p->deltas.ops->delta_stat(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, it->name,
					    &delta)) < 0)
		return rc;
	if (p->spec->data_disk.size &&
	    (rc = p->data.ops->delta_stat(p->data.handle, VP_DISK_DATA, p->spec->pool, it->name, &data)) < 0)
		return rc;
	vp_domain_identity(p->spec->pool, it->name, dp.uuid, dp.mac);
	dp.meta = (vp_domain_meta){
		.pool = (char *)p->spec->pool, .index = it->index,
		.base_name = p->base.name, .base_version = p->base.version,
		.base_image = p->base.location, .delta_path = delta.location,
		.data_path = p->spec->data_disk.size ? data.location : NULL,
		.spec_hash = p->spec_hash,
		/* A rebase records the version it left (for rollback); other
		 * redefinitions keep what the domain recorded. */
		.prev_version = (char *)(it->from_base ? version_of(it->from_base)
				 : old && old->has_meta ? old->meta.prev_version : NULL),
		.prev_image = !old || !old->has_meta ? NULL
			      : it->from_base ? old->meta.base_image : old->meta.prev_image,
	};
	if ((rc = vp_domain_render(&xml, sd->template_path, &dp)) < 0)
		return rc;
	rc = define_validated_once(p, xml);
	free(xml);
	return rc;
}

static void progress(void *ctx, size_t done, size_t total, const vp_plan_item *it, int rc,
		     const char *msg)
{
	const apply_ctx *a = ctx;

	a->opts->progress(a->opts->progress_ctx, done, total, it, rc, msg);
}

static int run_step(void *ctx, const vp_plan_item *it, unsigned step)
{
	vp_pool *p = ((apply_ctx *)ctx)->pool;

	switch (step) {
	case VP_STEP_STOP:
		return vp_virt_stop(p->virt, it->name, p->spec->rollout.shutdown_timeout_sec);
	case VP_STEP_UNDEFINE:
		return vp_virt_undefine(p->virt, it->name);
	case VP_STEP_DELETE_DELTA:
		return p->deltas.ops->delta_remove(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, it->name);
	case VP_STEP_DELETE_DATA:
		return p->data.ops->delta_remove(p->data.handle, VP_DISK_DATA, p->spec->pool, it->name);
	case VP_STEP_CREATE_DELTA:
		return create_delta(p, it);
	case VP_STEP_CREATE_DATA:
		return create_data(p, it);
	case VP_STEP_DEFINE:
		return define_domain(p, it);
	case VP_STEP_START:
		return vp_virt_start(p->virt, it->name);
	case VP_STEP_REBASE:
		/* The new delta replaces the old one atomically (rename); the
		 * domain keeps its path, so it never points at a missing disk. */
		return p->deltas.ops->delta_rebase(p->deltas.handle, p->spec->pool, it->name,
						   p->base.location, p->base.format);
	default:
		return vp_error_set(VP_ERR_EXEC, VP_EINVAL, "unknown step %u", step);
	}
}

static bool needs_base(const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++)
		if (plan->items[i].steps & (VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_REBASE))
			return true;
	return false;
}

/* Runs the items of one wave (0: everything outside the rollout) as a plan of
 * their own, adding the outcome to *acc. */
int pool_run_wave(const vp_plan *plan, unsigned wave, const vp_exec_ops *ops, apply_ctx *ctx,
		  const vp_exec_opts *eo, vp_exec_result *acc)
{
	vp_plan sub = { 0 };
	vp_exec_result r;
	int rc;

	sub.items = calloc(plan->count + 1, sizeof(*sub.items));
	if (!sub.items)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; i < plan->count; i++)
		if (plan->items[i].wave == wave && plan->items[i].steps)
			sub.items[sub.count++] = plan->items[i];
	rc = vp_exec_run(&sub, ops, ctx, eo, &r);
	acc->done += r.done;
	acc->failed += r.failed;
	if (!acc->first_error[0])
		memcpy(acc->first_error, r.first_error, sizeof(acc->first_error));
	free(sub.items);
	return rc;
}


int vp_pool_apply(vp_pool *p, const vp_plan *plan, const vp_apply_opts *opts, vp_exec_result *res)
{
	vp_exec_ops ops = { .step = run_step };
	vp_exec_opts eo = { 0 };
	apply_ctx ctx = { p, opts };
	char ref[2 * VP_PLUGIN_NAME_MAX + 2];
	int rc;

	memset(res, 0, sizeof(*res));
	if (opts) {
		eo = opts->exec;
		ops.progress = opts->progress ? progress : NULL;
	}
	if (!eo.max_starts)
		eo.max_starts = p->spec->domain.max_parallel_starts;
	if ((rc = vp_pool_lock(p, opts && opts->wait_lock)) < 0)
		return rc;
	if (needs_base(plan)) {
		if (!p->base_resolved)
			return vp_error_set(VP_ERR_EXEC, VP_EINVAL, "pool '%s': the base was not resolved",
					    p->spec->pool);
		snprintf(ref, sizeof(ref), "%s@%s", p->base.name, p->base.version);
		if ((rc = vp_store_check_unchanged(p->store, ref)) < 0)
			return rc;
	}
	if ((rc = pool_run_wave(plan, 0, &ops, &ctx, &eo, res)) < 0)
		return rc;
	return pool_rollout(p, plan, opts, &ops, &ctx, &eo, res);
}
