/* cmd_base.c: `vdipool base`: import, list, verify, remove, derive and seal golden base images. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pool_cli.h"
#include "vdipool/domain.h"
#include "vdipool/pool.h"
#include "vdipool/refs.h"
#include "vdipool/spec.h"
#include "vdipool/virt.h"
#include "vdipool/store.h"

const char cmd_base_help[] =
	"usage: vdipool base import NAME FILE --version V [--format qcow2|raw] [--compress] [--parent P]\n"
	"                          [--spec POOL.yaml]\n"
	"       vdipool base list [NAME] [--spec POOL.yaml]\n"
	"       vdipool base verify NAME@VERSION [--spec POOL.yaml]\n"
	"       vdipool base rm NAME@VERSION [--spec POOL.yaml]\n"
	"       vdipool base derive NAME@V1 --version V2 [--domain]\n"
	"       vdipool base seal NAME@V2 [--tmpdir DIR] [--format qcow2|raw]\n"
	"       vdipool base derive --abort NAME@V2     (or: vdipool base abandon NAME@V2)\n"
	"       vdipool base push NAME@VERSION --to [USER@]HOST[:PORT] ...  (see: vdipool push --help)\n"
	"       vdipool base push NAME@VERSION --spec POOL.yaml [--hosts H1,H2,...]\n"
	"\n"
	"Manage the versioned golden base images in the store (--root DIR or\n"
	"$VDIPOOL_ROOT, default /var/lib/vdipool): <root>/bases/<name>/<version>/\n"
	"holds the read-only image and its manifest (SHA-256, sizes, source, time).\n"
	"With --spec POOL.yaml, import, list, verify and rm work on that pool's\n"
	"bases tier instead, whatever its driver: on an rbd tier a version is the\n"
	"image base.NAME.VERSION in the Ceph pool with its snapshot 'vdipool'\n"
	"(stored raw; the manifest in the image's metadata), and rm asks libvirt on\n"
	"every host of the spec what its domains use.\n"
	"\n"
	"  import   copy a raw or qcow2 image into the store (stored as qcow2 unless\n"
	"           --format raw, raw on rbd); refuses images with a backing file, files that are\n"
	"           not disk images, and an existing version with other content\n"
	"           (the same content again is a no-op). --compress stores it as\n"
	"           compressed qcow2 (zlib clusters; the manifest says compression=zlib):\n"
	"           fewer bytes stored and pushed, some CPU on each clone's reads of\n"
	"           the base (README \"Compressed bases\" has the figures)\n"
	"  list     versions with sizes, SHA-256 prefix and the clones using each\n"
	"  verify   recompute the SHA-256; exit 1 when the image was altered. With\n"
	"           --spec, also each remote host's copy, hashed on that host\n"
	"  rm       remove a version; refused (exit 1) while any delta on any tier a\n"
	"           spec used backs onto it, a file of any domain's backing chain is\n"
	"           it, a vdipool domain records it (as its base or rollback version),\n"
	"           a derivation in progress backs onto it, a domain has a disk\n"
	"           vdipool cannot read, or libvirt (--connect URI, default\n"
	"           qemu:///system) cannot be asked; waits for no apply (exit 1 while\n"
	"           one runs)\n"
	"  derive   start updating a golden image: creates a writable maintenance\n"
	"           delta on V1 (<root>/bases/NAME/.derive-V2/disk.qcow2) and prints\n"
	"           its path. With --domain it also defines a libvirt domain\n"
	"           vdipool-derive-NAME-V2 on qemu:///system (template 'server', 1 GiB,\n"
	"           network 'default') to boot it: virsh start, install updates, shut\n"
	"           down; without, boot the delta yourself (virt-install --import).\n"
	"           V1 must exist (exit 1), V2 must be new (exit 1)\n"
	"  seal     flatten the maintenance delta (qemu-img convert, no backing\n"
	"           file), publish it as V2 with parent=V1 like an import (SHA-256,\n"
	"           manifest, atomic), then remove the delta. Refused (exit 1) while\n"
	"           a VM still has the delta open (or the maintenance domain runs);\n"
	"           removes the maintenance domain. The flattened copy is made in\n"
	"           --tmpdir (default $TMPDIR, else /var/tmp), outside the store\n"
	"  push     copy a version into another host's store over SSH (libssh2), or\n"
	"           with --spec pre-stage it on a pool's hosts before a rollout (hosts\n"
	"           seed each other with distribution.fanout): vdipool push --help\n"
	"  abandon  (derive --abort) drop a derivation in progress, its delta and\n"
	"           its maintenance domain\n"
	"\n"
	"Derivations in progress are not versions: plan, apply and gc ignore them;\n"
	"`base list` shows them in a second table (not in -o json).\n"
	"\n"
	"NAME@latest (or NAME) means the newest version by import time.\n"
	"\n"
	"Examples:\n"
	"  vdipool base import tiny build/guest/tiny.raw --version 2026.11.23\n"
	"  vdipool base list tiny -o json\n"
	"  vdipool base verify tiny@2026.11.23\n"
	"  vdipool base import tiny build/guest/tiny.raw --version 2 --spec ceph-pool.yaml\n"
	"  vdipool base rm tiny@2026.11.01\n"
	"  vdipool base derive tiny@2026.11.23 --version 2026.11.30 --domain\n"
	"  vdipool base seal tiny@2026.11.30\n";

enum { OPT_VERSION = 0x200, OPT_FORMAT, OPT_PARENT, OPT_ABORT, OPT_TMPDIR, OPT_DOMAIN, OPT_CONNECT, OPT_SPEC,
       OPT_COMPRESS };

struct base_opts {
	const char *version;
	const char *format;
	const char *parent;
	const char *tmpdir;
	const char *uri;
	const char *spec;
	bool abort;
	bool domain;
	bool compress;
};

static int base_opt(cli *c, int opt, const char *arg, void *ctx)
{
	struct base_opts *o = ctx;

	switch (opt) {
	case OPT_VERSION: o->version = arg; return 0;
	case OPT_FORMAT: o->format = arg; return 0;
	case OPT_PARENT: o->parent = arg; return 0;
	case OPT_ABORT: o->abort = true; return 0;
	case OPT_TMPDIR: o->tmpdir = arg; return 0;
	case OPT_DOMAIN: o->domain = true; return 0;
	case OPT_CONNECT: o->uri = arg; return 0;
	case OPT_SPEC: o->spec = arg; return 0;
	case OPT_COMPRESS: o->compress = true; return 0;
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
	vp_buf_puts(&j, ",\"compression\":");
	if (b->compression[0])
		vp_buf_json_str(&j, b->compression);
	else
		vp_buf_puts(&j, "null");
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
	vp_store_import_opts io = { .format = o->format, .parent = o->parent, .compress = o->compress };
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
		printf("imported %s@%s: %s%s, %s virtual, %s on disk, sha256 %.12s\n", b.name, b.version,
		       b.format, b.compression[0] ? " (zlib-compressed)" : "", vp_fmt_bytes(b.virtual_size, vs, sizeof(vs)),
		       vp_fmt_bytes(b.allocated, ds, sizeof(ds)), b.sha256);
	}
	return VP_EXIT_OK;
}

/* A second table, only when something is being derived: not versions yet. */
static int print_derivations(vp_store *s, const char *name)
{
	vp_derive_info *d = NULL;
	size_t n = 0;
	int rc = vp_store_derive_list(s, name, &d, &n);

	if (rc < 0)
		return rc;
	if (n)
		printf("\n%-20s %-20s %-20s %s\n", "DERIVING", "VERSION", "FROM", "MAINTENANCE DELTA");
	for (size_t i = 0; i < n; i++)
		printf("%-20s %-20s %-20s %s\n", d[i].name, d[i].version,
		       d[i].parent[0] ? d[i].parent : "(incomplete)",
		       d[i].location[0] ? d[i].location : "-");
	free(d);
	return 0;
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
		rc = print_derivations(s, n ? args[0] : NULL);
	}
	vp_store_list_free(list);
	return rc < 0 ? cli_fail(c, rc) : VP_EXIT_OK;
}

/* The copy of each remote host of the spec, hashed on the host: 0 all match, else exit 1. A
 * shared (rbd) bases tier has one copy, verified already. */
static int verify_hosts(cli *c, const vp_spec *spec, const char *ref)
{
	int rc, bad = 0;

	for (size_t i = 0; spec->storage.bases->driver != VP_STORAGE_RBD && i < spec->host_count; i++) {
		vp_store *hs = NULL;
		vp_base_info b;

		if (!vp_pool_host_remote(spec, i))
			continue;
		if ((rc = vp_pool_host_store_open(&hs, spec, i)) == 0 &&
		    (rc = vp_store_verify(hs, ref, NULL, NULL)) == 0)
			rc = vp_store_stat(hs, ref, &b);
		if (rc == VP_ENOENT) {
			printf("%s on host %s: not there (it is pushed before a clone needs it)\n", ref,
			       spec->hosts[i].name);
		} else if (rc < 0) {
			fprintf(stderr, "vdipool: %s on host %s: %s\n", ref, spec->hosts[i].name,
				vp_error_last()->message);
			bad = 1;
		} else {
			printf("%s@%s on host %s: ok (sha256 %s, hashed on the host)\n", b.name, b.version,
			       spec->hosts[i].name, b.sha256);
		}
		vp_store_free(hs);
	}
	(void)c;
	return bad ? VP_EXIT_FAIL : VP_EXIT_OK;
}

static int base_verify(cli *c, vp_store *s, char **args, int n, const vp_spec *spec)
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
	return spec ? verify_hosts(c, spec, args[0]) : VP_EXIT_OK;
}

static int base_rm(cli *c, vp_store *s, char **args, int n, const struct base_opts *o,
		   const vp_spec *spec)
{
	cli_hosts h = { 0 };
	int rc;

	if (n != 1)
		return cli_usage_error(c, "base rm: expected NAME@VERSION");
	/* The store checks every rule itself, under its lock; libvirt says what domains use: every
	 * host of the spec, or the one --connect names. */
	if (spec && (rc = cli_spec_uris(c, spec, &h)) != 0)
		return rc;
	if (spec)
		vp_store_set_pins_source(s, cli_hosts_pins, &h);
	else
		vp_store_set_pins_source(s, vp_refs_libvirt_pins,
					 (void *)(o->uri ? o->uri : "qemu:///system"));
	rc = vp_store_remove(s, args[0]);
	free((void *)h.uris);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON)
		printf("{\"removed\":\"%s\"}\n", args[0]);
	else
		printf("removed base %s\n", args[0]);
	return VP_EXIT_OK;
}

/* ---- the maintenance domain of a derivation ---------------------------------------- */

#define DERIVE_URI "qemu:///system"

/* "vdipool-derive-NAME-V2" for ref "NAME@V2". */
static void derive_domain_name(char *buf, size_t len, const char *ref)
{
	const char *at = strchr(ref, '@');

	snprintf(buf, len, "vdipool-derive-%.*s-%s", at ? (int)(at - ref) : (int)strlen(ref), ref,
		 at ? at + 1 : "");
}

static int define_derive_domain(const vp_derive_info *d, char *name, size_t len)
{
	vp_domain_params dp = { .network = "default", .memory_bytes = 1ull << 30, .vcpus = 2,
				.delta_format = "qcow2" };
	char ref[2 * VP_PLUGIN_NAME_MAX + 2], *tpl = NULL, *xml = NULL;
	vp_virt *v = NULL;
	int rc;

	snprintf(ref, sizeof(ref), "%s@%s", d->name, d->version);
	derive_domain_name(name, len, ref);
	dp.name = name;
	vp_domain_identity("vdipool-derive", name, dp.uuid, dp.mac);
	/* Metadata names a pool of its own, so no pool ever takes it for a clone. */
	dp.meta = (vp_domain_meta){ .pool = (char *)"vdipool-derive", .base_name = (char *)d->name,
				    .base_version = (char *)d->parent, .delta_path = (char *)d->location };
	rc = vp_spec_find_template(&tpl, "server");
	if (rc == 0)
		rc = vp_virt_open(&v, DERIVE_URI);
	if (rc == 0) {
		/* KVM only if this very guest boots under it (vdipool/accel.h). */
		vp_accel accel;
		dp.domain_type = "kvm";
		rc = vp_domain_render(&xml, tpl, &dp);
		if (rc == 0) {
			vp_virt_set_accel_probe(v, xml, ref);
			free(xml);
			xml = NULL;
			rc = vp_virt_accel(v, VP_ACCEL_AUTO, &accel);
		}
		if (rc == 0 && accel.reason[0])
			fprintf(stderr, "warning: %s\n", accel.reason);
		if (rc == 0) {
			dp.domain_type = accel.domain_type;
			rc = vp_domain_render(&xml, tpl, &dp);
		}
	}
	if (rc == 0)
		rc = vp_virt_define(v, xml, true);
	free(xml);
	free(tpl);
	vp_virt_free(v);
	return rc;
}

/* Before a seal: the maintenance domain must be shut off. */
static int derive_domain_stopped(const char *ref)
{
	char name[256];
	vp_virt_domain d;
	vp_virt *v = NULL;
	int rc;

	derive_domain_name(name, sizeof(name), ref);
	if (vp_virt_open(&v, DERIVE_URI) < 0) {
		vp_error_clear(); /* no libvirt: no domain of ours can run */
		return 0;
	}
	rc = vp_virt_lookup(v, name, &d);
	if (rc == 0) {
		bool running = d.state != VP_DOM_SHUTOFF;
		vp_virt_domain_release(&d);
		rc = running ? vp_error_set(VP_ERR_STORE, VP_EBUSY,
					    "cannot seal '%s': its maintenance domain '%s' is running; "
					    "shut it down first (virsh shutdown %s)", ref, name, name)
			     : 0;
	} else {
		vp_error_clear();
		rc = 0;
	}
	vp_virt_free(v);
	return rc;
}

/* After a seal or an abandon: the maintenance domain goes (if there is one). */
static void drop_derive_domain(cli *c, const char *ref)
{
	char name[256];
	vp_virt *v = NULL;

	derive_domain_name(name, sizeof(name), ref);
	if (vp_virt_open(&v, DERIVE_URI) == 0) {
		vp_virt_domain d;
		if (vp_virt_lookup(v, name, &d) == 0) {
			vp_virt_domain_release(&d);
			if (vp_virt_undefine(v, name) == 0)
				cli_info(c, "removed the maintenance domain %s\n", name);
		}
	}
	vp_error_clear();
	vp_virt_free(v);
}

static int base_derive(cli *c, vp_store *s, char **args, int n, const struct base_opts *o)
{
	vp_derive_info d;
	int rc;

	if (n != 1)
		return cli_usage_error(c, "base derive: expected NAME@V1 (or --abort NAME@V2)");
	if (o->abort) {
		if (o->version)
			return cli_usage_error(c, "base derive --abort: the version goes in NAME@V2, "
					       "not --version");
		if ((rc = vp_store_derive_abort(s, args[0])) < 0)
			return cli_fail(c, rc);
		drop_derive_domain(c, args[0]);
		if (c->output == CLI_OUT_JSON)
			printf("{\"abandoned\":\"%s\"}\n", args[0]);
		else
			printf("abandoned the derivation of %s\n", args[0]);
		return VP_EXIT_OK;
	}
	if (!o->version)
		return cli_usage_error(c, "base derive: --version is required (the new version)");
	if ((rc = vp_store_derive(s, args[0], o->version, &d)) < 0)
		return cli_fail(c, rc);
	if (o->domain) {
		char dom[256], ref[2 * VP_PLUGIN_NAME_MAX + 2];
		if ((rc = define_derive_domain(&d, dom, sizeof(dom))) < 0) {
			int code = cli_fail(c, rc);
			snprintf(ref, sizeof(ref), "%s@%s", d.name, d.version);
			vp_store_derive_abort(s, ref); /* all or nothing */
			return code;
		}
		printf("maintenance domain: %s (virsh start %s; shut it down, then seal)\n", dom, dom);
	}
	if (c->output == CLI_OUT_JSON) {
		vp_buf j = VP_BUF_INIT;
		vp_buf_printf(&j, "{\"name\":\"%s\",\"version\":\"%s\",\"parent\":\"%s\",\"delta\":",
			      d.name, d.version, d.parent);
		vp_buf_json_str(&j, d.location);
		vp_buf_puts(&j, "}\n");
		fputs(vp_buf_cstr(&j), stdout);
		vp_buf_release(&j);
		return VP_EXIT_OK;
	}
	printf("deriving %s@%s from %s@%s\nmaintenance delta: %s\n", d.name, d.version, d.name,
	       d.parent, d.location);
	cli_info(c, "boot it to install updates, e.g.\n"
		 "  virt-install --name vdipool-derive-%s-%s --import --memory 2048 \\\n"
		 "    --disk path=%s,format=qcow2 --os-variant detect=on,require=off\n"
		 "then shut it down and run: vdipool base seal %s@%s\n",
		 d.name, d.version, d.location, d.name, d.version);
	return VP_EXIT_OK;
}

static int base_seal(cli *c, vp_store *s, char **args, int n, const struct base_opts *o)
{
	struct bar bar = { .c = c, .last_pct = -1 };
	vp_store_seal_opts so = { .tmpdir = o->tmpdir ? o->tmpdir : getenv("TMPDIR"), .format = o->format };
	vp_base_info b;
	char vs[32], ds[32];
	int rc;

	if (n != 1)
		return cli_usage_error(c, "base seal: expected NAME@V2");
	if (c->interactive && !c->quiet) {
		so.progress = show_progress;
		so.progress_ctx = &bar;
	}
	if ((rc = derive_domain_stopped(args[0])) < 0 || (rc = vp_store_seal(s, args[0], &so, &b)) < 0)
		return cli_fail(c, rc);
	drop_derive_domain(c, args[0]);
	if (c->output == CLI_OUT_JSON) {
		print_info_json(&b, 0);
		printf("\n");
	} else {
		printf("sealed %s@%s (parent %s): %s, %s virtual, %s on disk, sha256 %.12s\n", b.name,
		       b.version, b.parent, b.format, vp_fmt_bytes(b.virtual_size, vs, sizeof(vs)),
		       vp_fmt_bytes(b.allocated, ds, sizeof(ds)), b.sha256);
	}
	return VP_EXIT_OK;
}

/* Which options go with which subcommand; 0 or a usage exit code. */
static int check_opts(cli *c, const char *sub, const struct base_opts *o)
{
	static const char *const subs[] = { "import", "list", "ls", "verify", "rm", "derive",
					    "seal", "abandon" };
	bool known = false;

	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		known = known || !strcmp(sub, subs[i]);
	if (!known)
		return cli_usage_error(c, "unknown subcommand '%s' (import, list, verify, rm, derive, "
				       "seal, abandon)", sub);
	if (o->parent && strcmp(sub, "import"))
		return cli_usage_error(c, "--parent goes with 'base import' (seal records the parent)");
	if (o->version && strcmp(sub, "import") && strcmp(sub, "derive"))
		return cli_usage_error(c, "--version goes with 'base import' and 'base derive'");
	if (o->format && strcmp(sub, "import") && strcmp(sub, "seal"))
		return cli_usage_error(c, "--format goes with 'base import' and 'base seal'");
	if (o->compress && strcmp(sub, "import"))
		return cli_usage_error(c, "--compress goes with 'base import'");
	if (o->abort && strcmp(sub, "derive"))
		return cli_usage_error(c, "--abort goes with 'base derive'");
	if (o->tmpdir && strcmp(sub, "seal"))
		return cli_usage_error(c, "--tmpdir goes with 'base seal'");
	if (o->spec && strcmp(sub, "verify") && strcmp(sub, "import") && strcmp(sub, "list") &&
	    strcmp(sub, "ls") && strcmp(sub, "rm"))
		return cli_usage_error(c, "--spec goes with 'base import', 'list', 'verify' and 'rm' "
				       "(derive and seal work on a --root store)");
	if (o->spec && o->uri)
		return cli_usage_error(c, "--connect and --spec do not go together (with a spec, its "
				       "hosts are asked)");
	if (o->uri && strcmp(sub, "rm"))
		return cli_usage_error(c, "--connect goes with 'base rm'");
	if (o->domain && (strcmp(sub, "derive") || o->abort))
		return cli_usage_error(c, "--domain goes with 'base derive'");
	return 0;
}

int cmd_base(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "version", required_argument, NULL, OPT_VERSION },
		{ "format", required_argument, NULL, OPT_FORMAT },
		{ "parent", required_argument, NULL, OPT_PARENT },
		{ "abort", no_argument, NULL, OPT_ABORT },
		{ "tmpdir", required_argument, NULL, OPT_TMPDIR },
		{ "domain", no_argument, NULL, OPT_DOMAIN },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ "spec", required_argument, NULL, OPT_SPEC },
		{ "compress", no_argument, NULL, OPT_COMPRESS },
		{ NULL, 0, NULL, 0 },
	};
	struct base_opts o = { 0 };
	const char *sub;
	vp_spec *spec = NULL;
	vp_store *s = NULL;
	int idx, rc;

	if (argc > 1 && !strcmp(argv[1], "push")) {
		c->cmd = cli_find_command("push");
		return cmd_push(c, argc - 1, argv + 1);
	}
	CLI_PARSE(idx, c, argc, argv, "", longopts, base_opt, &o);
	if (idx >= argc)
		return cli_usage_error(c, "expected a subcommand: import, list, verify, rm, derive, "
				       "seal or abandon");
	sub = argv[idx++];
	if ((rc = check_opts(c, sub, &o)) != 0)
		return rc;
	if (o.spec && (rc = vp_spec_load(&spec, o.spec)) < 0) {
		fprintf(stderr, "%s\n", vp_error_last()->message);
		return rc == VP_ENOMEM ? VP_EXIT_FAIL : VP_EXIT_USAGE;
	}
	rc = spec ? vp_pool_store_open(&s, spec) : vp_store_open_root(&s, c->root);
	if (rc < 0) {
		vp_spec_free(spec);
		return cli_fail(c, rc);
	}
	if (!strcmp(sub, "import"))
		rc = base_import(c, s, argv + idx, argc - idx, &o);
	else if (!strcmp(sub, "list") || !strcmp(sub, "ls"))
		rc = base_list(c, s, argv + idx, argc - idx);
	else if (!strcmp(sub, "verify"))
		rc = base_verify(c, s, argv + idx, argc - idx, spec);
	else if (!strcmp(sub, "derive") || !strcmp(sub, "abandon")) {
		o.abort = o.abort || !strcmp(sub, "abandon");
		rc = base_derive(c, s, argv + idx, argc - idx, &o);
	} else if (!strcmp(sub, "seal"))
		rc = base_seal(c, s, argv + idx, argc - idx, &o);
	else
		rc = base_rm(c, s, argv + idx, argc - idx, &o, spec);
	vp_store_free(s);
	vp_spec_free(spec);
	return rc;
}
