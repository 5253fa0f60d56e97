/* cmd_apply.c: `vdipool apply`: make the pool match its spec. */
#include "pool_cli.h"

const char cmd_apply_help[] =
	"usage: vdipool apply [--parallel N] [--wait] POOL.yaml\n"
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
	"Options:\n"
	"  --parallel N   clones worked on at once (default 8)\n"
	"  --wait         wait for a concurrent apply on the same pool instead of failing\n"
	"\n"
	"Example:\n"
	"  vdipool apply examples/quickstart.yaml\n";

int cmd_apply(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		POOL_CLI_APPLY_LONGOPTS,
		{ 0 },
	};
	vp_apply_opts ao = { 0 };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	double t0 = vp_now();
	int idx, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, pool_cli_apply_opt, &ao);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx], ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK, true,
				   -1, true, &spec, &fleet)) != 0)
		return code;
	if (!vp_fleet_has_changes(fleet) && !vp_fleet_unreachable(fleet) && !vp_fleet_unplaced_count(fleet)) {
		if (!c->quiet)
			printf("Pool '%s' matches its spec (%u clones of %s): nothing to do.\n", spec->pool,
			       spec->clones.count, vp_fleet_base_ref(fleet));
		code = VP_EXIT_OK;
		goto out;
	}
	if (!c->quiet && c->output == CLI_OUT_TABLE)
		fleet_cli_print_plan(c, spec, fleet);
	code = fleet_cli_run(c, fleet, &ao, "Applied", t0);
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
