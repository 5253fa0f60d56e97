/* cmd_destroy.c: `vdipool destroy`: remove a pool's domains and deltas; bases (and data) stay. */
#include "pool_cli.h"

const char cmd_destroy_help[] =
	"usage: vdipool destroy --yes [--purge-data] POOL.yaml\n"
	"\n"
	"Remove the pool's domains and their deltas (every clone whose domain carries\n"
	"this pool's metadata, and the pool's deltas). Bases are kept; persistent data\n"
	"disks are kept unless --purge-data is given. Without --yes, prints what it\n"
	"would remove and exits 2.\n"
	"\n"
	"Options:\n"
	"  --yes          really remove\n"
	"  --purge-data   also delete every persistent data disk of the pool, those of\n"
	"                 clones removed earlier (scale-down, plain destroy) too\n"
	"\n"
	"Example:\n"
	"  vdipool destroy --yes examples/quickstart.yaml\n";

enum { OPT_YES = 0x200, OPT_PURGE };

typedef struct destroy_opts {
	bool yes, purge;
} destroy_opts;

static int opt(cli *c, int o, const char *arg, void *ctx)
{
	destroy_opts *d = ctx;

	if (o == OPT_YES || o == 'y')
		d->yes = true;
	else if (o == OPT_PURGE)
		d->purge = true;
	else
		return VP_EXIT_USAGE;
	return 0;
}

int cmd_destroy(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "yes", no_argument, NULL, OPT_YES },
		{ "purge-data", no_argument, NULL, OPT_PURGE },
		{ 0 },
	};
	destroy_opts d = { 0 };
	vp_apply_opts ao = { 0 };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	double t0 = vp_now();
	int idx, code;

	CLI_PARSE(idx, c, argc, argv, "y", lo, opt, &d);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx], POOL_CLI_LOCK, false, 0, true, &spec, &fleet)) != 0)
		return code;
	if (d.purge)
		vp_fleet_plan_purge_data(fleet);
	if (!vp_fleet_has_changes(fleet) && !vp_fleet_unreachable(fleet)) {
		if (!c->quiet)
			printf("Pool '%s' has nothing to destroy.\n", spec->pool);
		code = VP_EXIT_OK;
		goto out;
	}
	if (!c->quiet || !d.yes)
		fleet_cli_print_plan(c, spec, fleet);
	if (!d.yes) {
		fprintf(stderr, "vdipool destroy: nothing removed; pass --yes to remove the above\n");
		code = VP_EXIT_USAGE;
		goto out;
	}
	code = fleet_cli_run(c, fleet, &ao, "Destroyed", t0);
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
