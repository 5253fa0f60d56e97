/* cmd_base.c: `vdipool base`: import, list, verify and remove golden base images. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "vdipool/store.h"

const char cmd_base_help[] =
	"usage: vdipool base import NAME FILE --version V [--format qcow2|raw] [--parent P]\n"
	"       vdipool base list [NAME]\n"
	"       vdipool base verify NAME@VERSION\n"
	"       vdipool base rm NAME@VERSION\n"
	"\n"
	"Manage the versioned golden base images in the store (--root DIR or\n"
	"$VDIPOOL_ROOT, default /var/lib/vdipool): <root>/bases/<name>/<version>/\n"
	"holds the read-only image and its manifest (SHA-256, sizes, source, time).\n"
	"\n"
	"  import   copy a raw or qcow2 image into the store (stored as qcow2 unless\n"
	"           --format raw); refuses images with a backing file, files that are\n"
	"           not disk images, and an existing version with other content\n"
	"           (the same content again is a no-op)\n"
	"  list     versions with sizes, SHA-256 prefix and the clones using each\n"
	"  verify   recompute the SHA-256; exit 1 when the image was altered\n"
	"  rm       remove a version; refused (exit 1) while any delta uses it\n"
	"\n"
	"NAME@latest (or NAME) means the newest version by import time.\n"
	"\n"
	"Examples:\n"
	"  vdipool base import tiny build/guest/tiny.raw --version 2026.11.23\n"
	"  vdipool base list tiny -o json\n"
	"  vdipool base verify tiny@2026.11.23\n"
	"  vdipool base rm tiny@2026.11.01\n";

enum { OPT_VERSION = 0x200, OPT_FORMAT, OPT_PARENT };

struct base_opts {
	const char *version;
	const char *format;
	const char *parent;
};

static int base_opt(cli *c, int opt, const char *arg, void *ctx)
{
	struct base_opts *o = ctx;

	switch (opt) {
	case OPT_VERSION: o->version = arg; return 0;
	case OPT_FORMAT: o->format = arg; return 0;
	case OPT_PARENT: o->parent = arg; return 0;
	default: return VP_EXIT_USAGE;
	}
}

/* ---- progress ------------------------------------------------------------------ */

struct bar {
	cli *c;
	int last_pct;
	const char *last_phase;
};

/* Only for images big enough to wait for, only on a terminal (c->interactive). */
static void show_progress(void *ctx, const char *phase, uint64_t done, uint64_t total)
{
	struct bar *b = ctx;
	char d[32], t[32], bar[31];
	int pct;

	if (total < (64u << 20))
		return;
	pct = (int)(done * 100 / total);
	if (pct == b->last_pct && b->last_phase == phase)
		return;
	b->last_pct = pct;
	b->last_phase = phase;
	memset(bar, ' ', 30);
	memset(bar, '#', (size_t)(pct * 30 / 100));
	bar[30] = '\0';
	fprintf(stderr, "\r%-8s [%s] %3d%% %s / %s", phase, bar, pct,
		vp_fmt_bytes(done, d, sizeof(d)), vp_fmt_bytes(total, t, sizeof(t)));
	if (done >= total)
		fputc('\n', stderr);
}

/* ---- subcommands ----------------------------------------------------------------- */

static void print_info_json(const vp_base_info *b, int refs)
{
	vp_buf j = VP_BUF_INIT;

	vp_buf_puts(&j, "{\"name\":");
	vp_buf_json_str(&j, b->name);
	vp_buf_puts(&j, ",\"version\":");
	vp_buf_json_str(&j, b->version);
	vp_buf_printf(&j, ",\"format\":\"%s\",\"virtual_size\":%" PRIu64 ",\"disk_bytes\":%" PRIu64
		      ",\"sha256\":\"%s\",\"imported\":\"%s\"", b->format, b->virtual_size,
		      b->allocated, b->sha256, b->imported);
	if (refs)
		vp_buf_printf(&j, ",\"clones\":%zu", b->references);
	vp_buf_puts(&j, ",\"tier\":");
	vp_buf_json_str(&j, b->tier);
	vp_buf_puts(&j, ",\"location\":");
	vp_buf_json_str(&j, b->location);
	vp_buf_puts(&j, ",\"source\":");
	vp_buf_json_str(&j, b->source);
	vp_buf_puts(&j, ",\"parent\":");
	if (b->parent[0])
		vp_buf_json_str(&j, b->parent);
	else
		vp_buf_puts(&j, "null");
	vp_buf_putc(&j, '}');
	fputs(vp_buf_cstr(&j), stdout);
	vp_buf_release(&j);
}

static int base_import(cli *c, vp_store *s, char **args, int n, const struct base_opts *o)
{
	struct bar bar = { .c = c, .last_pct = -1 };
	vp_store_import_opts io = { .format = o->format, .parent = o->parent };
	vp_base_info b;
	char vs[32], ds[32];
	int rc;

	if (n != 2)
		return cli_usage_error(c, "base import: expected NAME FILE, got %d argument%s", n,
				       n == 1 ? "" : "s");
	if (!o->version)
		return cli_usage_error(c, "base import: --version is required");
	if (c->interactive && !c->quiet) {
		io.progress = show_progress;
		io.progress_ctx = &bar;
	}
	rc = vp_store_import(s, args[0], o->version, args[1], &io, &b);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON) {
		print_info_json(&b, 0);
		printf("\n");
	} else if (rc == 1) {
		printf("base %s@%s is already imported with the same content; nothing to do\n",
		       b.name, b.version);
	} else {
		printf("imported %s@%s: %s, %s virtual, %s on disk, sha256 %.12s\n", b.name, b.version,
		       b.format, vp_fmt_bytes(b.virtual_size, vs, sizeof(vs)),
		       vp_fmt_bytes(b.allocated, ds, sizeof(ds)), b.sha256);
	}
	return VP_EXIT_OK;
}

static int base_list(cli *c, vp_store *s, char **args, int n)
{
	vp_base_info *list = NULL;
	size_t count = 0;
	int rc;

	if (n > 1)
		return cli_usage_error(c, "base list: expected at most one NAME");
	rc = vp_store_list(s, n ? args[0] : NULL, &list, &count);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON) {
		printf("[");
		for (size_t i = 0; i < count; i++) {
			printf(i ? ",\n " : "");
			print_info_json(&list[i], 1);
		}
		printf("]\n");
	} else {
		printf("%-20s %-20s %10s %10s %-12s %6s  %s\n", "NAME", "VERSION", "VIRTUAL", "ON-DISK",
		       "SHA256", "CLONES", "TIER");
		for (size_t i = 0; i < count; i++) {
			char vs[32], ds[32];
			printf("%-20s %-20s %10s %10s %.12s %6zu  %s\n", list[i].name, list[i].version,
			       vp_fmt_bytes(list[i].virtual_size, vs, sizeof(vs)),
			       vp_fmt_bytes(list[i].allocated, ds, sizeof(ds)), list[i].sha256,
			       list[i].references, list[i].tier);
		}
	}
	vp_store_list_free(list);
	return VP_EXIT_OK;
}

static int base_verify(cli *c, vp_store *s, char **args, int n)
{
	struct bar bar = { .c = c, .last_pct = -1 };
	bool show = c->interactive && !c->quiet;
	vp_base_info b;
	int rc;

	if (n != 1)
		return cli_usage_error(c, "base verify: expected NAME@VERSION");
	rc = vp_store_verify(s, args[0], show ? show_progress : NULL, &bar);
	if (rc == 0)
		rc = vp_store_stat(s, args[0], &b);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON)
		printf("{\"base\":\"%s@%s\",\"ok\":true,\"sha256\":\"%s\"}\n", b.name, b.version, b.sha256);
	else
		printf("%s@%s: ok (sha256 %s)\n", b.name, b.version, b.sha256);
	return VP_EXIT_OK;
}

static int base_rm(cli *c, vp_store *s, char **args, int n)
{
	int rc;

	if (n != 1)
		return cli_usage_error(c, "base rm: expected NAME@VERSION");
	rc = vp_store_remove(s, args[0]);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON)
		printf("{\"removed\":\"%s\"}\n", args[0]);
	else
		printf("removed base %s\n", args[0]);
	return VP_EXIT_OK;
}

int cmd_base(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "version", required_argument, NULL, OPT_VERSION },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ NULL, 0, NULL, 0 },
	};
	struct base_opts o = { 0 };
	const char *sub;
	vp_store *s = NULL;
	int idx, rc;

	CLI_PARSE(idx, c, argc, argv, "", longopts, base_opt, &o);
	if (idx >= argc)
		return cli_usage_error(c, "expected a subcommand: import, list, verify or rm");
	sub = argv[idx++];
	if (strcmp(sub, "import") && (o.version || o.format || o.parent))
		return cli_usage_error(c, "--version, --format and --parent go with 'base import'");
	if (strcmp(sub, "import") && strcmp(sub, "list") && strcmp(sub, "ls") &&
	    strcmp(sub, "verify") && strcmp(sub, "rm"))
		return cli_usage_error(c, "unknown subcommand '%s' (import, list, verify, rm)", sub);
	rc = vp_store_open_root(&s, c->root);
	if (rc < 0)
		return cli_fail(c, rc);
	if (!strcmp(sub, "import"))
		rc = base_import(c, s, argv + idx, argc - idx, &o);
	else if (!strcmp(sub, "list") || !strcmp(sub, "ls"))
		rc = base_list(c, s, argv + idx, argc - idx);
	else if (!strcmp(sub, "verify"))
		rc = base_verify(c, s, argv + idx, argc - idx);
	else
		rc = base_rm(c, s, argv + idx, argc - idx);
	vp_store_free(s);
	return rc;
}
