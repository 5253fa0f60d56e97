/* cmd_rollback.c: `vdipool rollback`: move a pool back to its previous base version. */
#include "cli.h"

const char cmd_rollback_help[] =
	"usage: vdipool rollback POOL.yaml\n"
	"\n"
	"Return every clone that moved in the last rollout to its previous base version,\n"
	"in waves of at most max_unavailable clones.\n"
	"\n"
	"Example:\n"
	"  vdipool rollback examples/office-desktops.yaml\n";

int cmd_rollback(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool rollback' arrives with a later issue");
}
