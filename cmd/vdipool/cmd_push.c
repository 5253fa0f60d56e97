/* cmd_push.c: `vdipool base push NAME@V --to USER@HOST[:PORT]`: a base version into a host's store over SSH. */
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/fs.h"
#include "vdipool/fleet.h"
#include "vdipool/spec.h"
#include "vdipool/ssh.h"
#include "vdipool/store.h"

const char cmd_push_help[] =
	"usage: vdipool push NAME@VERSION --to [USER@]HOST[:PORT] [--identity FILE]\n"
	"                    [--known-hosts FILE] [--remote-root DIR] [--compress yes|no]\n"
	"       vdipool push NAME@VERSION --spec POOL.yaml [--hosts H1,H2,...]\n"
	"       (the same as: vdipool base push ...)\n"
	"\n"
	"With --spec: pre-stage a version on the pool's hosts ahead of a rollout (what\n"
	"apply would push before the first delta needs it). The version comes from the\n"
	"spec's bases tier on this machine and goes to every remote host of the spec, or\n"
	"to the hosts --hosts names; each host's ssh settings are the spec's. Hosts that\n"
	"hold it already are said to (\"already there\"); at most\n"
	"distribution.max_parallel_hosts hosts receive from this machine at once. With\n"
	"distribution.fanout: true, hosts that hold the version push it on to hosts that\n"
	"lack it (their own vdipool, distribution.seed_vdipool, run over SSH with\n"
	"distribution.seed_identity and seed_known_hosts), one host each a round, so\n"
	"the rounds grow with log(hosts): 4 hosts at max_parallel_hosts 1 take 3 rounds\n"
	"(this machine -> h1; h1 -> h2 and this machine -> h3; h1 -> h4), 1000 hosts at\n"
	"4 take 8. A seeded push that fails is tried again from this machine. One line\n"
	"per host says what happened (round, source, bytes sent and resumed, or why it\n"
	"failed); a host that fails never stops the others.\n"
	"\n"
	"Copy a base version from the local store (--root) into the store of another\n"
	"host over SSH (libssh2, SFTP; no ssh/scp/rsync is run). Only the image's\n"
	"allocated extents are sent, pipelined; holes stay holes on the host. The\n"
	"image goes to <remote-root>/bases/.push-NAME-VERSION-<pid>/, is hashed on the\n"
	"host (openssl dgst, or sha256sum) and checked against the local manifest's\n"
	"SHA-256, made read-only, then the manifest is written and the directory renamed to\n"
	"<remote-root>/bases/NAME/VERSION: the host's store sees all of a version or\n"
	"nothing. An interrupted push is continued by the next one from what had\n"
	"arrived. A version already on the host with the same SHA-256 is left as it\n"
	"is (\"already there\"); with another SHA-256 it is refused, never replaced.\n"
	"\n"
	"The host key must be in the known_hosts file (no trust on first use): an\n"
	"unknown or changed key is refused with its SHA256: fingerprint.\n"
	"\n"
	"Options:\n"
	"  --to [USER@]HOST[:PORT]  the host (user: the current one; port: 22)\n"
	"  --identity FILE          private key to log in with (default: ssh-agent)\n"
	"  --known-hosts FILE       default ~/.ssh/known_hosts\n"
	"  --remote-root DIR        the host's store root (default /var/lib/vdipool)\n"
	"  --compress yes|no        zlib compression of the SSH transport (default no:\n"
	"                           see the README's measurement); a base imported\n"
	"                           with --compress is sent as it is, never deflated twice\n"
	"  --window SIZE            bytes in flight per pipelined SFTP write (default 4M)\n"
	"\n"
	"  --spec POOL.yaml         push to the spec's hosts instead of --to\n"
	"  --hosts H1,H2,...        only these hosts of the spec (names as in hosts[].name)\n"
	"\n"
	"Exit codes: 0 pushed or already there (every host, with --spec), 1 failed\n"
	"(connection, host key, auth, hash mismatch, another version with that name on\n"
	"the host; with --spec the failed hosts are named), 2 usage.\n"
	"\n"
	"Example:\n"
	"  vdipool base push win11@2026.11 --to vdi@hv2.example.com \\\n"
	"      --identity ~/.ssh/vdipool_ed25519 --known-hosts /etc/vdipool/known_hosts\n"
	"  vdipool base push win11@2026.12 --spec office.yaml            # every host\n"
	"  vdipool base push win11@2026.12 --spec office.yaml --hosts hv3,hv4\n";

enum { OPT_TO = 0x300, OPT_IDENTITY, OPT_KNOWN_HOSTS, OPT_REMOTE_ROOT, OPT_COMPRESS, OPT_WINDOW,
       OPT_SPEC, OPT_HOSTS };

struct push_opts {
	const char *to, *identity, *known_hosts, *remote_root, *spec, *hosts;
	bool set_compress;
	bool compress;
	uint64_t window;
};

static int push_opt(cli *c, int opt, const char *arg, void *ctx)
{
	struct push_opts *o = ctx;

	switch (opt) {
	case OPT_TO: o->to = arg; return 0;
	case OPT_SPEC: o->spec = arg; return 0;
	case OPT_HOSTS: o->hosts = arg; return 0;
	case OPT_IDENTITY: o->identity = arg; return 0;
	case OPT_KNOWN_HOSTS: o->known_hosts = arg; return 0;
	case OPT_REMOTE_ROOT:
		if (arg[0] != '/')
			return cli_usage_error(c, "--remote-root: must be an absolute path, got '%s'", arg);
		o->remote_root = arg;
		return 0;
	case OPT_COMPRESS:
		if (strcmp(arg, "yes") && strcmp(arg, "no"))
			return cli_usage_error(c, "--compress: expected yes or no, got '%s'", arg);
		o->compress = !strcmp(arg, "yes");
		o->set_compress = true;
		return 0;
	case OPT_WINDOW:
		if (vp_parse_size(arg, &o->window) < 0 || o->window < 30000 || o->window > (256u << 20))
			return cli_usage_error(c, "--window: expected a size from 30000 to 256M, got '%s'", arg);
		return 0;
	default: return VP_EXIT_USAGE;
	}
}

/* [USER@]HOST[:PORT] into parts (buf holds them); 0 or a usage exit code. */
static int parse_to(cli *c, const char *to, char *buf, size_t len, vp_ssh_opts *so)
{
	char *at, *colon, *end;

	if (strlen(to) >= len)
		return cli_usage_error(c, "--to: too long");
	strcpy(buf, to);
	at = strchr(buf, '@');
	if (at) {
		*at = '\0';
		so->user = buf;
		so->host = at + 1;
	} else {
		struct passwd *pw = getpwuid(getuid());

		so->host = buf;
		so->user = pw ? pw->pw_name : "root";
	}
	colon = strrchr(so->host, ':');
	if (colon) {
		long p;

		*colon = '\0';
		errno = 0;
		p = strtol(colon + 1, &end, 10);
		if (errno || *end || p < 1 || p > 65535)
			return cli_usage_error(c, "--to: bad port '%s' (1-65535)", colon + 1);
		so->port = (int)p;
	}
	if (!*so->host || !*so->user)
		return cli_usage_error(c, "--to: expected [USER@]HOST[:PORT], got '%s'", to);
	return 0;
}

struct bar {
	cli *c;
	int last_pct;
};

static void show_bar(void *ctx, uint64_t done, uint64_t total)
{
	struct bar *b = ctx;
	char d[32], t[32], hashes[31];
	int pct = total ? (int)(done * 100 / total) : 100;

	if (pct == b->last_pct)
		return;
	b->last_pct = pct;
	memset(hashes, ' ', 30);
	memset(hashes, '#', (size_t)(pct * 30 / 100));
	hashes[30] = '\0';
	fprintf(stderr, "\rpush     [%s] %3d%% %s / %s", hashes, pct,
		vp_fmt_bytes(done, d, sizeof(d)), vp_fmt_bytes(total, t, sizeof(t)));
	if (done >= total)
		fputc('\n', stderr);
}

struct job {
	cli *c;
	vp_ssh *s;
	const vp_base_info *b;
	vp_store_push_result res;
};

static void print_result(struct job *j, const char *label)
{
	char sent[32], data[32], wire[32], vsize[32], resumed[32];
	const vp_ssh_push_result *r = &j->res.xfer;
	uint64_t wire_total;

	vp_ssh_wire_bytes(j->s, &wire_total, NULL);
	if (j->c->output == CLI_OUT_JSON) {
		printf("{\"name\":\"%s\",\"version\":\"%s\",\"host\":\"%s\",\"pushed\":true,",
		       j->b->name, j->b->version, label);
		printf("\"image_data\":%" PRIu64 ",\"virtual_size\":%" PRIu64 ",\"sent\":%" PRIu64
		       ",\"resumed\":%" PRIu64 ",\"wire_sent\":%" PRIu64 ",", r->data,
		       j->b->virtual_size, r->sent, r->resumed, wire_total);
		printf("\"cipher\":\"%s\",\"compressed\":%s,\"seconds\":%.3f,\"hash_seconds\":%.3f,"
		       "\"sha256\":\"%s\"}\n", vp_ssh_cipher(j->s),
		       vp_ssh_compressed(j->s) ? "true" : "false", r->seconds, r->hash_seconds,
		       j->b->sha256);
		return;
	}
	printf("pushed %s@%s to %s: sent %s of %s data (%s virtual)%s%s%s, %s on the wire%s, "
	       "%.1f s (%.1f s of it hashing on the host); sha256 %.12s checked on the host\n", j->b->name, j->b->version, label,
	       vp_fmt_bytes(r->sent, sent, sizeof(sent)), vp_fmt_bytes(r->data, data, sizeof(data)),
	       vp_fmt_bytes(j->b->virtual_size, vsize, sizeof(vsize)),
	       r->resumed ? ", resumed after " : "",
	       r->resumed ? vp_fmt_bytes(r->resumed, resumed, sizeof(resumed)) : "",
	       r->resumed ? " already there" : "", vp_fmt_bytes(wire_total, wire, sizeof(wire)),
	       vp_ssh_compressed(j->s) ? " (zlib)" : "", r->seconds, r->hash_seconds, j->b->sha256);
}

static void print_already(struct job *j)
{
	const vp_base_info *b = j->b;

	if (j->c->output == CLI_OUT_JSON)
		printf("{\"name\":\"%s\",\"version\":\"%s\",\"host\":\"%s\",\"pushed\":false,"
		       "\"sha256\":\"%s\"}\n", b->name, b->version, vp_ssh_label(j->s), b->sha256);
	else
		printf("%s@%s is already there on %s (same sha256 %.12s); nothing to do\n",
		       b->name, b->version, vp_ssh_label(j->s), b->sha256);
}

/* The protocol itself is the library's (vp_store_push); this connects and reports. */
static int run_push(cli *c, const struct push_opts *o, const vp_ssh_opts *so, vp_store *s,
		    const vp_base_info *b)
{
	const char *rroot = o->remote_root ? o->remote_root : "/var/lib/vdipool";
	struct job j = { .c = c, .b = b };
	struct bar bar = { .c = c, .last_pct = -1 };
	vp_store_push_opts po = { .window = (size_t)o->window };
	char *bases = vp_strdup_printf("%s/bases", rroot);
	char *ref = vp_strdup_printf("%s@%s", b->name, b->version);
	int rc;

	if (!bases || !ref) {
		rc = cli_fail(c, VP_ENOMEM);
		goto out;
	}
	if (c->interactive && !c->quiet) {
		po.progress = show_bar;
		po.progress_ctx = &bar;
	}
	if ((rc = vp_ssh_connect(&j.s, so)) < 0 ||
	    (rc = vp_store_push(s, ref, j.s, bases, &po, &j.res)) < 0) {
		rc = cli_fail(c, rc);
		goto out;
	}
	if (j.res.already)
		print_already(&j);
	else
		print_result(&j, vp_ssh_label(j.s));
	rc = VP_EXIT_OK;
out:
	vp_ssh_free(j.s);
	free(bases);
	free(ref);
	return rc;
}

/* ---- --spec: the pool's hosts, in rounds (vp_fleet_push) ---------------------------------- */

/* --hosts a,b into which[]; 0 or the usage exit code naming every unknown or local name. */
static int pick_hosts(cli *c, const vp_spec *spec, const char *list, bool *which)
{
	char *copy = vp_strdup(list), *save = NULL, unknown[512] = "", local[512] = "";
	size_t nu = 0, nl = 0, picked = 0;

	if (!copy)
		return cli_fail(c, VP_ENOMEM);
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i = 0;

		while (i < spec->host_count && strcmp(spec->hosts[i].name, t))
			i++;
		if (i == spec->host_count)
			nu += (size_t)snprintf(unknown + nu, nu < sizeof(unknown) ? sizeof(unknown) - nu : 0,
					       "%s'%s'", nu ? ", " : "", t);
		else if (!vp_pool_host_remote(spec, i))
			nl += (size_t)snprintf(local + nl, nl < sizeof(local) ? sizeof(local) - nl : 0,
					       "%s'%s'", nl ? ", " : "", t);
		else
			picked += !which[i], which[i] = true;
	}
	free(copy);
	if (nu)
		return cli_usage_error(c, "--hosts: no host %s in %s (its hosts: see hosts[].name)", unknown,
				       spec->file);
	if (nl)
		return cli_usage_error(c, "--hosts: %s is this machine (its store is the one pushed from)", local);
	if (!picked)
		return cli_usage_error(c, "--hosts: expected host names separated by commas, got '%s'", list);
	return 0;
}

static const char *source_name(vp_fleet *f, long src)
{
	return src < 0 ? "this machine" : vp_fleet_host_at(f, (size_t)src)->name;
}

static void print_host_json(vp_buf *b, vp_fleet *f, size_t i, const vp_fleet_push_host *r)
{
	static const char *const states[] = { "not_asked", "pushed", "already", "failed" };

	vp_buf_puts(b, "{\"host\":");
	vp_buf_json_str(b, vp_fleet_host_at(f, i)->name);
	vp_buf_printf(b, ",\"state\":\"%s\",\"round\":%u,\"source\":", states[r->state], r->round);
	if (r->round)
		vp_buf_json_str(b, r->source < 0 ? "controller" : source_name(f, r->source));
	else
		vp_buf_puts(b, "null");
	vp_buf_printf(b, ",\"sent\":%" PRIu64 ",\"resumed\":%" PRIu64 ",\"seconds\":%.3f,\"seed_failed\":%s,\"error\":",
		      r->sent, r->resumed, r->seconds, r->seed_failed ? "true" : "false");
	if (r->error[0])
		vp_buf_json_str(b, r->error);
	else
		vp_buf_puts(b, "null");
	vp_buf_puts(b, "}");
}

static void print_host(vp_fleet *f, size_t i, const char *ref, const vp_fleet_push_host *r)
{
	const char *name = vp_fleet_host_at(f, i)->name;
	char sent[32], resumed[32];

	switch (r->state) {
	case VP_FLEET_PUSH_PUSHED:
		printf("%s: pushed %s in round %u from %s: sent %s%s%s%s, %.1f s%s%s%s\n", name, ref, r->round,
		       source_name(f, r->source), vp_fmt_bytes(r->sent, sent, sizeof(sent)),
		       r->resumed ? " (resumed after " : "",
		       r->resumed ? vp_fmt_bytes(r->resumed, resumed, sizeof(resumed)) : "",
		       r->resumed ? " already there)" : "", r->seconds, r->seed_failed ? " (" : "",
		       r->seed_failed ? r->error : "", r->seed_failed ? ")" : "");
		break;
	case VP_FLEET_PUSH_ALREADY:
		if (r->round)
			printf("%s: already there (found in round %u by %s; same sha256)\n", name, r->round,
			       source_name(f, r->source));
		else
			printf("%s: already there (same sha256)\n", name);
		break;
	case VP_FLEET_PUSH_FAILED:
		printf("%s: FAILED: %s\n", name, r->error);
		break;
	default: break;
	}
}

/* As each push ends (on a terminal, or with -v): stdout's lines come in host order at the end. */
static void push_done(void *ctx, size_t i, const vp_fleet_push_host *r)
{
	vp_fleet *f = ctx;

	fprintf(stderr, "  round %u: %s %s %s\n", r->round, source_name(f, r->source),
		r->state == VP_FLEET_PUSH_FAILED ? "failed to push to" : "pushed to", vp_fleet_host_at(f, i)->name);
}

static int push_spec(cli *c, const struct push_opts *o, const char *ref)
{
	vp_spec *spec = NULL;
	vp_fleet *f = NULL;
	vp_fleet_push_host *res = NULL;
	vp_fleet_push_report rep;
	bool *which = NULL;
	char failed[1024] = "", sent[32];
	size_t nf = 0, n;
	double t0 = vp_now();
	int rc = vp_spec_load(&spec, o->spec);

	if (rc < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	n = spec->host_count;
	which = calloc(n + 1, sizeof(bool));
	res = calloc(n + 1, sizeof(*res));
	if (!which || !res) {
		rc = cli_fail(c, VP_ENOMEM);
		goto out;
	}
	if (o->hosts && (rc = pick_hosts(c, spec, o->hosts, which)) != 0)
		goto out;
	if ((rc = vp_fleet_open_push(&f, spec)) == 0 && !c->quiet && (c->verbose || c->interactive))
		vp_fleet_set_push_done(f, push_done, f);
	if (rc < 0 || (rc = vp_fleet_push(f, ref, o->hosts ? which : NULL, res, &rep)) < 0) {
		rc = cli_fail(c, rc);
		goto out;
	}
	if (c->output == CLI_OUT_JSON) {
		vp_buf b = VP_BUF_INIT;

		vp_buf_puts(&b, "{\"ref\":");
		vp_buf_json_str(&b, ref);
		vp_buf_printf(&b, ",\"fanout\":%s,\"max_parallel_hosts\":%u,\"rounds\":%u,\"pushed\":%zu,"
			      "\"already\":%zu,\"failed\":%zu,\"from_controller\":%zu,\"from_seeds\":%zu,"
			      "\"sent\":%" PRIu64 ",\"hosts\":[",
			      spec->distribution.fanout ? "true" : "false", spec->distribution.max_parallel_hosts,
			      rep.rounds, rep.pushed, rep.already, rep.failed, rep.from_controller, rep.from_seeds,
			      rep.sent);
		for (size_t i = 0, k = 0; i < n; i++)
			if (res[i].state != VP_FLEET_PUSH_NOT_ASKED) {
				vp_buf_puts(&b, k++ ? "," : "");
				print_host_json(&b, f, i, &res[i]);
			}
		vp_buf_puts(&b, "]}\n");
		fwrite(b.data, 1, b.len, stdout);
		vp_buf_release(&b);
	} else {
		for (size_t i = 0; i < n; i++)
			print_host(f, i, ref, &res[i]);
	}
	for (size_t i = 0; i < n; i++)
		if (res[i].state == VP_FLEET_PUSH_FAILED) {
			nf += (size_t)snprintf(failed + nf, nf < sizeof(failed) ? sizeof(failed) - nf : 0, "%s%s",
					       nf ? ", " : "", spec->hosts[i].name);
			fprintf(stderr, "vdipool: host '%s': %s\n", spec->hosts[i].name, res[i].error);
		}
	if (c->output != CLI_OUT_JSON && !c->quiet)
		printf("Pushed %s to %zu host%s in %u round%s (%zu from this machine, %zu from hosts%s), %zu "
		       "already there, %zu failed; sent %s in %.1f s\n", ref, rep.pushed, rep.pushed == 1 ? "" : "s",
		       rep.rounds, rep.rounds == 1 ? "" : "s", rep.from_controller, rep.from_seeds,
		       spec->distribution.fanout ? "" : ": distribution.fanout is off", rep.already, rep.failed,
		       vp_fmt_bytes(rep.sent, sent, sizeof(sent)), vp_now() - t0);
	if (rep.failed)
		fprintf(stderr, "vdipool: %s did not reach %zu host%s: %s\n", ref, rep.failed,
			rep.failed == 1 ? "" : "s", failed);
	rc = rep.failed ? VP_EXIT_FAIL : VP_EXIT_OK;
out:
	vp_fleet_free(f);
	vp_spec_free(spec);
	free(which);
	free(res);
	return rc;
}

int cmd_push(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "identity", required_argument, NULL, OPT_IDENTITY },
		{ "known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS },
		{ "remote-root", required_argument, NULL, OPT_REMOTE_ROOT },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "window", required_argument, NULL, OPT_WINDOW },
		{ "spec", required_argument, NULL, OPT_SPEC },
		{ "hosts", required_argument, NULL, OPT_HOSTS },
		{ NULL, 0, NULL, 0 },
	};
	struct push_opts o = { 0 };
	vp_ssh_opts so = { 0 };
	vp_store *s = NULL;
	vp_base_info b;
	char tobuf[512], kh[4096];
	int idx, rc;

	CLI_PARSE(idx, c, argc, argv, "", longopts, push_opt, &o);
	if (argc - idx != 1)
		return cli_usage_error(c, "expected one NAME@VERSION, got %d arguments", argc - idx);
	if (!strchr(argv[idx], '@'))
		return cli_usage_error(c, "expected NAME@VERSION, got '%s'", argv[idx]);
	if (o.spec && (o.to || o.identity || o.known_hosts || o.remote_root || o.set_compress || o.window))
		return cli_usage_error(c, "--spec takes each host's ssh settings and store from the spec: "
				       "no --to, --identity, --known-hosts, --remote-root, --compress or --window");
	if (o.hosts && !o.spec)
		return cli_usage_error(c, "--hosts names hosts of a spec: it needs --spec POOL.yaml");
	if (o.spec)
		return push_spec(c, &o, argv[idx]);
	if (!o.to)
		return cli_usage_error(c, "--to [USER@]HOST[:PORT] is required (or --spec POOL.yaml: the pool's hosts)");
	if ((rc = parse_to(c, o.to, tobuf, sizeof(tobuf), &so)) != 0)
		return rc;
	if (!o.known_hosts) {
		const char *home = getenv("HOME");

		snprintf(kh, sizeof(kh), "%s/.ssh/known_hosts", home && *home ? home : "/root");
		o.known_hosts = kh;
	}
	so.identity = o.identity;
	so.known_hosts = o.known_hosts;
	so.compress = o.compress;
	if ((rc = vp_store_open_root(&s, c->root)) < 0)
		return cli_fail(c, rc);
	rc = vp_store_stat(s, argv[idx], &b);
	/* Its clusters are deflated already: zlib on the transport would spend CPU for nothing. */
	if (rc == 0 && b.compression[0] && so.compress) {
		cli_info(c, "%s@%s is stored compressed (%s): sent as it is, without --compress\n", b.name,
			 b.version, b.compression);
		so.compress = false;
	}
	rc = rc < 0 ? cli_fail(c, rc) : run_push(c, &o, &so, s, &b);
	vp_store_free(s);
	return rc;
}
