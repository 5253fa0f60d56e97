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
#include "vdipool/ssh.h"
#include "vdipool/store.h"

const char cmd_push_help[] =
	"usage: vdipool push NAME@VERSION --to [USER@]HOST[:PORT] [--identity FILE]\n"
	"                    [--known-hosts FILE] [--remote-root DIR] [--compress yes|no]\n"
	"       (the same as: vdipool base push ...)\n"
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
	"                           see the README's measurement)\n"
	"  --window SIZE            bytes in flight per pipelined SFTP write (default 4M)\n"
	"\n"
	"Exit codes: 0 pushed or already there, 1 failed (connection, host key,\n"
	"auth, hash mismatch, another version with that name on the host), 2 usage.\n"
	"\n"
	"Example:\n"
	"  vdipool base push win11@2026.11 --to vdi@hv2.example.com \\\n"
	"      --identity ~/.ssh/vdipool_ed25519 --known-hosts /etc/vdipool/known_hosts\n";

enum { OPT_TO = 0x300, OPT_IDENTITY, OPT_KNOWN_HOSTS, OPT_REMOTE_ROOT, OPT_COMPRESS, OPT_WINDOW };

struct push_opts {
	const char *to, *identity, *known_hosts, *remote_root;
	bool compress;
	uint64_t window;
};

static int push_opt(cli *c, int opt, const char *arg, void *ctx)
{
	struct push_opts *o = ctx;

	switch (opt) {
	case OPT_TO: o->to = arg; return 0;
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

int cmd_push(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "identity", required_argument, NULL, OPT_IDENTITY },
		{ "known-hosts", required_argument, NULL, OPT_KNOWN_HOSTS },
		{ "remote-root", required_argument, NULL, OPT_REMOTE_ROOT },
		{ "compress", required_argument, NULL, OPT_COMPRESS },
		{ "window", required_argument, NULL, OPT_WINDOW },
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
	if (!o.to)
		return cli_usage_error(c, "--to [USER@]HOST[:PORT] is required");
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
	rc = rc < 0 ? cli_fail(c, rc) : run_push(c, &o, &so, s, &b);
	vp_store_free(s);
	return rc;
}
