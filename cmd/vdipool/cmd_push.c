/* cmd_push.c: `vdipool base push NAME@V --to USER@HOST[:PORT]`: a base version into a host's store over SSH. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
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

/* The version on the host: 1 "already there", 0 absent, <0 refused (another hash, or junk). */
static int remote_version(vp_ssh *s, const char *dir, const vp_base_info *b)
{
	vp_base_info rb;
	vp_ssh_stat st;
	char *path = vp_strdup_printf("%s/manifest", dir), *text = NULL;
	int rc;

	if (!path)
		return VP_ENOMEM;
	rc = vp_ssh_stat_path(s, dir, &st);
	if (rc == VP_ENOENT) {
		rc = 0;
		goto out;
	}
	if (rc < 0)
		goto out;
	rc = vp_ssh_read_file(s, path, 1 << 20, &text, NULL);
	if (rc == 0)
		rc = vp_store_manifest_parse(&rb, text, path);
	if (rc < 0) {
		rc = vp_error_set(VP_ERR_SSH, VP_ECONFLICT, "'%s' exists on '%s' but holds no readable "
				  "manifest (%s); it is not a complete version: remove it there first",
				  dir, vp_ssh_label(s), vp_error_last()->message);
		goto out;
	}
	if (strcmp(rb.sha256, b->sha256)) {
		rc = vp_error_set(VP_ERR_SSH, VP_EEXIST, "base %s@%s on '%s' has other content (sha256 "
				  "%s there, %s here); refusing to overwrite it: use a new version",
				  b->name, b->version, vp_ssh_label(s), rb.sha256, b->sha256);
		goto out;
	}
	rc = 1;
out:
	free(path);
	free(text);
	return rc;
}

/* A staging directory an interrupted push left behind is taken over (renamed to
 * ours), so its partial image is resumed; otherwise a new one is made. */
static int claim_staging(vp_ssh *s, const char *bases, const char *prefix, const char *staging)
{
	char **names = NULL;
	size_t n = 0;
	int rc = vp_ssh_mkdir_p(s, bases, 0755);

	if (rc == 0)
		rc = vp_ssh_list_dir(s, bases, &names, &n);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && !strncmp(names[i], prefix, strlen(prefix)) &&
		    strspn(names[i] + strlen(prefix), "0123456789") == strlen(names[i] + strlen(prefix))) {
			char *old = vp_strdup_printf("%s/%s", bases, names[i]);

			if (old && vp_ssh_rename(s, old, staging) == 0)
				rc = 1;
			vp_error_clear();
			free(old);
		}
		free(names[i]);
	}
	free(names);
	if (rc == 0)
		rc = vp_ssh_mkdir_p(s, staging, 0755);
	return rc < 0 ? rc : 0;
}

struct job {
	cli *c;
	vp_ssh *s;
	const vp_base_info *b;
	const struct push_opts *o;
	const char *image;    /* local image */
	char *staging, *final_dir, *bases_name;
	vp_ssh_push_result res;
};

static int push_version(struct job *j)
{
	char *img = vp_strdup(j->image), *mdir = vp_strdup(j->image);
	char *rimg = NULL, *manifest = NULL, *rman = NULL, *lman = NULL;
	struct bar bar = { .c = j->c, .last_pct = -1 };
	vp_ssh_push_opts po = { .sha256 = j->b->sha256, .window = (size_t)j->o->window };
	size_t mlen = 0;
	vp_ssh_stat st;
	int rc = VP_ENOMEM;

	if (!img || !mdir)
		goto out;
	rimg = vp_strdup_printf("%s/%s", j->staging, basename(img));
	rman = vp_strdup_printf("%s/manifest", j->staging);
	lman = vp_strdup_printf("%s/manifest", dirname(mdir));
	if (!rimg || !rman || !lman)
		goto out;
	if ((rc = vp_fs_read_all(lman, 1 << 20, &manifest, &mlen)) < 0)
		goto out;
	if (j->c->interactive && !j->c->quiet) {
		po.progress = show_bar;
		po.progress_ctx = &bar;
	}
	if (vp_ssh_stat_path(j->s, rimg, &st) == 0) {
		/* An earlier push got as far as the checked image: check it again. */
		if ((rc = vp_ssh_sha256(j->s, rimg, j->res.sha256)) < 0)
			goto out;
		if (strcmp(j->res.sha256, j->b->sha256)) {
			vp_ssh_unlink(j->s, rimg);
			rc = vp_error_set(VP_ERR_SSH, VP_EIO, "'%s' on '%s' is damaged (sha256 %s, "
					  "expected %s); deleted it, push again", rimg,
					  vp_ssh_label(j->s), j->res.sha256, j->b->sha256);
			goto out;
		}
		j->res.resumed = j->res.data = j->b->allocated;
	} else {
		vp_error_clear();
		if ((rc = vp_ssh_push_file(j->s, j->image, rimg, &po, &j->res)) < 0)
			goto out;
	}
	/* The manifest last: a directory with a manifest is a complete version. */
	vp_ssh_unlink(j->s, rman); /* one left read-only by a push cut after it */
	if ((rc = vp_ssh_write_file(j->s, rman, manifest, mlen, 0444)) < 0 ||
	    (rc = vp_ssh_mkdir_p(j->s, j->bases_name, 0755)) < 0)
		goto out;
	rc = vp_ssh_rename(j->s, j->staging, j->final_dir);
out:
	if (rc == VP_ENOMEM && !vp_error_last()->message[0])
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	free(img);
	free(mdir);
	free(rimg);
	free(rman);
	free(lman);
	free(manifest);
	return rc;
}

static void print_result(struct job *j, const char *label)
{
	char sent[32], data[32], wire[32], vsize[32], resumed[32];
	const vp_ssh_push_result *r = &j->res;
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

static int run_push(cli *c, const struct push_opts *o, const vp_ssh_opts *so, const vp_base_info *b)
{
	const char *rroot = o->remote_root ? o->remote_root : "/var/lib/vdipool";
	struct job j = { .c = c, .b = b, .o = o, .image = b->location };
	char *bases = vp_strdup_printf("%s/bases", rroot);
	char *prefix = vp_strdup_printf(".push-%s-%s-", b->name, b->version);
	int rc;

	j.staging = vp_strdup_printf("%s/bases/%s%ld", rroot, prefix ? prefix : "", (long)getpid());
	j.bases_name = vp_strdup_printf("%s/bases/%s", rroot, b->name);
	j.final_dir = vp_strdup_printf("%s/bases/%s/%s", rroot, b->name, b->version);
	if (!bases || !prefix || !j.staging || !j.bases_name || !j.final_dir) {
		rc = cli_fail(c, VP_ENOMEM);
		goto out;
	}
	if ((rc = vp_ssh_connect(&j.s, so)) < 0) {
		rc = cli_fail(c, rc);
		goto out;
	}
	rc = remote_version(j.s, j.final_dir, b);
	if (rc == 1) {
		if (c->output == CLI_OUT_JSON)
			printf("{\"name\":\"%s\",\"version\":\"%s\",\"host\":\"%s\",\"pushed\":false,"
			       "\"sha256\":\"%s\"}\n", b->name, b->version, vp_ssh_label(j.s), b->sha256);
		else
			printf("%s@%s is already there on %s (same sha256 %.12s); nothing to do\n",
			       b->name, b->version, vp_ssh_label(j.s), b->sha256);
		rc = VP_EXIT_OK;
		goto out;
	}
	if (rc < 0 || (rc = claim_staging(j.s, bases, prefix, j.staging)) < 0 ||
	    (rc = push_version(&j)) < 0) {
		rc = cli_fail(c, rc);
		goto out;
	}
	print_result(&j, vp_ssh_label(j.s));
	rc = VP_EXIT_OK;
out:
	vp_ssh_free(j.s);
	free(bases);
	free(prefix);
	free(j.staging);
	free(j.bases_name);
	free(j.final_dir);
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
	vp_store_free(s);
	if (rc < 0)
		return cli_fail(c, rc);
	return run_push(c, &o, &so, &b);
}
