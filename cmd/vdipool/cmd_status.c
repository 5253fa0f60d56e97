/* cmd_status.c: `vdipool status`: the pool's clones, states, versions and space. */
#include <stdio.h>

#include "pool_cli.h"
#include "util/util.h"

const char cmd_status_help[] =
	"usage: vdipool status [-o json] POOL.yaml\n"
	"\n"
	"Show each clone (host, state, base@version, delta bytes on disk, backing-chain\n"
	"depth) and the pool totals: clones by state, space used against full copies.\n"
	"\n"
	"Example:\n"
	"  vdipool status -o json examples/quickstart.yaml\n";

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
		vp_buf_printf(&b, ",\"delta_bytes\":%llu,\"data_bytes\":%llu,\"chain_depth\":%u}",
			      (unsigned long long)c->delta_bytes, (unsigned long long)c->data_bytes, c->chain_depth);
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
	printf("\nPool '%s': %u wanted; %zu running, %zu shut off, %zu missing, %zu other; base %s\n",
	       spec->pool, spec->clones.count, st->running, st->stopped, st->missing, st->other,
	       *base ? base : "(not in the store)");
	if (st->full_copy_bytes)
		printf("Space: %s in deltas + %s base, against %s as full copies (%.0f%% saved)\n",
		       vp_fmt_bytes(st->delta_bytes, a, sizeof(a)), vp_fmt_bytes(st->base_bytes, bb, sizeof(bb)),
		       vp_fmt_bytes(st->full_copy_bytes, f, sizeof(f)),
		       100.0 * (1.0 - (double)(st->delta_bytes + st->base_bytes) / (double)st->full_copy_bytes));
}

int cmd_status(cli *c, int argc, char **argv)
{
	vp_spec *spec = NULL;
	vp_pool *pool = NULL;
	vp_pool_status *st = NULL;
	int idx, rc, code;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx != argc - 1)
		return cli_usage_error(c, idx >= argc ? "missing POOL.yaml" : "expected one POOL.yaml");
	if ((code = pool_cli_open(c, argv[idx], POOL_CLI_NO_LOCK, false, &spec, &pool)) != 0)
		return code;
	rc = vp_pool_status_get(pool, &st);
	if (rc < 0) {
		code = cli_fail(c, rc);
	} else {
		if (c->output == CLI_OUT_JSON)
			print_json(spec, pool, st);
		else
			print_table(spec, pool, st);
		code = VP_EXIT_OK;
	}
	vp_pool_status_free(st);
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
