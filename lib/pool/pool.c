/* pool.c: one pool's world (libvirt + storage + bases) read into the planner's terms, and the
 * executor's steps carried out on the real parts. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/plugin.h"
#include "vdipool/pool.h"
#include "vdipool/qcow2.h"
#include "vdipool/store.h"
#include "vdipool/virt.h"
#include "util/fs.h"
#include "util/run.h"
#include "util/strmap.h"
#include "util/util.h"

/* A disk the storage listing showed, reduced to what the planner needs. */
typedef struct disk_entry {
	char name[VP_PLUGIN_NAME_MAX];
	int kind;
	uint64_t allocated;
	char *location;
} disk_entry;

/* An opened storage tier for per-clone disks; plugin calls on it may run in parallel. */
typedef struct disk_tier {
	const vp_plugin_ops *ops;
	void *handle;
	const vp_spec_tier *spec;
} disk_tier;

#define VP_LOCK_DIR "/run/lock/vdipool"

struct vp_pool {
	const vp_spec *spec;
	vp_virt *virt;
	vp_store *store;
	disk_tier deltas;
	disk_tier data;           /* same handle as deltas when the tiers are one */
	bool data_separate;
	char spec_hash[VP_SPEC_HASH_LEN];

	/* the last inventory */
	bool base_resolved;
	vp_base_info base;
	char base_ref[2 * VP_PLUGIN_NAME_MAX + 2];
	char *names;              /* count names of 64 bytes each */
	vp_desired_clone *want;
	size_t nwant;
	vp_virt_domain *doms;
	size_t ndoms;
	vp_strmap dom_by_name;    /* name -> vp_virt_domain in doms */
	disk_entry *disks;
	size_t ndisks, capdisks;
	vp_observed_clone *obs;
	vp_strmap obs_by_name;    /* name -> entry of obs */
	vp_strmap delta_by_name;  /* clone name -> its delta in disks */
	char (*obs_base)[2 * VP_PLUGIN_NAME_MAX + 2];
	size_t nobs;

	bool reset_mode;          /* CREATE_DELTA replaces an existing delta */
	pthread_mutex_t validate_lock;
	bool validated;           /* one domain of this apply passed libvirt's schema check */
	int lock_fd;
};

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

static void clear_inventory(vp_pool *p)
{
	free(p->names);
	free(p->want);
	vp_virt_domains_free(p->doms, p->ndoms);
	vp_strmap_release(&p->dom_by_name);
	for (size_t i = 0; i < p->ndisks; i++)
		free(p->disks[i].location);
	free(p->disks);
	free(p->obs);
	free(p->obs_base);
	vp_strmap_release(&p->obs_by_name);
	vp_strmap_release(&p->delta_by_name);
	p->names = NULL;
	p->want = NULL;
	p->doms = NULL;
	p->disks = NULL;
	p->obs = NULL;
	p->obs_base = NULL;
	p->nwant = p->ndoms = p->ndisks = p->capdisks = p->nobs = 0;
	p->base_resolved = false;
	p->base_ref[0] = '\0';
}

void vp_pool_free(vp_pool *p)
{
	if (!p)
		return;
	clear_inventory(p);
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

/* ---- inventory --------------------------------------------------------------- */

static int build_names(vp_pool *p)
{
	const vp_spec_clones *c = &p->spec->clones;

	p->names = calloc(c->count, 64);
	p->want = calloc(c->count, sizeof(*p->want));
	if (!p->names || !p->want)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (unsigned i = 0; i < c->count; i++) {
		char *name = p->names + (size_t)i * 64;
		int rc = vp_spec_clone_name(p->spec, c->start_index + i, name, 64);
		if (rc < 0)
			return rc;
		p->want[i] = (vp_desired_clone){ name, c->start_index + i };
	}
	p->nwant = c->count;
	return 0;
}

static int resolve_base_version(vp_pool *p, const char *version)
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
	if (rc < 0)
		return rc;
	snprintf(p->base_ref, sizeof(p->base_ref), "%s@%s", p->base.name, p->base.version);
	p->base_resolved = true;
	return 0;
}

static int resolve_base(vp_pool *p)
{
	return resolve_base_version(p, p->spec->base.version ? p->spec->base.version : "latest");
}

int vp_pool_use_base_version(vp_pool *p, const char *version)
{
	return resolve_base_version(p, version);
}

int vp_pool_rollback_target(vp_pool *p, char *version, size_t len)
{
	vp_strmap seen = VP_STRMAP_INIT; /* previous version -> its counter in counts */
	size_t *counts = calloc(p->ndoms + 1, sizeof(*counts)), nseen = 0, best_n = 0;
	const char *best = NULL;
	int rc = 0;

	if (!counts)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	/* Clones of one rollout share one previous version; the most common wins. */
	for (size_t i = 0; rc == 0 && i < p->ndoms; i++) {
		const vp_domain_meta *m = &p->doms[i].meta;
		size_t *n;

		if (!p->doms[i].has_meta || strcmp(m->pool, p->spec->pool) || !m->prev_version)
			continue;
		if (!(n = vp_strmap_get(&seen, m->prev_version)) &&
		    (rc = vp_strmap_put(&seen, m->prev_version, n = &counts[nseen++])) < 0)
			break;
		if (++*n > best_n) {
			best_n = *n;
			best = m->prev_version;
		}
	}
	if (rc == 0 && best)
		snprintf(version, len, "%s", best);
	else if (rc == 0)
		rc = vp_error_set(VP_ERR_PLAN, VP_ENOENT,
				  "pool '%s': nothing to roll back: no clone records a previous base version",
				  p->spec->pool);
	vp_strmap_release(&seen);
	free(counts);
	return rc;
}

static int add_disk(void *ctx, const vp_image_info *info)
{
	vp_pool *p = ctx;
	disk_entry *d;

	if (p->ndisks == p->capdisks) {
		size_t cap = p->capdisks ? p->capdisks * 2 : 64;
		disk_entry *n = realloc(p->disks, cap * sizeof(*n));
		if (!n)
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		p->disks = n;
		p->capdisks = cap;
	}
	d = &p->disks[p->ndisks];
	snprintf(d->name, sizeof(d->name), "%s", info->name);
	d->kind = info->kind;
	d->allocated = info->allocated;
	d->location = strdup(info->location);
	if (!d->location)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	p->ndisks++;
	return 0;
}

/* Only data disks come from a separate data tier. */
static int add_data_disk(void *ctx, const vp_image_info *info)
{
	return info->kind == VP_DISK_DATA ? add_disk(ctx, info) : 0;
}

static int list_disks(vp_pool *p)
{
	int rc = p->deltas.ops->delta_list(p->deltas.handle, p->spec->pool, add_disk, p);

	if (rc == 0 && p->data_separate)
		rc = p->data.ops->delta_list(p->data.handle, p->spec->pool, add_data_disk, p);
	return rc;
}

static vp_observed_clone *obs_entry(vp_pool *p, vp_strmap *by_name, const char *name)
{
	vp_observed_clone *o = vp_strmap_get(by_name, name);

	if (o)
		return o;
	o = &p->obs[p->nobs++];
	o->name = name;
	if (vp_strmap_put(by_name, name, o) < 0)
		return NULL;
	return o;
}

static unsigned index_of(const char *name, const vp_strmap *wanted)
{
	const vp_desired_clone *w = vp_strmap_get(wanted, name);

	return w ? w->index : 0;
}

static int merge(vp_pool *p)
{
	vp_strmap *by_name = &p->obs_by_name, wanted = VP_STRMAP_INIT;
	int rc = VP_ENOMEM;

	p->obs = calloc(p->ndoms + p->ndisks + 1, sizeof(*p->obs));
	p->obs_base = calloc(p->ndoms + 1, sizeof(*p->obs_base));
	if (!p->obs || !p->obs_base)
		goto nomem;
	for (size_t i = 0; i < p->nwant; i++)
		if (vp_strmap_put(&wanted, p->want[i].name, &p->want[i]) < 0)
			goto out;
	for (size_t i = 0; i < p->ndoms; i++) {
		const vp_virt_domain *d = &p->doms[i];
		bool ours = d->has_meta && !strcmp(d->meta.pool, p->spec->pool);
		vp_observed_clone *o;

		/* Others' domains matter only when they hold a name we want. */
		if (!ours && !vp_strmap_get(&wanted, d->name))
			continue;
		if (!(o = obs_entry(p, by_name, d->name)))
			goto out;
		o->flags |= VP_OBS_DOMAIN;
		o->flags |= d->state == VP_DOM_RUNNING || d->state == VP_DOM_PAUSED ? VP_OBS_RUNNING : 0;
		if (d->has_meta) {
			o->flags |= VP_OBS_OURS;
			o->pool = d->meta.pool;
			o->index = d->meta.index;
			o->spec_hash = d->meta.spec_hash;
			snprintf(p->obs_base[i], sizeof(p->obs_base[i]), "%s@%s",
				 d->meta.base_name ? d->meta.base_name : "",
				 d->meta.base_version ? d->meta.base_version : "");
			o->base_ref = p->obs_base[i];
		}
	}
	for (size_t i = 0; i < p->ndisks; i++) {
		vp_observed_clone *o = obs_entry(p, by_name, p->disks[i].name);
		if (!o)
			goto out;
		if (!o->index)
			o->index = index_of(o->name, &wanted);
		if (p->disks[i].kind == VP_DISK_DATA) {
			o->flags |= VP_OBS_DATA;
			o->data_bytes = p->disks[i].allocated;
		} else {
			o->flags |= VP_OBS_DELTA;
			o->delta_bytes = p->disks[i].allocated;
			if (vp_strmap_put(&p->delta_by_name, p->disks[i].name, &p->disks[i]) < 0)
				goto out;
		}
	}
	rc = 0;
	goto out;
nomem:
	rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
out:
	vp_strmap_release(&wanted);
	return rc;
}

int vp_pool_inventory(vp_pool *p, bool need_base)
{
	int rc;

	clear_inventory(p);
	if ((rc = build_names(p)) < 0)
		return rc;
	/* Without need_base a missing base is fine (status, destroy). */
	if ((rc = resolve_base(p)) < 0) {
		if (need_base)
			return rc;
		vp_error_clear();
	}
	if ((rc = vp_virt_list(p->virt, &p->doms, &p->ndoms)) < 0)
		return rc;
	for (size_t i = 0; i < p->ndoms; i++)
		if ((rc = vp_strmap_put(&p->dom_by_name, p->doms[i].name, &p->doms[i])) < 0)
			return rc;
	if ((rc = list_disks(p)) < 0)
		return rc;
	return merge(p);
}

/* ---- planning ------------------------------------------------------------------ */

/* Bytes a new delta writes, from the qcow2 layout: a header cluster, L1,
 * refcount table and blocks, and with preallocation an L2 entry and a
 * refcount for every cluster of the base; each piece rounded to 4 KiB
 * blocks, because the writer leaves the rest of each cluster a hole. */
static uint64_t round4k(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

static uint64_t delta_cost(const vp_pool *p)
{
	const vp_spec_delta *d = &p->spec->delta;
	uint64_t clusters, l2_entry = d->extended_l2 ? 16 : 8, l1;
	bool pre = d->preallocation == VP_SPEC_PREALLOC_METADATA;

	if (!p->base_resolved)
		return 0;
	clusters = (p->base.virtual_size + d->cluster_size - 1) / d->cluster_size;
	l1 = (clusters * l2_entry + d->cluster_size - 1) / d->cluster_size * 8;
	return round4k(512) + round4k(l1) + round4k(8) + round4k(pre ? clusters * 2 : 64) +
	       (pre ? round4k(clusters * l2_entry) : 0);
}

static uint64_t data_cost(const vp_pool *p)
{
	return p->spec->data_disk.size ? 4 * 65536 : 0;
}

/* rollout.max_unavailable as a clone count: a percentage of the pool, at least 1. */
static unsigned max_unavailable(const vp_spec *s)
{
	const vp_spec_rollout *r = &s->rollout;
	unsigned n = r->max_unavailable_percent
			     ? (unsigned)(((uint64_t)s->clones.count * r->max_unavailable + 99) / 100)
			     : r->max_unavailable;

	return n ? n : 1;
}

int vp_pool_plan(vp_pool *p, long want_count, vp_plan **out)
{
	vp_desired d = {
		.pool = p->spec->pool,
		.base_ref = p->base_ref,
		.spec_hash = p->spec_hash,
		.start = p->spec->domain.start,
		.data_disk = p->spec->data_disk.size != 0,
		.count = want_count < 0 ? p->nwant : (size_t)want_count,
		.clones = p->want,
		.delta_bytes = delta_cost(p),
		.data_bytes = data_cost(p),
		.base_bytes = p->base_resolved ? p->base.allocated : 0,
		.max_unavailable = max_unavailable(p->spec),
	};
	vp_observed o = { p->nobs, p->obs };
	int rc;

	if (d.count > p->nwant)
		d.count = p->nwant;
	rc = vp_plan_build(out, &d, &o);
	if (rc == 0 && want_count == 0)
		for (size_t i = 0; i < (*out)->count; i++)
			(*out)->items[i].reason = "destroy";
	return rc;
}

void vp_pool_plan_purge_data(vp_plan *plan)
{
	for (size_t i = 0; i < plan->count; i++) {
		vp_plan_item *it = &plan->items[i];
		if (it->change == VP_CHANGE_REMOVE && it->keeps_data) {
			it->steps |= VP_STEP_DELETE_DATA;
			it->keeps_data = false;
		}
	}
}

static const vp_observed_clone *find_obs(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->obs_by_name, name);
}

int vp_pool_plan_reset(vp_pool *p, const char *const *names, size_t n, vp_plan **out)
{
	vp_plan *plan = calloc(1, sizeof(*plan));

	*out = NULL;
	if (!plan || !(plan->items = calloc(n + 1, sizeof(*plan->items)))) {
		vp_plan_free(plan);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const vp_observed_clone *o = find_obs(p, names[i]);
		vp_plan_item *it = &plan->items[i];

		if (!o || !(o->flags & VP_OBS_OURS) || strcmp(o->pool, p->spec->pool)) {
			vp_plan_free(plan);
			return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is not a clone of pool '%s'",
					    names[i], p->spec->pool);
		}
		it->name = o->name;
		it->index = o->index;
		it->change = VP_CHANGE_REPAIR;
		it->reason = "reset: fresh delta";
		it->steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE;
		if (o->flags & VP_OBS_RUNNING)
			it->steps |= VP_STEP_STOP | VP_STEP_START;
		plan->counts[it->change]++;
	}
	plan->count = n;
	p->reset_mode = true;
	*out = plan;
	return 0;
}

/* ---- execution ----------------------------------------------------------------- */

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

static const vp_virt_domain *dom_of(const vp_pool *p, const char *name)
{
	return vp_strmap_get(&p->dom_by_name, name);
}

/* The version part of "name@version". */
static const char *version_of(const char *ref)
{
	const char *at = ref ? strrchr(ref, '@') : NULL;

	return at ? at + 1 : NULL;
}

static int define_domain(vp_pool *p, const vp_plan_item *it)
{
	const vp_virt_domain *old = dom_of(p, it->name);
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

/* The executor's context: the pool for the steps, the caller's progress callback. */
typedef struct apply_ctx {
	vp_pool *pool;
	const vp_apply_opts *opts;
} apply_ctx;

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
static int run_wave(const vp_plan *plan, unsigned wave, const vp_exec_ops *ops, apply_ctx *ctx,
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

/* Runs the spec's health command for one clone until it passes or time is up. */
static int health_check(vp_pool *p, const vp_plan_item *it, const char *uuid, unsigned wave)
{
	const vp_spec_health *h = &p->spec->rollout.health;
	double deadline = vp_now() + h->timeout_sec;
	char env_clone[128], env_uuid[64], env_pool[128], env_wave[32];
	const char *env[] = { env_clone, env_uuid, env_pool, env_wave, NULL };
	char last[256] = "";

	snprintf(env_clone, sizeof(env_clone), "VDIPOOL_CLONE=%s", it->name);
	snprintf(env_uuid, sizeof(env_uuid), "VDIPOOL_UUID=%s", uuid);
	snprintf(env_pool, sizeof(env_pool), "VDIPOOL_POOL=%s", p->spec->pool);
	snprintf(env_wave, sizeof(env_wave), "VDIPOOL_WAVE=%u", wave);
	for (;;) {
		vp_run_opts ro = { .env = env, .timeout = deadline - vp_now() };
		vp_run_result res;
		bool ok;

		if (ro.timeout < 0.1)
			ro.timeout = 0.1;
		if (vp_run((const char *const *)h->argv, &ro, &res) < 0)
			return VP_EIO;
		ok = !res.signal && res.exit_code == 0;
		if (!ok)
			snprintf(last, sizeof(last), "%s", res.signal ? "killed (timeout)" : vp_buf_cstr(&res.err));
		vp_run_result_release(&res);
		if (ok)
			return 0;
		if (vp_now() + 1 >= deadline) {
			size_t n = strlen(last);
			while (n && last[n - 1] == '\n')
				last[--n] = '\0';
			return vp_error_set(VP_ERR_EXEC, VP_EIO,
					    "health check of clone '%s' did not pass within %us%s%s", it->name,
					    h->timeout_sec, *last ? ": " : "", last);
		}
		sleep(1);
	}
}

/* After a wave: clones that should run do, and the health command passes. */
static int health_gate(vp_pool *p, const vp_plan *plan, unsigned wave)
{
	for (size_t i = 0; i < plan->count; i++) {
		const vp_plan_item *it = &plan->items[i];
		vp_virt_domain d;
		int rc;

		if (it->wave != wave)
			continue;
		if ((rc = vp_virt_lookup(p->virt, it->name, &d)) < 0)
			return rc;
		rc = p->spec->domain.start && d.state != VP_DOM_RUNNING
			     ? vp_error_set(VP_ERR_EXEC, VP_EIO, "clone '%s' is not running", it->name)
			     : 0;
		if (rc == 0 && p->spec->rollout.health.argc)
			rc = health_check(p, it, d.uuid, wave);
		vp_virt_domain_release(&d);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int rollout(vp_pool *p, const vp_plan *plan, const vp_apply_opts *opts, const vp_exec_ops *ops,
		   apply_ctx *ctx, const vp_exec_opts *eo, vp_exec_result *res)
{
	for (unsigned w = 1; w <= plan->waves; w++) {
		int rc;

		if (opts && opts->wave)
			opts->wave(opts->progress_ctx, plan, w, false);
		if ((rc = run_wave(plan, w, ops, ctx, eo, res)) < 0) {
			vp_error_prefix("rollout stopped in wave %u of %u (later waves untouched; the next "
					"apply continues)", w, plan->waves);
			return rc;
		}
		if ((rc = health_gate(p, plan, w)) < 0) {
			vp_error_prefix("rollout stopped: health gate after wave %u of %u failed (later waves "
					"untouched; the next apply continues)", w, plan->waves);
			snprintf(res->first_error, sizeof(res->first_error), "%s", vp_error_last()->message);
			return rc;
		}
		if (opts && opts->wave)
			opts->wave(opts->progress_ctx, plan, w, true);
	}
	return 0;
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
	if ((rc = run_wave(plan, 0, &ops, &ctx, &eo, res)) < 0)
		return rc;
	return rollout(p, plan, opts, &ops, &ctx, &eo, res);
}

/* ---- status ---------------------------------------------------------------------- */

static const char *state_name(const vp_observed_clone *o, const vp_pool *p)
{
	if (!o || !(o->flags & (VP_OBS_DOMAIN | VP_OBS_DELTA)))
		return "missing";
	if ((o->flags & VP_OBS_DOMAIN) && !((o->flags & VP_OBS_OURS) && !strcmp(o->pool, p->spec->pool)))
		return "conflict";
	if (!(o->flags & VP_OBS_DOMAIN))
		return "no domain";
	if (!(o->flags & VP_OBS_DELTA))
		return "no delta";
	return (o->flags & VP_OBS_RUNNING) ? "running" : "shut off";
}

static void fill_clone(const vp_pool *p, const char *name, vp_clone_status *c)
{
	const vp_observed_clone *o = find_obs(p, name);
	const vp_virt_domain *d = dom_of(p, name);
	const disk_entry *delta = vp_strmap_get(&p->delta_by_name, name);
	vp_qcow2_chain chain = { 0 };

	snprintf(c->name, sizeof(c->name), "%s", name);
	c->host = p->spec->hosts[0].name;
	c->state = state_name(o, p);
	if (d && d->state == VP_DOM_PAUSED && !strcmp(c->state, "running"))
		c->state = "paused";
	if (d && d->has_meta)
		snprintf(c->base, sizeof(c->base), "%s@%s", d->meta.base_name ? d->meta.base_name : "?",
			 d->meta.base_version ? d->meta.base_version : "?");
	if (delta) {
		c->delta_bytes = delta->allocated;
		if (vp_qcow2_read_chain(&chain, delta->location) == 0)
			c->chain_depth = (unsigned)chain.depth;
		vp_qcow2_chain_release(&chain);
		vp_error_clear();
	}
	if (o && (o->flags & VP_OBS_DATA)) {
		c->has_data = true;
		c->data_bytes = o->data_bytes;
	}
}

int vp_pool_status_get(vp_pool *p, vp_pool_status **out)
{
	vp_pool_status *st = calloc(1, sizeof(*st));
	vp_strmap wanted = VP_STRMAP_INIT;
	size_t n = 0;

	*out = NULL;
	if (!st || !(st->clones = calloc(p->nwant + p->nobs + 1, sizeof(*st->clones))))
		goto nomem;
	for (size_t i = 0; i < p->nwant; i++) {
		if (vp_strmap_put(&wanted, p->want[i].name, &p->want[i]) < 0)
			goto nomem;
		fill_clone(p, p->want[i].name, &st->clones[n++]);
	}
	for (size_t i = 0; i < p->nobs; i++) {
		const vp_observed_clone *o = &p->obs[i];
		bool ours = (o->flags & VP_OBS_OURS) ? !strcmp(o->pool, p->spec->pool) : (o->flags & VP_OBS_DELTA);
		if (ours && !vp_strmap_get(&wanted, o->name))
			fill_clone(p, o->name, &st->clones[n++]);
	}
	st->count = n;
	for (size_t i = 0; i < n; i++) {
		const vp_clone_status *c = &st->clones[i];
		if (!strcmp(c->state, "running") || !strcmp(c->state, "paused"))
			st->running++;
		else if (!strcmp(c->state, "shut off"))
			st->stopped++;
		else if (!strcmp(c->state, "missing"))
			st->missing++;
		else
			st->other++;
		st->delta_bytes += c->delta_bytes + c->data_bytes;
	}
	if (p->base_resolved) {
		st->base_bytes = p->base.allocated;
		st->full_copy_bytes = (uint64_t)(n - st->missing) * p->base.allocated;
	}
	vp_strmap_release(&wanted);
	*out = st;
	return 0;
nomem:
	vp_strmap_release(&wanted);
	vp_pool_status_free(st);
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

void vp_pool_status_free(vp_pool_status *st)
{
	if (!st)
		return;
	free(st->clones);
	free(st);
}
