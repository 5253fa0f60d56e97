/* cmd_reset.c: `vdipool reset`: give clones a fresh delta. */
#include "cli.h"

const char cmd_reset_help[] =
	"usage: vdipool reset POOL.yaml CLONE...\n"
	"\n"
	"Discard each named clone's delta and give it a fresh one on the same base\n"
	"version (non-persistent desktops, CI runners after a job). Data disks stay.\n"
	"\n"
	"Example:\n"
	"  vdipool reset examples/ci-runners.yaml ci-007 ci-008\n";

int cmd_reset(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool reset' arrives with a later issue");
}
