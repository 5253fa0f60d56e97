/* cmd_revert.c: `vdipool revert`: a clone back to one of its snapshots (snapshot revert). */
#include "cli.h"

const char cmd_revert_help[] =
	"usage: vdipool revert [--yes] POOL.yaml CLONE NAME\n"
	"\n"
	"The same as 'vdipool snapshot revert': throw away what the shut-off clone\n"
	"wrote to its disk since snapshot NAME was taken (vdipool snapshot). NAME\n"
	"stays, so you can revert to it again; snapshots taken after NAME are\n"
	"removed, which needs --yes. See 'vdipool snapshot --help'.\n"
	"\n"
	"Example:\n"
	"  vdipool snapshot ci.yaml ci-007 clean && ... && vdipool revert ci.yaml ci-007 clean\n";

int cmd_revert(cli *c, int argc, char **argv)
{
	char *args[argc + 2];

	/* "revert ARGS..." runs as "snapshot revert ARGS...". */
	args[0] = (char *)"snapshot";
	args[1] = (char *)"revert";
	for (int i = 1; i < argc; i++)
		args[i + 1] = argv[i];
	args[argc + 1] = NULL;
	return cmd_snapshot(c, argc + 1, args);
}
