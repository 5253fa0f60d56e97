/* cmd_status.c: `vdipool status`: show the pool's clones and space use. */
#include "cli.h"

const char cmd_status_help[] =
	"usage: vdipool status [-o json] POOL.yaml\n"
	"\n"
	"Show each clone (host, state, base@version, delta bytes, chain depth) and the\n"
	"pool totals (clones by state, space used against full copies).\n"
	"\n"
	"Example:\n"
	"  vdipool status -o json examples/quickstart.yaml\n";

int cmd_status(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool status' arrives with a later issue");
}
