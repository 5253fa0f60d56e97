/* cmd_reset.c: `vdipool reset`: fresh deltas for named clones (back to pristine). */
#include "pool_cli.h"

const char cmd_reset_help[] =
	"usage: vdipool reset POOL.yaml CLONE...\n"
	"\n"
	"Discard each named clone's delta and give it a fresh one on the base version\n"
	"it is on, even in the middle of a rollout (non-persistent desktops, CI runners\n"
	"after a job); with clones.mode full, a fresh full copy of that version, of\n"
	"delta.size. Running clones are stopped and started again; identity (UUID,\n"
	"MAC) and data disks stay.\n"
	"\n"
	"Example:\n"
	"  vdipool reset examples/ci-runners.yaml ci-007 ci-008\n";

int cmd_reset(cli *c, int argc, char **argv)
{
	vp_apply_opts ao = { 0 };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (argc - idx < 2)
		return cli_usage_error(c, "expected POOL.yaml and at least one CLONE");
	if ((code = fleet_cli_open(c, argv[idx], POOL_CLI_LOCK, true, -1, false, &spec, &fleet)) != 0)
		return code;
	rc = vp_fleet_plan_reset(fleet, (const char *const *)argv + idx + 1, (size_t)(argc - idx - 1));
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	code = fleet_cli_run(c, fleet, &ao, "Reset", t0);
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
