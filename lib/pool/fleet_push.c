/* fleet_push.c: a base version to many hosts ahead of a rollout, in rounds: the controller
 * pushes to at most distribution.max_parallel_hosts hosts at once; with distribution.fanout,
 * hosts that hold the version push it on (`vdipool base push --to` run on the seed over an SSH
 * exec channel), so the hosts holding it grow from h to 2h + width a round. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pool/fleet_int.h"
#include "pool/pool_int.h"
#include "vdipool/fleet.h"
#include "vdipool/ssh.h"

/* A seed's vdipool may push for a long time (a large image over a slow link). */
#define SEED_TIMEOUT (24.0 * 3600)

static int nomem(void)
{
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

/* ---- the round plan (pure) -------------------------------------------------------- */

size_t vp_fanout_round(size_t n, const unsigned char *state, const bool *seed, unsigned width, long *src)
{
	size_t pushes = 0, t = 0;

	for (size_t i = 0; i < n; i++)
		src[i] = VP_FANOUT_NO_SOURCE;
	/* Seeds first, in host order: each serves the next target any source may serve. */
	for (size_t s = 0; seed && s < n; s++) {
		if (state[s] != VP_FANOUT_HOLDS || !seed[s])
			continue;
		while (t < n && state[t] != VP_FANOUT_WANTS)
			t++;
		if (t >= n)
			break;
		src[t++] = (long)s;
		pushes++;
	}
	/* Then the controller: up to width of the targets left, in host order. */
	for (size_t i = 0, c = 0; i < n && c < width; i++) {
		if ((state[i] != VP_FANOUT_WANTS && state[i] != VP_FANOUT_WANTS_DIRECT) ||
		    src[i] != VP_FANOUT_NO_SOURCE)
			continue;
		src[i] = -1;
		c++;
		pushes++;
	}
	return pushes;
}

/* ---- one push --------------------------------------------------------------------- */

typedef struct push_job {
	vp_fleet *f;
	const char *ref;              /* NAME@VERSION, resolved */
	const vp_base_info *b;
	size_t target;
	long source;                  /* -1 controller, else the seed */
	vp_fleet_push_host *out;
	bool seed_broke;              /* the seed could not run its push (not the target's fault) */
} push_job;

/* The reason: "seeded from SEED: why" (seed given) or why. */
static void fail(vp_fleet_push_host *o, const char *seed, const char *why)
{
	o->state = VP_FLEET_PUSH_FAILED;
	snprintf(o->error, sizeof(o->error), "%s%s%s%.480s", seed ? "seeded from " : "", seed ? seed : "",
		 seed ? ": " : "", why);
}

static void from_controller(push_job *j)
{
	vp_fleet *f = j->f;
	vp_store_push_result pr;
	double t0 = vp_now();
	int rc = fleet_push_from_controller(f, j->target, j->ref, &pr);

	j->out->seconds = vp_now() - t0;
	if (rc < 0 && j->out->seed_failed) {
		char why[600];

		snprintf(why, sizeof(why), "%.200s; then from the controller: %.290s", j->out->error,
			 vp_error_last()->message);
		fail(j->out, NULL, why);
		return;
	}
	if (rc < 0) {
		fail(j->out, NULL, vp_error_last()->message);
		return;
	}
	j->out->state = pr.already ? VP_FLEET_PUSH_ALREADY : VP_FLEET_PUSH_PUSHED;
	j->out->sent = pr.already ? 0 : pr.xfer.sent;
	j->out->resumed = pr.already ? 0 : pr.xfer.resumed;
	if (!j->out->seed_failed)
		j->out->error[0] = '\0';
}

/* A number after "key": in the seed's JSON line; 0 when absent. */
static uint64_t json_u64(const char *s, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(s, pat);
	return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

/* The seed's command line: its own vdipool pushes from its store (the spec's bases tier, the
 * same path on every host) to the target's, with the seed's key and known_hosts. */
static char *seed_command(push_job *j)
{
	const vp_spec *sp = j->f->spec;
	const vp_spec_distribution *d = &sp->distribution;
	const vp_spec_host *th = &sp->hosts[j->target];
	char addr[256], to[400];
	const char *user;
	unsigned port;
	char *q[6] = { 0 }, *cmd = NULL;

	if (pool_host_ssh_target(th, addr, sizeof(addr), &port, &user) < 0)
		return NULL;
	snprintf(to, sizeof(to), "%s%s%s:%u", user ? user : "", user ? "@" : "", addr, port ? port : 22);
	q[0] = vp_ssh_quote(d->seed_vdipool ? d->seed_vdipool : "vdipool");
	q[1] = vp_ssh_quote(sp->storage.bases->path);
	q[2] = vp_ssh_quote(j->ref);
	q[3] = vp_ssh_quote(to);
	q[4] = d->seed_identity ? vp_ssh_quote(d->seed_identity) : vp_strdup("");
	q[5] = d->seed_known_hosts ? vp_ssh_quote(d->seed_known_hosts) : vp_strdup("");
	if (q[0] && q[1] && q[2] && q[3] && q[4] && q[5])
		cmd = vp_strdup_printf("%s --root %s -o json -q base push %s --to %s --remote-root %s%s%s%s%s",
				       q[0], q[1], q[2], q[3], q[1], d->seed_identity ? " --identity " : "", q[4],
				       d->seed_known_hosts ? " --known-hosts " : "", q[5]);
	else
		nomem();
	for (size_t i = 0; i < 6; i++)
		free(q[i]);
	return cmd;
}

static void from_seed(push_job *j)
{
	vp_fleet *f = j->f;
	const char *seed = f->hosts[j->source].name;
	vp_ssh_exec_result r = { 0 };
	vp_ssh *s = NULL;
	char *cmd = seed_command(j), *nl, why[400];
	double t0 = vp_now();
	int rc;

	if (!cmd) {
		fail(j->out, seed, vp_error_last()->message);
		j->seed_broke = true;
		return;
	}
	rc = fleet_ssh_connect(f, (size_t)j->source, &s);
	if (rc == 0)
		rc = vp_ssh_exec(s, cmd, SEED_TIMEOUT, &r);
	free(cmd);
	vp_ssh_free(s);
	j->out->seconds = vp_now() - t0;
	if (rc < 0) {
		fail(j->out, seed, vp_error_last()->message);
		j->seed_broke = true;
		return;
	}
	if (r.exit_signal[0] || r.exit_status != 0) {
		/* The first line of what vdipool said on the seed, or how it ended. */
		snprintf(why, sizeof(why), "%s", r.err && r.err[0] ? r.err : "no message");
		if ((nl = strchr(why, '\n')))
			*nl = '\0';
		if (r.exit_signal[0])
			snprintf(why, sizeof(why), "killed by SIG%s", r.exit_signal);
		else if (r.exit_status == 127)
			snprintf(why, sizeof(why), "no vdipool on the host (exit 127; set distribution.seed_vdipool)");
		/* Exit 1 is the push's own failure, which may be the target's; 2 and 127 are the
		 * seed's (usage, not installed). */
		j->seed_broke = r.exit_signal[0] || r.exit_status != 1;
		fail(j->out, seed, why);
		vp_ssh_exec_result_release(&r);
		return;
	}
	if (!strstr(r.out, j->b->sha256)) {
		snprintf(why, sizeof(why), "its vdipool did not report sha256 %s", j->b->sha256);
		fail(j->out, seed, why);
		j->seed_broke = true;
	} else {
		bool pushed = strstr(r.out, "\"pushed\":true") != NULL;

		j->out->state = pushed ? VP_FLEET_PUSH_PUSHED : VP_FLEET_PUSH_ALREADY;
		j->out->sent = pushed ? json_u64(r.out, "sent") : 0;
		j->out->resumed = pushed ? json_u64(r.out, "resumed") : 0;
		j->out->error[0] = '\0';
	}
	vp_ssh_exec_result_release(&r);
}

/* ---- a round on threads ----------------------------------------------------------- */

struct round_run {
	push_job *jobs;
	size_t n, next;
	pthread_mutex_t m;
};

static void *round_worker(void *a)
{
	struct round_run *r = a;

	for (;;) {
		push_job *j;

		pthread_mutex_lock(&r->m);
		j = r->next < r->n ? &r->jobs[r->next++] : NULL;
		pthread_mutex_unlock(&r->m);
		if (!j)
			return NULL;
		if (j->source < 0)
			from_controller(j);
		else
			from_seed(j);
		if (j->f->push_done)
			j->f->push_done(j->f->push_done_ctx, j->target, j->out);
	}
}

static void run_round(push_job *jobs, size_t n)
{
	struct round_run r = { .jobs = jobs, .n = n };
	pthread_t t[64];
	size_t nt = 0, width = n > 64 ? 64 : n;

	pthread_mutex_init(&r.m, NULL);
	for (size_t i = 0; width > 1 && i < width; i++)
		if (pthread_create(&t[nt], NULL, round_worker, &r) == 0)
			nt++;
	if (!nt)
		round_worker(&r);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&r.m);
}

/* ---- which hosts hold it already ------------------------------------------------------ */

typedef struct probe {
	vp_fleet *f;
	const char *ref;
	const vp_base_info *b;
	vp_fleet_push_host *out;
	unsigned char *state;
	size_t next;
	pthread_mutex_t m;
} probe;

static void probe_one(probe *p, size_t i)
{
	vp_store *hs = NULL;
	vp_base_info hb;
	int rc = vp_pool_host_store_open(&hs, p->f->spec, i);

	if (rc == 0)
		rc = vp_store_stat(hs, p->ref, &hb);
	vp_store_free(hs);
	if (rc == VP_ENOENT) {
		vp_error_clear();
		p->state[i] = VP_FANOUT_WANTS;
	} else if (rc < 0) {
		fail(&p->out[i], NULL, vp_error_last()->message);
	} else if (strcmp(hb.sha256, p->b->sha256)) {
		/* Never replaced: deltas on the host may back onto what is there. */
		snprintf(p->out[i].error, sizeof(p->out[i].error),
			 "holds %s with other content (sha256 %.16s..., here %.16s...): use a new version",
			 p->ref, hb.sha256, p->b->sha256);
		p->out[i].state = VP_FLEET_PUSH_FAILED;
	} else {
		p->out[i].state = VP_FLEET_PUSH_ALREADY;
		p->state[i] = VP_FANOUT_HOLDS;
	}
}

static void *probe_worker(void *a)
{
	probe *p = a;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&p->m);
		while (p->next < p->f->n && p->state[p->next] != VP_FANOUT_WANTS)
			p->next++;
		i = p->next++;
		pthread_mutex_unlock(&p->m);
		if (i >= p->f->n)
			return NULL;
		probe_one(p, i);
	}
}

/* state[i] is WANTS for the hosts to probe; leaves WANTS, HOLDS, or NONE with out[i] failed. */
static void probe_hosts(vp_fleet *f, const char *ref, const vp_base_info *b, unsigned char *state,
			vp_fleet_push_host *out)
{
	probe p = { .f = f, .ref = ref, .b = b, .out = out, .state = state };
	pthread_t t[16];
	size_t nt = 0, width = f->n > 16 ? 16 : f->n;

	pthread_mutex_init(&p.m, NULL);
	for (size_t i = 0; width > 1 && i < width; i++)
		if (pthread_create(&t[nt], NULL, probe_worker, &p) == 0)
			nt++;
	if (!nt)
		probe_worker(&p);
	for (size_t i = 0; i < nt; i++)
		pthread_join(t[i], NULL);
	pthread_mutex_destroy(&p.m);
	for (size_t i = 0; i < f->n; i++)
		if (out[i].state == VP_FLEET_PUSH_FAILED)
			state[i] = VP_FANOUT_NONE;
}

/* ---- the whole push ------------------------------------------------------------------- */

int vp_fleet_push(vp_fleet *f, const char *ref, const bool *which, vp_fleet_push_host *out,
		  vp_fleet_push_report *report)
{
	const vp_spec_distribution *d = &f->spec->distribution;
	unsigned char *state = calloc(f->n + 1, 1);
	bool *seed = calloc(f->n + 1, sizeof(bool));
	long *src = calloc(f->n + 1, sizeof(long));
	push_job *jobs = calloc(f->n + 1, sizeof(*jobs));
	vp_base_info b;
	char rref[REF_MAX];
	int rc = 0;

	memset(report, 0, sizeof(*report));
	memset(out, 0, f->n * sizeof(*out));
	if (!state || !seed || !src || !jobs) {
		rc = nomem();
		goto out;
	}
	if ((rc = vp_store_stat(f->src, ref, &b)) < 0) {
		vp_error_prefix("the controller's store (tier '%s')", f->spec->storage.bases->name);
		goto out;
	}
	snprintf(rref, sizeof(rref), "%s@%s", b.name, b.version);
	for (size_t i = 0; i < f->n; i++) {
		out[i].source = VP_FANOUT_NO_SOURCE;
		if ((!which || which[i]) && f->hosts[i].remote)
			state[i] = VP_FANOUT_WANTS;
	}
	probe_hosts(f, rref, &b, state, out);
	for (size_t i = 0; i < f->n; i++)
		seed[i] = d->fanout && state[i] == VP_FANOUT_HOLDS;
	for (unsigned round = 1;; round++) {
		size_t nj = 0;

		if (!vp_fanout_round(f->n, state, seed, d->max_parallel_hosts, src))
			break;
		report->rounds = round;
		for (size_t i = 0; i < f->n; i++) {
			if (src[i] == VP_FANOUT_NO_SOURCE)
				continue;
			out[i].source = src[i];
			out[i].round = round;
			jobs[nj++] = (push_job){ .f = f, .ref = rref, .b = &b, .target = i, .source = src[i],
						 .out = &out[i] };
		}
		run_round(jobs, nj);
		for (size_t k = 0; k < nj; k++) {
			push_job *j = &jobs[k];
			size_t i = j->target;

			if (out[i].state != VP_FLEET_PUSH_FAILED) {
				state[i] = VP_FANOUT_HOLDS;
				seed[i] = d->fanout;
				*(j->source < 0 ? &report->from_controller : &report->from_seeds) += 1;
			} else if (j->source >= 0) {
				/* Tried again from the controller; a seed that could not run seeds no more. */
				state[i] = VP_FANOUT_WANTS_DIRECT;
				out[i].seed_failed = true;
				if (j->seed_broke)
					seed[j->source] = false;
			} else {
				state[i] = VP_FANOUT_NONE;
			}
		}
	}
	for (size_t i = 0; i < f->n; i++) {
		report->pushed += out[i].state == VP_FLEET_PUSH_PUSHED;
		report->already += out[i].state == VP_FLEET_PUSH_ALREADY;
		report->failed += out[i].state == VP_FLEET_PUSH_FAILED;
		report->sent += out[i].sent;
	}
out:
	free(state);
	free(seed);
	free(src);
	free(jobs);
	return rc;
}

int fleet_push_fanout(vp_fleet *f, const bool *need, uint64_t *sent)
{
	vp_fleet_push_host *out = calloc(f->n + 1, sizeof(*out));
	vp_fleet_push_report rep;
	int rc;

	if (!out)
		return nomem();
	if ((rc = vp_fleet_push(f, f->base_ref, need, out, &rep)) < 0) {
		free(out);
		return rc;
	}
	for (size_t i = 0; i < f->n; i++) {
		vp_fleet_host *h = &f->hosts[i];

		if (!need[i])
			continue;
		if (out[i].state == VP_FLEET_PUSH_PUSHED || out[i].state == VP_FLEET_PUSH_ALREADY) {
			h->base_present = true;
			h->push_bytes = 0;
		} else {
			snprintf(h->error, sizeof(h->error), "cannot push the base: %.480s",
				 out[i].error[0] ? out[i].error : "not a host the base can be pushed to");
		}
	}
	*sent += rep.sent;
	free(out);
	return 0;
}

int vp_fleet_open_push(vp_fleet **out, const vp_spec *spec)
{
	vp_fleet *f = calloc(1, sizeof(*f));
	int rc;

	*out = NULL;
	if (!f)
		return nomem();
	f->spec = spec;
	f->lock_fd = -1;
	f->n = spec->host_count;
	f->hosts = calloc(f->n + 1, sizeof(*f->hosts));
	f->rcs = calloc(f->n + 1, sizeof(*f->rcs));
	if (!f->hosts || !f->rcs) {
		vp_fleet_free(f);
		return nomem();
	}
	for (size_t i = 0; i < f->n; i++) {
		f->hosts[i].name = spec->hosts[i].name;
		f->hosts[i].uri = spec->hosts[i].uri;
		f->hosts[i].remote = pool_host_is_remote(&spec->hosts[i]);
		snprintf(f->hosts[i].error, sizeof(f->hosts[i].error), "not connected (opened for pushing bases)");
	}
	if ((rc = pool_base_store_open(&f->src, spec)) < 0) {
		vp_error_prefix("pool '%s': the controller's base store", spec->pool);
		vp_fleet_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void vp_fleet_set_push_done(vp_fleet *f, void (*fn)(void *ctx, size_t host, const vp_fleet_push_host *r),
			    void *ctx)
{
	f->push_done = fn;
	f->push_done_ctx = ctx;
}
