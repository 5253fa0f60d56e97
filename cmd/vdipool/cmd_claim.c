/* cmd_claim.c: `vdipool claim`: hand out one ready clone of a pool, recorded as claimed in its metadata. */
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pool_cli.h"

const char cmd_claim_help[] =
	"usage: vdipool claim [--for NAME] [--ttl D] [--timeout D] [--no-refill] POOL.yaml\n"
	"\n"
	"Hand out one ready clone of the pool: running, with an address, and its\n"
	"readiness.command passing (see apply --wait ready). The claim (who, since\n"
	"when, until when) is written into the clone's libvirt metadata, so it\n"
	"survives a crash of vdipool and a restart of the clone; nothing else records\n"
	"it. Many claims may run at once (CI jobs): each clone is handed out once.\n"
	"A claimed clone is left alone by apply and rollouts (never stopped, reset,\n"
	"rebased or removed) until `vdipool release` or its --ttl passes.\n"
	"\n"
	"With clones.spares: N in the spec, apply keeps N unclaimed clones running\n"
	"beside the claimed ones (at least clones.count in all), and claim starts\n"
	"`vdipool apply --wait POOL.yaml` in the background to make the next spare\n"
	"(--no-refill: not; then a timer running apply does it).\n"
	"\n"
	"With clones.parked: P, P spares are kept saved to disk (libvirt managed\n"
	"save). A claim takes a running spare when one is ready, else restores a parked\n"
	"one (claimed first, so never twice) and waits until it is ready. A parked spare\n"
	"that cannot be restored (its saved image corrupt or gone) is never handed out:\n"
	"it is stopped, its saved state dropped, and the next apply (the refill) rebuilds\n"
	"it from a fresh delta; the claim goes on with another clone.\n"
	"\n"
	"Options:\n"
	"  --for NAME     who holds it, recorded (default: USER@HOSTNAME)\n"
	"  --ttl D        the claim expires after D (90, 30s, 10m, 2h); the next apply,\n"
	"                 or `vdipool release --expired POOL.yaml`, releases it\n"
	"                 (default: no expiry)\n"
	"  --timeout D    how long to wait for a ready, unclaimed clone (default 5m)\n"
	"  --no-refill    do not start the background apply\n"
	"  -o json        one line: name, host, uri, addresses, address, base,\n"
	"                 claimed_by, claimed_at, claimed_until, seconds, ssh, resumed\n"
	"\n"
	"Exit codes: 0 claimed (the clone's name on stdout); 1 no clone was ready\n"
	"and unclaimed within --timeout, or libvirt failed; 2 bad usage or spec.\n"
	"\n"
	"Examples:\n"
	"  CLONE=$(vdipool -q claim --for \"$CI_JOB_ID\" --ttl 1h ci.yaml)\n"
	"  vdipool claim -o json --timeout 2m ci.yaml | jq -r .address\n"
	"  vdipool release \"$CLONE\"\n";

enum { OPT_FOR = 0x390, OPT_TTL, OPT_TIMEOUT, OPT_NO_REFILL };

typedef struct claim_args {
	const char *who;
	long ttl, timeout;
	bool no_refill;
} claim_args;

static int claim_opt(cli *c, int o, const char *arg, void *ctx)
{
	claim_args *a = ctx;
	long v;

	switch (o) {
	case OPT_FOR:
		if (strlen(arg) > 200)
			return cli_usage_error(c, "--for: at most 200 characters");
		a->who = arg;
		return 0;
	case OPT_TTL:
	case OPT_TIMEOUT:
		v = (long)vp_spec_parse_duration(arg);
		if (v < 1 && !(o == OPT_TIMEOUT && !strcmp(arg, "0")))
			return cli_usage_error(c, "--%s: expected a duration like '90', '30s', '10m' or '1h30m', got '%s'",
					       o == OPT_TTL ? "ttl" : "timeout", arg);
		*(o == OPT_TTL ? &a->ttl : &a->timeout) = v < 0 ? 0 : v;
		return 0;
	case OPT_NO_REFILL:
		a->no_refill = true;
		return 0;
	}
	return VP_EXIT_USAGE;
}

static void iso(char *buf, size_t len, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
}

/* `vdipool apply --wait POOL.yaml`, detached (its own session, no terminal, outliving us), so the
 * pool makes its next spare while the claimer uses its clone. Everything the child needs is made
 * before the fork: only async-signal-safe calls run in it. */
static void refill(cli *c, const char *spec_path)
{
	extern char **environ;
	const char *argv[8];
	size_t n = 0;
	pid_t pid;

	argv[n++] = "vdipool";
	if (c->root) {
		argv[n++] = "--root";
		argv[n++] = c->root;
	}
	argv[n++] = "-q";
	argv[n++] = "apply";
	argv[n++] = "--wait";
	argv[n++] = spec_path;
	argv[n] = NULL;
	fflush(NULL);
	if ((pid = fork()) < 0) {
		cli_info(c, "warning: cannot start the refilling apply: fork failed");
	} else if (pid == 0) {
		int fd;

		setsid();
		if (fork() != 0)
			_exit(0);
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			dup2(fd, 0);
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Nothing else of the claimer's (its caller's locks, sockets) lives on in the refill. */
		for (fd = 3; fd < 1024; fd++)
			close(fd);
		execve("/proc/self/exe", (char *const *)argv, environ);
		_exit(127);
	} else {
		waitpid(pid, NULL, 0);
	}
}

static void print_claim(cli *c, const vp_claim *k, const char *who)
{
	char at[32], until[32];

	iso(at, sizeof(at), k->at);
	iso(until, sizeof(until), k->until);
	if (c->output == CLI_OUT_JSON) {
		vp_buf b = VP_BUF_INIT;

		vp_buf_puts(&b, "{\"name\":");
		vp_buf_json_str(&b, k->name);
		vp_buf_puts(&b, ",\"host\":");
		vp_buf_json_str(&b, k->host);
		vp_buf_puts(&b, ",\"uri\":");
		vp_buf_json_str(&b, k->uri);
		vp_buf_puts(&b, ",\"addresses\":[");
		for (size_t i = 0; i < k->naddrs; i++) {
			if (i)
				vp_buf_puts(&b, ",");
			vp_buf_json_str(&b, k->addrs[i]);
		}
		vp_buf_puts(&b, "],\"address\":");
		vp_buf_json_str(&b, k->naddrs ? k->addrs[0] : "");
		vp_buf_puts(&b, ",\"base\":");
		vp_buf_json_str(&b, k->base);
		vp_buf_puts(&b, ",\"claimed_by\":");
		vp_buf_json_str(&b, who);
		vp_buf_printf(&b, ",\"claimed_at\":\"%s\",\"claimed_until\":", at);
		if (k->until)
			vp_buf_printf(&b, "\"%s\"", until);
		else
			vp_buf_puts(&b, "null");
		vp_buf_printf(&b, ",\"resumed\":%s,\"seconds\":%.3f,\"ssh\":", k->resumed ? "true" : "false",
			      k->seconds);
		if (k->naddrs) {
			char ssh[96];

			snprintf(ssh, sizeof(ssh), "ssh USER@%s", k->addrs[0]);
			vp_buf_json_str(&b, ssh);
		} else {
			vp_buf_puts(&b, "null");
		}
		vp_buf_puts(&b, "}\n");
		fputs(vp_buf_cstr(&b), stdout);
		vp_buf_release(&b);
		return;
	}
	printf("%s\n", k->name);
	if (!c->quiet) {
		fprintf(stderr, "claimed %s on %s at %s (base %s) for %s until %s, after %.2f s%s\n", k->name, k->host,
			k->naddrs ? k->addrs[0] : "(no address)", k->base, who, k->until ? until : "released",
			k->seconds, k->resumed ? " (a parked spare, restored)" : "");
		if (k->naddrs)
			fprintf(stderr, "reach it: ssh USER@%s; give it back: vdipool release %s\n", k->addrs[0],
				k->name);
	}
}

typedef struct broken_ctx {
	cli *c;
	size_t n;
} broken_ctx;

static void broken(void *ctx, const char *name, const char *why)
{
	broken_ctx *b = ctx;

	b->n++;
	fprintf(stderr, "vdipool claim: warning: parked spare %s was not handed out: %s; the next apply "
			"rebuilds it (a fresh delta, a cold boot)\n", name, why);
}

int cmd_claim(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "for", required_argument, NULL, OPT_FOR },
		{ "ttl", required_argument, NULL, OPT_TTL },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "no-refill", no_argument, NULL, OPT_NO_REFILL },
		{ 0 },
	};
	claim_args a = { .timeout = 300 };
	char who[256], host[128] = "", spec_path[PATH_MAX];
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_claim k;
	vp_claim_opts o;
	broken_ctx bc = { .c = c };
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, claim_opt, &a);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if (!a.who) {
		const char *u = getenv("USER");

		gethostname(host, sizeof(host) - 1);
		snprintf(who, sizeof(who), "%s@%s", u && *u ? u : "unknown", host);
		a.who = who;
	}
	if (!realpath(argv[idx], spec_path))
		snprintf(spec_path, sizeof(spec_path), "%s", argv[idx]);
	if ((rc = vp_spec_load(&spec, argv[idx])) < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	if (!spec->domain.network || !spec->domain.start) {
		fprintf(stderr, "vdipool claim: pool '%s' has %s: its clones can never be ready to hand out\n",
			spec->pool, !spec->domain.network ? "domain.network: none" : "domain.start: false");
		code = VP_EXIT_USAGE;
		goto out;
	}
	o = (vp_claim_opts){ .who = a.who, .ttl = a.ttl, .timeout = (double)a.timeout, .spec_path = spec_path,
			     .broken = broken, .ctx = &bc };
	if ((rc = vp_fleet_open(&fleet, spec)) < 0 || (rc = vp_fleet_claim(fleet, &o, &k)) < 0) {
		code = rc == VP_ENOENT ? (fprintf(stderr, "vdipool claim: %s\n", vp_error_last()->message), VP_EXIT_FAIL)
				       : cli_fail(c, rc);
		if (bc.n && !a.no_refill) /* the broken spares are rebuilt meanwhile */
			refill(c, spec_path);
		goto out;
	}
	print_claim(c, &k, a.who);
	code = VP_EXIT_OK;
	if ((spec->clones.spares || bc.n) && !a.no_refill) {
		vp_fleet_free(fleet); /* its connections and threads are not the child's business */
		fleet = NULL;
		refill(c, spec_path);
	}
out:
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
