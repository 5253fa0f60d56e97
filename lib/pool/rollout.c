/* rollout.c: rebases in waves behind the health gate, and the version a rollback returns to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/run.h"

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

int pool_rollout(vp_pool *p, const vp_plan *plan, const vp_apply_opts *opts, const vp_exec_ops *ops,
		 apply_ctx *ctx, const vp_exec_opts *eo, vp_exec_result *res)
{
	for (unsigned w = 1; w <= plan->waves; w++) {
		int rc;

		if (opts && opts->wave)
			opts->wave(opts->progress_ctx, plan, w, false);
		if ((rc = pool_run_wave(plan, w, ops, ctx, eo, res)) < 0) {
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
