/* pool.c: a pool's handle: its spec, its libvirt connection, its storage tiers, and the base it
 * resolves in the store. The rest of the pool subsystem works on this handle. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"

/* What a remote host's tiers are opened with: the ssh backend on the same paths, on the host. */
typedef struct host_params {
	vp_plugin_param kv[8];
	size_t n;
	char addr[256], port[12];
} host_params;

bool pool_host_is_remote(const vp_spec_host *h)
{
	return h->remote;
}

bool vp_pool_host_remote(const vp_spec *spec, size_t host)
{
	return host < spec->host_count && pool_host_is_remote(&spec->hosts[host]);
}

int pool_host_ssh_target(const vp_spec_host *h, char *addr, size_t len, unsigned *port, const char **user)
{
	*port = h->has_ssh ? h->ssh.port : 22;
	*user = h->has_ssh ? h->ssh.user : NULL;
	if (!h->ssh.host)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "host '%s': no address to reach its storage "
				    "over SSH (set ssh.host)", h->name);
	snprintf(addr, len, "%s", h->ssh.host);
	return 0;
}

static int remote_params(const vp_spec_host *h, host_params *hp)
{
	const char *user;
	unsigned port;
	int rc;

	if (!h->has_ssh)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "host '%s' (%s) is remote: its storage is reached over SSH, which needs "
				    "an ssh mapping (user, known_hosts) in the spec", h->name, h->uri);
	if ((rc = pool_host_ssh_target(h, hp->addr, sizeof(hp->addr), &port, &user)) < 0)
		return rc;
	snprintf(hp->port, sizeof(hp->port), "%u", port ? port : 22);
	hp->n = 0;
	hp->kv[hp->n++] = (vp_plugin_param){ "host", hp->addr };
	hp->kv[hp->n++] = (vp_plugin_param){ "port", hp->port };
	if (user)
		hp->kv[hp->n++] = (vp_plugin_param){ "user", user };
	if (h->ssh.known_hosts)
		hp->kv[hp->n++] = (vp_plugin_param){ "known_hosts", h->ssh.known_hosts };
	if (h->ssh.identity)
		hp->kv[hp->n++] = (vp_plugin_param){ "identity", h->ssh.identity };
	if (h->ssh.compress)
		hp->kv[hp->n++] = (vp_plugin_param){ "compress", "yes" };
	return 0;
}

/* How one tier of the spec is opened from here: a dir tier locally or, on a remote host, over
 * SSH at the same path; an rbd tier always from here, straight to the cluster (shared storage). */
typedef struct tier_cfg {
	vp_store_tier st;
	vp_plugin_param kv[12];
	char depth[12];
} tier_cfg;

static void tier_config(tier_cfg *c, const vp_spec *spec, const vp_spec_tier *t, const host_params *hp)
{
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	c->st.config.tier = t->name;
	if (t->driver == VP_STORAGE_RBD) {
		c->st.driver = "rbd";
		c->st.config.path = t->rbd_pool;
		if (t->rbd_namespace)
			c->kv[n++] = (vp_plugin_param){ "namespace", t->rbd_namespace };
		if (t->rbd_conf)
			c->kv[n++] = (vp_plugin_param){ "conf", t->rbd_conf };
		if (t->rbd_id)
			c->kv[n++] = (vp_plugin_param){ "id", t->rbd_id };
		if (t->rbd_keyring)
			c->kv[n++] = (vp_plugin_param){ "keyring", t->rbd_keyring };
		snprintf(c->depth, sizeof(c->depth), "%u", spec->delta.max_depth ? spec->delta.max_depth : 8);
		c->kv[n++] = (vp_plugin_param){ "max_depth", c->depth };
	} else {
		c->st.driver = hp ? "ssh" : "dir";
		c->st.config.path = t->path;
		for (size_t i = 0; hp && i < hp->n; i++)
			c->kv[n++] = hp->kv[i];
	}
	c->st.config.params = n ? c->kv : NULL;
	c->st.config.nparams = n;
}

static int open_tier(disk_tier *t, const vp_spec *spec, const vp_spec_tier *st, const host_params *hp)
{
	const vp_plugin *plugin;
	tier_cfg tc;
	int rc;

	tier_config(&tc, spec, st, hp);
	if ((rc = vp_plugin_find(&plugin, tc.st.driver)) < 0)
		return rc;
	t->ops = vp_plugin_get_ops(plugin);
	t->spec = st;
	if ((rc = t->ops->open(&tc.st.config, &t->handle)) < 0)
		vp_error_prefix("cannot open storage tier '%s'", st->name);
	return rc;
}

static void close_tier(disk_tier *t)
{
	if (t->handle && t->ops->close)
		t->ops->close(t->handle);
	t->handle = NULL;
}

/* The tiers of the spec's store: its bases tier, the deltas tier and the data disks' when apart. */
typedef struct store_cfg {
	tier_cfg base, deltas[2];
	vp_store_tier dt[2];
	size_t n;
} store_cfg;

static void store_config(store_cfg *c, const vp_spec *spec, const host_params *hp, bool data_separate)
{
	c->n = 0;
	tier_config(&c->base, spec, spec->storage.bases, hp);
	tier_config(&c->deltas[c->n++], spec, spec->storage.deltas, hp);
	if (data_separate)
		tier_config(&c->deltas[c->n++], spec, spec->data_disk.tier, hp);
	for (size_t i = 0; i < c->n; i++)
		c->dt[i] = c->deltas[i].st;
}

static int open_store(vp_pool *p, const host_params *hp)
{
	store_cfg c;

	store_config(&c, p->spec, hp, p->data_separate);
	return vp_store_open(&p->store, &c.base.st, c.dt, c.n);
}

int vp_pool_store_open(vp_store **out, const vp_spec *spec)
{
	store_cfg c;
	int rc;

	store_config(&c, spec, NULL, spec->data_disk.size && spec->data_disk.tier != spec->storage.deltas);
	if ((rc = vp_store_open_registered(out, &c.base.st, c.dt, c.n)) < 0)
		vp_error_prefix("pool '%s'", spec->pool);
	return rc;
}

int pool_base_store_open(vp_store **out, const vp_spec *spec)
{
	tier_cfg base;

	tier_config(&base, spec, spec->storage.bases, NULL);
	return vp_store_open(out, &base.st, NULL, 0);
}

int vp_pool_host_store_open(vp_store **out, const vp_spec *spec, size_t host)
{
	const vp_spec_host *h;
	host_params hp;
	vp_pool p = { .spec = spec };
	int rc;

	*out = NULL;
	if (host >= spec->host_count)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "no host %zu in pool '%s'", host, spec->pool);
	h = &spec->hosts[host];
	p.data_separate = spec->data_disk.size && spec->data_disk.tier != spec->storage.deltas;
	if (!pool_host_is_remote(h))
		rc = open_store(&p, NULL);
	else if ((rc = remote_params(h, &hp)) == 0)
		rc = open_store(&p, &hp);
	if (rc < 0) {
		vp_error_prefix("host '%s'", h->name);
		return rc;
	}
	*out = p.store;
	return 0;
}

int pool_open_host(vp_pool **out, const vp_spec *spec, size_t host)
{
	const vp_spec_host *h = &spec->hosts[host];
	host_params hp, *hpp = NULL;
	vp_pool *p;
	int rc;

	*out = NULL;
	if (pool_host_is_remote(h)) {
		if ((rc = remote_params(h, &hp)) < 0)
			return rc;
		hpp = &hp;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	p->spec = spec;
	p->lock_fd = -1;
	p->host_index = host;
	p->remote = hpp != NULL;
	pthread_mutex_init(&p->validate_lock, NULL);
	p->data_separate = spec->data_disk.size && spec->data_disk.tier != spec->storage.deltas;
	{
		char real[PATH_MAX];
		/* A remote host's paths are its own: the controller cannot resolve them. */
		const vp_spec_tier *dt = spec->storage.deltas;
		snprintf(p->tier_real, sizeof(p->tier_real), "%s",
			 dt->path && !p->remote && realpath(dt->path, real) ? real : dt->where);
	}
	if ((rc = vp_spec_hash(spec, p->spec_hash)) < 0 ||
	    (rc = vp_virt_open(&p->virt, h->uri)) < 0 ||
	    (rc = open_store(p, hpp)) < 0 ||
	    (rc = open_tier(&p->deltas, spec, spec->storage.deltas, hpp)) < 0)
		goto fail;
	/* Only a backend that says it makes full copies is asked for one: an older
	 * plugin could ignore the flag and make a linked clone instead. */
	if (spec->clones.mode == VP_CLONE_FULL && !(p->deltas.ops->capabilities & VP_CAP_FULL_CLONE)) {
		rc = vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				  "pool '%s': clones.mode 'full' needs a deltas tier whose storage backend makes "
				  "full copies; tier '%s' (backend '%s'%s) makes linked clones only",
				  spec->pool, spec->storage.deltas->name, p->deltas.ops->name,
				  p->remote ? ", reached over SSH" : "");
		goto fail;
	}
	if (p->data_separate)
		rc = open_tier(&p->data, spec, spec->data_disk.tier, hpp);
	else
		p->data = p->deltas;
	if (rc < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	vp_error_prefix("host '%s'", h->name);
	vp_pool_free(p);
	return rc;
}

int vp_pool_open(vp_pool **out, const vp_spec *spec)
{
	*out = NULL;
	if (spec->host_count > 1)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "pool '%s' has %zu hosts: reset and rollback work on one host for now "
				    "(plan, apply, status and destroy work across hosts)", spec->pool,
				    spec->host_count);
	return pool_open_host(out, spec, 0);
}

/* The tier of the pool's disks that is on Ceph, if any: deltas first, else the data disks. The
 * spec makes both use one cephx user when both are. */
static const vp_spec_tier *rbd_disk_tier(const vp_spec *spec)
{
	if (spec->storage.deltas->driver == VP_STORAGE_RBD)
		return spec->storage.deltas;
	if (spec->data_disk.size && spec->data_disk.tier->driver == VP_STORAGE_RBD)
		return spec->data_disk.tier;
	return NULL;
}

int pool_rbd_auth(vp_pool *p, const vp_rbd_auth **out)
{
	const vp_spec_tier *t = rbd_disk_tier(p->spec);
	int rc = 0;

	*out = NULL;
	if (!t)
		return 0;
	pthread_mutex_lock(&p->validate_lock);
	if (!p->rbd_ready) {
		rc = vp_virt_rbd_auth(p->virt, t->rbd_conf, t->rbd_id, t->rbd_keyring, &p->rbd);
		p->rbd_ready = rc == 0;
	}
	pthread_mutex_unlock(&p->validate_lock);
	if (rc < 0) {
		vp_error_prefix("tier '%s': cannot give this host's QEMU the cephx key", t->name);
		return rc;
	}
	*out = &p->rbd;
	return 0;
}

void vp_pool_free(vp_pool *p)
{
	if (!p)
		return;
	if (p->rbd_ready)
		vp_rbd_auth_release(&p->rbd);
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
	if (!strncmp(p->base.location, "rbd:", 4) && (rc = pool_rbd_auth(p, &dp.rbd)) < 0)
		return rc;
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
