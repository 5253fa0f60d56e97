/* cmd_destroy.c: `vdipool destroy`: remove a pool's domains and deltas. */
#include "cli.h"

const char cmd_destroy_help[] =
	"usage: vdipool destroy [--yes] [--purge-data] POOL.yaml\n"
	"\n"
	"Remove the pool's domains and their deltas. Bases are kept; persistent data\n"
	"disks are kept unless --purge-data is given.\n"
	"\n"
	"Example:\n"
	"  vdipool destroy --yes examples/quickstart.yaml\n";

int cmd_destroy(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool destroy' arrives with a later issue");
}
