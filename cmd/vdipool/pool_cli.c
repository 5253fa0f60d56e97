/* pool_cli.c: shared pieces of the pool commands: open, plan printing, progress bar, summaries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <syslog.h>

#include "pool_cli.h"
#include "vdipool/refs.h"
#include "util/util.h"

int pool_cli_open(cli *c, const char *path, pool_cli_lock lock, bool need_base, vp_spec **spec,
		  vp_pool **pool)
{
	int rc = vp_spec_load(spec, path);

	*pool = NULL;
	if (rc == 0)
		c->pool = (*spec)->pool;
	if (rc < 0) {
		/* Spec errors already carry file:line:col; say nothing more. */
		fprintf(stderr, "%s\n", vp_error_last()->message);
		/* A spec that cannot be read is bad input too. */
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	rc = vp_pool_open(pool, *spec);
	/* Lock before reading the world: a plan must describe the world its changes meet. */
	if (rc == 0 && lock != POOL_CLI_NO_LOCK)
		rc = vp_pool_lock(*pool, lock == POOL_CLI_LOCK_WAIT);
	if (rc == 0)
		rc = vp_pool_inventory(*pool, need_base);
	if (rc < 0) {
		int code = cli_fail(c, rc);
		vp_pool_free(*pool);
		vp_spec_free(*spec);
		*pool = NULL;
		*spec = NULL;
		return code;
	}
	return 0;
}

static void steps_str(unsigned steps, char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned bit = 1; bit && bit <= steps; bit <<= 1) {
		if (!(steps & bit))
			continue;
		n += (size_t)snprintf(buf + n, n < len ? len - n : 0, "%s%s", n ? ", " : "", vp_step_name(bit));
	}
}

static char sign(vp_change ch)
{
	switch (ch) {
	case VP_CHANGE_CREATE: return '+';
	case VP_CHANGE_REMOVE: return '-';
	case VP_CHANGE_NONE: return ' ';
	default: return '~';
	}
}

static void print_plan_json(const vp_spec *spec, vp_pool *pool, const vp_plan *plan)
{
	vp_buf b = VP_BUF_INIT;

	vp_buf_puts(&b, "{\"pool\":");
	vp_buf_json_str(&b, spec->pool);
	vp_buf_puts(&b, ",\"base\":");
	vp_buf_json_str(&b, vp_pool_base_ref(pool));
	vp_buf_printf(&b, ",\"changes_pending\":%s,\"counts\":{", vp_plan_has_changes(plan) ? "true" : "false");
	for (int ch = 0; ch < VP_CHANGE_MAX; ch++)
		vp_buf_printf(&b, "%s\"%s\":%zu", ch ? "," : "", vp_change_name((vp_change)ch), plan->counts[ch]);
	vp_buf_printf(&b, "},\"waves\":%u,\"bytes_to_write\":%llu,\"pool_bytes\":%llu,\"full_copy_bytes\":%llu,\"clones\":[",
		      plan->waves, (unsigned long long)plan->bytes_to_write, (unsigned long long)plan->pool_bytes,
		      (unsigned long long)plan->full_copy_bytes);
	for (size_t i = 0; i < plan->count; i++) {
		const vp_plan_item *it = &plan->items[i];
		vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		vp_buf_json_str(&b, it->name);
		vp_buf_printf(&b, ",\"index\":%u,\"change\":\"%s\",\"reason\":", it->index, vp_change_name(it->change));
		vp_buf_json_str(&b, it->reason);
		vp_buf_puts(&b, ",\"steps\":[");
		for (unsigned bit = 1, first = 1; bit && bit <= it->steps; bit <<= 1) {
			if (!(it->steps & bit))
				continue;
			vp_buf_puts(&b, first ? "" : ",");
			vp_buf_json_str(&b, vp_step_name(bit));
			first = 0;
		}
		vp_buf_printf(&b, "],\"keeps_data\":%s,\"wave\":%u,\"base\":", it->keeps_data ? "true" : "false",
			      it->wave);
		vp_buf_json_str(&b, it->to_base ? it->to_base : "");
		vp_buf_puts(&b, ",\"mac\":");
		vp_buf_json_str(&b, it->mac);
		vp_buf_puts(&b, "}");
	}
	vp_buf_puts(&b, "]}\n");
	fputs(vp_buf_cstr(&b), stdout);
	vp_buf_release(&b);
}

void pool_cli_print_plan(cli *c, const vp_spec *spec, vp_pool *pool, const vp_plan *plan)
{
	char steps[256], a[32], bb[32], f[32];
	const char *base = vp_pool_base_ref(pool);

	pool_cli_warn_accel(c, pool);
	if (c->output == CLI_OUT_JSON) {
		print_plan_json(spec, pool, plan);
		return;
	}
	printf("Pool '%s': %u clones of %s on %s (%s)\n", spec->pool, spec->clones.count,
	       *base ? base : "(base not resolved)", spec->hosts[0].name, spec->hosts[0].uri);
	for (size_t i = 0; i < plan->count; i++) {
		const vp_plan_item *it = &plan->items[i];
		if (it->change == VP_CHANGE_NONE && !strncmp(it->reason, "claimed:", 8)) {
			/* A change the spec asks for waits for the clone's release: say so. */
			printf("  = %-20s %-8s (%s)\n", it->name, "claimed", it->reason);
			continue;
		}
		if (it->change == VP_CHANGE_NONE)
			continue;
		steps_str(it->steps, steps, sizeof(steps));
		printf("  %c %-20s %-8s %s%s%s%s", sign(it->change), it->name, vp_change_name(it->change),
		       steps, *it->reason ? " (" : "", it->reason, *it->reason ? ")" : "");
		if (it->change == VP_CHANGE_REBASE)
			printf(" %s%s-> %s", it->from_base ? it->from_base : "", it->from_base ? " " : "",
			       it->to_base ? it->to_base : vp_pool_base_ref(pool));
		if (it->wave)
			printf("%s wave %u/%u", it->change == VP_CHANGE_REBASE ? "," : "", it->wave, plan->waves);
		printf("\n");
		if (it->keeps_data)
			printf("    %-20s          its persistent data disk is kept\n", "");
	}
	printf("Plan: %zu to create, %zu to repair, %zu to update, %zu to rebase, %zu to start, "
	       "%zu to stop, %zu to remove, %zu unchanged\n",
	       plan->counts[VP_CHANGE_CREATE], plan->counts[VP_CHANGE_REPAIR], plan->counts[VP_CHANGE_UPDATE],
	       plan->counts[VP_CHANGE_REBASE], plan->counts[VP_CHANGE_START], plan->counts[VP_CHANGE_STOP],
	       plan->counts[VP_CHANGE_REMOVE], plan->counts[VP_CHANGE_NONE]);
	if (plan->full_copy_bytes && spec->clones.mode == VP_CLONE_FULL) {
		/* Full clones save nothing: each writes the base's allocated bytes,
		 * unless a reflink shares them (known only when copying). */
		printf("Disk: %s to write (full clones: the base's allocated bytes per clone, shared "
		       "instead where the tier's file system reflinks); the pool will use %s (base + "
		       "full copies)\n",
		       vp_fmt_bytes(plan->bytes_to_write, a, sizeof(a)),
		       vp_fmt_bytes(plan->pool_bytes, bb, sizeof(bb)));
	} else if (plan->full_copy_bytes) {
		double saved = 100.0 * (1.0 - (double)plan->pool_bytes / (double)plan->full_copy_bytes);
		printf("Disk: %s to write; the pool will use %s (base + deltas) against %s as full copies "
		       "(%.0f%% saved)\n",
		       vp_fmt_bytes(plan->bytes_to_write, a, sizeof(a)), vp_fmt_bytes(plan->pool_bytes, bb, sizeof(bb)),
		       vp_fmt_bytes(plan->full_copy_bytes, f, sizeof(f)), saved);
	}
	if (!vp_plan_has_changes(plan))
		printf("No changes: the pool matches its spec.\n");
}

typedef struct progress_state {
	cli *c;
	double started;
} progress_state;

static progress_state pstate;

static void progress(void *ctx, size_t done, size_t total, const vp_plan_item *it, int rc, const char *msg)
{
	progress_state *ps = ctx;
	cli *c = ps->c;

	/* Each decision carried out, to the journal: pool=, clone=, action=, why and the result. */
	if (rc < 0)
		cli_log(c, LOG_ERR, c->pool, it->name, vp_change_name(it->change), "result=failed reason=\"%s\" error=\"%s\"",
			it->reason ? it->reason : "", msg ? msg : "");
	else
		cli_log(c, LOG_INFO, c->pool, it->name, vp_change_name(it->change), "result=ok reason=\"%s\"%s%s",
			it->reason ? it->reason : "", it->to_base ? " base=" : "", it->to_base ? it->to_base : "");
	if (rc < 0) {
		if (c->interactive)
			fputs("\r\033[K", stderr);
		fprintf(stderr, "vdipool: %s failed: %s\n", it->name, msg ? msg : "");
	}
	if (c->quiet)
		return;
	if (c->interactive) {
		int width = 30, fill = total ? (int)((double)done / (double)total * width) : width;
		fprintf(stderr, "\r\033[K[%.*s%.*s] %zu/%zu %s", fill, "##############################",
			width - fill, "..............................", done, total, it->name);
		if (done == total)
			fputc('\n', stderr);
	} else if (c->verbose) {
		fprintf(stderr, "%zu/%zu %s: %s%s\n", done, total, it->name, vp_change_name(it->change),
			rc < 0 ? " FAILED" : "");
	}
}

/* Rollout waves are reported on stdout (unless -q): which clones, then the gate. */
static void wave(void *ctx, const vp_plan *plan, unsigned w, bool healthy)
{
	progress_state *ps = ctx;

	cli_log(ps->c, LOG_INFO, ps->c->pool, NULL, "rollout", "wave=%u waves=%u state=%s", w, plan->waves,
		healthy ? "healthy" : "started");
	if (ps->c->quiet)
		return;
	if (healthy) {
		printf("Wave %u/%u: healthy\n", w, plan->waves);
	} else {
		printf("Wave %u/%u:", w, plan->waves);
		for (size_t i = 0; i < plan->count; i++)
			if (plan->items[i].wave == w)
				printf(" %s", plan->items[i].name);
		printf("\n");
	}
	fflush(stdout);
}

static void apply_opts(cli *c, vp_apply_opts *opts)
{
	pstate = (progress_state){ c, vp_now() };
	opts->progress = progress;
	opts->progress_ctx = &pstate;
	opts->wave = wave;
}

static void print_result(cli *c, const char *verb, const vp_exec_result *res, double seconds)
{
	if (c->quiet && !res->failed)
		return;
	fprintf(res->failed ? stderr : stdout, "%s %zu clone%s in %.2f s%s", verb, res->done,
		res->done == 1 ? "" : "s", seconds, res->failed ? "" : "\n");
	if (res->failed && res->skipped)
		fprintf(stderr, "; %zu failed and %zu were not attempted, for one cause that holds for the whole "
			"host:\n  %s\nFix that, then run apply again.\n", res->failed, res->skipped, res->first_error);
	else if (res->failed)
		fprintf(stderr, "; %zu failed (first: %s). Run apply again to retry them.\n", res->failed,
			res->first_error);
}

void pool_cli_warn_accel(cli *c, vp_pool *pool)
{
	static bool warned;
	const char *why = vp_pool_accel_warning(pool);

	if (why && !warned) {
		fprintf(stderr, "warning: %s\n", why);
		warned = true;
	}
}

int pool_cli_apply_opt(cli *c, int o, const char *arg, void *ctx)
{
	vp_apply_opts *ao = ctx;
	char *end;
	long n;

	switch (o) {
	case POOL_OPT_PARALLEL:
		n = strtol(arg, &end, 10);
		if (*end || n < 1 || n > 64)
			return cli_usage_error(c, "--parallel: must be between 1 and 64, got '%s'", arg);
		ao->exec.parallel = (unsigned)n;
		return 0;
	case POOL_OPT_WAIT:
		ao->wait_lock = true;
		return 0;
	default:
		return VP_EXIT_USAGE;
	}
}

int pool_cli_run(cli *c, vp_pool *pool, const vp_plan *plan, vp_apply_opts *ao, const char *verb, double t0)
{
	vp_exec_result res;
	int rc;

	apply_opts(c, ao);
	rc = vp_pool_apply(pool, plan, ao, &res);
	pool_cli_warn_accel(c, pool);
	/* Failed clones are in the summary; anything else is reported as such. */
	if (rc < 0 && !res.failed)
		return cli_fail(c, rc);
	print_result(c, verb, &res, vp_now() - t0);
	return res.failed ? VP_EXIT_FAIL : VP_EXIT_OK;
}

/* ---- pools over many hosts ------------------------------------------------------ */

static void warn_unreachable(cli *c, vp_fleet *f)
{
	for (size_t i = 0; i < vp_fleet_host_count(f); i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);

		if (!h->reachable)
			fprintf(stderr, "warning: host '%s' (%s) is unreachable, its clones are left alone: %s\n",
				h->name, h->uri, h->error);
	}
	(void)c;
}

int fleet_cli_open(cli *c, const char *path, pool_cli_lock lock, bool need_base, long want_count,
		   bool plan, vp_spec **spec, vp_fleet **fleet)
{
	int rc = vp_spec_load(spec, path);

	*fleet = NULL;
	if (rc == 0)
		c->pool = (*spec)->pool;
	if (rc < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	rc = vp_fleet_open(fleet, *spec);
	if (rc == 0 && lock != POOL_CLI_NO_LOCK)
		rc = vp_fleet_lock(*fleet, lock == POOL_CLI_LOCK_WAIT);
	if (rc == 0)
		rc = vp_fleet_inventory(*fleet, need_base, want_count);
	if (rc == 0 && plan)
		rc = vp_fleet_plan(*fleet);
	if (rc < 0) {
		int code = cli_fail(c, rc);
		vp_fleet_free(*fleet);
		vp_spec_free(*spec);
		*fleet = NULL;
		*spec = NULL;
		return code;
	}
	if (!c->quiet)
		warn_unreachable(c, *fleet);
	return 0;
}

static void print_fleet_json(const vp_spec *spec, vp_fleet *f)
{
	vp_buf b = VP_BUF_INIT;
	bool changes = vp_fleet_has_changes(f);

	vp_buf_puts(&b, "{\"pool\":");
	vp_buf_json_str(&b, spec->pool);
	vp_buf_puts(&b, ",\"base\":");
	vp_buf_json_str(&b, vp_fleet_base_ref(f));
	vp_buf_printf(&b, ",\"changes_pending\":%s,\"placement\":\"%s\",\"hosts\":[",
		      changes ? "true" : "false", vp_placement_policy_name(vp_fleet_policy(f)));
	for (size_t i = 0; i < vp_fleet_host_count(f); i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);

		vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		vp_buf_json_str(&b, h->name);
		vp_buf_puts(&b, ",\"uri\":");
		vp_buf_json_str(&b, h->uri);
		vp_buf_printf(&b, ",\"reachable\":%s,\"error\":", h->reachable ? "true" : "false");
		vp_buf_json_str(&b, h->error);
		vp_buf_printf(&b, ",\"clones\":%zu,\"new_clones\":%zu,\"removed\":%zu,\"push_bytes\":%llu,"
			      "\"memory_bytes\":%llu,\"cpus\":%u,\"over_capacity\":%s,\"items\":[",
			      h->clones, h->new_clones, h->removed, (unsigned long long)h->push_bytes,
			      (unsigned long long)h->memory_bytes, h->cpus, h->over_capacity ? "true" : "false");
		for (size_t k = 0; h->plan && k < h->plan->count; k++) {
			const vp_plan_item *it = &h->plan->items[k];

			vp_buf_puts(&b, k ? ",{\"name\":" : "{\"name\":");
			vp_buf_json_str(&b, it->name);
			vp_buf_printf(&b, ",\"index\":%u,\"change\":\"%s\",\"reason\":", it->index,
				      vp_change_name(it->change));
			vp_buf_json_str(&b, it->reason);
			vp_buf_printf(&b, ",\"wave\":%u}", it->wave);
		}
		vp_buf_puts(&b, "]}");
	}
	vp_buf_puts(&b, "],\"unplaced\":[");
	for (size_t i = 0; i < vp_fleet_unplaced_count(f); i++) {
		const char *why = NULL, *name = vp_fleet_unplaced(f, i, &why);

		vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		vp_buf_json_str(&b, name);
		vp_buf_puts(&b, ",\"why\":");
		vp_buf_json_str(&b, why ? why : "");
		vp_buf_puts(&b, "}");
	}
	vp_buf_puts(&b, "]}\n");
	fputs(vp_buf_cstr(&b), stdout);
	vp_buf_release(&b);
}

/* With claims or spares: how many clones the pool keeps and why (clones.spares). */
static void print_claims(cli *c, const vp_spec *spec, vp_fleet *f)
{
	vp_claim_info *claims = NULL;
	size_t n = vp_fleet_claims(f, &claims);

	if (c->output == CLI_OUT_TABLE && (n || spec->clones.spares))
		printf("Claims: %zu claimed (left alone until released), %u spare%s kept beside them: %zu clones "
		       "wanted (at least clones.count %u)\n", n, spec->clones.spares,
		       spec->clones.spares == 1 ? "" : "s", vp_fleet_wanted(f), spec->clones.count);
	free(claims);
}

void fleet_cli_print_plan(cli *c, const vp_spec *spec, vp_fleet *f)
{
	const char *base = vp_fleet_base_ref(f);
	size_t counts[VP_CHANGE_MAX] = { 0 };
	char a[32];

	if (vp_fleet_host_count(f) == 1) {
		const vp_fleet_host *h = vp_fleet_host_at(f, 0);

		pool_cli_print_plan(c, spec, h->pool, h->plan);
		if (vp_fleet_rollout_note(f) && c->output == CLI_OUT_TABLE)
			printf("Rollout: %s\n", vp_fleet_rollout_note(f));
		print_claims(c, spec, f);
		return;
	}
	for (size_t i = 0; i < vp_fleet_host_count(f); i++)
		if (vp_fleet_host_at(f, i)->pool)
			pool_cli_warn_accel(c, vp_fleet_host_at(f, i)->pool);
	if (c->output == CLI_OUT_JSON) {
		print_fleet_json(spec, f);
		return;
	}
	printf("Pool '%s': %u clones of %s on %zu hosts (placement: %s)\n", spec->pool, spec->clones.count,
	       *base ? base : "(base not resolved)", vp_fleet_host_count(f),
	       vp_placement_policy_name(vp_fleet_policy(f)));
	for (size_t i = 0; i < vp_fleet_host_count(f); i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);

		if (!h->reachable) {
			printf("Host %s (%s): UNREACHABLE, %zu clone%s left alone: %s\n", h->name, h->uri,
			       h->clones, h->clones == 1 ? "" : "s", h->error);
			continue;
		}
		printf("Host %s (%s): %zu clone%s (%zu new, %zu to remove)", h->name, h->uri, h->clones,
		       h->clones == 1 ? "" : "s", h->new_clones, h->removed);
		if (h->push_bytes)
			printf(", push %s first (%s)", base, vp_fmt_bytes(h->push_bytes, a, sizeof(a)));
		if (h->over_capacity)
			printf(", OVER CAPACITY");
		if (h->error[0])
			printf(", FAILS: %s", h->error);
		printf("\n");
		for (size_t k = 0; h->plan && k < h->plan->count; k++) {
			const vp_plan_item *it = &h->plan->items[k];

			counts[it->change]++;
			if (it->change == VP_CHANGE_NONE)
				continue;
			printf("  %c %-20s %-8s%s%s%s", sign(it->change), it->name, vp_change_name(it->change),
			       *it->reason ? " (" : "", it->reason, *it->reason ? ")" : "");
			if (it->wave)
				printf(" wave %u/%u", it->wave, h->plan->waves);
			printf("\n");
		}
	}
	for (size_t i = 0; i < vp_fleet_unplaced_count(f); i++) {
		const char *why = NULL, *name = vp_fleet_unplaced(f, i, &why);

		printf("  ! %-20s no host has room: %s\n", name, why ? why : "");
	}
	for (size_t i = 0; i < vp_fleet_warning_count(f); i++)
		fprintf(stderr, "warning: %s\n", vp_fleet_warning(f, i));
	printf("Plan: %zu to create, %zu to repair, %zu to update, %zu to rebase, %zu to start, "
	       "%zu to stop, %zu to remove, %zu unchanged", counts[VP_CHANGE_CREATE],
	       counts[VP_CHANGE_REPAIR], counts[VP_CHANGE_UPDATE], counts[VP_CHANGE_REBASE],
	       counts[VP_CHANGE_START], counts[VP_CHANGE_STOP], counts[VP_CHANGE_REMOVE],
	       counts[VP_CHANGE_NONE]);
	if (vp_fleet_unplaced_count(f))
		printf(", %zu unplaced", vp_fleet_unplaced_count(f));
	printf("\n");
	if (vp_fleet_rollout_note(f))
		printf("Rollout: %s\n", vp_fleet_rollout_note(f));
	print_claims(c, spec, f);
	if (!vp_fleet_has_changes(f) && !vp_fleet_unreachable(f) && !vp_fleet_unplaced_count(f))
		printf("No changes: the pool matches its spec.\n");
}

static void push_bar(void *ctx, const char *host, uint64_t done, uint64_t total)
{
	cli *c = ctx;
	char d[32], t[32];

	if (c->quiet || !c->interactive)
		return;
	fprintf(stderr, "\r\033[Kpush %s: %s / %s", host, vp_fmt_bytes(done, d, sizeof(d)),
		vp_fmt_bytes(total, t, sizeof(t)));
	if (done >= total)
		fputc('\n', stderr);
}

int fleet_cli_run(cli *c, vp_fleet *f, vp_apply_opts *ao, const char *verb, double t0)
{
	vp_fleet_result res;
	size_t bad = 0, n = vp_fleet_host_count(f);
	int rc;

	apply_opts(c, ao);
	vp_fleet_set_push_progress(f, push_bar, c);
	rc = vp_fleet_apply(f, ao, &res);
	for (size_t i = 0; i < n; i++)
		if (vp_fleet_host_at(f, i)->pool)
			pool_cli_warn_accel(c, vp_fleet_host_at(f, i)->pool);
	if (n == 1) {
		/* One host: the output and exit codes a single-host pool always had. */
		if (rc < 0 && !res.exec.failed)
			return cli_fail(c, rc);
		print_result(c, verb, &res.exec, vp_now() - t0);
		return res.exec.failed ? VP_EXIT_FAIL : VP_EXIT_OK;
	}
	if (rc < 0)
		return cli_fail(c, rc);
	print_result(c, verb, &res.exec, vp_now() - t0);
	if (!c->quiet && (res.pushed_bytes || res.resumed_bytes)) {
		char sent[32], resumed[32];

		printf("Pushed the base: %s sent", vp_fmt_bytes(res.pushed_bytes, sent, sizeof(sent)));
		if (res.resumed_bytes)
			printf(", %s resumed after an interrupted push (already there)",
			       vp_fmt_bytes(res.resumed_bytes, resumed, sizeof(resumed)));
		printf("\n");
	}
	for (size_t i = 0; i < n; i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);

		if (!h->reachable) {
			fprintf(stderr, "vdipool: host '%s' is unreachable (its clones were left alone): %s\n",
				h->name, h->error);
			bad++;
		} else if (h->error[0]) {
			fprintf(stderr, "vdipool: host '%s' failed: %s\n", h->name, h->error);
			bad++;
		}
	}
	if (vp_fleet_unplaced_count(f)) {
		fprintf(stderr, "vdipool: %zu clone(s) could not be placed: no host has room (see plan)\n",
			vp_fleet_unplaced_count(f));
		bad++;
	}
	return res.exec.failed || bad ? VP_EXIT_FAIL : VP_EXIT_OK;
}

int cli_hosts_pins(void *ctx, vp_store_pins *pins)
{
	const cli_hosts *h = ctx;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < h->n; i++)
		rc = vp_refs_libvirt_pins((void *)h->uris[i], pins);
	return rc;
}

int cli_spec_uris(cli *c, const vp_spec *spec, cli_hosts *out)
{
	const char **uris = calloc(spec->host_count ? spec->host_count : 1, sizeof(*uris));

	if (!uris)
		return cli_fail(c, vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory"));
	for (size_t i = 0; i < spec->host_count; i++)
		uris[i] = spec->hosts[i].uri;
	*out = (cli_hosts){ uris, spec->host_count };
	return 0;
}

void cli_iso8601(char *buf, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

const char *cli_default_who(char *buf, size_t len)
{
	const char *u = getenv("USER");
	char host[128] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(buf, len, "%s@%s", u && *u ? u : "unknown", host);
	return buf;
}
