/* cmd_gc.c: `vdipool gc`: remove unreferenced base versions and orphaned deltas. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vdipool/store.h"
#include "pins.h"

const char cmd_gc_help[] =
	"usage: vdipool gc [--keep N] [--yes]\n"
	"\n"
	"Remove base versions that no delta references, beyond the newest N per name\n"
	"(default 1), and deltas that belong to no domain. Prints what it would\n"
	"remove; --yes removes. A version a delta backs onto is never removed.\n"
	"\n"
	"A version that a vdipool domain records (as its base, or as the version\n"
	"a rollback returns to) is kept too.\n"
	"A delta is an orphan when no domain on the libvirt host (--connect URI,\n"
	"default qemu:///system) uses it, ours or not. When libvirt cannot be\n"
	"reached, deltas are only listed as \"orphan candidates\" and kept: a guess\n"
	"must not delete a clone's data.\n"
	"\n"
	"Options:\n"
	"  --keep N         unreferenced versions kept per base name (default 1)\n"
	"  --connect URI    libvirt host whose domains use the deltas\n"
	"  --yes            really remove\n"
	"\n"
	"Example:\n"
	"  vdipool gc --keep 2            # show the plan\n"
	"  vdipool gc --keep 2 --yes      # carry it out\n";

enum { OPT_KEEP = 0x200, OPT_YES, OPT_CONNECT };

struct gc_opts {
	unsigned keep;
	bool yes;
	const char *uri;
};

static int gc_opt(cli *c, int opt, const char *arg, void *ctx)
{
	struct gc_opts *o = ctx;
	char *end;
	unsigned long v;

	switch (opt) {
	case OPT_KEEP:
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (errno || end == arg || *end || arg[0] == '-' || v > 100000)
			return cli_usage_error(c, "--keep: expected a number of versions, got '%s'", arg);
		o->keep = (unsigned)v;
		return 0;
	case OPT_YES:
	case 'y':
		o->yes = true;
		return 0;
	case OPT_CONNECT:
		o->uri = arg;
		return 0;
	default:
		return VP_EXIT_USAGE;
	}
}

static void print_json(const vp_gc_plan *p, bool applied, size_t removed)
{
	vp_buf j = VP_BUF_INIT;

	vp_buf_puts(&j, "{\"bases\":[");
	for (size_t i = 0; i < p->nbases; i++) {
		vp_buf_printf(&j, "%s{\"name\":", i ? "," : "");
		vp_buf_json_str(&j, p->bases[i].name);
		vp_buf_puts(&j, ",\"version\":");
		vp_buf_json_str(&j, p->bases[i].version);
		vp_buf_printf(&j, ",\"bytes\":%llu}", (unsigned long long)p->bases[i].allocated);
	}
	vp_buf_printf(&j, "],\"%s\":[", p->domains_known ? "orphans" : "orphan_candidates");
	for (size_t i = 0; i < p->norphans; i++) {
		vp_buf_puts(&j, i ? "," : "");
		vp_buf_json_str(&j, p->orphans[i].location);
	}
	vp_buf_printf(&j, "],\"domains_known\":%s,\"bytes\":%llu,\"applied\":%s,\"removed\":%zu}\n",
		      p->domains_known ? "true" : "false", (unsigned long long)p->bytes,
		      applied ? "true" : "false", removed);
	fputs(vp_buf_cstr(&j), stdout);
	vp_buf_release(&j);
}

static void print_table(const vp_gc_plan *p, unsigned keep, bool yes)
{
	char sz[32];

	if (!p->nbases)
		printf("no base version to remove (keeping the newest %u per name and every "
		       "referenced one)\n", keep);
	for (size_t i = 0; i < p->nbases; i++)
		printf("%s base %s@%s (%s)\n", yes ? "remove" : "would remove", p->bases[i].name,
		       p->bases[i].version, vp_fmt_bytes(p->bases[i].allocated, sz, sizeof(sz)));
	if (p->norphans)
		printf("%s:\n", p->domains_known ? (yes ? "remove orphaned deltas" : "would remove orphaned deltas")
						 : "orphan candidates (domain check not available yet; kept)");
	for (size_t i = 0; i < p->norphans; i++)
		printf("  %s\n", p->orphans[i].location);
}

/* Drops from the plan the base versions a vdipool domain still records. */
static void keep_pinned(vp_gc_plan *plan, const cli_pins *pins)
{
	size_t kept = 0;
	char owners[256];

	for (size_t i = 0; i < plan->nbases; i++) {
		vp_base_info *b = &plan->bases[i];
		if (cli_pins_owners(pins, b->location, owners, sizeof(owners)))
			plan->bytes -= b->allocated;
		else
			plan->bases[kept++] = *b;
	}
	plan->nbases = kept;
}

int cmd_gc(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "yes", no_argument, NULL, OPT_YES },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_opts o = { .keep = 1, .uri = "qemu:///system" };
	cli_pins pins;
	bool known;
	vp_store *s = NULL;
	vp_gc_plan *plan = NULL;
	size_t removed = 0;
	char sz[32];
	int idx, rc;

	CLI_PARSE(idx, c, argc, argv, "y", longopts, gc_opt, &o);
	if (idx < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[idx]);
	rc = vp_store_open_root(&s, c->root);
	known = rc == 0 && cli_pins_load(c, o.uri, &pins) == 0;
	if (!known)
		memset(&pins, 0, sizeof(pins));
	if (rc == 0)
		rc = vp_store_gc_plan(s, o.keep, known ? (const char *const *)pins.disks : NULL, pins.ndisks,
				      &plan);
	if (rc == 0)
		keep_pinned(plan, &pins);
	cli_pins_release(&pins);
	if (rc == 0 && c->output == CLI_OUT_TABLE)
		print_table(plan, o.keep, o.yes);
	if (rc == 0 && o.yes)
		rc = vp_store_gc_apply(s, plan, &removed);
	if (rc < 0) {
		vp_gc_plan_free(plan);
		vp_store_free(s);
		return cli_fail(c, rc);
	}
	if (c->output == CLI_OUT_JSON)
		print_json(plan, o.yes, removed);
	else if (o.yes)
		printf("removed %zu (base versions and orphaned deltas)\n", removed);
	else if (plan->nbases)
		printf("would free %s; run 'vdipool gc --keep %u --yes' to remove\n",
		       vp_fmt_bytes(plan->bytes, sz, sizeof(sz)), o.keep);
	vp_gc_plan_free(plan);
	vp_store_free(s);
	return VP_EXIT_OK;
}
