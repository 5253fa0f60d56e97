/* cmd_rebalance.c: `vdipool rebalance`: move clones between hosts toward the placement policy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool_cli.h"

const char cmd_rebalance_help[] =
	"usage: vdipool rebalance [--max-moves N] [--yes] [--parallel N] [--wait] POOL.yaml\n"
	"\n"
	"Clones never change host on their own: adding a host places only new clones\n"
	"there. rebalance moves existing ones toward what placement.policy gives when\n"
	"every clone is placed from scratch (spread: hosts evened out by capacity;\n"
	"pack: clones consolidated on the first hosts). It prints the moves; --yes\n"
	"carries them out, in waves of rollout.max_unavailable: each clone is stopped\n"
	"on its old host, its persistent data disk copied to the new host (checked by\n"
	"SHA-256 there), and it is made there with the same UUID, MAC and data on a\n"
	"fresh system delta, then started (if domain.start). The old data disk goes\n"
	"once the clone is on its new host. Nothing moves onto an unreachable,\n"
	"drained (max_clones: 0) or full host. Interrupted, the next apply finishes\n"
	"the moves that began. The pool must match its spec first (run apply).\n"
	"\n"
	"Options:\n"
	"  --max-moves N   at most N moves (default 100); the rest is reported\n"
	"  --yes           carry the moves out\n"
	"\n"
	"Exit codes: 0 balanced or moved, 1 a move or host failed, 2 usage, 4 moves\n"
	"pending (without --yes).\n"
	"\n"
	"Example:\n"
	"  vdipool rebalance office.yaml           # show the moves\n"
	"  vdipool rebalance --yes office.yaml\n";

enum { OPT_MAX = 0x400, OPT_YES };

struct rb_opts {
	vp_apply_opts ao;
	unsigned long max_moves;
	bool yes;
};

static int opt(cli *c, int o, const char *arg, void *ctx)
{
	struct rb_opts *r = ctx;
	char *end;

	switch (o) {
	case OPT_MAX:
		errno = 0;
		r->max_moves = strtoul(arg, &end, 10);
		if (errno || *end || arg[0] == '-' || r->max_moves < 1 || r->max_moves > 100000)
			return cli_usage_error(c, "--max-moves: expected 1-100000, got '%s'", arg);
		return 0;
	case OPT_YES:
	case 'y':
		r->yes = true;
		return 0;
	default:
		return pool_cli_apply_opt(c, o, arg, &r->ao);
	}
}

int cmd_rebalance(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		POOL_CLI_APPLY_LONGOPTS,
		{ "max-moves", required_argument, NULL, OPT_MAX },
		{ "yes", no_argument, NULL, OPT_YES },
		{ 0 },
	};
	struct rb_opts r = { .max_moves = 100 };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_fleet_result res;
	double t0 = vp_now();
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, "y", lo, opt, &r);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx], r.yes ? (r.ao.wait_lock ? POOL_CLI_LOCK_WAIT : POOL_CLI_LOCK)
						   : POOL_CLI_NO_LOCK,
				   true, -1, true, &spec, &fleet)) != 0)
		return code;
	if ((rc = vp_fleet_rebalance_plan(fleet, r.max_moves)) < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!vp_fleet_move_count(fleet)) {
		printf("Pool '%s' is balanced (placement: %s): nothing to move.\n", spec->pool,
		       vp_placement_policy_name(vp_fleet_policy(fleet)));
		code = VP_EXIT_OK;
		goto out;
	}
	printf("Rebalance of pool '%s' (placement: %s): %zu move%s\n", spec->pool,
	       vp_placement_policy_name(vp_fleet_policy(fleet)), vp_fleet_move_count(fleet),
	       vp_fleet_move_count(fleet) == 1 ? "" : "s");
	for (size_t i = 0; i < vp_fleet_move_count(fleet); i++) {
		const vp_placement_move *m = vp_fleet_move_at(fleet, i);

		printf("  > %-20s %s -> %s\n", m->clone, m->from_name, m->to_name);
	}
	if (vp_fleet_moves_pending(fleet))
		printf("  (%zu more moves needed: run again or raise --max-moves)\n", vp_fleet_moves_pending(fleet));
	if (!r.yes) {
		fprintf(stderr, "vdipool rebalance: nothing moved; pass --yes to move the above\n");
		code = VP_EXIT_CHANGES;
		goto out;
	}
	rc = vp_fleet_rebalance(fleet, &r.ao, &res);
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!c->quiet)
		printf("Moved %zu clone%s in %.2f s\n", vp_fleet_move_count(fleet),
		       vp_fleet_move_count(fleet) == 1 ? "" : "s", vp_now() - t0);
	code = VP_EXIT_OK;
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
