/* cmd_validate.c: `vdipool validate`: check a pool spec. */
#include "cli.h"

const char cmd_validate_help[] =
	"usage: vdipool validate POOL.yaml...\n"
	"\n"
	"Parse and check each pool spec: unknown keys, wrong types, out-of-range\n"
	"values, duplicate keys, bad names and paths, missing templates. Errors name\n"
	"the file, line, column and key. Changes nothing anywhere.\n"
	"\n"
	"Example:\n"
	"  vdipool validate examples/quickstart.yaml\n";

int cmd_validate(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool validate' arrives with a later issue");
}
