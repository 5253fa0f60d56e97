/* cmd_plan.c: `vdipool plan`: what apply would change; changes nothing. */
#include "pool_cli.h"

const char cmd_plan_help[] =
	"usage: vdipool plan [--detailed-exitcode] [-o json] POOL.yaml\n"
	"\n"
	"Compare the spec with what exists (libvirt domains carrying vdipool metadata,\n"
	"the pool's deltas, the base catalog) and print what apply would do: one line\n"
	"per clone that changes, counts, bytes to write, and the disk the pool uses\n"
	"against full copies (clones.mode full: each new clone writes the base's\n"
	"allocated bytes, less where the file system reflinks; a delta.size smaller\n"
	"than the base is refused here). Changes nothing. With several hosts: a\n"
	"section per host (its clones, new ones, removals, the base bytes to push\n"
	"there first), clones no host has room for, and unreachable hosts (whose\n"
	"clones are left alone).\n"
	"\n"
	"Options:\n"
	"  --detailed-exitcode   exit 0 when nothing would change, 4 when changes are\n"
	"                        pending, 1 on failure, 2 on invalid input (for CI)\n"
	"\n"
	"Example:\n"
	"  vdipool plan --detailed-exitcode examples/ci-runners.yaml\n";

enum { OPT_DETAILED = 0x200 };

static int opt(cli *c, int o, const char *arg, void *ctx)
{
	if (o == OPT_DETAILED) {
		*(bool *)ctx = true;
		return 0;
	}
	return VP_EXIT_USAGE;
}

int cmd_plan(cli *c, int argc, char **argv)
{
	static const struct option lo[] = { { "detailed-exitcode", no_argument, NULL, OPT_DETAILED }, { 0 } };
	bool detailed = false;
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	int idx, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, opt, &detailed);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx], POOL_CLI_NO_LOCK, true, -1, true, &spec, &fleet)) != 0)
		return code;
	fleet_cli_print_plan(c, spec, fleet);
	code = detailed && vp_fleet_has_changes(fleet) ? VP_EXIT_CHANGES : VP_EXIT_OK;
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
