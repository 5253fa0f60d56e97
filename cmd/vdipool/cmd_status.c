/* cmd_status.c: `vdipool status`: the pool's clones, states, versions and space. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pool_cli.h"
#include "util/util.h"

const char cmd_status_help[] =
	"usage: vdipool status [-o json] POOL.yaml\n"
	"\n"
	"Show each clone (host, state, base@version, delta bytes on disk, backing-chain\n"
	"depth) and the pool totals: clones by state, space used against full copies.\n"
	"\n"
	"With -o json each clone also has: addresses (its IPs: the DHCP lease of its\n"
	"libvirt network, else the guest agent's; IPv4 first; [] when not running),\n"
	"since (ISO 8601 UTC, when its QEMU was started, as the system libvirt daemon of\n"
	"this machine records it; null when shut off or on another host), ready (true\n"
	"when it runs, has an address and the spec's readiness.command passes, run once\n"
	"now on this machine), ready_why (why not, else null), claimed_by (who holds\n"
	"it, vdipool claim; null when not claimed) and claimed_until (ISO 8601 UTC;\n"
	"null: no expiry).\n"
	"\n"
	"Example:\n"
	"  vdipool status -o json examples/quickstart.yaml\n"
	"  vdipool status -o json pool.yaml | jq -r '.clones[] | [.name, .addresses[0]] | @tsv'\n";

/* The keys readiness added to each clone: its addresses, since when it runs and whether it is
 * ready (one look: running, an address, readiness.command once). */
/* KEY then an ISO 8601 UTC time, or null when t is not set (<= 0). */
static void json_time(vp_buf *b, const char *key, long long t)
{
	char when[32];
	time_t tt = (time_t)t;
	struct tm tm;

	vp_buf_puts(b, key);
	if (t <= 0) {
		vp_buf_puts(b, "null");
		return;
	}
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	vp_buf_json_str(b, when);
}

static void json_live(vp_buf *b, vp_pool *pool, const vp_clone_status *c)
{
	vp_ready_clone r;

	vp_buf_puts(b, ",\"addresses\":[");
	for (size_t i = 0; i < c->naddrs; i++) {
		if (i)
			vp_buf_puts(b, ",");
		vp_buf_json_str(b, c->addrs[i]);
	}
	vp_buf_puts(b, "],\"claimed_by\":");
	if (*c->claimed_by)
		vp_buf_json_str(b, c->claimed_by);
	else
		vp_buf_puts(b, "null");
	json_time(b, ",\"claimed_until\":", c->claimed_until);
	json_time(b, ",\"since\":", c->since);
	if (strcmp(c->state, "running") != 0 || !c->naddrs) {
		vp_buf_printf(b, ",\"ready\":false,\"ready_why\":");
		vp_buf_json_str(b, !strcmp(c->state, "parked") ? "parked (saved to disk: a claim resumes it)"
				   : strcmp(c->state, "running") ? "not running" : "no address");
		return;
	}
	if (vp_pool_ready_check(pool, c->name, &r) < 0) {
		vp_buf_printf(b, ",\"ready\":false,\"ready_why\":");
		vp_buf_json_str(b, vp_error_last()->message);
		vp_error_clear();
		return;
	}
	vp_buf_printf(b, ",\"ready\":%s,\"ready_why\":", r.state == VP_READY_YES ? "true" : "false");
	if (r.state == VP_READY_YES)
		vp_buf_puts(b, "null");
	else
		vp_buf_json_str(b, r.why);
}

static void print_json(const vp_spec *spec, vp_pool *pool, const vp_pool_status *st)
{
	vp_buf b = VP_BUF_INIT;

	vp_buf_puts(&b, "{\"pool\":");
	vp_buf_json_str(&b, spec->pool);
	vp_buf_puts(&b, ",\"base\":");
	vp_buf_json_str(&b, vp_pool_base_ref(pool));
	vp_buf_printf(&b, ",\"clones_wanted\":%u,\"running\":%zu,\"stopped\":%zu,\"missing\":%zu,\"other\":%zu,"
		      "\"delta_bytes\":%llu,\"base_bytes\":%llu,\"full_copy_bytes\":%llu,\"clones\":[",
		      spec->clones.count, st->running, st->stopped, st->missing, st->other,
		      (unsigned long long)st->delta_bytes, (unsigned long long)st->base_bytes,
		      (unsigned long long)st->full_copy_bytes);
	for (size_t i = 0; i < st->count; i++) {
		const vp_clone_status *c = &st->clones[i];
		vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
		vp_buf_json_str(&b, c->name);
		vp_buf_puts(&b, ",\"host\":");
		vp_buf_json_str(&b, c->host);
		vp_buf_puts(&b, ",\"state\":");
		vp_buf_json_str(&b, c->state);
		vp_buf_puts(&b, ",\"base\":");
		vp_buf_json_str(&b, c->base);
		vp_buf_printf(&b, ",\"delta_bytes\":%llu,\"data_bytes\":%llu,\"chain_depth\":%u",
			      (unsigned long long)c->delta_bytes, (unsigned long long)c->data_bytes, c->chain_depth);
		json_live(&b, pool, c);
		vp_buf_puts(&b, "}");
	}
	vp_buf_puts(&b, "]}\n");
	fputs(vp_buf_cstr(&b), stdout);
	vp_buf_release(&b);
}

static void print_table(const vp_spec *spec, vp_pool *pool, const vp_pool_status *st)
{
	char a[32], bb[32], f[32];
	const char *base = vp_pool_base_ref(pool);

	printf("%-20s %-10s %-10s %-24s %12s %6s\n", "CLONE", "HOST", "STATE", "BASE", "DELTA", "DEPTH");
	for (size_t i = 0; i < st->count; i++) {
		const vp_clone_status *c = &st->clones[i];
		printf("%-20s %-10s %-10s %-24s %12s %6u\n", c->name, c->host, c->state, *c->base ? c->base : "-",
		       vp_fmt_bytes(c->delta_bytes + c->data_bytes, a, sizeof(a)), c->chain_depth);
	}
	printf("\nPool '%s': %u wanted; %zu running, ", spec->pool, spec->clones.count, st->running);
	if (st->parked)
		printf("%zu parked, ", st->parked);
	printf("%zu shut off, %zu missing, %zu other; base %s\n", st->stopped, st->missing, st->other,
	       *base ? base : "(not in the store)");
	if (st->full_copy_bytes && spec->clones.mode == VP_CLONE_FULL)
		printf("Space: %s in full copies + %s base\n", vp_fmt_bytes(st->delta_bytes, a, sizeof(a)),
		       vp_fmt_bytes(st->base_bytes, bb, sizeof(bb)));
	else if (st->full_copy_bytes)
		printf("Space: %s in deltas + %s base, against %s as full copies (%.0f%% saved)\n",
		       vp_fmt_bytes(st->delta_bytes, a, sizeof(a)), vp_fmt_bytes(st->base_bytes, bb, sizeof(bb)),
		       vp_fmt_bytes(st->full_copy_bytes, f, sizeof(f)),
		       100.0 * (1.0 - (double)(st->delta_bytes + st->base_bytes) / (double)st->full_copy_bytes));
}

/* Many hosts: every host's clones in one table, then a line per host. */
static void print_fleet(cli *c, const vp_spec *spec, vp_fleet *f, vp_pool_status **st)
{
	vp_buf b = VP_BUF_INIT;
	char a[32], bb[32];
	size_t n = vp_fleet_host_count(f);

	if (c->output == CLI_OUT_JSON) {
		vp_buf_puts(&b, "{\"pool\":");
		vp_buf_json_str(&b, spec->pool);
		vp_buf_puts(&b, ",\"base\":");
		vp_buf_json_str(&b, vp_fleet_base_ref(f));
		vp_buf_printf(&b, ",\"clones_wanted\":%u,\"hosts\":[", spec->clones.count);
		for (size_t i = 0; i < n; i++) {
			const vp_fleet_host *h = vp_fleet_host_at(f, i);

			vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
			vp_buf_json_str(&b, h->name);
			vp_buf_puts(&b, ",\"uri\":");
			vp_buf_json_str(&b, h->uri);
			vp_buf_printf(&b, ",\"reachable\":%s,\"error\":", h->reachable ? "true" : "false");
			vp_buf_json_str(&b, h->error);
			vp_buf_printf(&b, ",\"clones\":%zu", h->clones);
			if (st[i])
				vp_buf_printf(&b, ",\"running\":%zu,\"stopped\":%zu,\"missing\":%zu,"
					      "\"other\":%zu,\"delta_bytes\":%llu,\"base_bytes\":%llu",
					      st[i]->running, st[i]->stopped, st[i]->missing, st[i]->other,
					      (unsigned long long)st[i]->delta_bytes,
					      (unsigned long long)st[i]->base_bytes);
			vp_buf_puts(&b, ",\"clone_list\":[");
			for (size_t k = 0; st[i] && k < st[i]->count; k++) {
				const vp_clone_status *cs = &st[i]->clones[k];

				vp_buf_puts(&b, k ? ",{\"name\":" : "{\"name\":");
				vp_buf_json_str(&b, cs->name);
				vp_buf_puts(&b, ",\"state\":");
				vp_buf_json_str(&b, cs->state);
				vp_buf_puts(&b, ",\"base\":");
				vp_buf_json_str(&b, cs->base);
				vp_buf_printf(&b, ",\"delta_bytes\":%llu,\"data_bytes\":%llu",
					      (unsigned long long)cs->delta_bytes,
					      (unsigned long long)cs->data_bytes);
				json_live(&b, vp_fleet_host_at(f, i)->pool, cs);
				vp_buf_puts(&b, "}");
			}
			vp_buf_puts(&b, "]}");
		}
		vp_buf_puts(&b, "]}\n");
		fputs(vp_buf_cstr(&b), stdout);
		vp_buf_release(&b);
		return;
	}
	printf("%-20s %-10s %-10s %-24s %12s\n", "CLONE", "HOST", "STATE", "BASE", "DELTA");
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; st[i] && k < st[i]->count; k++) {
			const vp_clone_status *cs = &st[i]->clones[k];

			printf("%-20s %-10s %-10s %-24s %12s\n", cs->name, cs->host, cs->state,
			       *cs->base ? cs->base : "-",
			       vp_fmt_bytes(cs->delta_bytes + cs->data_bytes, a, sizeof(a)));
		}
	printf("\nPool '%s': %u wanted over %zu hosts; base %s\n", spec->pool, spec->clones.count, n,
	       *vp_fleet_base_ref(f) ? vp_fleet_base_ref(f) : "(not in the store)");
	for (size_t i = 0; i < n; i++) {
		const vp_fleet_host *h = vp_fleet_host_at(f, i);

		if (!st[i]) {
			printf("  %-10s UNREACHABLE (%zu clone%s recorded there, left alone): %s\n", h->name,
			       h->clones, h->clones == 1 ? "" : "s", h->error);
			continue;
		}
		printf("  %-10s %zu clones: %zu running, ", h->name, st[i]->count, st[i]->running);
		if (st[i]->parked)
			printf("%zu parked, ", st[i]->parked);
		printf("%zu shut off, %zu missing, %zu other; %s in deltas, %s base\n", st[i]->stopped,
		       st[i]->missing, st[i]->other, vp_fmt_bytes(st[i]->delta_bytes, a, sizeof(a)),
		       vp_fmt_bytes(st[i]->base_bytes, bb, sizeof(bb)));
	}
}

int cmd_status(cli *c, int argc, char **argv)
{
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_pool_status **st = NULL;
	size_t n = 0;
	int idx, rc = 0, code;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = fleet_cli_open(c, argv[idx], POOL_CLI_NO_LOCK, false, -1, false, &spec, &fleet)) != 0)
		return code;
	n = vp_fleet_host_count(fleet);
	if (!(st = calloc(n, sizeof(*st)))) {
		code = cli_fail(c, VP_ENOMEM);
		goto out;
	}
	for (size_t i = 0; i < n && rc == 0; i++)
		if (vp_fleet_host_at(fleet, i)->reachable)
			rc = vp_pool_status_get(vp_fleet_host_at(fleet, i)->pool, &st[i]);
	if (rc < 0) {
		code = cli_fail(c, rc);
	} else if (n == 1) {
		vp_pool *pool = vp_fleet_host_at(fleet, 0)->pool;

		if (c->output == CLI_OUT_JSON)
			print_json(spec, pool, st[0]);
		else
			print_table(spec, pool, st[0]);
		code = VP_EXIT_OK;
	} else {
		print_fleet(c, spec, fleet, st);
		/* The pool's state is not fully known while a host cannot be reached. */
		code = vp_fleet_unreachable(fleet) ? VP_EXIT_FAIL : VP_EXIT_OK;
	}
out:
	for (size_t i = 0; st && i < n; i++)
		vp_pool_status_free(st[i]);
	free(st);
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}
