/* cmd_gc.c: `vdipool gc`: remove unreferenced base versions and orphaned deltas (the store decides). */
#include <errno.h>
#include <stdio.h>
#include <syslog.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pool_cli.h"
#include "vdipool/pool.h"
#include "vdipool/spec.h"
#include "vdipool/store.h"
#include "vdipool/virt.h"

const char cmd_gc_help[] =
	"usage: vdipool gc [POOL.yaml] [--keep N] [--connect URI] [--purge-orphaned-data] [--yes]\n"
	"\n"
	"Remove base versions that nothing uses, beyond the newest N per name\n"
	"(default: the spec's gc.keep, else 2), and deltas that belong to no domain.\n"
	"Prints what it would remove; --yes removes. With POOL.yaml the store is the\n"
	"spec's base tier and its hosts are asked; else --root and --connect.\n"
	"\n"
	"Never removed: a version any delta on any tier a spec used backs onto, a\n"
	"file in the backing chain of any domain's disk (ours or not; snapshots\n"
	"included), a version a vdipool domain records (its base or the version a\n"
	"rollback returns to; so a full clone, whose disk backs onto nothing, still\n"
	"keeps the two versions its domain records), the parent of a derivation in\n"
	"progress. When libvirt cannot be reached or a domain has a disk vdipool\n"
	"cannot read (a network disk other than RBD, an unreadable chain), gc only\n"
	"shows the plan and removes nothing (exit 1).\n"
	"Data disks whose clone has neither domain nor delta are reported as\n"
	"orphaned and removed only with --purge-orphaned-data.\n"
	"With --yes it also removes the libvirt secrets of vdipool's LUKS disks\n"
	"(delta.encrypt: luks) whose disk no longer exists, on this machine's libvirt.\n"
	"gc takes the store lock: while apply, rollout or reset runs it refuses (exit 1).\n"
	"\n"
	"Options:\n"
	"  --keep N                unreferenced versions kept per base name\n"
	"  --connect URI           libvirt host whose domains use the store (default\n"
	"                          qemu:///system; with a spec: its hosts)\n"
	"  --purge-orphaned-data   also remove orphaned data disks (user data!)\n"
	"  --yes                   really remove\n"
	"\n"
	"Example:\n"
	"  vdipool gc --keep 2            # show the plan\n"
	"  vdipool gc /etc/vdipool/pool.yaml --yes\n"
	"\n"
	"With a spec whose hosts are remote, each remote host's own store is collected\n"
	"too (over SSH), with only that host's domains as references: a version goes\n"
	"from a host when nothing on that host needs it, whatever other hosts hold. A\n"
	"host that cannot be reached is reported (exit 1) and the others are done.\n"
	"A spec whose bases are on an rbd tier (shared Ceph storage) is collected once,\n"
	"from this machine, with the domains of all its hosts as references; a base\n"
	"version is removed only when Ceph lists no clone of its snapshot.\n";

enum { OPT_KEEP = 0x200, OPT_YES, OPT_CONNECT, OPT_PURGE };

struct gc_opts {
	unsigned keep;
	bool keep_set;
	bool yes;
	bool purge;
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
		o->keep_set = true;
		return 0;
	case OPT_YES:
	case 'y':
		o->yes = true;
		return 0;
	case OPT_CONNECT:
		o->uri = arg;
		return 0;
	case OPT_PURGE:
		o->purge = true;
		return 0;
	default:
		return VP_EXIT_USAGE;
	}
}

static void json_images(vp_buf *j, const vp_image_info *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		vp_buf_puts(j, i ? "," : "");
		vp_buf_json_str(j, v[i].location);
	}
}

/* The gc's decisions to the journal: each version and orphan it set out to remove (the removal
 * re-checks each under the exclusive lock), then how many went. */
static void log_gc(cli *c, const vp_gc_plan *p, int rc, size_t removed, const char *host)
{
	for (size_t i = 0; i < p->nbases; i++)
		cli_log(c, LOG_INFO, c->pool, NULL, "gc-remove-base", "base=%s@%s%s%s", p->bases[i].name,
			p->bases[i].version, host ? " host=" : "", host ? host : "");
	for (size_t i = 0; p->domains_known && i < p->norphans; i++)
		cli_log(c, LOG_INFO, p->orphans[i].pool[0] ? p->orphans[i].pool : c->pool, p->orphans[i].name,
			"gc-remove-orphan", "%s%s", host ? "host=" : "", host ? host : "");
	cli_log(c, rc < 0 ? LOG_ERR : LOG_INFO, c->pool, NULL, "gc", "result=%s removed=%zu%s%s",
		rc < 0 ? "failed" : "ok", removed, host ? " host=" : "", host ? host : "");
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
	json_images(&j, p->orphans, p->norphans);
	vp_buf_puts(&j, "],\"orphaned_data\":[");
	json_images(&j, p->orphan_data, p->norphan_data);
	vp_buf_printf(&j, "],\"domains_known\":%s,\"bytes\":%llu,\"applied\":%s,\"removed\":%zu}\n",
		      p->domains_known ? "true" : "false", (unsigned long long)p->bytes,
		      applied ? "true" : "false", removed);
	fputs(vp_buf_cstr(&j), stdout);
	vp_buf_release(&j);
}

static void print_table(const vp_gc_plan *p, unsigned keep, bool yes, bool purge)
{
	char sz[32];

	if (!p->domains_known)
		printf("domains not known (%s): nothing will be removed\n", p->unknown);
	if (!p->nbases)
		printf("no base version to remove (keeping the newest %u per name and every "
		       "referenced one)\n", keep);
	for (size_t i = 0; i < p->nbases; i++)
		printf("%s base %s@%s (%s)\n", yes ? "remove" : "would remove", p->bases[i].name,
		       p->bases[i].version, vp_fmt_bytes(p->bases[i].allocated, sz, sizeof(sz)));
	if (p->norphans)
		printf("%s:\n", p->domains_known ? (yes ? "remove orphaned deltas" : "would remove orphaned deltas")
						 : "orphan candidates (domains not known; kept)");
	for (size_t i = 0; i < p->norphans; i++)
		printf("  %s\n", p->orphans[i].location);
	if (p->norphan_data)
		printf("orphaned data disks (no domain, no delta)%s:\n",
		       purge ? (yes ? "; removed" : "; would be removed") : "; kept, pass --purge-orphaned-data to remove");
	for (size_t i = 0; i < p->norphan_data; i++)
		printf("  %s\n", p->orphan_data[i].location);
}

/* With a spec: its base tier is the store, its hosts hold the domains, its gc.keep applies. */
static int load_spec(cli *c, const char *file, vp_spec **spec, struct gc_opts *o, const char **root,
		     const char ***uris, size_t *nuris)
{
	int rc = vp_spec_load(spec, file);

	if (rc < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	if (!o->keep_set)
		o->keep = (*spec)->gc.keep;
	c->pool = (*spec)->pool;
	*root = (*spec)->storage.bases->path;
	if (o->uri)
		return 0;
	if (!(*uris = calloc((*spec)->host_count, sizeof(**uris))))
		return cli_fail(c, vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory"));
	for (size_t i = 0; i < (*spec)->host_count; i++)
		(*uris)[i] = (*spec)->hosts[i].uri;
	*nuris = (*spec)->host_count;
	return 0;
}

/* A remote host's own store, with that host's domains as its only references: a base goes from
 * a host only when nothing on that host needs it. 0 done, 1 the host could not be worked on. */
static int gc_remote_host(cli *c, const vp_spec *spec, size_t i, const struct gc_opts *o)
{
	const char *uri = spec->hosts[i].uri;
	cli_hosts h = { &uri, 1 };
	vp_store *s = NULL;
	vp_gc_plan *plan = NULL;
	size_t removed = 0;
	char sz[32];
	int rc;

	if ((rc = vp_pool_host_store_open(&s, spec, i)) == 0) {
		vp_store_set_pins_source(s, cli_hosts_pins, &h);
		rc = vp_store_gc_plan(s, o->keep, &plan);
	}
	if (rc == 0 && o->yes) {
		rc = vp_store_gc_apply(s, plan, o->purge ? VP_GC_PURGE_ORPHANED_DATA : 0, &removed);
		log_gc(c, plan, rc, removed, spec->hosts[i].name);
	}
	if (rc < 0) {
		fprintf(stderr, "vdipool: gc on host '%s' (%s): %s\n", spec->hosts[i].name, uri,
			vp_error_last()->message);
		vp_gc_plan_free(plan);
		vp_store_free(s);
		return 1;
	}
	if (c->output == CLI_OUT_JSON) {
		printf("{\"host\":");
		fflush(stdout);
		{
			vp_buf b = VP_BUF_INIT;
			vp_buf_json_str(&b, spec->hosts[i].name);
			fputs(vp_buf_cstr(&b), stdout);
			vp_buf_release(&b);
		}
		printf(",\"gc\":");
		print_json(plan, o->yes, removed);
		printf("}\n");
	} else {
		printf("host %s:\n", spec->hosts[i].name);
		print_table(plan, o->keep, o->yes, o->purge);
		if (o->yes)
			printf("removed %zu on host %s\n", removed, spec->hosts[i].name);
		else if (plan->nbases || (plan->norphans && plan->domains_known))
			printf("would free %s on host %s\n", vp_fmt_bytes(plan->bytes, sz, sizeof(sz)),
			       spec->hosts[i].name);
	}
	vp_gc_plan_free(plan);
	vp_store_free(s);
	return 0;
}

static bool shared_bases(const vp_spec *spec)
{
	return spec->storage.bases->driver == VP_STORAGE_RBD;
}

/* A tier of the spec on Ceph: the store is then opened from the spec (with the tiers recorded
 * in a dir base tier), since no directory records an rbd tier. */
static bool any_rbd(const vp_spec *spec)
{
	for (size_t i = 0; i < spec->storage.tier_count; i++)
		if (spec->storage.tiers[i].driver == VP_STORAGE_RBD)
			return true;
	return false;
}

/* The LUKS secrets of disks that are gone (removed by gc above, or by hand), on each libvirt of this
 * machine (a URI without a host part): only vdipool's, only those whose disk path no longer exists. */
static size_t sweep_luks_secrets(const cli_hosts *h)
{
	size_t total = 0;

	for (size_t i = 0; i < h->n; i++) {
		vp_virt *v = NULL;
		size_t n = 0;

		if (!strstr(h->uris[i], ":///") || vp_virt_open(&v, h->uris[i]) < 0)
			continue;
		if (vp_virt_luks_sweep(v, &n) < 0)
			fprintf(stderr, "vdipool: warning: %s\n", vp_error_last()->message);
		total += n;
		vp_virt_free(v);
	}
	return total;
}

static bool has_remote(const vp_spec *spec)
{
	for (size_t i = 0; i < spec->host_count; i++)
		if (vp_pool_host_remote(spec, i))
			return true;
	return false;
}

int cmd_gc(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "keep", required_argument, NULL, OPT_KEEP },
		{ "yes", no_argument, NULL, OPT_YES },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ "purge-orphaned-data", no_argument, NULL, OPT_PURGE },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_opts o = { .keep = 2 };
	vp_spec *spec = NULL;
	const char *root = c->root, **uris = NULL;
	cli_hosts h;
	vp_store *s = NULL;
	vp_gc_plan *plan = NULL;
	size_t removed = 0, nuris = 0;
	bool local_failed = false;
	char sz[32];
	int idx, rc;

	CLI_PARSE(idx, c, argc, argv, "y", longopts, gc_opt, &o);
	if (idx + 1 < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[idx + 1]);
	if (idx < argc && (rc = load_spec(c, argv[idx], &spec, &o, &root, &uris, &nuris)) != 0) {
		vp_spec_free(spec);
		return rc;
	}
	h = nuris ? (cli_hosts){ uris, nuris }
		  : (cli_hosts){ (const char *const[]){ o.uri ? o.uri : "qemu:///system" }, 1 };
	/* A shared (rbd) base tier is one store for every host: collected once, from here, with
	 * the domains of all the spec's hosts as references. */
	/* A secret whose disk is gone protects nothing: removed whatever the store's gc decides. */
	if (o.yes) {
		size_t n = sweep_luks_secrets(&h);
		if (n && c->output == CLI_OUT_TABLE)
			printf("removed %zu libvirt secret%s of LUKS disks that are gone\n", n, n == 1 ? "" : "s");
	}
	rc = spec && any_rbd(spec) ? vp_pool_store_open(&s, spec) : vp_store_open_root(&s, root);
	if (rc == 0) {
		vp_store_set_pins_source(s, cli_hosts_pins, &h);
		rc = vp_store_gc_plan(s, o.keep, &plan);
	}
	if (rc == 0 && c->output == CLI_OUT_TABLE)
		print_table(plan, o.keep, o.yes, o.purge);
	if (rc == 0 && o.yes) {
		rc = vp_store_gc_apply(s, plan, o.purge ? VP_GC_PURGE_ORPHANED_DATA : 0, &removed);
		log_gc(c, plan, rc, removed, NULL);
	}
	if (rc < 0 && spec && !o.uri && has_remote(spec) && !shared_bases(spec)) {
		/* The controller's store failing does not stop the hosts' own collections. */
		fprintf(stderr, "vdipool: gc of this machine's store: %s\n", vp_error_last()->message);
		local_failed = true;
	} else if (rc < 0) {
		vp_gc_plan_free(plan);
		vp_store_free(s);
		free(uris);
		vp_spec_free(spec);
		return cli_fail(c, rc);
	}
	if (!local_failed && c->output == CLI_OUT_JSON)
		print_json(plan, o.yes, removed);
	else if (!local_failed && o.yes)
		printf("removed %zu (base versions and orphaned disks)\n", removed);
	else if (!local_failed && (plan->nbases || (plan->norphans && plan->domains_known)))
		printf("would free %s; run 'vdipool gc --keep %u --yes' to remove\n",
		       vp_fmt_bytes(plan->bytes, sz, sizeof(sz)), o.keep);
	vp_gc_plan_free(plan);
	vp_store_free(s);
	free(uris);
	/* Each remote host of the spec has a store of its own. */
	rc = 0;
	for (size_t i = 0; spec && !o.uri && !shared_bases(spec) && i < spec->host_count; i++)
		if (vp_pool_host_remote(spec, i))
			rc |= gc_remote_host(c, spec, i, &o);
	vp_spec_free(spec);
	return rc || local_failed ? VP_EXIT_FAIL : VP_EXIT_OK;
}
