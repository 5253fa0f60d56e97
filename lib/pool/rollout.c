/* rollout.c: waves behind the health gate, and rollbacks: each clone's own target and the
 * durable record that lets an interrupted rollback be continued. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/fs.h"
#include "util/run.h"

int pool_run_check(const vp_spec_health *h, const char *const *env, double timeout, char *tail, size_t len)
{
	vp_run_opts ro = { .env = env, .timeout = timeout < 0.1 ? 0.1 : timeout };
	vp_run_result res;
	const char *text;
	size_t n;
	bool ok;

	if (vp_run((const char *const *)h->argv, &ro, &res) < 0)
		return VP_EIO;
	ok = !res.signal && res.exit_code == 0;
	if (!ok && tail && len) {
		/* The end of what it said (stderr, else stdout): where the reason usually is. */
		text = vp_buf_cstr(&res.err);
		if (!*text)
			text = vp_buf_cstr(&res.out);
		n = strlen(text);
		while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
			n--;
		if (res.signal)
			snprintf(tail, len, "killed (timeout after %.0fs)", ro.timeout);
		else if (!n)
			snprintf(tail, len, "exit %d, no output", res.exit_code);
		else if (n < len)
			snprintf(tail, len, "%.*s", (int)n, text);
		else
			snprintf(tail, len, "...%.*s", (int)(len - 4), text + n - (len - 4));
	}
	vp_run_result_release(&res);
	return ok ? 0 : 1;
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
		int rc = pool_run_check(h, env, deadline - vp_now(), last, sizeof(last));

		if (rc <= 0)
			return rc;
		if (vp_now() + 1 >= deadline)
			return vp_error_set(VP_ERR_EXEC, VP_EIO,
					    "health check of clone '%s' did not pass within %us%s%s", it->name,
					    h->timeout_sec, *last ? ": " : "", last);
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

/* ---- rollback --------------------------------------------------------------
 * A rollback returns each clone on the version it undoes (the spec's, when it
 * starts) to the version its own metadata records as previous; every other
 * clone stays where it is. Before the first clone moves, the version it undoes
 * is recorded in a small file beside the pool's deltas; the record goes when
 * the rollback is complete. So an interrupted rollback (a failed gate, a kill)
 * is continued by the next `rollback` or `apply`, never turned around. */

static char *rollback_path(const vp_pool *p)
{
	return vp_strdup_printf("%s/deltas/.%s.rollback", p->tier_real, p->spec->pool);
}

int pool_rollback_read(vp_pool *p)
{
	VP_AUTOFREE char *path = rollback_path(p);
	char *text = NULL, *from, *end;
	size_t len;
	int rc;

	p->rollback_recorded = false;
	if (!path)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	/* The record is a file on this machine: a remote host's pool has none (rollback works on
	 * one-host pools). */
	if (p->remote)
		return 0;
	/* What killed commands left of their writes of the record (a dead writer's temp only). */
	vp_fs_sweep_tmp(path);
	if (!vp_fs_exists(path))
		return 0;
	if ((rc = vp_fs_read_all(path, 4096, &text, &len)) < 0)
		return rc;
	from = strstr(text, "\nfrom=");
	if (strncmp(text, "vdipool-rollback=1\n", 19) || !from || !(end = strchr(from + 6, '\n')) ||
	    end == from + 6 || (size_t)(end - from - 6) >= sizeof(p->rollback_from)) {
		free(text);
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "pool '%s': the rollback record '%s' is damaged; remove it, then run "
				    "'vdipool rollback' again",
				    p->spec->pool, path);
	}
	snprintf(p->rollback_from, sizeof(p->rollback_from), "%.*s", (int)(end - from - 6), from + 6);
	free(text);
	p->rollback = p->rollback_recorded = true;
	return 0;
}

int pool_rollback_record(vp_pool *p)
{
	VP_AUTOFREE char *path = rollback_path(p);
	VP_AUTOFREE char *text = NULL;
	VP_AUTOFREE char *dir = NULL;
	int rc;

	if (p->rollback_recorded || p->remote)
		return 0;
	text = vp_strdup_printf("vdipool-rollback=1\nbase=%s\nfrom=%s\n", p->spec->base.name,
				p->rollback_from);
	dir = vp_strdup_printf("%s/deltas", p->tier_real);
	if (!path || !text || !dir)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if ((rc = vp_fs_mkdir_p(dir, 0755)) < 0 ||
	    (rc = vp_fs_write_atomic(path, text, strlen(text), 0644)) < 0) {
		vp_error_prefix("pool '%s': cannot record the rollback", p->spec->pool);
		return rc;
	}
	p->rollback_recorded = true;
	return 0;
}

int pool_rollback_clear(vp_pool *p)
{
	VP_AUTOFREE char *path = rollback_path(p);

	if (!path)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (p->remote)
		return 0;
	if (unlink(path) < 0) {
		if (errno == ENOENT)
			return 0;
		return vp_error_set_os(errno, "cannot remove the rollback record '%s'", path);
	}
	p->rollback_recorded = false;
	return vp_fs_fsync_parent(path);
}

int pool_rollback_targets(vp_pool *p)
{
	p->rollback_moves = 0;
	for (size_t i = 0; i < p->nwant; i++) {
		const vp_observed_clone *o = pool_find_obs(p, p->want[i].name);
		const vp_virt_domain *d = pool_dom_of(p, p->want[i].name);
		const vp_domain_meta *m = d && d->has_meta ? &d->meta : NULL;

		p->want[i].base_ref = NULL;
		if (!o || !(o->flags & VP_OBS_OURS) || (o->flags & VP_OBS_ELSEWHERE) || !m || !m->base_name ||
		    !m->base_version)
			continue; /* made new (or repaired) on the spec's base */
		if (!strcmp(m->base_name, p->spec->base.name) && !strcmp(m->base_version, p->rollback_from) &&
		    m->prev_version &&
		    strcmp(m->prev_version, p->rollback_from)) {
			snprintf(p->want_base[i], sizeof(p->want_base[i]), "%s@%s", m->base_name, m->prev_version);
			p->rollback_moves++;
		} else {
			/* Not part of what is undone: it stays on the version it has. */
			snprintf(p->want_base[i], sizeof(p->want_base[i]), "%s@%s", m->base_name, m->base_version);
		}
		p->want[i].base_ref = p->want_base[i];
	}
	return 0;
}
