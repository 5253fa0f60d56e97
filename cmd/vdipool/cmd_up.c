/* cmd_up.c: `vdipool up`: an ephemeral pool for a CI pipeline: apply, wait until ready, record
 * when the whole pool expires, and print what the pipeline's steps need. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool_cli.h"

const char cmd_up_help[] =
	"usage: vdipool up --ttl D [--for NAME] [--timeout D] [--no-wait] [--parallel N] POOL.yaml\n"
	"\n"
	"Bring up an ephemeral pool, e.g. for one CI pipeline: apply the spec, wait\n"
	"until every clone is ready (running, an address, readiness.command passes;\n"
	"see apply --wait ready), and record when the whole pool expires. The expiry\n"
	"is written (temporary name, fsync, rename) before any clone is made, to\n"
	"STATE_DIR/placement/POOL.expires (storage.state_dir, default the bases tier),\n"
	"so a pipeline that dies, or a vdipool killed halfway, still leaves a pool that\n"
	"is torn down on time.\n"
	"\n"
	"Tear it down with `vdipool down POOL.yaml` (the pipeline's last step). An\n"
	"expired pool is torn down by `vdipool down --expired POOL.yaml` or\n"
	"`vdipool release --expired POOL.yaml` (the timer command that also releases\n"
	"expired claims). `apply` leaves the expiry alone. `up` again on a pool that\n"
	"is up applies the spec and moves its expiry to now + --ttl.\n"
	"\n"
	"Output: on stdout one line per clone, NAME HOST ADDRESS, after a summary on\n"
	"stderr; with -o json one object:\n"
	"  {\"pool\",\"spec\",\"base\",\"expires\" (ISO 8601 UTC),\"expires_epoch\",\n"
	"   \"ttl_seconds\",\"ready\",\"count\",\"seconds\",\n"
	"   \"clones\":[{\"name\",\"host\",\"uri\",\"ready\",\"why\",\"address\",\n"
	"               \"addresses\",\"ssh\"}],\"down\"}\n"
	"(\"ssh\" is \"ssh USER@ADDRESS\": the guest's user is the image's business;\n"
	"\"down\" is the command that tears the pool down).\n"
	"\n"
	"Options:\n"
	"  --ttl D        required: the pool expires D after now (90, 30m, 2h, 1h30m;\n"
	"                 1s to 30 days)\n"
	"  --for NAME     who it is for, recorded (default: USER@HOSTNAME)\n"
	"  --timeout D    how long to wait for the clones to be ready (default 10m)\n"
	"  --no-wait      apply and record, then one look at each clone instead of\n"
	"                 waiting (--wait ready, the default, is accepted too)\n"
	"  --parallel N   clones worked on at once (default 8)\n"
	"\n"
	"Exit codes: 0 up and every clone ready; 1 the apply failed or a clone was not\n"
	"ready within --timeout (the JSON names each and why; the pool stays until\n"
	"down or its expiry); 2 bad usage, a bad --ttl or spec, or a pool whose clones\n"
	"can never be ready (domain.network: none, domain.start: false): nothing is\n"
	"changed.\n"
	"\n"
	"Examples:\n"
	"  vdipool up --ttl 2h -o json ci.yaml > pool.json\n"
	"  ADDR=$(jq -r '.clones[0].address' pool.json)\n"
	"  vdipool down ci.yaml\n";

enum { OPT_TTL = 0x3c0, OPT_FOR, OPT_TIMEOUT, OPT_NO_WAIT };

#define UP_TTL_MAX (30L * 24 * 3600)

typedef struct up_args {
	vp_apply_opts ao;
	long ttl, timeout;
	const char *who;
	bool no_wait;
	int argc;
	char **argv;
} up_args;

static int up_opt(cli *c, int o, const char *arg, void *ctx)
{
	up_args *a = ctx;
	long v;

	switch (o) {
	case OPT_TTL:
		v = (long)vp_spec_parse_duration(arg);
		if (v < 1 || v > UP_TTL_MAX)
			return cli_usage_error(c, "--ttl: expected a duration from 1s to 30 days like '90', '30m', '2h' "
					       "or '1h30m', got '%s'; nothing was changed", arg);
		a->ttl = v;
		return 0;
	case OPT_TIMEOUT:
		v = (long)vp_spec_parse_duration(arg);
		if (v < 1)
			return cli_usage_error(c, "--timeout: expected a duration like '90', '30s', '10m' or '1h30m' "
					       "(at least 1s), got '%s'", arg);
		a->timeout = v;
		return 0;
	case OPT_FOR:
		if (strlen(arg) > 200 || strchr(arg, '\n'))
			return cli_usage_error(c, "--for: one line of at most 200 characters");
		a->who = arg;
		return 0;
	case OPT_NO_WAIT:
		a->no_wait = true;
		return 0;
	case POOL_OPT_WAIT:
		/* `--wait ready` is what up does anyway; the word belongs to the option. */
		if (arg && strcmp(arg, "ready") != 0)
			return cli_usage_error(c, "--wait=%s: the only thing to wait for is 'ready'", arg);
		if (!arg && optind < a->argc && !strcmp(a->argv[optind], "ready"))
			optind++;
		return 0;
	default:
		return pool_cli_apply_opt(c, o, arg, &a->ao);
	}
}


static const char *uri_of(vp_fleet *f, const char *host)
{
	for (size_t i = 0; i < vp_fleet_host_count(f); i++)
		if (host && !strcmp(vp_fleet_host_at(f, i)->name, host))
			return vp_fleet_host_at(f, i)->uri;
	return "";
}

static void ready_line(void *ctx, const vp_ready_clone *rc, size_t ready, size_t total)
{
	cli *c = ctx;

	if (rc && c->verbose && !c->quiet)
		fprintf(stderr, "ready: %s on %s at %s after %.1f s (%zu/%zu)\n", rc->name, rc->host, rc->address,
			rc->seconds, ready, total);
}

static void print_json(vp_fleet *f, const vp_spec *spec, const char *spec_path, const vp_pool_expiry *e,
		       long ttl, const vp_ready_report *r)
{
	vp_buf b = VP_BUF_INIT;
	char exp[32];
	VP_AUTOFREE char *down = vp_strdup_printf("vdipool down %s", spec_path);

	cli_iso8601(exp, sizeof(exp), e->expires);
	vp_buf_puts(&b, "{\"pool\":");
	vp_buf_json_str(&b, spec->pool);
	vp_buf_puts(&b, ",\"spec\":");
	vp_buf_json_str(&b, spec_path);
	vp_buf_puts(&b, ",\"base\":");
	vp_buf_json_str(&b, vp_fleet_base_ref(f));
	vp_buf_printf(&b, ",\"expires\":\"%s\",\"expires_epoch\":%lld,\"ttl_seconds\":%ld,\"ready\":%zu,"
		      "\"count\":%zu,\"seconds\":%.1f,\"clones\":[", exp, (long long)e->expires, ttl, r->ready,
		      r->count, r->seconds);
	for (size_t i = 0; i < r->count; i++) {
		const vp_ready_clone *k = &r->clones[i];
		bool ok = k->state == VP_READY_YES;

		vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		vp_buf_json_str(&b, k->name);
		vp_buf_puts(&b, ",\"host\":");
		vp_buf_json_str(&b, k->host ? k->host : "");
		vp_buf_puts(&b, ",\"uri\":");
		vp_buf_json_str(&b, uri_of(f, k->host));
		vp_buf_printf(&b, ",\"ready\":%s,\"why\":", ok ? "true" : "false");
		if (ok)
			vp_buf_puts(&b, "null");
		else
			vp_buf_json_str(&b, k->why);
		if (k->address[0]) {
			char ssh[96];

			snprintf(ssh, sizeof(ssh), "ssh USER@%s", k->address);
			vp_buf_puts(&b, ",\"address\":");
			vp_buf_json_str(&b, k->address);
			vp_buf_puts(&b, ",\"addresses\":[");
			vp_buf_json_str(&b, k->address);
			vp_buf_puts(&b, "],\"ssh\":");
			vp_buf_json_str(&b, ssh);
		} else {
			vp_buf_puts(&b, ",\"address\":null,\"addresses\":[],\"ssh\":null");
		}
		vp_buf_puts(&b, "}");
	}
	vp_buf_puts(&b, "],\"down\":");
	vp_buf_json_str(&b, down ? down : "vdipool down POOL.yaml");
	vp_buf_puts(&b, "}\n");
	fputs(vp_buf_cstr(&b), stdout);
	vp_buf_release(&b);
}

static void print_table(cli *c, const vp_spec *spec, const char *spec_path, const vp_pool_expiry *e, long ttl,
			const vp_ready_report *r)
{
	char exp[32];

	cli_iso8601(exp, sizeof(exp), e->expires);
	if (!c->quiet)
		fprintf(stderr, "Pool '%s' is up until %s (--ttl %lds): %zu of %zu clones ready after %.1f s\n",
			spec->pool, exp, ttl, r->ready, r->count, r->seconds);
	for (size_t i = 0; i < r->count; i++)
		printf("%s %s %s\n", r->clones[i].name, r->clones[i].host ? r->clones[i].host : "-",
		       r->clones[i].address[0] ? r->clones[i].address : "-");
	if (!c->quiet)
		fprintf(stderr, "Tear it down: vdipool down %s\n", spec_path);
}

/* Each host's warming of the base (clones.warm_base), said with -v. */
static void say_warmed(cli *c, vp_fleet *f)
{
	for (size_t i = 0; i < vp_fleet_host_count(f); i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);
		uint64_t bytes;
		double s;
		const char *why = NULL;
		char n[32];

		if (!h->pool)
			continue;
		if (vp_pool_warmed(h->pool, &bytes, &s, &why))
			cli_debug(c, "warmed the base on %s: %s read into the page cache in %.2f s\n", h->name,
				  vp_fmt_bytes(bytes, n, sizeof(n)), s);
		else if (why)
			cli_info(c, "warning: host '%s': the base was not warmed: %s\n", h->name, why);
	}
}

int cmd_up(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "for", required_argument, NULL, OPT_FOR },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-wait", no_argument, NULL, OPT_NO_WAIT },
		{ "wait", optional_argument, NULL, POOL_OPT_WAIT },
		{ "parallel", required_argument, NULL, POOL_OPT_PARALLEL },
		{ 0 },
	};
	up_args a = { .timeout = 600, .argc = argc, .argv = argv };
	char who[256], spec_path[PATH_MAX];
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_pool_expiry e = { 0 };
	vp_ready_opts ro = { .progress = ready_line, .ctx = c };
	vp_ready_report *r = NULL;
	double t0 = vp_now();
	bool quiet = c->quiet;
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, up_opt, &a);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if (!a.ttl)
		return cli_usage_error(c, "--ttl is required: an ephemeral pool always has an end (e.g. --ttl 2h); "
				       "nothing was changed");
	if (!a.who)
		a.who = cli_default_who(who, sizeof(who));
	if (!realpath(argv[idx], spec_path))
		snprintf(spec_path, sizeof(spec_path), "%s", argv[idx]);
	a.ao.wait_lock = true; /* a second up of the same pool waits for the first */
	if ((code = fleet_cli_open(c, argv[idx], POOL_CLI_LOCK_WAIT, true, -1, true, &spec, &fleet)) != 0)
		return code;
	if (!spec->domain.network || !spec->domain.start) {
		fprintf(stderr, "vdipool up: pool '%s' has %s: its clones can never be ready; nothing was changed\n",
			spec->pool, !spec->domain.network ? "domain.network: none" : "domain.start: false");
		code = VP_EXIT_USAGE;
		goto out;
	}
	/* The expiry goes first: whatever happens next, the pool has an end. */
	e = (vp_pool_expiry){ .present = true, .created = (int64_t)time(NULL) };
	e.expires = e.created + a.ttl;
	snprintf(e.by, sizeof(e.by), "%s", a.who);
	snprintf(e.spec, sizeof(e.spec), "%s", spec_path);
	if ((rc = vp_pool_expiry_write(spec, &e)) < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (vp_fleet_has_changes(fleet) || vp_fleet_unreachable(fleet) || vp_fleet_unplaced_count(fleet)) {
		/* stdout is the pipeline's (the clones): the plan and the apply's summary go to stderr,
		 * and with -o json nowhere. */
		int saved = -1;

		c->quiet = quiet || c->output == CLI_OUT_JSON;
		fflush(stdout);
		if (!c->quiet && (saved = dup(STDOUT_FILENO)) >= 0)
			dup2(STDERR_FILENO, STDOUT_FILENO);
		if (!c->quiet && c->verbose)
			fleet_cli_print_plan(c, spec, fleet);
		code = fleet_cli_run(c, fleet, &a.ao, "Applied", t0);
		fflush(stdout);
		if (saved >= 0) {
			dup2(saved, STDOUT_FILENO);
			close(saved);
		}
		c->quiet = quiet;
		say_warmed(c, fleet);
		if (code != VP_EXIT_OK) {
			fprintf(stderr, "vdipool up: the apply failed; the pool expires as recorded, or run "
					"vdipool down %s\n", spec_path);
			goto out;
		}
	}
	vp_fleet_unlock_pool(fleet); /* waiting changes nothing: claims may go on */
	ro.timeout = a.no_wait ? 0 : (double)a.timeout;
	rc = vp_fleet_wait_ready(fleet, &ro, &r);
	if (rc < 0 && (!r || rc != VP_EIO)) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (c->output == CLI_OUT_JSON)
		print_json(fleet, spec, spec_path, &e, a.ttl, r);
	else
		print_table(c, spec, spec_path, &e, a.ttl, r);
	code = VP_EXIT_OK;
	if (rc < 0 && !a.no_wait) {
		fprintf(stderr, "vdipool up: %zu of %zu clones not ready after %lds:\n", r->count - r->ready, r->count,
			a.timeout);
		for (size_t i = 0; i < r->count; i++)
			if (r->clones[i].state != VP_READY_YES)
				fprintf(stderr, "  %s: %s: %s\n", r->clones[i].name,
					vp_ready_state_name(r->clones[i].state), r->clones[i].why);
		code = VP_EXIT_FAIL;
	}
out:
	vp_ready_report_free(r);
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
