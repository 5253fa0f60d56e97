/* apply.c: the executor's steps carried out on the real parts (storage plugin, libvirt), and
 * vp_pool_apply: wave 0 (creations, starts, stops, removals), then the gated waves. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "pool/pool_int.h"
#include "util/fs.h"

static unsigned delta_flags(const vp_pool *p)
{
	if (p->spec->clones.mode == VP_CLONE_FULL)
		return VP_DELTA_FULL;
	return (p->spec->delta.preallocation == VP_SPEC_PREALLOC_METADATA ? VP_DELTA_PREALLOC_METADATA : 0) |
	       (p->spec->delta.extended_l2 ? VP_DELTA_EXTENDED_L2 : 0);
}

/* A fresh delta on the item's base with the spec's cluster size, extended L2
 * and preallocation (clones.mode full: a standalone copy of the base), of
 * delta.size. replace: atomically over the existing one (rebase, reset), so
 * the domain never points at a missing disk. */
static int create_delta(vp_pool *p, const vp_plan_item *it, bool replace)
{
	const vp_base_info *b = pool_target(p, it);
	vp_delta_request req = {
		.kind = VP_DISK_DELTA, .pool = p->spec->pool, .clone = it->name,
		.flags = delta_flags(p) | (replace || p->reset_mode ? VP_DELTA_OVERWRITE : 0),
		.cluster_size = (uint32_t)p->spec->delta.cluster_size,
		.size = p->spec->delta.size,
	};
	vp_image_info info;
	int rc;

	if (!b)
		return vp_error_set(VP_ERR_EXEC, VP_ENOENT, "clone '%s': its base '%s' was not resolved",
				    it->name, it->to_base ? it->to_base : p->base_ref);
	req.base_location = b->location;
	req.base_format = b->format;
	rc = p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS ? pool_luks_create(p, &p->deltas, &req, &info)
		: p->deltas.ops->delta_create(p->deltas.handle, &req, &info);
	if (rc == VP_ENOTSUP && (req.flags & VP_DELTA_FULL))
		vp_error_prefix("clone '%s': tier '%s' (backend '%s') cannot make a full clone",
				it->name, p->spec->storage.deltas->name, p->deltas.ops->name);
	return rc;
}

static int create_data(vp_pool *p, const vp_plan_item *it)
{
	vp_delta_request req = { .kind = VP_DISK_DATA, .pool = p->spec->pool, .clone = it->name,
				 .size = p->spec->data_disk.size };
	vp_image_info info;

	if (p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS)
		return pool_luks_create(p, &p->data, &req, &info);
	return p->data.ops->delta_create(p->data.handle, &req, &info);
}

/* The libvirt secret each disk of a clone needs (delta.encrypt: luks), found from the disk's LUKS
 * header. A delta follows the spec: one that is not as the spec says, or whose key is lost (a
 * crash between its rename and its secret), is made again (a delta's content is disposable, as
 * in every rebase). A data disk is never made again: one without its secret, or a plain one in
 * an encrypted pool, is an error saying so. */
static int disk_secrets(vp_pool *p, const vp_plan_item *it, vp_image_info *delta, const char *data,
			char dsec[37], char xsec[37])
{
	bool luks = p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS;
	const vp_spec_host *h = &p->spec->hosts[p->host_index];
	int st = LUKS_PLAIN;

	dsec[0] = xsec[0] = '\0';
	/* A host reached over SSH has its disks there, not here (and no LUKS: validate refuses it). */
	if (h->remote || h->has_ssh)
		return 0;
	if (delta->location[0] == '/' && (st = pool_luks_secret(p, delta->location, dsec)) < 0)
		return st;
	if (delta->location[0] == '/' && (luks ? st != LUKS_OK : st != LUKS_PLAIN)) {
		char old[sizeof(delta->location)];
		int rc;

		snprintf(old, sizeof(old), "%s", delta->location);
		if ((rc = create_delta(p, it, true)) < 0 ||
		    (rc = p->deltas.ops->delta_stat(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, it->name,
						    delta)) < 0)
			return rc;
		if (!luks && (rc = vp_virt_luks_secret_remove(p->virt, old)) < 0)
			return rc;
		if ((st = pool_luks_secret(p, delta->location, dsec)) < 0)
			return st;
		if (luks != (st == LUKS_OK))
			return vp_error_set(VP_ERR_EXEC, VP_EIO, "delta '%s': made again, and still not %s",
					    delta->location, luks ? "encrypted with a key libvirt has" : "plain");
	}
	if (st != LUKS_OK)
		dsec[0] = '\0';
	if (!data || data[0] != '/')
		return 0;
	if ((st = pool_luks_secret(p, data, xsec)) < 0)
		return st;
	if (st == LUKS_NO_SECRET)
		return vp_error_set(VP_ERR_EXEC, VP_EIO, "data disk '%s' is LUKS-encrypted and libvirt has no "
				    "secret %s with its key: its data cannot be read (restore the secret with "
				    "'virsh secret-define' and 'secret-set-value', or remove the disk to get a "
				    "new one)", data, xsec);
	if (st == LUKS_PLAIN && luks)
		return vp_error_set(VP_ERR_EXEC, VP_EINVAL, "data disk '%s' is not encrypted and delta.encrypt "
				    "is luks: vdipool does not encrypt data in place (copy the data out and remove "
				    "the disk, or keep delta.encrypt: none)", data);
	return 0;
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

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" -> 16 bytes; u is left alone when malformed. */
static bool parse_uuid(const char *s, unsigned char u[16])
{
	unsigned char tmp[16];

	for (int i = 0; i < 16; i++) {
		unsigned v;
		if (*s == '-')
			s++;
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]) ||
		    sscanf(s, "%2x", &v) != 1)
			return false;
		tmp[i] = (unsigned char)v;
		s += 2;
	}
	if (*s)
		return false;
	memcpy(u, tmp, 16);
	return true;
}

/* A new domain's UUID, rehashed with a counter while another domain on the
 * host has it (libvirt refuses a second domain with one UUID). */
static void fresh_uuid(const vp_pool *p, const char *name, unsigned char uuid[16])
{
	char s[37], alt[128], mac[18];

	vp_uuid_format(uuid, s);
	for (unsigned n = 1; vp_strmap_get(&p->dom_by_uuid, s) && n < 1000; n++) {
		snprintf(alt, sizeof(alt), "%s#%u", name, n);
		vp_domain_identity(p->spec->pool, alt, uuid, mac);
		vp_uuid_format(uuid, s);
	}
}

static int define_domain(vp_pool *p, const vp_plan_item *it)
{
	const vp_virt_domain *old = pool_dom_of(p, it->name);
	const vp_base_info *b = pool_target(p, it);
	const vp_spec_domain *sd = &p->spec->domain;
	vp_image_info delta, data;
	char dsec[37], xsec[37];
	vp_domain_params dp = {
		.name = it->name, .domain_type = p->accel.domain_type, /* decided by vp_pool_apply before any define */
		.network = sd->network, .memory_bytes = sd->memory_bytes, .vcpus = sd->vcpus,
		.delta_format = "qcow2", .data_format = "qcow2",
	};
	char *xml = NULL;
	int rc;

	if (!b)
		return vp_error_set(VP_ERR_EXEC, VP_ENOENT, "clone '%s': its base '%s' was not resolved",
				    it->name, it->to_base ? it->to_base : p->base_ref);
	if ((rc = p->deltas.ops->delta_stat(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, it->name,
					    &delta)) < 0)
		return rc;
	if (p->spec->data_disk.size &&
	    (rc = p->data.ops->delta_stat(p->data.handle, VP_DISK_DATA, p->spec->pool, it->name, &data)) < 0)
		return rc;
	/* What the backend stored: qcow2 files on dir tiers, raw RBD images on rbd tiers. */
	if (delta.format[0])
		dp.delta_format = delta.format;
	if (p->spec->data_disk.size && data.format[0])
		dp.data_format = data.format;
	if ((rc = disk_secrets(p, it, &delta, p->spec->data_disk.size ? data.location : NULL, dsec, xsec)) < 0)
		return rc;
	dp.delta_secret = dsec[0] ? dsec : NULL;
	dp.data_secret = xsec[0] ? xsec : NULL;
	/* An existing domain keeps its UUID; the planner gave the MAC. */
	vp_domain_identity(p->spec->pool, it->name, dp.uuid, dp.mac);
	if (old)
		parse_uuid(old->uuid, dp.uuid);
	else
		fresh_uuid(p, it->name, dp.uuid);
	if (it->mac[0])
		snprintf(dp.mac, sizeof(dp.mac), "%s", it->mac);
	dp.meta = (vp_domain_meta){
		.pool = (char *)p->spec->pool, .index = it->index,
		.base_name = (char *)b->name, .base_version = (char *)b->version,
		.base_image = (char *)b->location, .delta_path = delta.location,
		.mac = dp.mac, .tier = p->tier_real,
		.host = (char *)p->spec->hosts[p->host_index].name,
		.data_path = p->spec->data_disk.size ? data.location : NULL,
		.spec_hash = p->spec_hash,
		/* A rebase records the version it left (for rollback); other
		 * redefinitions keep what the domain recorded. */
		.prev_version = (char *)(it->from_base ? version_of(it->from_base)
				 : old && old->has_meta ? old->meta.prev_version : NULL),
		.prev_image = !old || !old->has_meta ? NULL
			      : it->from_base ? old->meta.base_image : old->meta.prev_image,
		/* A detached clone stays detached when it is defined again (start/stop,
		 * a repair); a reset gives it a fresh linked delta: linked again. */
		.detached = old && old->has_meta && old->meta.detached && !p->reset_mode,
	};
	if ((rc = pool_rbd_auth(p, &dp.rbd)) < 0 ||
	    (rc = vp_domain_render(&xml, sd->template_path, &dp)) < 0)
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
		/* A spare removed as the pool shrinks back after a release is unclaimed: nobody's session
		 * to save, and a graceful shutdown would hold the pool's lock (claims, releases) for up to
		 * rollout.shutdown_timeout. */
		return vp_virt_stop(p->virt, it->name,
				    p->stop_now || (it->change == VP_CHANGE_REMOVE && p->spec->clones.spares)
					    ? 0 : p->spec->rollout.shutdown_timeout_sec);
	case VP_STEP_UNDEFINE:
		return vp_virt_undefine(p->virt, it->name);
	case VP_STEP_DELETE_DELTA: /* with the libvirt secret of a LUKS disk */
		return pool_luks_forget(p, &p->deltas, VP_DISK_DELTA, it->name);
	case VP_STEP_DELETE_DATA:
		return pool_luks_forget(p, &p->data, VP_DISK_DATA, it->name);
	case VP_STEP_CREATE_DELTA:
		return create_delta(p, it, false);
	case VP_STEP_CREATE_DATA:
		return create_data(p, it);
	case VP_STEP_DEFINE:
		return define_domain(p, it);
	case VP_STEP_START:
		return vp_virt_start(p->virt, it->name);
	case VP_STEP_REBASE:
		/* The new delta replaces the old one atomically (rename); the
		 * domain keeps its path, so it never points at a missing disk. */
		return create_delta(p, it, true);
	default:
		return vp_error_set(VP_ERR_EXEC, VP_EINVAL, "unknown step %u", step);
	}
}

/* Resolves every base the plan puts a clone on (usually one, the spec's; a
 * rollback or a reset has more) and checks each against its manifest. */
static bool plan_defines(const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++)
		if (plan->items[i].steps & VP_STEP_DEFINE)
			return true;
	return false;
}

static int resolve_targets(vp_pool *p, const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++) {
		const vp_plan_item *it = &plan->items[i];
		const char *ref = it->to_base ? it->to_base : p->base_ref;
		vp_base_info *t;
		char (*r)[REF_MAX];
		int rc;

		if (!(it->steps & (VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_REBASE)) || pool_target(p, it))
			continue;
		if (!*ref)
			return vp_error_set(VP_ERR_EXEC, VP_ENOENT,
					    "pool '%s': the base '%s' was not resolved; import it or fix base.version",
					    p->spec->pool, p->spec->base.name);
		if (!(t = realloc(p->targets, (p->ntargets + 1) * sizeof(*t))))
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		p->targets = t;
		if (!(r = realloc(p->target_refs, (p->ntargets + 1) * sizeof(*r))))
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		p->target_refs = r;
		if ((rc = vp_store_stat(p->store, ref, &p->targets[p->ntargets])) < 0) {
			if (rc == VP_ENOENT)
				return vp_error_set(VP_ERR_EXEC, VP_ENOENT,
						    "pool '%s': clone '%s' needs base '%s', which is not in the "
						    "store; import it again or change the spec",
						    p->spec->pool, it->name, ref);
			/* A damaged store is a state conflict (exit 1), not bad input. */
			vp_error_prefix("pool '%s': clone '%s' needs base '%s'", p->spec->pool, it->name, ref);
			return rc == VP_EINVAL ? VP_ECONFLICT : rc;
		}
		if ((rc = vp_store_check_unchanged(p->store, ref)) < 0 ||
		    (rc = pool_check_size(p, &p->targets[p->ntargets])) < 0)
			return rc;
		snprintf(p->target_refs[p->ntargets++], REF_MAX, "%s", ref);
	}
	return 0;
}

/* A rollout, reset or repair gives a clone a fresh disk: the snapshots under its disk would be
 * cut off. Such a clone is refused before anything changes; its owner removes them first
 * (vdipool snapshot rm) or destroys the clone. */
static int refuse_snapshots(vp_pool *p, const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++) {
		const vp_plan_item *it = &plan->items[i];
		char first[64];

		if (!(it->steps & (VP_STEP_REBASE | VP_STEP_CREATE_DELTA)) ||
		    !pool_has_snapshots(p, it->name, first, sizeof(first)))
			continue;
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "clone '%s' has snapshots ('%s' among them): giving it a fresh disk (%s) would "
				    "discard them; nothing was changed. Remove them first (vdipool snapshot "
				    "ls/rm POOL.yaml %s) or destroy the clone",
				    it->name, first, it->reason ? it->reason : "rebase", it->name);
	}
	return 0;
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
	acc->skipped += r.skipped;
	if (!acc->first_error[0])
		memcpy(acc->first_error, r.first_error, sizeof(acc->first_error));
	free(sub.items);
	return rc;
}

static bool plan_starts(const vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++)
		if (plan->items[i].steps & VP_STEP_START)
			return true;
	return false;
}

/* clones.warm_base: the base's allocated ranges into this host's page cache before a wave of
 * starts, so N booting clones read it from memory instead of each missing the cache at once.
 * Only where the base is a file here (a dir bases tier, a local host); a failure is reported
 * through vp_pool_warmed, never fatal: warming only saves time. */
static void warm_base(vp_pool *p, const vp_plan *plan)
{
	double t0;
	int rc;

	p->warmed = false;
	p->warm_error[0] = '\0';
	if (!p->spec->clones.warm_base || !plan_starts(plan))
		return;
	if (p->remote || p->spec->storage.bases->driver != VP_STORAGE_DIR || !p->base_resolved) {
		snprintf(p->warm_error, sizeof(p->warm_error), "%s", p->remote ? "the host is remote"
			 : !p->base_resolved ? "the base is not resolved" : "the bases tier is not a dir tier");
		return;
	}
	t0 = vp_now();
	rc = vp_fs_warm(p->base.location, &p->warmed_bytes);
	p->warm_seconds = vp_now() - t0;
	if (rc < 0)
		snprintf(p->warm_error, sizeof(p->warm_error), "%s", vp_error_last()->message);
	p->warmed = rc == 0;
}

bool vp_pool_warmed(const vp_pool *p, uint64_t *bytes, double *seconds, const char **why)
{
	if (bytes)
		*bytes = p->warmed ? p->warmed_bytes : 0;
	if (seconds)
		*seconds = p->warmed ? p->warm_seconds : 0;
	if (why)
		*why = p->warm_error[0] ? p->warm_error : NULL;
	return p->warmed;
}

int vp_pool_apply(vp_pool *p, const vp_plan *plan, const vp_apply_opts *opts, vp_exec_result *res)
{
	vp_exec_ops ops = { .step = run_step };
	vp_exec_opts eo = { 0 };
	apply_ctx ctx = { p, opts };
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
	/* The accelerator is decided before the workers start: they define domains of that type. */
	if (plan_defines(plan) && (rc = vp_pool_accel(p, NULL)) < 0)
		return rc;
	if ((rc = resolve_targets(p, plan)) < 0 || (rc = refuse_snapshots(p, plan)) < 0)
		return rc;
	warm_base(p, plan);
	/* A rollback is on record before its first clone moves, and only then;
	 * a finished one's record goes (so does a destroyed pool's). */
	rc = p->reset_mode ? 0 : p->rollback && !p->destroying ? pool_rollback_record(p) : pool_rollback_clear(p);
	if (rc < 0)
		return rc;
	if ((rc = pool_run_wave(plan, 0, &ops, &ctx, &eo, res)) < 0)
		return rc;
	if ((rc = pool_rollout(p, plan, opts, &ops, &ctx, &eo, res)) < 0)
		return rc;
	if (p->rollback && !p->destroying && !p->reset_mode && !res->failed)
		return pool_rollback_clear(p);
	return 0;
}
