/* cmd_rollback.c: `vdipool rollback`: move clones back to the base version they left. */
#include "pool_cli.h"

const char cmd_rollback_help[] =
	"usage: vdipool rollback [--parallel N] [--wait] POOL.yaml\n"
	"\n"
	"Undo a rollout: every clone on the spec's base version goes back to the\n"
	"version it left (each clone's own, recorded in its domain's metadata), in\n"
	"waves of at most rollout.max_unavailable clones behind the health gate,\n"
	"like a rollout. Clones the rollout had not reached stay where they are.\n"
	"Each clone keeps its name, UUID, MAC and data disk.\n"
	"\n"
	"The rollback is recorded beside the pool's deltas until it is complete: when\n"
	"it is interrupted (a failed gate, a kill), the next rollback or apply\n"
	"continues it. Afterwards the spec still names the newer version: pin\n"
	"base.version to the version you rolled back to, or the next apply rolls the\n"
	"pool forward again. Exit 1 when there is nothing to roll back.\n"
	"\n"
	"Options:\n"
	"  --parallel N   clones worked on at once within a wave (default 8)\n"
	"  --wait         wait for a concurrent apply, gc or base rm instead of failing\n"
	"\n"
	"Example:\n"
	"  vdipool rollback examples/office-desktops.yaml\n";

int cmd_rollback(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		POOL_CLI_APPLY_LONGOPTS,
		{ 0 },
	};
	vp_apply_opts ao = { 0 };
	vp_spec *spec = NULL;
	vp_pool *pool = NULL;
	vp_plan *plan = NULL;
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, pool_cli_apply_opt, &ao);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = pool_cli_open(c, argv[idx], ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK, false,
				  &spec, &pool)) != 0)
		return code;
	rc = vp_pool_plan_rollback(pool, &plan);
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!c->quiet)
		pool_cli_print_plan(c, spec, pool, plan);
	code = pool_cli_run(c, pool, plan, &ao, "Rolled back", t0);
out:
	vp_plan_free(plan);
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
