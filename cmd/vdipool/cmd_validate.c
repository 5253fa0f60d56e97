/* cmd_validate.c: `vdipool validate`: check pool specs; changes nothing. */
#include <stdio.h>

#include "cli.h"
#include "vdipool/spec.h"

const char cmd_validate_help[] =
	"usage: vdipool validate POOL.yaml...\n"
	"\n"
	"Parse and check each pool spec: unknown keys, wrong types, out-of-range\n"
	"values, duplicate keys, bad names and paths, missing templates. Errors name\n"
	"the file, line, column and key, e.g.\n"
	"  pool.yaml:14:9: clones.count: must be between 1 and 10000, got -3\n"
	"Exits 2 on the first invalid spec. Changes nothing anywhere.\n"
	"\n"
	"Example:\n"
	"  vdipool validate examples/quickstart.yaml examples/ci-runners.yaml\n";

int cmd_validate(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx >= argc)
		return cli_usage_error(c, "missing POOL.yaml");
	for (; idx < argc; idx++) {
		vp_spec *spec = NULL;
		int rc = vp_spec_load(&spec, argv[idx]);

		if (rc < 0) {
			fprintf(stderr, "%s\n", vp_error_last()->message);
			return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
		}
		if (c->output == CLI_OUT_JSON)
			printf("{\"file\":\"%s\",\"valid\":true,\"pool\":\"%s\",\"clones\":%u}\n", argv[idx],
			       spec->pool, spec->clones.count);
		else if (!c->quiet)
			printf("%s: valid (pool '%s', %u clones of %s@%s)\n", argv[idx], spec->pool,
			       spec->clones.count, spec->base.name, spec->base.version ? spec->base.version : "latest");
		vp_spec_free(spec);
	}
	return VP_EXIT_OK;
}
