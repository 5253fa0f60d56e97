/* cmd_down.c: `vdipool down`: tear down an ephemeral pool made by `vdipool up`, now or once expired. */
#include <string.h>
#include <time.h>

#include "pool_cli.h"

const char cmd_down_help[] =
	"usage: vdipool down [--expired] POOL.yaml\n"
	"\n"
	"Tear down a pool that `vdipool up` brought up: every clone of it, claimed\n"
	"or not, is forced off at once (no graceful shutdown) and undefined, its\n"
	"delta and its data disk are deleted (an ephemeral pool keeps nothing),\n"
	"then the pool's expiry record goes. Bases stay in the store (vdipool gc\n"
	"removes unused ones). Nothing asks for confirmation: that is what up's\n"
	"--ttl was for.\n"
	"\n"
	"A pool with no expiry record (one made by apply) is refused, so a\n"
	"long-lived pool is never torn down by a pipeline's last step; use\n"
	"`vdipool destroy --yes` for those. If down fails halfway (a host\n"
	"unreachable), the record stays and down (or the timer) finishes later.\n"
	"\n"
	"--expired: only if the pool's expiry has passed; else it is left alone\n"
	"(exit 0). `vdipool release --expired POOL.yaml` does the same, so one\n"
	"timer reaps expired claims and expired pools, e.g. every 5 minutes:\n"
	"  for f in /etc/vdipool/ci/*.yaml; do vdipool -q release --expired \"$f\"; done\n"
	"The spec file must still be there (up records its path, see up --help).\n"
	"\n"
	"Exit codes: 0 torn down, or (--expired) nothing expired; 1 a clone or a\n"
	"host failed (the record stays: run it again); 2 bad usage or spec, or a\n"
	"pool that up did not make: nothing was changed.\n"
	"\n"
	"Examples:\n"
	"  vdipool down ci.yaml\n"
	"  vdipool down --expired ci.yaml\n";

enum { OPT_EXPIRED = 0x3d0 };

static int down_opt(cli *c, int o, const char *arg, void *ctx)
{
	(void)c;
	(void)arg;
	if (o != OPT_EXPIRED)
		return VP_EXIT_USAGE;
	*(bool *)ctx = true;
	return 0;
}


/* Before anything is locked or changed: *go when the pool is to be torn down, else the exit code. */
static int check_record(cli *c, const vp_spec *spec, bool only_expired, bool quiet, bool *go)
{
	vp_pool_expiry e;
	int64_t now = (int64_t)time(NULL);
	char when[32];
	int rc;

	*go = false;
	if ((rc = vp_pool_expiry_read(spec, &e)) < 0)
		return cli_fail(c, rc);
	if (!e.present) {
		if (only_expired) {
			if (!c->quiet && !quiet)
				printf("Pool '%s' was not brought up by vdipool up (no expiry): left alone.\n", spec->pool);
			return VP_EXIT_OK;
		}
		fprintf(stderr, "vdipool down: pool '%s' was not brought up by vdipool up (no expiry record in "
				"%s/placement/); vdipool destroy --yes removes a pool; nothing was changed\n",
			spec->pool, spec->storage.state_dir);
		return VP_EXIT_USAGE;
	}
	cli_iso8601(when, sizeof(when), e.expires);
	if (only_expired && e.expires > now) {
		if (!c->quiet && !quiet)
			printf("Pool '%s' expires at %s (in %llds): left alone.\n", spec->pool, when,
			       (long long)(e.expires - now));
		return VP_EXIT_OK;
	}
	if (!c->quiet && c->output == CLI_OUT_TABLE)
		printf("Tearing down pool '%s' (up for %s%s%s)\n", spec->pool, e.by,
		       e.expires <= now ? ", expired at " : ", until ", when);
	*go = true;
	return VP_EXIT_OK;
}

int down_pool(cli *c, const char *spec_path, bool only_expired, bool quiet_if_not, bool *went)
{
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_apply_opts ao = { .wait_lock = true };
	size_t removed = 0;
	double t0 = vp_now();
	bool go, quiet = c->quiet;
	int rc, code;

	*went = false;
	if ((rc = vp_spec_load(&spec, spec_path)) < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	code = check_record(c, spec, only_expired, quiet_if_not, &go);
	vp_spec_free(spec);
	spec = NULL;
	if (!go)
		return code;
	*went = true;
	/* Locked, the world read for removal (claimed clones too), data disks included. */
	if ((code = fleet_cli_open(c, spec_path, POOL_CLI_LOCK_WAIT, false, 0, true, &spec, &fleet)) != 0)
		return code;
	vp_fleet_plan_purge_data(fleet);
	vp_fleet_stop_now(fleet); /* nobody waits for a clean shutdown of a pool that is going */
	for (size_t i = 0; i < vp_fleet_host_count(fleet); i++)
		removed += vp_fleet_host_at(fleet, i)->removed;
	code = VP_EXIT_OK;
	if (vp_fleet_has_changes(fleet) || vp_fleet_unreachable(fleet)) {
		c->quiet = quiet || c->output == CLI_OUT_JSON;
		code = fleet_cli_run(c, fleet, &ao, "Destroyed", t0);
		c->quiet = quiet;
	}
	/* The record goes last, and only when everything went: else down or the timer comes back. */
	if (code == VP_EXIT_OK && (rc = vp_pool_expiry_clear(spec)) < 0)
		code = cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON)
		printf("{\"pool\":\"%s\",\"down\":%s,\"removed\":%zu,\"seconds\":%.2f}\n", spec->pool,
		       code == VP_EXIT_OK ? "true" : "false", removed, vp_now() - t0);
	else if (code == VP_EXIT_OK && !c->quiet)
		printf("Pool '%s' is down.\n", spec->pool);
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}

int cmd_down(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "expired", no_argument, NULL, OPT_EXPIRED },
		{ 0 },
	};
	bool expired = false, went;
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, down_opt, &expired);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	return down_pool(c, argv[idx], expired, false, &went);
}
