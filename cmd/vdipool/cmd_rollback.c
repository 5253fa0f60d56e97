/* cmd_rollback.c: `vdipool rollback`: move clones back to the base version they left. */
#include <stdlib.h>

#include "pool_cli.h"

const char cmd_rollback_help[] =
	"usage: vdipool rollback [--parallel N] [--wait] POOL.yaml\n"
	"\n"
	"Move the pool's clones back to the base version they left in their last\n"
	"rollout (recorded in each domain's metadata), in waves of at most\n"
	"rollout.max_unavailable clones behind the health gate, like a rollout.\n"
	"Each clone keeps its name, UUID, MAC and data disk.\n"
	"\n"
	"The spec still names the newer version: pin base.version to the version you\n"
	"rolled back to, or the next apply rolls the pool forward again.\n"
	"\n"
	"Options:\n"
	"  --parallel N   clones worked on at once within a wave (default 8)\n"
	"  --wait         wait for a concurrent apply on the same pool instead of failing\n"
	"\n"
	"Example:\n"
	"  vdipool rollback examples/office-desktops.yaml\n";

enum { OPT_PARALLEL = 0x200, OPT_WAIT };

static int opt(cli *c, int o, const char *arg, void *ctx)
{
	vp_apply_opts *ao = ctx;
	char *end;
	long n;

	switch (o) {
	case OPT_PARALLEL:
		n = strtol(arg, &end, 10);
		if (*end || n < 1 || n > 64)
			return cli_usage_error(c, "--parallel: must be between 1 and 64, got '%s'", arg);
		ao->exec.parallel = (unsigned)n;
		return 0;
	case OPT_WAIT:
		ao->wait_lock = true;
		return 0;
	default:
		return VP_EXIT_USAGE;
	}
}

int cmd_rollback(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "parallel", required_argument, NULL, OPT_PARALLEL },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ 0 },
	};
	vp_apply_opts ao = { 0 };
	vp_exec_result res;
	vp_spec *spec = NULL;
	vp_pool *pool = NULL;
	vp_plan *plan = NULL;
	char version[128];
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, opt, &ao);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = pool_cli_open(c, argv[idx], &spec, &pool)) != 0)
		return code;
	rc = vp_pool_lock(pool, ao.wait_lock);
	if (rc == 0)
		rc = vp_pool_inventory(pool, false);
	if (rc == 0)
		rc = vp_pool_rollback_target(pool, version, sizeof(version));
	if (rc == 0)
		rc = vp_pool_use_base_version(pool, version);
	if (rc == 0)
		rc = vp_pool_plan(pool, -1, &plan);
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!c->quiet)
		pool_cli_print_plan(c, spec, pool, plan);
	pool_cli_apply_opts(c, &ao);
	rc = vp_pool_apply(pool, plan, &ao, &res);
	if (rc < 0 && !res.failed) {
		code = cli_fail(c, rc);
		goto out;
	}
	pool_cli_print_result(c, "Rolled back", &res, vp_now() - t0);
	code = res.failed ? VP_EXIT_FAIL : VP_EXIT_OK;
out:
	vp_plan_free(plan);
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
