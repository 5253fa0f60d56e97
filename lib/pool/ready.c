/* ready.c: is a clone ready (running, an address, the readiness command passes), and waiting
 * until the whole pool is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/fleet_int.h"
#include "pool/pool_int.h"

const char *vp_ready_state_name(vp_ready_state s)
{
	switch (s) {
	case VP_READY_YES: return "ready";
	case VP_READY_NOT_RUNNING: return "not running";
	case VP_READY_NO_ADDRESS: return "no address";
	case VP_READY_CHECK_FAILED: return "check failed";
	case VP_READY_UNREACHABLE: return "unreachable";
	}
	return "unknown";
}

static int run_readiness(vp_pool *p, const vp_virt_domain *d, vp_ready_clone *out)
{
	char e_clone[128], e_addr[96], e_uuid[64], e_pool[128], e_host[128];
	const char *env[] = { e_clone, e_addr, e_uuid, e_pool, e_host, NULL };
	int rc;

	snprintf(e_clone, sizeof(e_clone), "VDIPOOL_CLONE=%s", out->name);
	snprintf(e_addr, sizeof(e_addr), "VDIPOOL_ADDRESS=%s", out->address);
	snprintf(e_uuid, sizeof(e_uuid), "VDIPOOL_UUID=%s", d->uuid);
	snprintf(e_pool, sizeof(e_pool), "VDIPOOL_POOL=%s", p->spec->pool);
	snprintf(e_host, sizeof(e_host), "VDIPOOL_HOST=%s", out->host);
	rc = pool_run_check(&p->spec->readiness, env, p->spec->readiness.timeout_sec, out->why,
			    sizeof(out->why));
	if (rc < 0) {
		snprintf(out->why, sizeof(out->why), "cannot run the readiness command: %.400s",
			 vp_error_last()->message);
		vp_error_clear();
		rc = 1;
	}
	out->state = rc ? VP_READY_CHECK_FAILED : VP_READY_YES;
	return 0;
}

/* libvirt keeps a domain's DHCP lease after it stops: a clone started again (a release, a reset,
 * a restart) is listed with its old address at once, before its guest has booted. Only a lease
 * granted since this start says the guest is up; where that cannot be told (no start time: a
 * remote host, a session daemon; no lease time), the address counts. */
static bool stale_lease(vp_pool *p, const vp_virt_domain *d)
{
	double started = 0, granted = 0;

	/* A restored guest carries on with the lease it had when it was saved. */
	if (d->restored || !d->has_meta || !d->meta.mac || vp_virt_started_at(p->virt, d->name, &started) < 0 || started <= 0 ||
	    vp_virt_lease_granted(p->virt, p->spec->domain.network, d->meta.mac, &granted) < 0 || granted <= 0) {
		vp_error_clear();
		return false;
	}
	return granted + 1 < started;
}

int vp_pool_ready_check(vp_pool *p, const char *name, vp_ready_clone *out)
{
	vp_virt_addr *addrs = NULL;
	vp_virt_domain d;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", name);
	out->host = p->spec->hosts[p->host_index].name;
	out->state = VP_READY_NOT_RUNNING;
	if ((rc = vp_virt_lookup(p->virt, name, &d)) == VP_ENOENT) {
		vp_error_clear();
		snprintf(out->why, sizeof(out->why), "no domain");
		return 0;
	}
	if (rc < 0)
		return rc;
	out->claimed = d.has_meta && d.meta.claimed_by;
	out->parked = d.saved;
	if (d.state != VP_DOM_RUNNING) {
		snprintf(out->why, sizeof(out->why), "%s", d.state == VP_DOM_PAUSED ? "paused"
			 : d.saved ? "parked (saved to disk: a claim resumes it)" : "shut off");
		goto out;
	}
	if ((rc = vp_virt_addresses(p->virt, name, &addrs, &n)) < 0)
		goto out;
	if (!n) {
		out->state = VP_READY_NO_ADDRESS;
		snprintf(out->why, sizeof(out->why), "running, no address yet (no DHCP lease%s)",
			 p->spec->domain.network ? "" : ": domain.network is none");
		goto out;
	}
	if (stale_lease(p, &d)) {
		out->state = VP_READY_NO_ADDRESS;
		snprintf(out->why, sizeof(out->why), "booting: its address %s is the DHCP lease of its previous boot",
			 addrs[0].addr);
		goto out;
	}
	snprintf(out->address, sizeof(out->address), "%s", addrs[0].addr);
	if (p->spec->readiness.argc)
		rc = run_readiness(p, &d, out);
	else
		out->state = VP_READY_YES;
out:
	free(addrs);
	vp_virt_domain_release(&d);
	return rc;
}

void vp_ready_report_free(vp_ready_report *r)
{
	if (!r)
		return;
	free(r->clones);
	free(r);
}

/* The clones to wait for, each with its host: -1 when it has none (no room anywhere). */
static int targets(vp_fleet *f, vp_ready_report *r, long **host)
{
	if (!f->spec->domain.start)
		return 0;
	if (!(r->clones = calloc(f->nclones + 1, sizeof(*r->clones))) ||
	    !(*host = calloc(f->nclones + 1, sizeof(**host))))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; i < f->nclones; i++) {
		const fleet_clone *c = &f->clones[i];
		vp_ready_clone *rc = &r->clones[r->count];

		if (c->remove)
			continue;
		snprintf(rc->name, sizeof(rc->name), "%s", c->name);
		rc->host = c->host >= 0 ? f->hosts[c->host].name : "";
		rc->state = VP_READY_NOT_RUNNING;
		snprintf(rc->why, sizeof(rc->why), "not looked at yet");
		(*host)[r->count++] = c->host;
	}
	return 0;
}

/* One look at clone k; unreachable hosts and unplaced clones never get ready. */
static int look(vp_fleet *f, vp_ready_report *r, size_t k, long host)
{
	vp_ready_clone *c = &r->clones[k];
	const vp_fleet_host *h = host >= 0 ? &f->hosts[host] : NULL;
	char name[64];
	int rc;

	if (!h) {
		snprintf(c->why, sizeof(c->why), "placed on no host (no host has room for it)");
		return 0;
	}
	if (!h->reachable || !h->pool) {
		c->state = VP_READY_UNREACHABLE;
		snprintf(c->why, sizeof(c->why), "host '%s' cannot be reached: %.400s", h->name, h->error);
		return 0;
	}
	snprintf(name, sizeof(name), "%s", c->name);
	if ((rc = vp_pool_ready_check(h->pool, name, c)) < 0) {
		/* libvirt failing for one clone: said, and looked at again. */
		c->state = VP_READY_NOT_RUNNING;
		snprintf(c->why, sizeof(c->why), "%s", vp_error_last()->message);
		vp_error_clear();
	}
	return 0;
}

/* "a (no address), b (check failed: ...)": every clone not ready, for the error. */
static int not_ready_error(const vp_ready_report *r, double timeout)
{
	vp_buf b = VP_BUF_INIT;
	size_t shown = 0;
	int rc;

	for (size_t k = 0; k < r->count; k++) {
		const vp_ready_clone *c = &r->clones[k];

		if (c->state == VP_READY_YES || c->claimed || c->parked)
			continue;
		if (shown++ == 20) {
			vp_buf_printf(&b, "; and %zu more", r->count - r->ready - r->claimed - r->parked - 20);
			break;
		}
		vp_buf_printf(&b, "%s%s (%s: %s)", shown > 1 ? "; " : "", c->name, vp_ready_state_name(c->state),
			      c->why);
	}
	rc = vp_error_set(VP_ERR_EXEC, VP_EIO, "%zu of %zu clones not ready after %.0fs: %s",
			  r->count - r->ready - r->claimed - r->parked, r->count, timeout, vp_buf_cstr(&b));
	vp_buf_release(&b);
	return rc;
}

int vp_fleet_wait_ready(vp_fleet *f, const vp_ready_opts *o, vp_ready_report **out)
{
	vp_ready_report *r = calloc(1, sizeof(*r));
	double t0 = vp_now(), pause = 0.5, timeout = o ? o->timeout : 0;
	long *host = NULL;
	int rc;

	*out = r;
	if (!r)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (!f->spec->domain.network)
		return vp_error_set(VP_ERR_SPEC, VP_EINVAL,
				    "pool '%s': domain.network is none, so its clones have no interface and can "
				    "never get an address: a clone is ready only with one",
				    f->spec->pool);
	if ((rc = targets(f, r, &host)) < 0)
		goto out;
	for (;;) {
		double left;

		for (size_t k = 0; k < r->count; k++) {
			if (r->clones[k].state == VP_READY_YES)
				continue;
			if (r->clones[k].claimed || r->clones[k].parked)
				continue;
			look(f, r, k, host[k]);
			/* Claimed clones are their holders' (shut down, rebooted, changed: not ours to wait
			 * for); parked ones were ready when they were saved. */
			if (r->clones[k].state != VP_READY_YES && (r->clones[k].claimed || r->clones[k].parked)) {
				r->claimed += r->clones[k].claimed;
				r->parked += !r->clones[k].claimed && r->clones[k].parked;
				continue;
			}
			if (r->clones[k].state == VP_READY_YES) {
				r->ready++;
				r->clones[k].seconds = vp_now() - t0;
				if (o && o->progress)
					o->progress(o->ctx, &r->clones[k], r->ready, r->count);
			}
		}
		if (o && o->progress)
			o->progress(o->ctx, NULL, r->ready, r->count);
		if (r->ready + r->claimed + r->parked == r->count)
			break;
		left = t0 + timeout - vp_now();
		if (left <= 0) {
			rc = not_ready_error(r, timeout);
			break;
		}
		usleep((useconds_t)((pause < left ? pause : left) * 1e6));
		pause = pause * 1.5 > 5 ? 5 : pause * 1.5;
	}
out:
	r->seconds = vp_now() - t0;
	free(host);
	return rc;
}
