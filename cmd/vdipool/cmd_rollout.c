/* cmd_rollout.c: `vdipool rollout continue`: a rollout whose canary passed goes on. */
#include <string.h>

#include "pool_cli.h"

const char cmd_rollout_help[] =
	"usage: vdipool rollout continue [--parallel N] [--wait] POOL.yaml\n"
	"\n"
	"With rollout.canary N in the spec, a rollout to a new base version first\n"
	"moves the N lowest-index clones that change (over all hosts) as one wave\n"
	"behind the health gate, and stops there. With rollout.canary_pause: manual\n"
	"(the default) the other clones wait until this command; with a duration,\n"
	"the first apply after that long rolls them. `rollout continue` records that\n"
	"the rollout may go on, then applies like `vdipool apply` (waves of\n"
	"rollout.max_unavailable over the whole pool). Exit 1 when no canary waits.\n"
	"\n"
	"Example:\n"
	"  vdipool apply office.yaml              # canary: 5 desktops on the new version\n"
	"  vdipool rollout continue office.yaml   # the other 295, in waves\n";

int cmd_rollout(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		POOL_CLI_APPLY_LONGOPTS,
		{ 0 },
	};
	vp_apply_opts ao = { 0 };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, pool_cli_apply_opt, &ao);
	if (idx >= argc || strcmp(argv[idx], "continue"))
		return cli_usage_error(c, "expected: rollout continue POOL.yaml");
	if (idx + 2 != argc)
		return cli_usage_error(c, idx + 1 >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx + 1], ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK,
				   true, -1, false, &spec, &fleet)) != 0)
		return code;
	if ((rc = vp_fleet_rollout_continue(fleet)) < 0 || (rc = vp_fleet_plan(fleet)) < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!c->quiet && c->output == CLI_OUT_TABLE)
		fleet_cli_print_plan(c, spec, fleet);
	code = fleet_cli_run(c, fleet, &ao, "Rolled", t0);
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
