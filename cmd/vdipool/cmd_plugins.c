/* cmd_plugins.c: `vdipool plugins`: list storage plugins. */
#include "cli.h"

const char cmd_plugins_help[] =
	"usage: vdipool plugins [-o json]\n"
	"\n"
	"List the storage plugins found ($VDIPOOL_PLUGIN_PATH, then the install\n"
	"directory) with their API version, version and capabilities.\n"
	"\n"
	"Example:\n"
	"  vdipool plugins -o json\n";

int cmd_plugins(cli *c, int argc, char **argv)
{
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	(void)idx;
	return cli_not_built(c, "'vdipool plugins' arrives with a later issue");
}
