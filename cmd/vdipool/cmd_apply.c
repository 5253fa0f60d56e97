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
	vp_pool *pool = NULL;
	vp_plan *plan = NULL;
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, pool_cli_apply_opt, &ao);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = pool_cli_open(c, argv[idx], ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK, true,
				  &spec, &pool)) != 0)
		return code;
	rc = vp_pool_plan(pool, -1, &plan);
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!vp_plan_has_changes(plan)) {
		if (!c->quiet)
			printf("Pool '%s' matches its spec (%u clones of %s): nothing to do.\n", spec->pool,
			       spec->clones.count, vp_pool_base_ref(pool));
		code = VP_EXIT_OK;
		goto out;
	}
	if (!c->quiet && c->output == CLI_OUT_TABLE)
		pool_cli_print_plan(c, spec, pool, plan);
	code = pool_cli_run(c, pool, plan, &ao, "Applied", t0);
out:
	vp_plan_free(plan);
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
