/* cmd_apply.c: `vdipool apply`: make the pool match its spec, and optionally wait until it is ready. */
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "metrics.h"
#include "pool_cli.h"

const char cmd_apply_help[] =
	"usage: vdipool apply [--parallel N] [--wait] [--wait ready [--timeout D]] POOL.yaml\n"
	"\n"
	"Create, repair, start, stop and remove clones until the pool matches its spec.\n"
	"The plan is printed first. A second apply with nothing to do changes nothing\n"
	"and exits 0, so a timer can run it often. Interrupted (Ctrl-C, kill -9, host\n"
	"error), the next apply finishes the job.\n"
	"\n"
	"With several hosts, each host is worked on in parallel: the base goes first to\n"
	"hosts that lack it (distribution.max_parallel_hosts at a time, checked by\n"
	"SHA-256 on the host; with distribution.fanout hosts that have it push it on,\n"
	"see vdipool push --help), then each host makes its clones. A host that cannot be\n"
	"reached is reported and its clones are left alone (never made elsewhere);\n"
	"the rest of the pool is applied and apply exits 1 naming the host.\n"
	"\n"
	"--wait ready: after the apply, wait until every clone the spec wants running\n"
	"(domain.start: true) is ready: its domain runs, it has an address (the DHCP\n"
	"lease of its libvirt network, else the guest agent's), and the spec's\n"
	"readiness.command exits 0 (run on this machine with VDIPOOL_CLONE and\n"
	"VDIPOOL_ADDRESS set; no command: running with an address is ready). Clones are\n"
	"looked at again with a growing pause (0.5 s to 5 s). Exit 0 when all are ready;\n"
	"exit 1 at the timeout, naming each clone that is not and why (not running, no\n"
	"address, or the check's output). A pool with domain.network: none can never\n"
	"have addresses: refused at once (exit 2), before anything changes.\n"
	"\n"
	"Options:\n"
	"  --parallel N   clones worked on at once (default 8)\n"
	"  --wait         wait for a concurrent apply, gc or base rm instead of failing\n"
	"  --wait ready   then wait until every clone is ready (also --wait=ready)\n"
	"  --timeout D    how long --wait ready waits, and how long spares to be parked\n"
	"                 are waited for: 90, 30s, 5m, 1h30m (default 10m)\n"
	"  --textfile DIR after the apply, write its metrics (duration, result) to\n"
	"                 DIR/vdipool_POOL_apply.prom and the pool's (status -o\n"
	"                 prometheus) to DIR/vdipool_POOL.prom, atomically, for\n"
	"                 node_exporter (default: textfile_dir of vdipool.conf)\n"
	"\n"
	"Claims (vdipool claim): claimed clones are left alone (plan shows them as\n"
	"'claimed'); claims whose --ttl passed are released first (a fresh delta, a\n"
	"spare again); with clones.spares: N the pool keeps max(clones.count,\n"
	"claimed + N) clones. Claimed clones are not waited for by --wait ready.\n"
	"With clones.parked: P, P of the unclaimed clones are parked: booted until\n"
	"ready, then saved to disk (libvirt managed save); apply waits for them (up to\n"
	"--timeout) and keeps P parked; a claim restores one when no running spare is\n"
	"ready.\n"
	"\n"
	"Examples:\n"
	"  vdipool apply examples/quickstart.yaml\n"
	"  vdipool apply -v --wait ready --timeout 5m examples/quickstart.yaml\n";

enum { OPT_TIMEOUT = 0x380, OPT_TEXTFILE };

typedef struct apply_args {
	vp_apply_opts ao;
	bool wait_ready;
	long timeout;      /* seconds; -1: not given */
	int argc;
	char **argv;
} apply_args;

static int apply_opt(cli *c, int o, const char *arg, void *ctx)
{
	apply_args *a = ctx;

	switch (o) {
	case POOL_OPT_WAIT:
		if (arg) {
			if (strcmp(arg, "ready") != 0)
				return cli_usage_error(c, "--wait=%s: the only thing to wait for is 'ready'", arg);
			a->wait_ready = true;
		} else if (optind < a->argc && !strcmp(a->argv[optind], "ready")) {
			optind++; /* `--wait ready`: the word belongs to the option */
			a->wait_ready = true;
		} else {
			a->ao.wait_lock = true;
		}
		return 0;
	case OPT_TEXTFILE:
		if (arg[0] != '/')
			return cli_usage_error(c, "--textfile: must be an absolute path, got '%s'", arg);
		c->textfile_dir = arg;
		return 0;
	case OPT_TIMEOUT:
		a->timeout = (long)vp_spec_parse_duration(arg);
		if (a->timeout < 1)
			return cli_usage_error(c, "--timeout: expected a duration like '90', '30s', '10m' or "
					       "'1h30m' (at least 1s), got '%s'", arg);
		return 0;
	default:
		return pool_cli_apply_opt(c, o, arg, &a->ao);
	}
}

typedef struct ready_progress {
	cli *c;
	bool bar;          /* a line redrawn on the terminal is showing */
} ready_progress;

static void ready_progress_fn(void *ctx, const vp_ready_clone *rc, size_t ready, size_t total)
{
	ready_progress *rp = ctx;
	cli *c = rp->c;

	if (c->quiet)
		return;
	if (rc && c->verbose) {
		if (rp->bar)
			fputs("\r\033[K", stderr);
		rp->bar = false;
		fprintf(stderr, "ready: %s on %s at %s after %.1f s (%zu/%zu)\n", rc->name, rc->host, rc->address,
			rc->seconds, ready, total);
	}
	if (!rc && c->interactive) {
		int width = 30, fill = total ? (int)((double)ready / (double)total * width) : width;

		fprintf(stderr, "\r\033[K[%.*s%.*s] %zu/%zu ready", fill, "##############################",
			width - fill, "..............................", ready, total);
		rp->bar = true;
	}
}

/* After the apply: until every clone is ready or the timeout; the exit code. */
static int wait_ready(cli *c, const vp_spec *spec, vp_fleet *fleet, long timeout)
{
	ready_progress rp = { .c = c };
	vp_ready_opts ro = { .timeout = (double)timeout, .progress = ready_progress_fn, .ctx = &rp };
	vp_ready_report *r = NULL;
	int rc, code;

	if (!c->quiet && c->output == CLI_OUT_TABLE && spec->domain.start)
		printf("Waiting up to %lds for %u clone%s to be ready...\n", timeout, spec->clones.count,
		       spec->clones.count == 1 ? "" : "s");
	rc = vp_fleet_wait_ready(fleet, &ro, &r);
	if (rp.bar)
		fputc('\n', stderr);
	if (rc < 0 && (!r || rc != VP_EIO)) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (c->output == CLI_OUT_JSON) {
		vp_buf b = VP_BUF_INIT;

		vp_buf_printf(&b, "{\"ready\":%zu,\"clones\":%zu,\"claimed\":%zu,\"parked\":%zu,\"seconds\":%.1f,"
			      "\"not_ready\":[", r->ready, r->count, r->claimed, r->parked, r->seconds);
		for (size_t i = 0, k = 0; i < r->count; i++) {
			if (r->clones[i].state == VP_READY_YES || r->clones[i].claimed || r->clones[i].parked)
				continue;
			vp_buf_puts(&b, k++ ? ",{\"name\":" : "{\"name\":");
			vp_buf_json_str(&b, r->clones[i].name);
			vp_buf_puts(&b, ",\"state\":");
			vp_buf_json_str(&b, vp_ready_state_name(r->clones[i].state));
			vp_buf_puts(&b, ",\"why\":");
			vp_buf_json_str(&b, r->clones[i].why);
			vp_buf_puts(&b, "}");
		}
		vp_buf_puts(&b, "]}\n");
		fputs(vp_buf_cstr(&b), stdout);
		vp_buf_release(&b);
	} else if (!c->quiet && rc == 0) {
		printf("Ready: %zu of %zu clones in %.1f s", r->ready, r->count, r->seconds);
		if (r->parked)
			printf(", %zu parked (saved to disk when ready)", r->parked);
		if (r->claimed)
			printf(", %zu claimed and not ready (their holders': not waited for)", r->claimed);
		printf("\n");
	}
	if (rc == 0) {
		code = VP_EXIT_OK;
		goto out;
	}
	fprintf(stderr, "vdipool apply: %zu of %zu clones not ready after %lds:\n",
		r->count - r->ready - r->claimed - r->parked, r->count, timeout);
	for (size_t i = 0; i < r->count; i++)
		if (r->clones[i].state != VP_READY_YES && !r->clones[i].claimed && !r->clones[i].parked)
			fprintf(stderr, "  %s: %s: %s\n", r->clones[i].name, vp_ready_state_name(r->clones[i].state),
				r->clones[i].why);
	code = VP_EXIT_FAIL;
out:
	vp_ready_report_free(r);
	return code;
}

static void park_progress(void *ctx, const char *name, const char *host, bool parked, double seconds)
{
	cli *c = ctx;

	if (c->verbose && !c->quiet)
		fprintf(stderr, "%s: %s on %s after %.1f s\n", parked ? "parked" : "resumed", name, host, seconds);
}

/* clones.parked: spares booted until ready, then saved to disk; parked ones beyond it resumed. */
static int park(cli *c, const vp_spec *spec, vp_fleet *fleet, long timeout)
{
	vp_park_opts po = { .timeout = (double)timeout, .progress = park_progress, .ctx = c };
	vp_park_report r;
	int rc = vp_fleet_park(fleet, &po, &r);

	if (rc < 0)
		return cli_fail(c, rc);
	if (!c->quiet && c->output == CLI_OUT_TABLE && (r.saved || r.resumed))
		printf("Parked: %zu of %u spares saved to disk (%zu now, %zu resumed) in %.1f s\n", r.parked,
		       spec->clones.parked, r.saved, r.resumed, r.seconds);
	return VP_EXIT_OK;
}

/* Claims whose --ttl passed are released (reset, spares again) before the pool is planned, so the
 * plan counts them as spares. The lock is held; the fleet is read and planned again. */
static int release_expired(cli *c, vp_fleet *fleet, double t0)
{
	vp_claim_info *claims = NULL;
	size_t n = vp_fleet_claims(fleet, &claims), ngo = 0;
	const char **go = calloc(n + 1, sizeof(*go));
	vp_apply_opts ao = { 0 };
	int rc, code = VP_EXIT_OK;

	for (size_t i = 0; go && i < n; i++)
		if (claims[i].until && claims[i].until <= (int64_t)time(NULL)) {
			go[ngo++] = claims[i].name;
			cli_log(c, LOG_INFO, c->pool, claims[i].name, "release", "reason=\"%s\" by=\"%s\"",
				strcmp(claims[i].by, VP_CLAIM_REBUILD) ? "claim expired" : "parked spare rebuilt",
				claims[i].by);
			if (c->quiet)
				continue;
			if (!strcmp(claims[i].by, VP_CLAIM_REBUILD))
				printf("rebuilding %s: a parked spare whose saved state could not be restored\n",
				       claims[i].name);
			else
				printf("releasing %s: the claim of %s expired\n", claims[i].name, claims[i].by);
		}
	if (!ngo)
		goto out;
	if ((rc = vp_fleet_plan_release(fleet, go, ngo)) < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	code = fleet_cli_run(c, fleet, &ao, "Released", t0);
	if (code == VP_EXIT_OK && ((rc = vp_fleet_inventory(fleet, true, -1)) < 0 || (rc = vp_fleet_plan(fleet)) < 0))
		code = cli_fail(c, rc);
out:
	free(go);
	free(claims);
	return code;
}

int cmd_apply(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "parallel", required_argument, NULL, POOL_OPT_PARALLEL },
		{ "wait", optional_argument, NULL, POOL_OPT_WAIT },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "textfile", required_argument, NULL, OPT_TEXTFILE },
		{ 0 },
	};
	apply_args a = { .timeout = -1, .argc = argc, .argv = argv };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	double t0 = vp_now();
	int idx, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, apply_opt, &a);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if (a.timeout >= 0 && !a.wait_ready)
		return cli_usage_error(c, "--timeout goes with --wait ready");
	if (a.timeout < 0)
		a.timeout = 600;
	if ((code = fleet_cli_open(c, argv[idx], a.ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK, true,
				   -1, true, &spec, &fleet)) != 0)
		return code;
	if (a.wait_ready && !spec->domain.network) {
		/* Refused before anything changes: such clones can never be ready. */
		fprintf(stderr, "vdipool apply: --wait ready: pool '%s' has domain.network: none, so its clones "
				"have no interface and can never get an address (a clone is ready only with one); "
				"nothing was changed\n", spec->pool);
		code = VP_EXIT_USAGE;
		goto out;
	}
	if ((code = release_expired(c, fleet, t0)) != VP_EXIT_OK)
		goto out;
	if (!vp_fleet_has_changes(fleet) && !vp_fleet_unreachable(fleet) && !vp_fleet_unplaced_count(fleet)) {
		if (!c->quiet)
			printf("Pool '%s' matches its spec (%u clones of %s): nothing to do.\n", spec->pool,
			       spec->clones.count, vp_fleet_base_ref(fleet));
		code = VP_EXIT_OK;
	} else {
		if (!c->quiet && c->output == CLI_OUT_TABLE)
			fleet_cli_print_plan(c, spec, fleet);
		code = fleet_cli_run(c, fleet, &a.ao, "Applied", t0);
	}
	cli_log(c, code == VP_EXIT_OK ? LOG_INFO : LOG_ERR, spec->pool, NULL, "apply", "result=%s seconds=%.2f",
		code == VP_EXIT_OK ? "ok" : "failed", vp_now() - t0);
	if (c->textfile_dir) {
		int mc = cli_metrics_after_apply(c, spec, fleet, vp_now() - t0, code == VP_EXIT_OK);

		if (code == VP_EXIT_OK)
			code = mc;
	}
	if (code == VP_EXIT_OK && (a.wait_ready || spec->domain.start)) {
		/* Waiting changes nothing: claims (vdipool claim) and other applies may go on meanwhile.
		 * Parking takes the lock for each save only. */
		vp_fleet_unlock_pool(fleet);
		if (spec->domain.start)
			code = park(c, spec, fleet, a.timeout);
		if (code == VP_EXIT_OK && a.wait_ready)
			code = wait_ready(c, spec, fleet, a.timeout);
	}
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
