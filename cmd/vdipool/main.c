/* main.c: the vdipool command table, global options, and exit-code discipline. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "vdipool/spec.h"
#include "vdipool/plugin.h"
#include "vdipool/version.h"

const cli_command cli_commands[] = {
	{ "validate", cmd_validate, "check a pool spec; changes nothing", cmd_validate_help },
	{ "plan", cmd_plan, "show what apply would change", cmd_plan_help },
	{ "apply", cmd_apply, "make the pool match its spec", cmd_apply_help },
	{ "status", cmd_status, "show the pool's clones and space use", cmd_status_help },
	{ "destroy", cmd_destroy, "remove a pool's domains and deltas", cmd_destroy_help },
	{ "reset", cmd_reset, "give clones a fresh delta (back to pristine)", cmd_reset_help },
	{ "detach", cmd_detach, "turn linked clones into full ones (their base can go)", cmd_detach_help },
	{ "snapshot", cmd_snapshot, "take, list, revert to and remove disk snapshots of a clone", cmd_snapshot_help },
	{ "revert", cmd_revert, "a shut-off clone back to one of its snapshots (snapshot revert)", cmd_revert_help },
	{ "claim", cmd_claim, "hand out one ready clone, recorded as claimed", cmd_claim_help },
	{ "release", cmd_release, "give claimed clones back: reset, then spares again", cmd_release_help },
	{ "rebalance", cmd_rebalance, "move clones between hosts toward the placement policy", cmd_rebalance_help },
	{ "rollout", cmd_rollout, "let a rollout go on after its canary (rollout continue)", cmd_rollout_help },
	{ "rollback", cmd_rollback, "move a pool back to its previous base version", cmd_rollback_help },
	{ "base", cmd_base, "import, list, verify and remove golden base images", cmd_base_help },
	{ "push", cmd_push, "copy a base version to another host over SSH (base push)", cmd_push_help },
	{ "gc", cmd_gc, "remove unreferenced base versions and orphaned deltas", cmd_gc_help },
	{ "plugins", cmd_plugins, "list storage plugins, versions and capabilities", cmd_plugins_help },
	{ "version", cmd_version, "print version information", cmd_version_help },
	{ "help", cmd_help, "show help for a command", cmd_help_help },
	{ NULL, NULL, NULL, NULL },
};

static const char global_help[] =
	"usage: vdipool [global options] <command> [options] [arguments]\n"
	"\n"
	"Provision pools of libvirt virtual machines as linked clones of versioned\n"
	"golden base images, from a declarative YAML pool spec.\n"
	"\n"
	"Global options (accepted before or after the command):\n"
	"  -o, --output FORMAT   table (default) or json\n"
	"  -v, --verbose         say more (repeat for debug output)\n"
	"  -q, --quiet           print only errors\n"
	"      --root DIR        base store root when no spec names one\n"
	"                        (default $VDIPOOL_ROOT or /var/lib/vdipool)\n"
	"  -h, --help            show help (also: vdipool <command> --help)\n"
	"\n"
	"Exit codes: 0 ok, 1 failure, 2 invalid input or usage, 3 not supported,\n"
	"4 changes pending (plan --detailed-exitcode).\n"
	"\n"
	"Example:\n"
	"  vdipool validate examples/quickstart.yaml && vdipool plan examples/quickstart.yaml\n";

const cli_command *cli_find_command(const char *name)
{
	for (const cli_command *c = cli_commands; c->name; c++)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

static void print_command_list(FILE *f)
{
	fputs(global_help, f);
	fputs("\nCommands:\n", f);
	for (const cli_command *c = cli_commands; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
}

enum { OPT_ROOT = 0x100 };

static const struct option global_longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Applies a global option; 1 if it was one, 0 if not, <0 on a bad value. */
static int global_opt(cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 'o':
		if (!strcmp(arg, "table"))
			c->output = CLI_OUT_TABLE;
		else if (!strcmp(arg, "json"))
			c->output = CLI_OUT_JSON;
		else
			return -cli_usage_error(c, "-o: unknown output format '%s' (use table or json)", arg);
		return 1;
	case 'v':
		c->verbose++;
		return 1;
	case 'q':
		c->quiet = true;
		return 1;
	case OPT_ROOT:
		if (arg[0] != '/')
			return -cli_usage_error(c, "--root: must be an absolute path, got '%s'", arg);
		c->root = arg;
		return 1;
	default:
		return 0;
	}
}

int cli_parse(cli *c, int argc, char **argv, const char *shortopts,
	      const struct option *longopts, cli_opt_fn fn, void *ctx)
{
	struct option all[64];
	char so[128];
	size_t n = 0;

	for (const struct option *o = global_longopts; o->name; o++)
		all[n++] = *o;
	for (const struct option *o = longopts; o && o->name && n + 1 < VP_ARRAY_SIZE(all); o++)
		all[n++] = *o;
	all[n] = (struct option){ 0 };
	snprintf(so, sizeof(so), ":o:vqh%s", shortopts ? shortopts : "");

	optind = 0; /* GNU: full re-initialisation, argv[0] is the command name */
	opterr = 0;
	for (;;) {
		int opt = getopt_long(argc, argv, so, all, NULL);
		int r;

		if (opt == -1)
			break;
		if (opt == 'h') {
			fputs(c->cmd->help, stdout);
			return CLI_HELP_SHOWN;
		}
		if (opt == '?' && optopt)
			return -cli_usage_error(c, "unknown option '-%c'", optopt);
		if (opt == '?')
			return -cli_usage_error(c, "unknown option '%s'", argv[optind - 1]);
		if (opt == ':' && optopt > ' ' && optopt < 0x7f)
			return -cli_usage_error(c, "option '-%c' needs a value", optopt);
		if (opt == ':')
			return -cli_usage_error(c, "option '%s' needs a value", argv[optind - 1]);
		r = global_opt(c, opt, optarg);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		r = fn ? fn(c, opt, optarg, ctx) : VP_EXIT_USAGE;
		if (r != 0)
			return -r;
	}
	return optind;
}

int cli_usage_error(cli *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "vdipool%s%s: ", c->cmd ? " " : "", c->cmd ? c->cmd->name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vdipool %s%s--help' for more information.\n",
		c->cmd ? c->cmd->name : "", c->cmd ? " " : "");
	return VP_EXIT_USAGE;
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case VP_OK: return VP_EXIT_OK;
	case VP_EINVAL: return VP_EXIT_USAGE;
	case VP_ENOTSUP: return VP_EXIT_NOTSUP;
	default: return VP_EXIT_FAIL;
	}
}

int cli_fail(cli *c, int rc)
{
	const vp_error *e = vp_error_last();

	fprintf(stderr, "vdipool%s%s: %s\n", c->cmd ? " " : "", c->cmd ? c->cmd->name : "",
		e->message[0] ? e->message : "failed");
	if (c->verbose > 1 && e->file)
		fprintf(stderr, "  (recorded at %s:%d)\n", e->file, e->line);
	return cli_exit_code(rc);
}

int cli_not_built(cli *c, const char *what)
{
	fprintf(stderr, "vdipool %s: not implemented yet: %s\n", c->cmd->name, what);
	return VP_EXIT_NOTSUP;
}

void cli_info(cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

void cli_debug(cli *c, const char *fmt, ...)
{
	va_list ap;

	if (c->verbose < 1 || c->quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

const char cmd_help_help[] =
	"usage: vdipool help [COMMAND]\n"
	"\n"
	"Show the list of commands, or the help of one command.\n"
	"\n"
	"Example:\n"
	"  vdipool help plan\n";

int cmd_help(cli *c, int argc, char **argv)
{
	int idx;
	const cli_command *cmd;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx >= argc) {
		print_command_list(stdout);
		return VP_EXIT_OK;
	}
	cmd = cli_find_command(argv[idx]);
	if (!cmd)
		return cli_usage_error(c, "unknown command '%s'", argv[idx]);
	fputs(cmd->help, stdout);
	return VP_EXIT_OK;
}

/* Flushes stdout and turns a write error (EPIPE, ENOSPC) into a failure. */
static int finish_stdout(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (errno != EPIPE)
			fprintf(stderr, "vdipool: error writing output: %s\n", strerror(errno));
		return code ? code : VP_EXIT_FAIL;
	}
	return code;
}

int main(int argc, char **argv)
{
	cli c = { .output = CLI_OUT_TABLE };
	const char *env_root = getenv("VDIPOOL_ROOT");
	const char *ci = getenv("CI");
	int i;

	c.root = env_root && *env_root ? env_root : "/var/lib/vdipool";
	c.interactive = isatty(STDERR_FILENO) && !(ci && *ci && strcmp(ci, "false") != 0);

	/* Global options before the command: parse by hand up to the first operand. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		int opt = 0;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			print_command_list(stdout);
			return finish_stdout(VP_EXIT_OK);
		}
		if (!strcmp(a, "--version"))
			return finish_stdout(cmd_version(&c, 1, (char *[]){ "version", NULL }));
		if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
			opt = 'v';
		else if (!strcmp(a, "-q") || !strcmp(a, "--quiet"))
			opt = 'q';
		else if (!strcmp(a, "-o") || !strcmp(a, "--output"))
			opt = 'o';
		else if (!strncmp(a, "--output=", 9))
			opt = 'o', val = a + 9;
		else if (!strcmp(a, "--root"))
			opt = OPT_ROOT;
		else if (!strncmp(a, "--root=", 7))
			opt = OPT_ROOT, val = a + 7;
		else
			return cli_usage_error(&c, "unknown global option '%s'", a);
		if ((opt == 'o' || opt == OPT_ROOT) && !val) {
			if (i + 1 >= argc)
				return cli_usage_error(&c, "option '%s' needs a value", a);
			val = argv[++i];
		}
		if (global_opt(&c, opt, val) < 0)
			return VP_EXIT_USAGE;
	}
	if (i >= argc) {
		print_command_list(stderr);
		return VP_EXIT_USAGE;
	}
	/* The library reads no environment: the template and plugin paths are ours to pass
	 * (secure_getenv: a setuid or file-capability vdipool must not load a caller's plugins). */
	if (vp_spec_set_template_path(secure_getenv("VDIPOOL_TEMPLATE_PATH")) < 0) {
		fprintf(stderr, "vdipool: %s\n", vp_error_last()->message);
		return VP_EXIT_FAIL;
	}
	if (vp_plugin_set_search_path(secure_getenv("VDIPOOL_PLUGIN_PATH")) < 0) {
		fprintf(stderr, "vdipool: VDIPOOL_PLUGIN_PATH: %s\n", vp_error_last()->message);
		return VP_EXIT_USAGE;
	}
	c.cmd = cli_find_command(argv[i]);
	if (!c.cmd) {
		fprintf(stderr, "vdipool: unknown command '%s'\nTry 'vdipool --help' for the list of commands.\n",
			argv[i]);
		return VP_EXIT_USAGE;
	}
	return finish_stdout(c.cmd->fn(&c, argc - i, argv + i));
}
