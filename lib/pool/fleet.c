/* fleet.c: a pool over every host of its spec. Each host is a member pool (pool.c's engine on
 * that host's libvirt and store); the fleet decides which clones exist and where (placement.h),
 * ships the base to hosts that lack it, and runs the members in parallel, one host's trouble
 * never stopping the others. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool/fleet_int.h"
#include "pool/pool_int.h"
#include "util/fs.h"
#include "vdipool/fleet.h"
#include "vdipool/ssh.h"

/* ---- small helpers ------------------------------------------------------------ */

static void host_error(vp_fleet_host *h, const char *what)
{
	fleet_host_error(h, what);
}

void fleet_host_error(vp_fleet_host *h, const char *what)
{
	snprintf(h->error, sizeof(h->error), "%s%s%s", what ? what : "", what && *what ? ": " : "",
		 vp_error_last()->message);
}

static int nomem(void)
{
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

/* Runs fn(f, i) for each i < n on up to `width` threads; fn records its own errors. */
typedef void (*host_fn)(vp_fleet *f, size_t i, void *arg);

struct pool_run {
	vp_fleet *f;
	host_fn fn;
	void *arg;
	size_t n, next;
	const bool *which;
	pthread_mutex_t m;
};

static void *pool_worker(void *a)
{
	struct pool_run *r = a;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&r->m);
		while (r->next < r->n && r->which && !r->which[r->next])
			r->next++;
		i = r->next++;
		pthread_mutex_unlock(&r->m);
		if (i >= r->n)
			return NULL;
		r->fn(r->f, i, r->arg);
	}
}

static void run_hosts(vp_fleet *f, host_fn fn, void *arg, size_t width, const bool *which)
{
	struct pool_run r = { .f = f, .fn = fn, .arg = arg, .n = f->n, .which = which };
	pthread_t t[64];
	size_t nt = 0;

	if (width > 64)
		width = 64;
	if (width > f->n)
		width = f->n;
	pthread_mutex_init(&r.m, NULL);
	/* One host: no thread, so single-host pools run exactly as before. */
	if (width <= 1) {
		pool_worker(&r);
	} else {
		for (size_t i = 0; i < width; i++)
			if (pthread_create(&t[nt], NULL, pool_worker, &r) == 0)
				nt++;
		if (!nt)
			pool_worker(&r);
		for (size_t i = 0; i < nt; i++)
			pthread_join(t[i], NULL);
	}
	pthread_mutex_destroy(&r.m);
}

/* ---- open ----------------------------------------------------------------------- */

static void open_one(vp_fleet *f, size_t i, void *arg)
{
	vp_fleet_host *h = &f->hosts[i];
	int rc;

	(void)arg;
	if ((rc = pool_open_host(&h->pool, f->spec, i)) < 0) {
		host_error(h, NULL);
		h->reachable = false;
		return;
	}
	h->pool->fleet_locked = true;
	h->reachable = true;
}

static int open_src(vp_fleet *f)
{
	return pool_base_store_open(&f->src, f->spec);
}

int vp_fleet_open(vp_fleet **out, const vp_spec *spec)
{
	vp_fleet *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f)
		return nomem();
	f->spec = spec;
	f->lock_fd = -1;
	f->n = spec->host_count;
	f->hosts = calloc(f->n, sizeof(*f->hosts));
	f->rcs = calloc(f->n, sizeof(*f->rcs));
	if (!f->hosts || !f->rcs) {
		free(f->rcs);
		free(f);
		return nomem();
	}
	for (size_t i = 0; i < f->n; i++) {
		f->hosts[i].name = spec->hosts[i].name;
		f->hosts[i].uri = spec->hosts[i].uri;
		f->hosts[i].remote = pool_host_is_remote(&spec->hosts[i]);
	}
	/* A remote-only fleet still imports bases here, on the controller. */
	if ((rc = open_src(f)) < 0) {
		vp_error_prefix("pool '%s': the controller's base store", spec->pool);
		vp_fleet_free(f);
		return rc;
	}
	run_hosts(f, open_one, NULL, f->n, NULL);
	/* One host that cannot be opened is the pool's own failure, as it always was. */
	if (f->n == 1 && !f->hosts[0].reachable) {
		rc = vp_error_last()->code ? vp_error_last()->code : VP_EIO;
		vp_error_set(vp_error_last()->klass, rc, "%s", f->hosts[0].error);
		vp_fleet_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

static void clear_plans(vp_fleet *f)
{
	for (size_t i = 0; i < f->n; i++) {
		vp_plan_free(f->hosts[i].plan);
		f->hosts[i].plan = NULL;
	}
}

static void clear_placement(vp_fleet *f)
{
	vp_placement_free(f->placement);
	f->placement = NULL;
	vp_placement_moves_free(f->moves);
	f->moves = NULL;
	free(f->phosts);
	free(f->pclones);
	f->phosts = NULL;
	f->pclones = NULL;
	f->npclones = 0;
	free(f->clones);
	f->clones = NULL;
	f->nclones = f->capclones = 0;
}

void vp_fleet_free(vp_fleet *f)
{
	if (!f)
		return;
	clear_plans(f);
	clear_placement(f);
	for (size_t i = 0; i < f->n; i++)
		vp_pool_free(f->hosts[i].pool);
	free(f->hosts);
	free(f->rcs);
	vp_store_free(f->src);
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	free(f);
}

static char *record_path(const vp_fleet *f);
static char *canary_path(const vp_fleet *f);

int vp_fleet_lock(vp_fleet *f, bool wait)
{
	int rc;

	if (f->lock_fd < 0 && (rc = pool_lock_file(f->spec, wait, &f->lock_fd)) < 0)
		return rc;
	/* Under the pool's lock: what killed applies left of their writes of its records. */
	{
		VP_AUTOFREE char *rec = record_path(f), *can = canary_path(f);
		if (rec)
			vp_fs_sweep_tmp(rec);
		if (can)
			vp_fs_sweep_tmp(can);
	}
	for (size_t i = 0; i < f->n; i++) {
		vp_fleet_host *h = &f->hosts[i];

		if (h->reachable && (rc = vp_pool_lock(h->pool, wait)) < 0) {
			/* A store another command holds is this host's trouble, not the pool's. */
			if (f->n == 1)
				return rc;
			host_error(h, "cannot lock its store");
			h->reachable = false;
		}
	}
	return 0;
}

void vp_fleet_unlock_pool(vp_fleet *f)
{
	if (f->lock_fd >= 0)
		close(f->lock_fd);
	f->lock_fd = -1;
}

size_t vp_fleet_host_count(const vp_fleet *f) { return f->n; }
const vp_fleet_host *vp_fleet_host_at(const vp_fleet *f, size_t i) { return i < f->n ? &f->hosts[i] : NULL; }
const char *vp_fleet_base_ref(const vp_fleet *f) { return f->base_ref; }
vp_placement_policy vp_fleet_policy(const vp_fleet *f) { return (vp_placement_policy)f->spec->placement.policy; }

void vp_fleet_set_push_progress(vp_fleet *f, void (*fn)(void *, const char *, uint64_t, uint64_t), void *ctx)
{
	f->push_progress = fn;
	f->push_ctx = ctx;
}

size_t vp_fleet_unreachable(const vp_fleet *f)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		n += !f->hosts[i].reachable;
	return n;
}

/* ---- the placement record --------------------------------------------------------
 * Where each clone was placed, kept on the controller beside its bases: a clone on a host that
 * cannot be reached now is still known (and still counts), and a clone placed by an apply that
 * was cut before it made the clone gets the same host next time. */

static char *record_path(const vp_fleet *f)
{
	return vp_strdup_printf("%s/placement/%s.hosts", f->spec->storage.state_dir, f->spec->pool);
}

static long host_by_name(const vp_fleet *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->hosts[i].name, name))
			return (long)i;
	return -1;
}

static fleet_clone *clone_get(vp_fleet *f, const char *name)
{
	return fleet_clone_get(f, name);
}

fleet_clone *fleet_clone_get(vp_fleet *f, const char *name)
{
	for (size_t i = 0; i < f->nclones; i++)
		if (!strcmp(f->clones[i].name, name))
			return &f->clones[i];
	return NULL;
}

static fleet_clone *clone_add(vp_fleet *f, const char *name, unsigned index, long host)
{
	fleet_clone *c;

	if (f->nclones == f->capclones) {
		size_t cap = f->capclones ? f->capclones * 2 : 64;
		fleet_clone *n = realloc(f->clones, cap * sizeof(*n));

		if (!n)
			return NULL;
		f->clones = n;
		f->capclones = cap;
	}
	c = &f->clones[f->nclones++];
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->index = index;
	c->host = host;
	c->from = -1;
	return c;
}

/* Clones the record puts on hosts: those on unreachable hosts are kept there (they exist, we
 * just cannot see them); the others are hints for clones not made yet. */
static int read_record(vp_fleet *f)
{
	VP_AUTOFREE char *path = record_path(f);
	char *text = NULL, *line, *save = NULL;
	size_t len;
	int rc;

	if (!path)
		return nomem();
	if (!vp_fs_exists(path))
		return 0;
	if ((rc = vp_fs_read_all(path, 64u << 20, &text, &len)) < 0)
		return rc;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64], host[VP_PLUGIN_NAME_MAX], from[VP_PLUGIN_NAME_MAX + 5] = "";
		unsigned index;
		long h;
		fleet_clone *c;

		if (sscanf(line, "%63s %u %71s %76s", name, &index, host, from) < 3)
			continue;
		if ((h = host_by_name(f, host)) < 0)
			continue; /* a host gone from the spec: its clones are not this pool's business now */
		if (!(c = clone_get(f, name))) {
			if (!(c = clone_add(f, name, index, h))) {
				free(text);
				return nomem();
			}
			c->recorded = true;
		} else if (c->host < 0) {
			c->host = h;
		}
		/* A move in progress: where its data disk still is. */
		if (!strncmp(from, "from=", 5))
			c->from = host_by_name(f, from + 5);
	}
	free(text);
	return 0;
}

static int write_record(vp_fleet *f, bool after)
{
	return fleet_write_record(f, after);
}

int fleet_write_record(vp_fleet *f, bool after)
{
	VP_AUTOFREE char *path = record_path(f);
	VP_AUTOFREE char *dir = vp_strdup_printf("%s/placement", f->spec->storage.state_dir);
	vp_buf b = VP_BUF_INIT;
	size_t n = 0;
	int rc;

	if (!path || !dir)
		return nomem();
	vp_buf_puts(&b, "# vdipool placement record: clone index host (written by apply)\n");
	for (size_t i = 0; i < f->nclones; i++) {
		const fleet_clone *c = &f->clones[i];
		const vp_fleet_host *h = c->host >= 0 ? &f->hosts[c->host] : NULL;

		/* After a successful apply a removed clone is gone, except where its host failed
		 * or could not be reached: then it may still be there. */
		if (!h || (c->remove && after && h->reachable && !h->failed && !h->error[0]))
			continue;
		vp_buf_printf(&b, "%s %u %s%s%s\n", c->name, c->index, h->name, c->from >= 0 ? " from=" : "",
			      c->from >= 0 ? f->hosts[c->from].name : "");
		n++;
	}
	/* What a killed apply left of its own write of this record. */
	vp_fs_sweep_tmp(path);
	if (!n && after) {
		vp_buf_release(&b);
		if (unlink(path) < 0 && errno != ENOENT)
			return vp_error_set_os(errno, "cannot remove '%s'", path);
		return 0;
	}
	if ((rc = vp_fs_mkdir_p(dir, 0700)) == 0)
		rc = vp_fs_write_atomic(path, vp_buf_cstr(&b), strlen(vp_buf_cstr(&b)), 0600);
	vp_buf_release(&b);
	if (rc < 0)
		vp_error_prefix("pool '%s': cannot write the placement record", f->spec->pool);
	return rc;
}

/* ---- inventory ---------------------------------------------------------------------- */

static void list_one(vp_fleet *f, size_t i, void *arg)
{
	vp_fleet_host *h = &f->hosts[i];

	(void)arg;
	if (!h->reachable)
		return;
	if (pool_inventory_list(h->pool) < 0) {
		host_error(h, "cannot list it");
		h->reachable = false;
	}
}

struct seen_ctx {
	vp_fleet *f;
	long host;
	int rc;
};

static int saw_clone(void *ctx, const char *name, unsigned index, const char *meta_host)
{
	struct seen_ctx *s = ctx;
	fleet_clone *c = clone_get(s->f, name);

	(void)meta_host;
	if (c && c->seen && c->host != s->host)
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "pool '%s': clone '%s' exists on host '%s' and on host '%s'; remove "
				    "the copy that should not be there (vdipool never picks one for you)",
				    s->f->spec->pool, name, s->f->hosts[c->host].name,
				    s->f->hosts[s->host].name);
	if (!c && !(c = clone_add(s->f, name, index, s->host)))
		return nomem();
	c->seen = true;
	c->recorded = false;
	c->host = s->host;
	if (!c->index)
		c->index = index;
	return 0;
}

/* A clone's index from its name, for clones found only by their disks. */
static unsigned index_from_name(const vp_fleet *f, const char *name, unsigned limit)
{
	char buf[64];

	for (unsigned i = f->spec->clones.start_index; i < f->spec->clones.start_index + limit; i++)
		if (vp_spec_clone_name(f->spec, i, buf, sizeof(buf)) == 0 && !strcmp(buf, name))
			return i;
	vp_error_clear();
	return 0;
}

static int capacity_of(vp_fleet *f, size_t i, vp_placement_host *ph)
{
	const vp_spec_host *sh = &f->spec->hosts[i];
	vp_fleet_host *h = &f->hosts[i];
	vp_virt_capacity cap;
	int rc;

	ph->name = h->name;
	ph->reachable = h->reachable;
	ph->cpu_overcommit_milli = sh->cpu_overcommit_milli;
	ph->memory_overcommit_milli = sh->memory_overcommit_milli;
	ph->max_clones = sh->max_clones;
	if (!h->reachable)
		return 0;
	if (f->n == 1) {
		/* One host: no choice to make; the spec's count is what the user asked of it. */
		ph->memory_bytes = UINT64_MAX / 4;
		ph->cpus = UINT32_MAX / 4096;
		return 0;
	}
	if ((rc = vp_virt_node_capacity(h->pool->virt, f->spec->pool, &cap)) < 0) {
		host_error(h, "cannot read its capacity");
		h->reachable = ph->reachable = false;
		return 0;
	}
	h->memory_bytes = ph->memory_bytes = cap.memory_bytes;
	h->cpus = ph->cpus = cap.cpus;
	ph->other_memory_bytes = cap.committed_memory_bytes;
	ph->other_vcpus = cap.committed_vcpus;
	return 0;
}

static int resolve_src_base(vp_fleet *f, bool need_base)
{
	const vp_spec_base *b = &f->spec->base;
	char ref[REF_MAX];
	int rc;

	f->base_ok = false;
	f->base_ref[0] = '\0';
	snprintf(ref, sizeof(ref), "%s@%s", b->name, b->version ? b->version : "latest");
	rc = vp_store_stat(f->src, ref, &f->base);
	if (rc == VP_ENOENT && !need_base) {
		vp_error_clear();
		return 0;
	}
	if (rc == VP_ENOENT)
		return vp_error_set(VP_ERR_STORE, VP_ENOENT,
				    "pool '%s': base '%s' is not in the store on tier '%s'; import it with "
				    "'vdipool base import %s FILE --version V'",
				    f->spec->pool, ref, f->spec->storage.bases->name, b->name);
	if (rc < 0) {
		vp_error_prefix("pool '%s'", f->spec->pool);
		return rc == VP_EINVAL ? VP_ECONFLICT : rc;
	}
	snprintf(f->base_ref, sizeof(f->base_ref), "%s@%s", f->base.name, f->base.version);
	f->base_ok = true;
	return 0;
}

/* The clones the pool keeps or makes: every existing one (scaling down removes from the
 * fullest host first), then new ones on the lowest free indexes up to the count. */
static bool clone_claimed(const vp_fleet *f, const fleet_clone *c)
{
	const vp_virt_domain *d;

	if (c->host < 0 || !f->hosts[c->host].reachable || !f->hosts[c->host].pool)
		return false;
	d = pool_dom_of(f->hosts[c->host].pool, c->name);
	return d && d->has_meta && d->meta.claimed_by;
}

static int choose_clones(vp_fleet *f, size_t want)
{
	size_t existing = f->nclones, keep = existing;
	const char **out = NULL;
	size_t nout = 0;
	int rc;

	if (existing > want) {
		vp_placement_clone *pc = calloc(existing + 1, sizeof(*pc));
		vp_placement_input in = { vp_fleet_policy(f), f->n, f->phosts, 0, pc };
		size_t surplus = existing - want;

		if (!pc)
			return nomem();
		/* A claimed clone is never picked to go: the surplus comes from the unclaimed ones. */
		for (size_t i = 0; i < existing; i++)
			if (!clone_claimed(f, &f->clones[i]))
				pc[in.clone_count++] = (vp_placement_clone){
					f->clones[i].name, f->clones[i].index, f->spec->domain.memory_bytes,
					f->spec->domain.vcpus,
					f->clones[i].host >= 0 ? f->hosts[f->clones[i].host].name : NULL
				};
		if (surplus > in.clone_count)
			surplus = in.clone_count;
		rc = vp_placement_surplus(&out, &nout, &in, surplus);
		for (size_t i = 0; rc == 0 && i < nout; i++)
			clone_get(f, out[i])->remove = true;
		free(out);
		free(pc);
		if (rc < 0)
			return rc;
		keep = existing - nout;
	}
	for (unsigned idx = f->spec->clones.start_index; keep < want; idx++) {
		char name[64];

		if ((rc = vp_spec_clone_name(f->spec, idx, name, sizeof(name))) < 0)
			return rc;
		if (clone_get(f, name))
			continue;
		if (!clone_add(f, name, idx, -1))
			return nomem();
		keep++;
	}
	return 0;
}

static int place(vp_fleet *f)
{
	vp_placement_input in;
	size_t n = 0;
	int rc;

	f->pclones = calloc(f->nclones + 1, sizeof(*f->pclones));
	if (!f->pclones)
		return nomem();
	for (size_t i = 0; i < f->nclones; i++) {
		const fleet_clone *c = &f->clones[i];

		if (c->remove)
			continue;
		f->pclones[n++] = (vp_placement_clone){ c->name, c->index, f->spec->domain.memory_bytes,
							f->spec->domain.vcpus,
							c->host >= 0 ? f->hosts[c->host].name : NULL };
	}
	f->npclones = n;
	in = (vp_placement_input){ vp_fleet_policy(f), f->n, f->phosts, n, f->pclones };
	if ((rc = vp_placement_compute(&f->placement, &in)) < 0)
		return rc;
	for (size_t i = 0; i < f->placement->count; i++) {
		const vp_placement_assignment *a = &f->placement->clones[i];
		fleet_clone *c = clone_get(f, a->clone);

		if (a->status == VP_PLACED_NEW && c)
			c->host = (long)a->host;
	}
	for (size_t i = 0; i < f->n; i++)
		f->hosts[i].over_capacity = f->placement->hosts[i].over_capacity;
	return 0;
}

static int clone_order(const void *a, const void *b)
{
	const fleet_clone *x = a, *y = b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The clones placed on host i (not those being removed), in the fleet's order. */
static size_t want_of(vp_fleet *f, size_t i, vp_desired_clone *want)
{
	vp_fleet_host *h = &f->hosts[i];
	size_t n = 0;

	h->clones = h->new_clones = h->removed = 0;
	for (size_t k = 0; k < f->nclones; k++) {
		const fleet_clone *c = &f->clones[k];

		if (c->host != (long)i)
			continue;
		if (c->remove) {
			h->removed++;
			continue;
		}
		h->clones++;
		h->new_clones += !c->seen && !c->recorded;
		want[n++] = (vp_desired_clone){ .name = c->name, .index = c->index };
	}
	return n;
}

/* Gives reachable host i its clones: the base it should hold, then the merge. */
static int give(vp_fleet *f, size_t i, const vp_desired_clone *want, size_t n)
{
	vp_fleet_host *h = &f->hosts[i];
	int rc;

	h->base_present = false;
	if (f->base_ok && (rc = pool_adopt_base(h->pool, &f->base, &h->base_present)) < 0) {
		host_error(h, NULL);
		h->reachable = false;
		return rc;
	}
	if ((rc = pool_set_want(h->pool, want, n)) < 0) {
		host_error(h, "cannot read its clones");
		h->reachable = false;
	}
	return rc;
}

/* Each reachable host gets the clones placed on it, in index order (waves go by it). */
static int hand_out(vp_fleet *f)
{
	vp_desired_clone *want = calloc(f->nclones + 1, sizeof(*want));

	if (!want)
		return nomem();
	for (size_t i = 0; i < f->n; i++) {
		size_t n = want_of(f, i, want);

		if (f->hosts[i].reachable)
			give(f, i, want, n);
	}
	free(want);
	return 0;
}

int fleet_refresh_host(vp_fleet *f, size_t i)
{
	vp_desired_clone *want = calloc(f->nclones + 1, sizeof(*want));
	vp_fleet_host *h = &f->hosts[i];
	size_t n;
	int rc;

	if (!want)
		return nomem();
	n = want_of(f, i, want);
	if ((rc = pool_inventory_list(h->pool)) < 0)
		host_error(h, "cannot list it");
	else
		rc = give(f, i, want, n);
	free(want);
	return rc;
}

unsigned fleet_budget(const vp_fleet *f)
{
	const vp_spec_rollout *r = &f->spec->rollout;
	unsigned budget = r->max_unavailable_percent
				  ? (unsigned)(((uint64_t)f->spec->clones.count * r->max_unavailable + 99) / 100)
				  : r->max_unavailable;

	return budget ? budget : 1;
}

int fleet_ssh_connect(vp_fleet *f, size_t i, vp_ssh **out)
{
	const vp_spec_host *sh = &f->spec->hosts[i];
	vp_ssh_opts so = { 0 };
	char addr[256];
	const char *user;
	unsigned port;
	int rc;

	*out = NULL;
	if ((rc = pool_host_ssh_target(sh, addr, sizeof(addr), &port, &user)) < 0)
		return rc;
	so = (vp_ssh_opts){ .host = addr, .port = (int)port, .user = user,
			    .identity = sh->ssh.identity, .known_hosts = sh->ssh.known_hosts,
			    .compress = sh->ssh.compress };
	return vp_ssh_connect(out, &so);
}

size_t vp_fleet_wanted(const vp_fleet *f)
{
	return f->wanted;
}

int vp_fleet_inventory(vp_fleet *f, bool need_base, long want_count)
{
	size_t want = want_count < 0 ? f->spec->clones.count : (size_t)want_count;
	int rc;

	clear_plans(f);
	clear_placement(f);
	f->want_count = want_count;
	if ((rc = resolve_src_base(f, need_base)) < 0)
		return rc;
	run_hosts(f, list_one, NULL, f->n, NULL);
	if (f->n == 1 && !f->hosts[0].reachable)
		return vp_error_set(VP_ERR_VIRT, VP_EIO, "%s", f->hosts[0].error);
	if (want_count < 0 && f->spec->clones.spares) {
		/* clones.spares: unclaimed clones kept beside the claimed ones, at least clones.count. */
		size_t claimed = 0;

		for (size_t i = 0; i < f->n; i++)
			if (f->hosts[i].reachable)
				claimed += pool_count_claimed(f->hosts[i].pool);
		if (claimed + f->spec->clones.spares > want)
			want = claimed + f->spec->clones.spares;
	}
	f->wanted = want;
	for (size_t i = 0; i < f->n; i++) {
		struct seen_ctx s = { f, (long)i, 0 };

		if (f->hosts[i].reachable && (rc = pool_each_existing(f->hosts[i].pool, saw_clone, &s)) < 0)
			return rc;
	}
	/* Clones on hosts that cannot be reached now: the record knows them. */
	if ((rc = read_record(f)) < 0)
		return rc;
	for (size_t i = 0; i < f->nclones; i++) {
		fleet_clone *c = &f->clones[i];

		if (!c->index)
			c->index = index_from_name(f, c->name, (unsigned)(want + f->nclones + 1));
	}
	{
		/* Hints for reachable hosts are clones not made yet: they do not exist. */
		size_t k = 0;
		for (size_t i = 0; i < f->nclones; i++) {
			fleet_clone *c = &f->clones[i];
			if (c->recorded && f->hosts[c->host].reachable) {
				fleet_clone hint = *c;
				hint.recorded = false;
				f->clones[k++] = hint;
				continue;
			}
			f->clones[k++] = *c;
		}
	}
	f->phosts = calloc(f->n, sizeof(*f->phosts));
	if (!f->phosts)
		return nomem();
	for (size_t i = 0; i < f->n; i++)
		if ((rc = capacity_of(f, i, &f->phosts[i])) < 0)
			return rc;
	{
		/* Only clones that exist count against the wanted number; hints do not. */
		size_t existing = 0;
		fleet_clone *hints = calloc(f->nclones + 1, sizeof(*hints));
		size_t nh = 0;

		if (!hints)
			return nomem();
		for (size_t i = 0; i < f->nclones; i++) {
			if (f->clones[i].seen || f->clones[i].recorded)
				f->clones[existing++] = f->clones[i];
			else
				hints[nh++] = f->clones[i];
		}
		f->nclones = existing;
		rc = choose_clones(f, want);
		/* A new clone an earlier, cut apply placed keeps that host. */
		for (size_t i = 0; rc == 0 && i < nh; i++) {
			fleet_clone *c = clone_get(f, hints[i].name);
			if (c && !c->seen && !c->recorded && c->host < 0) {
				c->host = hints[i].host;
				c->from = hints[i].from;
			}
		}
		free(hints);
		if (rc < 0)
			return rc;
	}
	/* Placement borrows the names: sort first. */
	qsort(f->clones, f->nclones, sizeof(*f->clones), clone_order);
	if ((rc = place(f)) < 0)
		return rc;
	return hand_out(f);
}

/* ---- plan ------------------------------------------------------------------------------ */

static bool plan_uses_base(const vp_plan *plan)
{
	for (size_t i = 0; plan && i < plan->count; i++)
		if (plan->items[i].steps & (VP_STEP_CREATE_DELTA | VP_STEP_REBASE | VP_STEP_DEFINE))
			return true;
	return false;
}

/* ---- the canary -----------------------------------------------------------------------
 * A rollout to a new version with rollout.canary N starts with the N lowest-index clones that
 * move, over all hosts, as one wave behind the health gate. Its record (beside the placement
 * record) says which version it tried and when it passed; until then every apply rolls the
 * canary only. After it passed, the other clones wait for rollout.canary_pause (the next apply
 * after that goes on) or, with `manual`, for `vdipool rollout continue`. The record goes when no
 * clone is left to move. */

typedef struct canary_rec {
	bool present;
	char version[REF_MAX];
	long long healthy;  /* when the canary passed (epoch seconds); 0: not yet */
	bool cont;          /* `rollout continue` said go on */
} canary_rec;

static char *canary_path(const vp_fleet *f)
{
	return vp_strdup_printf("%s/placement/%s.canary", f->spec->storage.state_dir, f->spec->pool);
}

static int canary_read(vp_fleet *f, canary_rec *r)
{
	VP_AUTOFREE char *path = canary_path(f);
	char *text = NULL;
	const char *v;
	size_t len;
	int rc, cont = 0;

	memset(r, 0, sizeof(*r));
	if (!path)
		return nomem();
	if (!vp_fs_exists(path))
		return 0;
	if ((rc = vp_fs_read_all(path, 4096, &text, &len)) < 0)
		return rc;
	if (!(v = strstr(text, "version=")) || sscanf(v, "version=%159s", r->version) != 1) {
		free(text);
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT, "pool '%s': the canary record '%s' is damaged; "
				    "remove it to start the canary again", f->spec->pool, path);
	}
	if ((v = strstr(text, "healthy=")))
		sscanf(v, "healthy=%lld", &r->healthy);
	if ((v = strstr(text, "continue=")))
		sscanf(v, "continue=%d", &cont);
	r->cont = cont != 0;
	r->present = true;
	free(text);
	return 0;
}

static int canary_write(vp_fleet *f, const canary_rec *r)
{
	VP_AUTOFREE char *path = canary_path(f);
	VP_AUTOFREE char *dir = vp_strdup_printf("%s/placement", f->spec->storage.state_dir);
	char text[512];
	int rc;

	if (!path || !dir)
		return nomem();
	vp_fs_sweep_tmp(path);
	if (!r->present) {
		if (unlink(path) < 0 && errno != ENOENT)
			return vp_error_set_os(errno, "cannot remove '%s'", path);
		return 0;
	}
	snprintf(text, sizeof(text), "vdipool-canary=1\nversion=%s\nhealthy=%lld\ncontinue=%d\n", r->version,
		 r->healthy, r->cont ? 1 : 0);
	if ((rc = vp_fs_mkdir_p(dir, 0700)) == 0)
		rc = vp_fs_write_atomic(path, text, strlen(text), 0600);
	return rc;
}

struct canary_pick {
	vp_plan_item *it;
	size_t host;
};

static int by_index(const void *a, const void *b)
{
	const struct canary_pick *x = a, *y = b;

	if (x->it->index != y->it->index)
		return x->it->index < y->it->index ? -1 : 1;
	return strcmp(x->it->name, y->it->name);
}

/* Takes a rollout item out of this run: it waits for the canary. */
static void hold(vp_plan_item *it)
{
	it->steps = 0;
	it->wave = 0;
	it->change = VP_CHANGE_NONE;
	it->reason = "waits for the canary";
}

static void recount(vp_plan *plan)
{
	memset(plan->counts, 0, sizeof(plan->counts));
	plan->waves = 0;
	for (size_t i = 0; i < plan->count; i++) {
		plan->counts[plan->items[i].change]++;
		if (plan->items[i].wave > plan->waves)
			plan->waves = plan->items[i].wave;
	}
}

static int canary_filter(vp_fleet *f)
{
	unsigned n = f->spec->rollout.canary;
	struct canary_pick *picks;
	size_t np = 0, moving = 0, waiting = 0;
	canary_rec r;
	int rc;

	f->canary_phase = f->canary_waiting = false;
	f->note[0] = '\0';
	if (!n || f->want_count == 0 || !f->base_ok)
		return 0;
	if ((rc = canary_read(f, &r)) < 0)
		return rc;
	for (size_t i = 0; i < f->n; i++)
		for (size_t k = 0; f->hosts[i].plan && k < f->hosts[i].plan->count; k++)
			np += f->hosts[i].plan->items[k].wave > 0;
	if (!np)
		return 0; /* nothing to roll: a finished rollout's record goes at apply */
	if (r.present && !strcmp(r.version, f->base_ref) && r.healthy) {
		long long until = r.healthy + (long long)f->spec->rollout.canary_pause_sec;
		bool manual = f->spec->rollout.canary_pause_sec == VP_SPEC_PAUSE_MANUAL;

		if (r.cont || (!manual && (long long)time(NULL) >= until))
			return 0; /* the canary passed and its pause is over: the waves go on */
		f->canary_waiting = true;
		if (manual)
			snprintf(f->note, sizeof(f->note), "the canary on %s passed; %zu clone(s) wait for "
				 "'vdipool rollout continue'", f->base_ref, np);
		else
			snprintf(f->note, sizeof(f->note), "the canary on %s passed; %zu clone(s) wait until "
				 "its pause ends (%lld s more), then the next apply rolls them", f->base_ref, np,
				 until - (long long)time(NULL));
		for (size_t i = 0; i < f->n; i++) {
			for (size_t k = 0; f->hosts[i].plan && k < f->hosts[i].plan->count; k++)
				if (f->hosts[i].plan->items[k].wave > 0)
					hold(&f->hosts[i].plan->items[k]);
			if (f->hosts[i].plan)
				recount(f->hosts[i].plan);
		}
		return 0;
	}
	/* The canary is the lowest-index clones of the pool that take part in the rollout: those
	 * that move, and those already on the new version (a canary that moved but failed its gate
	 * is checked again, not replaced by the next clones). */
	{
		size_t cap = 0;

		for (size_t i = 0; i < f->n; i++)
			cap += f->hosts[i].plan ? f->hosts[i].plan->count : 0;
		if (!(picks = calloc(cap + 1, sizeof(*picks))))
			return nomem();
	}
	np = 0;
	for (size_t i = 0; i < f->n; i++)
		for (size_t k = 0; f->hosts[i].plan && k < f->hosts[i].plan->count; k++) {
			vp_plan_item *it = &f->hosts[i].plan->items[k];

			if (it->wave > 0 || it->change == VP_CHANGE_NONE)
				picks[np++] = (struct canary_pick){ it, i };
		}
	qsort(picks, np, sizeof(*picks), by_index);
	moving = 0;
	for (size_t k = 0; k < np; k++) {
		if (k < n) {
			moving += picks[k].it->wave > 0;
			picks[k].it->wave = 1; /* unchanged ones too: the gate checks them */
		} else if (picks[k].it->wave > 0) {
			hold(picks[k].it);
			waiting++;
		}
	}
	for (size_t i = 0; i < f->n; i++)
		if (f->hosts[i].plan)
			recount(f->hosts[i].plan);
	f->canary_phase = true;
	snprintf(f->note, sizeof(f->note), "canary: %zu clone(s) roll to %s first (%s%s), %zu wait",
		 moving, f->base_ref, picks[0].it->name, np > 1 && n > 1 ? ", ..." : "", waiting);
	free(picks);
	return 0;
}

const char *vp_fleet_rollout_note(const vp_fleet *f)
{
	return f->note[0] ? f->note : NULL;
}

int vp_fleet_rollout_continue(vp_fleet *f)
{
	canary_rec r;
	int rc;

	if ((rc = canary_read(f, &r)) < 0)
		return rc;
	if (!r.present || !r.healthy || strcmp(r.version, f->base_ref))
		return vp_error_set(VP_ERR_PLAN, VP_ENOENT,
				    "pool '%s': no canary is waiting%s%s (a rollout with rollout.canary "
				    "pauses after its canary passed)", f->spec->pool,
				    r.present ? ": the canary on " : "", r.present ? r.version : "");
	r.cont = true;
	return canary_write(f, &r);
}

/* After an apply: the canary's outcome, or the end of the rollout. */
static int canary_after(vp_fleet *f, const vp_fleet_result *res)
{
	canary_rec r;
	bool rolling = false;
	int rc;

	if (!f->spec->rollout.canary || f->want_count == 0 || !f->base_ok || f->reset_plan)
		return 0;
	if ((rc = canary_read(f, &r)) < 0)
		return rc;
	if (f->canary_phase) {
		r = (canary_rec){ .present = true };
		snprintf(r.version, sizeof(r.version), "%s", f->base_ref);
		/* A failed canary stays unpassed: the next apply tries the canary again. */
		r.healthy = res->exec.failed || res->hosts_failed ? 0 : (long long)time(NULL);
		return canary_write(f, &r);
	}
	if (f->canary_waiting)
		return 0;
	for (size_t i = 0; i < f->n; i++)
		rolling = rolling || f->hosts[i].error[0] || !f->hosts[i].reachable;
	/* The waves ran (or nothing was left to roll): done, unless a host still has work. */
	if (r.present && !rolling && !res->exec.failed) {
		r.present = false;
		return canary_write(f, &r);
	}
	return 0;
}

static void plan_one(vp_fleet *f, size_t i, void *arg)
{
	vp_fleet_host *h = &f->hosts[i];
	int *rcp = arg;
	int rc;

	if (!h->reachable)
		return;
	rc = f->rcs[i] = vp_pool_plan(h->pool, f->want_count == 0 ? 0 : -1, &h->plan);
	if (rc < 0) {
		host_error(h, NULL);
		if (f->n == 1)
			*rcp = rc;
		return;
	}
	h->push_bytes = h->remote && f->base_ok && !h->base_present && plan_uses_base(h->plan)
				? f->base.allocated
				: 0;
}

int vp_fleet_plan_reset(vp_fleet *f, const char *const *names, size_t n)
{
	const char **mine = calloc(n + 1, sizeof(*mine));
	vp_buf unknown = VP_BUF_INIT;
	int rc = 0;

	if (!mine)
		return nomem();
	clear_plans(f);
	f->reset_plan = true;
	f->canary_phase = f->canary_waiting = false;
	f->note[0] = '\0';
	if (f->n == 1) {
		/* One host: its own checks and messages. */
		free(mine);
		return f->rcs[0] = vp_pool_plan_reset(f->hosts[0].pool, names, n, &f->hosts[0].plan);
	}
	for (size_t i = 0; i < n; i++) {
		const fleet_clone *c = clone_get(f, names[i]);

		if (!c || c->host < 0 || c->remove || (!c->seen && !c->recorded))
			vp_buf_printf(&unknown, "%s'%s'", unknown.len ? ", " : "", names[i]);
		else if (!f->hosts[c->host].reachable)
			rc = vp_error_set(VP_ERR_PLAN, VP_EIO, "clone '%s' is on host '%s', which cannot be reached: %s",
					  names[i], f->hosts[c->host].name, f->hosts[c->host].error);
	}
	if (unknown.len)
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "%s %s not a clone of pool '%s'",
				  vp_buf_cstr(&unknown), strchr(vp_buf_cstr(&unknown), ',') ? "are" : "is",
				  f->spec->pool);
	vp_buf_release(&unknown);
	for (size_t i = 0; i < f->n && rc == 0; i++) {
		size_t k = 0;

		for (size_t j = 0; j < n; j++)
			if (clone_get(f, names[j])->host == (long)i)
				mine[k++] = names[j];
		if (k && (rc = f->rcs[i] = vp_pool_plan_reset(f->hosts[i].pool, mine, k, &f->hosts[i].plan)) < 0)
			vp_error_prefix("host '%s'", f->hosts[i].name);
	}
	free(mine);
	return rc;
}

int vp_fleet_plan(vp_fleet *f)
{
	int rc = 0;

	clear_plans(f);
	f->reset_plan = false;
	run_hosts(f, plan_one, &rc, f->n, NULL);
	if (rc < 0) {
		vp_error_set(VP_ERR_PLAN, rc, "%s", f->hosts[0].error);
		return rc;
	}
	return canary_filter(f);
}

void vp_fleet_plan_purge_data(vp_fleet *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->hosts[i].plan)
			vp_pool_plan_purge_data(f->hosts[i].plan);
}

bool vp_fleet_has_changes(const vp_fleet *f)
{
	/* A canary to check is work even when its clones moved already. */
	if (f->canary_phase)
		return true;
	for (size_t i = 0; i < f->n; i++)
		if (f->hosts[i].plan && (vp_plan_has_changes(f->hosts[i].plan) || f->hosts[i].push_bytes))
			return true;
	return false;
}

size_t vp_fleet_unplaced_count(const vp_fleet *f)
{
	return f->placement ? f->placement->unplaced : 0;
}

const char *vp_fleet_unplaced(const vp_fleet *f, size_t i, const char **why)
{
	size_t k = 0;

	for (size_t j = 0; f->placement && j < f->placement->count; j++) {
		const vp_placement_assignment *a = &f->placement->clones[j];

		if (a->status != VP_PLACED_NONE)
			continue;
		if (k++ == i) {
			if (why)
				*why = a->why;
			return a->clone;
		}
	}
	return NULL;
}

size_t vp_fleet_warning_count(const vp_fleet *f)
{
	return f->placement ? f->placement->warning_count : 0;
}

const char *vp_fleet_warning(const vp_fleet *f, size_t i)
{
	return f->placement && i < f->placement->warning_count ? f->placement->warnings[i] : NULL;
}

/* ---- apply ------------------------------------------------------------------------------ */

typedef struct push_state {
	vp_fleet *f;
	uint64_t sent;
	uint64_t resumed;
	pthread_mutex_t m;
	size_t failed;
} push_state;

struct push_bar {
	vp_fleet *f;
	const char *host;
};

static void push_progress(void *ctx, uint64_t done, uint64_t total)
{
	struct push_bar *b = ctx;

	b->f->push_progress(b->f->push_ctx, b->host, done, total);
}

int fleet_push_from_controller(vp_fleet *f, size_t i, const char *ref, vp_store_push_result *pr)
{
	struct push_bar bar = { f, f->hosts[i].name };
	vp_store_push_opts po = { 0 };
	char *bases = vp_strdup_printf("%s/bases", f->spec->storage.bases->path);
	vp_ssh *s = NULL;
	int rc;

	if (f->push_progress) {
		po.progress = push_progress;
		po.progress_ctx = &bar;
	}
	if (!bases)
		rc = nomem();
	else if ((rc = fleet_ssh_connect(f, i, &s)) == 0)
		rc = vp_store_push(f->src, ref, s, bases, &po, pr);
	free(bases);
	vp_ssh_free(s);
	return rc;
}

static void push_one(vp_fleet *f, size_t i, void *arg)
{
	push_state *ps = arg;
	vp_fleet_host *h = &f->hosts[i];
	vp_store_push_result pr;

	if (fleet_push_from_controller(f, i, f->base_ref, &pr) < 0) {
		host_error(h, "cannot push the base");
		pthread_mutex_lock(&ps->m);
		ps->failed++;
		pthread_mutex_unlock(&ps->m);
		return;
	}
	h->base_present = true;
	h->push_bytes = 0;
	pthread_mutex_lock(&ps->m);
	ps->sent += pr.already ? 0 : pr.xfer.sent;
	ps->resumed += pr.already ? 0 : pr.xfer.resumed;
	pthread_mutex_unlock(&ps->m);
}

int fleet_push_base(vp_fleet *f, size_t i)
{
	push_state ps = { .f = f };

	pthread_mutex_init(&ps.m, NULL);
	push_one(f, i, &ps);
	pthread_mutex_destroy(&ps.m);
	if (f->hosts[i].base_present)
		return 0;
	return vp_error_set(VP_ERR_SSH, VP_EIO, "host '%s': %s", f->hosts[i].name, f->hosts[i].error);
}

/* Progress over every host: the sum of the members' counts. */
typedef struct fleet_progress {
	const vp_apply_opts *opts;
	pthread_mutex_t m;
	size_t n, total;
	size_t *done;       /* per host */
} fleet_progress;

typedef struct member_ctx {
	fleet_progress *fp;
	size_t host;
} member_ctx;

static void member_progress(void *ctx, size_t done, size_t total, const vp_plan_item *it, int rc,
			    const char *msg)
{
	member_ctx *mc = ctx;
	fleet_progress *fp = mc->fp;
	size_t sum = 0;

	(void)total;
	pthread_mutex_lock(&fp->m);
	fp->done[mc->host] = done;
	for (size_t i = 0; i < fp->n; i++)
		sum += fp->done[i];
	fp->opts->progress(fp->opts->progress_ctx, sum, fp->total, it, rc, msg);
	pthread_mutex_unlock(&fp->m);
}

static void member_wave(void *ctx, const vp_plan *plan, unsigned wave, bool healthy)
{
	member_ctx *mc = ctx;
	fleet_progress *fp = mc->fp;

	pthread_mutex_lock(&fp->m);
	fp->opts->wave(fp->opts->progress_ctx, plan, wave, healthy);
	pthread_mutex_unlock(&fp->m);
}

typedef struct apply_state {
	const vp_apply_opts *opts;
	fleet_progress fp;
	member_ctx *mctx;
	vp_exec_result *res;  /* per host */
} apply_state;

static void apply_one(vp_fleet *f, size_t i, void *arg)
{
	apply_state *as = arg;
	vp_fleet_host *h = &f->hosts[i];
	vp_apply_opts o = as->opts ? *as->opts : (vp_apply_opts){ 0 };
	int rc;

	if (as->opts && as->opts->progress) {
		o.progress = member_progress;
		o.progress_ctx = &as->mctx[i];
	}
	if (as->opts && as->opts->wave) {
		o.wave = member_wave;
		o.progress_ctx = &as->mctx[i];
	}
	rc = f->rcs[i] = vp_pool_apply(h->pool, h->plan, &o, &as->res[i]);
	h->failed = as->res[i].failed;
	if (rc < 0)
		host_error(h, NULL);
	else if (as->res[i].failed)
		snprintf(h->error, sizeof(h->error), "%zu clone(s) failed, first: %.400s", as->res[i].failed,
			 as->res[i].first_error);
}

static size_t plan_steps(const vp_plan *plan)
{
	size_t n = 0;

	for (size_t i = 0; plan && i < plan->count; i++)
		n += plan->items[i].steps != 0;
	return n;
}

/* rollout.max_unavailable is the pool's: shared out among hosts by their clones (at least one
 * each). When there are more hosts than the budget, hosts go one after the other. */
static bool share_unavailable(vp_fleet *f, const bool *active, size_t nactive)
{
	size_t total = 0, sum = 0;
	unsigned budget = fleet_budget(f);

	for (size_t i = 0; i < f->n; i++)
		if (active[i])
			total += f->hosts[i].clones;
	if (nactive > budget || !total) {
		for (size_t i = 0; i < f->n; i++)
			if (active[i])
				f->hosts[i].pool->max_unavailable = budget;
		return false;
	}
	for (size_t i = 0; i < f->n; i++) {
		unsigned b;

		if (!active[i])
			continue;
		b = (unsigned)((uint64_t)budget * f->hosts[i].clones / total);
		f->hosts[i].pool->max_unavailable = b ? b : 1;
		sum += b ? b : 1;
	}
	/* The at-least-one rounding may overshoot: take back from the largest shares. */
	while (sum > budget) {
		size_t big = SIZE_MAX;
		for (size_t i = 0; i < f->n; i++)
			if (active[i] && f->hosts[i].pool->max_unavailable > 1 &&
			    (big == SIZE_MAX || f->hosts[i].pool->max_unavailable > f->hosts[big].pool->max_unavailable))
				big = i;
		if (big == SIZE_MAX)
			break;
		f->hosts[big].pool->max_unavailable--;
		sum--;
	}
	return true;
}

int vp_fleet_apply(vp_fleet *f, const vp_apply_opts *opts, vp_fleet_result *res)
{
	bool *need_push = calloc(f->n + 1, sizeof(bool)), *active = calloc(f->n + 1, sizeof(bool));
	apply_state as = { .opts = opts };
	push_state ps = { .f = f };
	size_t npush = 0, nactive = 0;
	bool parallel;
	int rc;

	memset(res, 0, sizeof(*res));
	as.mctx = calloc(f->n + 1, sizeof(*as.mctx));
	as.res = calloc(f->n + 1, sizeof(*as.res));
	as.fp.done = calloc(f->n + 1, sizeof(size_t));
	if (!need_push || !active || !as.mctx || !as.res || !as.fp.done) {
		rc = nomem();
		goto out;
	}
	/* Where every clone goes is on record before the first one is made. */
	if ((rc = write_record(f, false)) < 0)
		goto out;
	for (size_t i = 0; i < f->n; i++) {
		vp_fleet_host *h = &f->hosts[i];

		h->failed = 0;
		if (h->reachable && h->plan)
			h->error[0] = '\0';
		need_push[i] = h->reachable && h->plan && h->push_bytes;
		npush += need_push[i];
	}
	if (npush && f->spec->distribution.fanout) {
		/* Hosts that got it seed the others (fleet_push.c), in rounds. */
		if ((rc = fleet_push_fanout(f, need_push, &res->pushed_bytes)) < 0)
			goto out;
	} else if (npush) {
		pthread_mutex_init(&ps.m, NULL);
		run_hosts(f, push_one, &ps, f->spec->distribution.max_parallel_hosts, need_push);
		pthread_mutex_destroy(&ps.m);
		res->pushed_bytes = ps.sent;
		res->resumed_bytes = ps.resumed;
	}
	/* Clones an interrupted rebalance left without their data disk get it before anything
	 * makes them an empty one. */
	if ((rc = fleet_finish_moves(f)) < 0)
		goto out;
	for (size_t i = 0; i < f->n; i++) {
		vp_fleet_host *h = &f->hosts[i];

		/* A host the base did not reach gets none of its deltas. */
		active[i] = h->reachable && h->plan && !(need_push[i] && !h->base_present);
		nactive += active[i];
		as.mctx[i] = (member_ctx){ &as.fp, i };
		as.fp.total += active[i] ? plan_steps(h->plan) : 0;
	}
	as.fp.n = f->n;
	pthread_mutex_init(&as.fp.m, NULL);
	as.fp.opts = opts;
	parallel = share_unavailable(f, active, nactive);
	run_hosts(f, apply_one, &as, parallel ? f->n : 1, active);
	pthread_mutex_destroy(&as.fp.m);
	for (size_t i = 0; i < f->n; i++) {
		vp_fleet_host *h = &f->hosts[i];

		res->exec.done += as.res[i].done;
		res->exec.failed += as.res[i].failed;
		res->exec.skipped += as.res[i].skipped;
		if (!res->exec.first_error[0] && as.res[i].first_error[0])
			snprintf(res->exec.first_error, sizeof(res->exec.first_error), "%.64s: %.400s", h->name,
				 as.res[i].first_error);
		if ((h->reachable && h->plan && h->error[0]) || (need_push[i] && !h->base_present))
			res->hosts_failed++;
	}
	rc = fleet_moves_after(f);
	if (rc == 0)
		rc = write_record(f, true);
	if (rc == 0)
		rc = canary_after(f, res);
	/* One host: its failure is the apply's, as it always was. */
	if (rc == 0 && f->n == 1 && f->rcs[0] < 0) {
		rc = f->rcs[0];
		vp_error_set(VP_ERR_EXEC, rc, "%s", f->hosts[0].error);
	}
out:
	free(need_push);
	free(active);
	free(as.mctx);
	free(as.res);
	free(as.fp.done);
	return rc;
}
