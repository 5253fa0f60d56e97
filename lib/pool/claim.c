/* claim.c: handing out one ready clone at a time (the claim recorded in the domain's metadata under
 * the pool's lock), releasing it (a fresh delta, no claim), and finding expired claims. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool/fleet_int.h"
#include "pool/pool_int.h"

#ifdef VP_TEST_HOOKS
/* VDIPOOL_TEST_CLAIM_CRASH=locked|marked: SIGKILL this process with the pool's lock held, before
 * (locked) or after (marked) the claim is written, as a kill -9 from outside would. */
static void claim_fault(const char *where)
{
	const char *v = getenv("VDIPOOL_TEST_CLAIM_CRASH");

	if (v && !strcmp(v, where))
		kill(getpid(), SIGKILL);
}
#else
static void claim_fault(const char *where)
{
	(void)where;
}
#endif

typedef fleet_spare candidate;

/* Running spares first (a claim takes one in milliseconds), then parked ones; by index. */
static int cmp_candidate(const void *a, const void *b)
{
	const candidate *x = a, *y = b;

	if (x->parked != y->parked)
		return x->parked ? 1 : -1;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return strcmp(x->name, y->name);
}

bool fleet_ours(const vp_pool *p, const vp_virt_domain *d)
{
	return d->has_meta && !strcmp(d->meta.pool, p->spec->pool) && pool_on_our_tier(p, &d->meta);
}

static bool takeable(const vp_pool *p, const vp_virt_domain *d, bool parked)
{
	if (!fleet_ours(p, d) || d->meta.claimed_by)
		return false;
	return parked ? d->state == VP_DOM_SHUTOFF && d->saved : d->state == VP_DOM_RUNNING;
}

int fleet_list_spares(vp_fleet *f, fleet_spare **out, size_t *n)
{
	fleet_spare *c = NULL;
	size_t cap = 0;
	int rc = 0;

	*out = NULL;
	*n = 0;
	for (size_t h = 0; h < f->n && rc == 0; h++) {
		vp_pool *p = f->hosts[h].pool;
		vp_virt_domain *doms = NULL;
		size_t nd = 0;

		if (!f->hosts[h].reachable || !p)
			continue;
		if ((rc = vp_virt_list(p->virt, &doms, &nd)) < 0)
			break;
		for (size_t i = 0; i < nd && rc == 0; i++) {
			bool parked = takeable(p, &doms[i], true);

			if (!parked && !takeable(p, &doms[i], false))
				continue;
			if (*n == cap) {
				fleet_spare *g = realloc(c, (cap = cap ? 2 * cap : 16) * sizeof(*c));
				if (!g) {
					rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
					break;
				}
				c = g;
			}
			c[*n] = (fleet_spare){ .host = h, .index = doms[i].meta.index, .parked = parked };
			snprintf(c[*n].name, sizeof(c[*n].name), "%s", doms[i].name);
			(*n)++;
		}
		vp_virt_domains_free(doms, nd);
	}
	if (rc < 0) {
		free(c);
		*n = 0;
		return rc;
	}
	*out = c;
	return 0;
}

/* Running or parked, unclaimed clones of the pool on every reachable host, running ones first. */
static int list_candidates(vp_fleet *f, candidate **out, size_t *n, size_t *nrun)
{
	int rc = fleet_list_spares(f, out, n);

	*nrun = 0;
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < *n; i++)
		*nrun += !(*out)[i].parked;
	qsort(*out, *n, sizeof(**out), cmp_candidate);
	return 0;
}

/* The pool's lock, tried until the deadline: claims hold it for milliseconds, an apply for its
 * run (a claim waits that long at most until its timeout). */
int fleet_lock_until(vp_fleet *f, double deadline, int *fd)
{
	int rc;

	if (f->lock_fd >= 0) { /* the caller holds it already */
		*fd = -1;
		return 0;
	}
	while ((rc = pool_lock_file(f->spec, false, fd)) == VP_EBUSY && vp_now() < deadline) {
		vp_error_clear();
		usleep(20000 + (useconds_t)(rand() % 30000));
	}
	return rc;
}

/* Writes a claim into d's metadata (persistent, and live while it runs). */
static int write_claim(vp_pool *p, vp_virt_domain *d, const char *who, int64_t at, int64_t until,
		       const char *spec_path)
{
	free(d->meta.claimed_by);
	free(d->meta.claimed_spec);
	d->meta.claimed_by = strdup(who);
	d->meta.claimed_at = at;
	d->meta.claimed_until = until;
	d->meta.claimed_spec = spec_path ? strdup(spec_path) : NULL;
	if (!d->meta.claimed_by || (spec_path && !d->meta.claimed_spec))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return vp_virt_set_meta(p->virt, d->name, &d->meta);
}

/* Under the pool's lock: the clone, read again, is ours, unclaimed and still running (or still
 * parked); then the claim goes into its metadata. 1: claimed; 0: someone else was quicker (or it
 * stopped, or was parked or resumed meanwhile). */
static int mark(vp_pool *p, const char *name, bool parked, const vp_claim_opts *o, vp_claim *out)
{
	vp_virt_domain d;
	int64_t now = (int64_t)time(NULL);
	int rc = vp_virt_lookup(p->virt, name, &d);

	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if (!takeable(p, &d, parked)) {
		vp_virt_domain_release(&d);
		return 0;
	}
	claim_fault("locked");
	rc = write_claim(p, &d, o->who ? o->who : "", now, o->ttl > 0 ? now + o->ttl : 0, o->spec_path);
	if (rc == 0) {
		claim_fault("marked");
		out->at = d.meta.claimed_at;
		out->until = d.meta.claimed_until;
		snprintf(out->base, sizeof(out->base), "%s@%s", d.meta.base_name ? d.meta.base_name : "",
			 d.meta.base_version ? d.meta.base_version : "");
		rc = 1;
	}
	vp_virt_domain_release(&d);
	return rc;
}

/* A parked spare that cannot be handed out: forced off, its saved state dropped (vp_virt_stop),
 * and claimed by VP_CLAIM_REBUILD with a claim that has expired already, so that no claim takes
 * it and the next apply releases it (a fresh delta, a cold boot). */
static void mark_rebuild(vp_pool *p, const char *name, const vp_claim_opts *o, const char *why)
{
	vp_virt_domain d;
	int64_t now = (int64_t)time(NULL);

	vp_virt_stop(p->virt, name, 0);
	if (vp_virt_lookup(p->virt, name, &d) == 0) {
		write_claim(p, &d, VP_CLAIM_REBUILD, now, now, o->spec_path);
		vp_virt_domain_release(&d);
	}
	vp_error_clear();
	if (o->broken)
		o->broken(o->ctx, name, why);
}

/* Ours already (claimed while parked): restore it and wait until it is ready. 1: ready (r);
 * 0: it could not be restored or did not get ready: marked for a rebuild. The live definition
 * comes from the saved image, which has no claim: written again once it runs. */
static int resume(vp_pool *p, const char *name, const vp_claim_opts *o, double deadline, vp_ready_clone *r)
{
	double t0 = vp_now(), end = (deadline > t0 ? deadline : t0) + 60, pause = 0.1;
	char why[600];
	vp_virt_domain d;
	int rc = vp_virt_resume_parked(p->virt, name);

	if (rc < 0) {
		/* libvirt quotes QEMU's log, which may carry bytes of the broken image: printable only. */
		snprintf(why, sizeof(why), "%s", vp_error_last()->message);
		for (char *q = why; *q; q++)
			if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e)
				*q = *q == '\n' ? ' ' : '?';
		vp_error_clear();
		mark_rebuild(p, name, o, why);
		return 0;
	}
	if (vp_virt_lookup(p->virt, name, &d) == 0) {
		vp_virt_set_meta(p->virt, name, &d.meta);
		vp_virt_domain_release(&d);
	}
	vp_error_clear();
	for (;;) {
		if ((rc = vp_pool_ready_check(p, name, r)) < 0)
			return rc;
		if (r->state == VP_READY_YES)
			return 1;
		if (vp_now() >= end)
			break;
		usleep((useconds_t)(pause * 1e6));
		pause = pause * 1.5 > 1 ? 1 : pause * 1.5;
	}
	snprintf(why, sizeof(why), "restored, but not ready within %.0f s: %s: %.400s", vp_now() - t0,
		 vp_ready_state_name(r->state), r->why);
	mark_rebuild(p, name, o, why);
	return 0;
}

/* One candidate: a running one is looked at without the lock, then marked under it; a parked one
 * is marked under the lock (still parked, unclaimed), then restored. 1: it is ours and ready. */
static int try_candidate(vp_fleet *f, const candidate *cd, const vp_claim_opts *o, double deadline,
			 vp_claim *out, vp_ready_clone *r, char *why, size_t whylen)
{
	vp_pool *p = f->hosts[cd->host].pool;
	int rc, fd = -1;

	if (!cd->parked) {
		if ((rc = vp_pool_ready_check(p, cd->name, r)) < 0)
			return rc;
		if (r->state != VP_READY_YES) {
			snprintf(why, whylen, "%s: %s: %.400s", cd->name, vp_ready_state_name(r->state), r->why);
			return 0;
		}
	}
	if ((rc = fleet_lock_until(f, deadline, &fd)) < 0)
		return rc;
	rc = mark(p, cd->name, cd->parked, o, out);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		snprintf(why, whylen, "%s: claimed by another claim meanwhile", cd->name);
	if (rc != 1 || !cd->parked)
		return rc;
	if ((rc = resume(p, cd->name, o, deadline, r)) == 0)
		snprintf(why, whylen, "%s: a parked spare that could not be restored (rebuilt by the next apply)",
			 cd->name);
	out->resumed = rc == 1;
	return rc;
}

/* One round: the running candidates, then the parked ones, each group from another starting
 * point per claimer so that claimers starting together rarely race for one clone. */
static int claim_round(vp_fleet *f, const vp_claim_opts *o, double deadline, vp_claim *out, char *why,
		       size_t whylen)
{
	candidate *c = NULL;
	size_t n = 0, nrun = 0;
	int rc = list_candidates(f, &c, &n, &nrun);

	if (rc < 0)
		return rc;
	if (!n)
		snprintf(why, whylen, "no running or parked unclaimed clone");
	for (size_t k = 0; k < n && rc == 0; k++) {
		size_t base = k < nrun ? 0 : nrun, len = k < nrun ? nrun : n - nrun;
		const candidate *cd = &c[base + ((k - base) + (size_t)getpid()) % len];
		vp_ready_clone r;

		if ((rc = try_candidate(f, cd, o, deadline, out, &r, why, whylen)) == 1) {
			snprintf(out->name, sizeof(out->name), "%s", cd->name);
			out->host = f->hosts[cd->host].name;
			out->uri = f->hosts[cd->host].uri;
			snprintf(out->addrs[0], sizeof(out->addrs[0]), "%s", r.address);
			out->naddrs = 1;
		}
	}
	free(c);
	return rc;
}

static void all_addresses(vp_fleet *f, vp_claim *out)
{
	vp_virt_addr *a = NULL;
	size_t n = 0;

	for (size_t h = 0; h < f->n; h++) {
		if (strcmp(f->hosts[h].name, out->host) || !f->hosts[h].pool)
			continue;
		if (vp_virt_addresses(f->hosts[h].pool->virt, out->name, &a, &n) == 0 && n) {
			out->naddrs = 0;
			for (size_t i = 0; i < n && out->naddrs < 4; i++)
				snprintf(out->addrs[out->naddrs++], sizeof(out->addrs[0]), "%s", a[i].addr);
		}
		free(a);
		vp_error_clear();
		return;
	}
}

int vp_fleet_claim(vp_fleet *f, const vp_claim_opts *o, vp_claim *out)
{
	/* A round costs one listing and a look per candidate: cheap, so a claim waiting for a boot
	 * looks often (at most 1 s after the clone got ready). */
	double t0 = vp_now(), deadline = t0 + (o->timeout > 0 ? o->timeout : 0), pause = 0.25;
	char why[512] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	srand((unsigned)getpid() ^ (unsigned)(t0 * 1e6));
	for (;;) {
		if ((rc = claim_round(f, o, deadline, out, why, sizeof(why))) < 0)
			return rc;
		if (rc == 1) {
			all_addresses(f, out);
			out->seconds = vp_now() - t0;
			return 0;
		}
		if (vp_now() >= deadline)
			break;
		usleep((useconds_t)((pause < deadline - vp_now() ? pause : deadline - vp_now()) * 1e6) + 1);
		pause = pause * 1.5 > 1 ? 1 : pause * 1.5;
	}
	return vp_error_set(VP_ERR_EXEC, VP_ENOENT, "no clone of pool '%s' was ready and unclaimed within %.0fs "
			    "(last: %s)", f->spec->pool, o->timeout, *why ? why : "nothing looked at");
}

/* ---- release ------------------------------------------------------------------------------ */

size_t vp_fleet_claims(vp_fleet *f, vp_claim_info **out)
{
	vp_claim_info *list = NULL;
	size_t n = 0, cap = 0;

	*out = NULL;
	for (size_t h = 0; h < f->n; h++) {
		vp_pool *p = f->hosts[h].pool;

		if (!f->hosts[h].reachable || !p)
			continue;
		for (size_t i = 0; i < p->ndoms; i++) {
			const vp_virt_domain *d = &p->doms[i];

			if (!fleet_ours(p, d) || !d->meta.claimed_by)
				continue;
			if (n == cap) {
				vp_claim_info *g = realloc(list, (cap = cap ? 2 * cap : 8) * sizeof(*list));
				if (!g)
					break;
				list = g;
			}
			list[n] = (vp_claim_info){ .name = d->name, .host = f->hosts[h].name,
						   .by = d->meta.claimed_by, .at = d->meta.claimed_at,
						   .until = d->meta.claimed_until };
			n++;
		}
	}
	*out = list;
	return n;
}

int vp_fleet_plan_release(vp_fleet *f, const char *const *names, size_t n)
{
	int rc = vp_fleet_plan_reset(f, names, n);

	if (rc < 0)
		return rc;
	for (size_t h = 0; h < f->n; h++) {
		vp_fleet_host *fh = &f->hosts[h];

		if (!fh->plan || !fh->pool)
			continue;
		/* Its holder is done with it: no graceful shutdown, and it runs again as a spare. */
		fh->pool->stop_now = true;
		for (size_t i = 0; i < fh->plan->count; i++)
			if (f->spec->domain.start)
				fh->plan->items[i].steps |= VP_STEP_START;
	}
	return 0;
}
