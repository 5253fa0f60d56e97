/* park.c: parked spares (clones.parked): unclaimed clones booted until ready, then saved to disk
 * with libvirt's managed save, so that a claim can restore one in a moment without keeping it
 * running. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/fleet_int.h"
#include "pool/pool_int.h"

typedef fleet_spare spare;

/* Highest index first: claims take running spares from the lowest. */
static int cmp_spare(const void *a, const void *b)
{
	const spare *x = a, *y = b;

	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* Under the pool's lock: still ours, running and unclaimed (a claim may have taken it since it
 * was looked at), then saved. 1: parked; 0: not (taken, stopped). */
static int park_locked(vp_fleet *f, vp_pool *p, const char *name, double deadline)
{
	vp_virt_domain d;
	int fd = -1, rc = fleet_lock_until(f, deadline, &fd);

	if (rc < 0)
		return rc;
	if ((rc = vp_virt_lookup(p->virt, name, &d)) == 0) {
		bool ok = fleet_ours(p, &d) && !d.meta.claimed_by && d.state == VP_DOM_RUNNING;

		vp_virt_domain_release(&d);
		rc = ok ? vp_virt_park(p->virt, name) : 0;
		if (ok && rc == 0)
			rc = 1;
	} else if (rc == VP_ENOENT) {
		vp_error_clear();
		rc = 0;
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* One look at a running spare: parked when ready. */
static int try_park(vp_fleet *f, spare *s, char *why, size_t whylen, double deadline, const vp_park_opts *o,
		    double t0, vp_park_report *out)
{
	vp_pool *p = f->hosts[s->host].pool;
	vp_ready_clone r;
	int rc = vp_pool_ready_check(p, s->name, &r);

	if (rc < 0)
		return rc;
	if (r.state != VP_READY_YES || r.claimed) {
		snprintf(why, whylen, "%s: %s: %.400s", s->name, vp_ready_state_name(r.state), r.why);
		return 0;
	}
	if ((rc = park_locked(f, p, s->name, deadline)) == 1) {
		s->parked = true;
		out->saved++;
		if (o && o->progress)
			o->progress(o->ctx, s->name, f->hosts[s->host].name, true, vp_now() - t0);
	}
	return rc < 0 ? rc : 0; /* 0: claimed or stopped meanwhile; the next round lists again */
}

/* Parked clones beyond the count are started again (restored), the highest indexes first. */
static int resume_extra(vp_fleet *f, spare *s, size_t n, size_t extra, const vp_park_opts *o, double t0,
			vp_park_report *out)
{
	for (size_t i = 0; i < n && extra; i++) {
		vp_pool *p = f->hosts[s[i].host].pool;
		int rc;

		if (!s[i].parked)
			continue;
		if ((rc = vp_virt_start(p->virt, s[i].name)) < 0)
			return rc;
		extra--;
		out->resumed++;
		if (o && o->progress)
			o->progress(o->ctx, s[i].name, f->hosts[s[i].host].name, false, vp_now() - t0);
	}
	return 0;
}

static int not_parked_error(const vp_fleet *f, const char *why, size_t need, double timeout)
{
	return vp_error_set(VP_ERR_EXEC, VP_EIO, "pool '%s': %zu spare%s not parked after %.0fs (clones.parked: "
			    "%u); the last looked at: %s", f->spec->pool, need, need == 1 ? "" : "s", timeout,
			    f->spec->clones.parked, *why ? why : "no running unclaimed clone to park");
}

int vp_fleet_park(vp_fleet *f, const vp_park_opts *o, vp_park_report *out)
{
	double t0 = vp_now(), timeout = o ? o->timeout : 0, deadline = t0 + timeout, pause = 0.5;
	spare *s = NULL;
	size_t n = 0, want = f->spec->clones.parked;
	char why[600] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	for (;;) {
		size_t parked = 0;

		free(s);
		if ((rc = fleet_list_spares(f, &s, &n)) < 0)
			break;
		qsort(s, n, sizeof(*s), cmp_spare);
		for (size_t i = 0; i < n; i++)
			parked += s[i].parked;
		out->parked = parked;
		if (parked > want) {
			rc = resume_extra(f, s, n, parked - want, o, t0, out);
			out->parked = want;
			break;
		}
		for (size_t i = 0; i < n && parked < want && rc == 0; i++) {
			if (s[i].parked)
				continue;
			rc = try_park(f, &s[i], why, sizeof(why), deadline, o, t0, out);
			parked += s[i].parked;
		}
		out->parked = parked;
		if (rc < 0 || parked >= want)
			break;
		if (parked == n) /* nothing running to park: claims took the spares, or none was made */
			break;
		if (vp_now() >= deadline) {
			rc = not_parked_error(f, why, want - parked, timeout);
			break;
		}
		usleep((useconds_t)((pause < deadline - vp_now() ? pause : deadline - vp_now()) * 1e6) + 1);
		pause = pause * 1.5 > 3 ? 3 : pause * 1.5;
	}
	free(s);
	out->seconds = vp_now() - t0;
	return rc;
}
