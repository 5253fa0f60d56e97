/* cli.h: what every vdipool subcommand shares: global options, exit codes, output helpers. */
#ifndef VP_CLI_H
#define VP_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "vdipool/error.h"
#include "util/util.h"

/* Documented exit codes (README "Exit codes"). */
enum {
	VP_EXIT_OK = 0,
	VP_EXIT_FAIL = 1,    /* the operation failed */
	VP_EXIT_USAGE = 2,   /* invalid input: bad spec, bad option, bad argument */
	VP_EXIT_NOTSUP = 3,  /* not supported (not built yet, or not on this backend) */
	VP_EXIT_CHANGES = 4, /* plan --detailed-exitcode: changes are pending */
};

typedef enum { CLI_OUT_TABLE, CLI_OUT_JSON } cli_output;

typedef struct cli {
	cli_output output;
	int verbose;
	bool quiet;
	const char *root;  /* base store root: --root, $VDIPOOL_ROOT, /var/lib/vdipool */
	bool interactive;  /* stderr is a terminal and CI is not set: progress bars allowed */
	const struct cli_command *cmd;
} cli;

typedef struct cli_command {
	const char *name;
	int (*fn)(cli *c, int argc, char **argv);
	const char *summary;
	const char *help;  /* usage, what it does, options, an example */
} cli_command;

/* Called for each command-specific option; return 0, or an exit code. */
typedef int (*cli_opt_fn)(cli *c, int opt, const char *arg, void *ctx);

/* Parses the command's options together with the global ones (-o, -v, -q,
 * --root, --help). Returns the index of the first operand (>= 1), or a
 * negative value: -VP_EXIT_USAGE after printing a usage error, and -1000 after
 * printing --help (the caller exits 0). Use CLI_PARSE below. */
int cli_parse(cli *c, int argc, char **argv, const char *shortopts,
	      const struct option *longopts, cli_opt_fn fn, void *ctx);

#define CLI_HELP_SHOWN (-1000)
/* Parses or returns from the calling command with the right exit code. */
#define CLI_PARSE(idx, c, argc, argv, so, lo, fn, ctx)                                  \
	do {                                                                            \
		(idx) = cli_parse((c), (argc), (argv), (so), (lo), (fn), (ctx));        \
		if ((idx) == CLI_HELP_SHOWN)                                            \
			return VP_EXIT_OK;                                              \
		if ((idx) < 0)                                                          \
			return -(idx);                                                  \
	} while (0)

/* Prints "vdipool <cmd>: <message>" and a hint to stderr; returns VP_EXIT_USAGE. */
int cli_usage_error(cli *c, const char *fmt, ...) VP_PRINTF(2, 3);

/* Reports the library's last error for a failed call and maps its code to an exit code. */
int cli_fail(cli *c, int rc);

/* Maps a vp_errcode to an exit code (VP_EINVAL -> 2, VP_ENOTSUP -> 3, others -> 1). */
int cli_exit_code(int rc);

/* "vdipool <cmd>: not implemented yet (...)", exit 3. */
int cli_not_built(cli *c, const char *what);

/* Verbose/info output to stderr, silenced by -q; debug needs -v. */
void cli_info(cli *c, const char *fmt, ...) VP_PRINTF(2, 3);
void cli_debug(cli *c, const char *fmt, ...) VP_PRINTF(2, 3);

/* The command table, terminated by a NULL name. */
extern const cli_command cli_commands[];
const cli_command *cli_find_command(const char *name);

/* Subcommand entry points, one file each (cmd_<name>.c). */
int cmd_validate(cli *c, int argc, char **argv);
int cmd_plan(cli *c, int argc, char **argv);
int cmd_apply(cli *c, int argc, char **argv);
int cmd_status(cli *c, int argc, char **argv);
int cmd_destroy(cli *c, int argc, char **argv);
int cmd_reset(cli *c, int argc, char **argv);
int cmd_detach(cli *c, int argc, char **argv);
int cmd_snapshot(cli *c, int argc, char **argv);
int cmd_revert(cli *c, int argc, char **argv);
int cmd_claim(cli *c, int argc, char **argv);
int cmd_release(cli *c, int argc, char **argv);
int cmd_rollback(cli *c, int argc, char **argv);
int cmd_rollout(cli *c, int argc, char **argv);
int cmd_rebalance(cli *c, int argc, char **argv);
int cmd_base(cli *c, int argc, char **argv);
int cmd_push(cli *c, int argc, char **argv);
int cmd_gc(cli *c, int argc, char **argv);
int cmd_plugins(cli *c, int argc, char **argv);
int cmd_version(cli *c, int argc, char **argv);
int cmd_help(cli *c, int argc, char **argv);

/* Help texts, beside each command. */
extern const char cmd_validate_help[];
extern const char cmd_plan_help[];
extern const char cmd_apply_help[];
extern const char cmd_status_help[];
extern const char cmd_destroy_help[];
extern const char cmd_reset_help[];
extern const char cmd_detach_help[];
extern const char cmd_snapshot_help[];
extern const char cmd_revert_help[];
extern const char cmd_claim_help[];
extern const char cmd_release_help[];
extern const char cmd_rollback_help[];
extern const char cmd_rollout_help[];
extern const char cmd_rebalance_help[];
extern const char cmd_base_help[];
extern const char cmd_push_help[];
extern const char cmd_gc_help[];
extern const char cmd_plugins_help[];
extern const char cmd_version_help[];
extern const char cmd_help_help[];

#endif
