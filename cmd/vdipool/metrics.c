/* metrics.c: the pool in Prometheus' text format (status -o prometheus) and node_exporter textfiles. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics.h"
#include "util/fs.h"

/* A label value: backslash, double quote and newline escaped. */
static void label(vp_buf *b, const char *key, const char *val)
{
	vp_buf_printf(b, "%s=\"", key);
	for (const char *s = val ? val : ""; *s; s++) {
		if (*s == '\\' || *s == '"')
			vp_buf_printf(b, "\\%c", *s);
		else if (*s == '\n')
			vp_buf_puts(b, "\\n");
		else
			vp_buf_printf(b, "%c", *s);
	}
	vp_buf_puts(b, "\"");
}

static void family(vp_buf *b, const char *name, const char *type, const char *help)
{
	vp_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{pool="P"[,k="v"]...} value: labels as pairs, NULL-terminated. */
static void sample(vp_buf *b, const char *name, const char *pool, const char *const *kv, double value)
{
	vp_buf_printf(b, "%s{", name);
	label(b, "pool", pool);
	for (size_t i = 0; kv && kv[i]; i += 2) {
		vp_buf_puts(b, ",");
		label(b, kv[i], kv[i + 1]);
	}
	vp_buf_printf(b, "} %.17g\n", value);
}

/* Every state vp_clone_status.state can have (a new one must be added here to be counted). */
static const char *const states[] = { "running", "shut off", "paused", "parked", "missing", "no domain",
				      "conflict" };

/* The base versions the clones are on, counted (a small list: a pool is on one or two). */
typedef struct base_count {
	const char *base;
	size_t n;
} base_count;

void cli_metrics_status(vp_buf *b, const vp_spec *spec, vp_fleet *f, vp_pool_status **st)
{
	size_t nh = vp_fleet_host_count(f), total = 0, on_target = 0, nbases = 0, claimed = 0;
	base_count bases[32];
	const char *target = vp_fleet_base_ref(f);
	const char *deltas = spec->storage.deltas ? spec->storage.deltas->name : "";
	const char *basetier = spec->storage.bases ? spec->storage.bases->name : "";
	const char *datatier = spec->data_disk.tier ? spec->data_disk.tier->name : deltas;

	family(b, "vdipool_host_up", "gauge", "1 when the pool's host could be reached, else 0.");
	for (size_t h = 0; h < nh; h++)
		sample(b, "vdipool_host_up", spec->pool, (const char *[]){ "host", vp_fleet_host_at(f, h)->name, NULL },
		       vp_fleet_host_at(f, h)->reachable ? 1 : 0);
	family(b, "vdipool_clones_wanted", "gauge", "Clones the spec asks for (clones.count).");
	sample(b, "vdipool_clones_wanted", spec->pool, NULL, spec->clones.count);
	family(b, "vdipool_clones", "gauge", "Clones of the pool by host and state.");
	for (size_t h = 0; h < nh; h++) {
		const char *host = vp_fleet_host_at(f, h)->name;

		for (size_t s = 0; st[h] && s < VP_ARRAY_SIZE(states); s++) {
			size_t n = 0;

			for (size_t i = 0; i < st[h]->count; i++)
				n += !strcmp(st[h]->clones[i].state, states[s]);
			sample(b, "vdipool_clones", spec->pool, (const char *[]){ "host", host, "state", states[s], NULL },
			       (double)n);
		}
	}
	for (size_t h = 0; h < nh; h++)
		for (size_t i = 0; st[h] && i < st[h]->count; i++) {
			const vp_clone_status *c = &st[h]->clones[i];
			size_t k;

			if (!strcmp(c->state, "missing"))
				continue;
			total++;
			claimed += c->claimed_by[0] != '\0';
			on_target += *target && !strcmp(c->base, target);
			for (k = 0; k < nbases && strcmp(bases[k].base, c->base); k++)
				;
			if (k == nbases && nbases < VP_ARRAY_SIZE(bases))
				bases[nbases++] = (base_count){ c->base, 0 };
			if (k < nbases)
				bases[k].n++;
		}
	family(b, "vdipool_clones_claimed", "gauge", "Clones handed out by vdipool claim.");
	sample(b, "vdipool_clones_claimed", spec->pool, NULL, (double)claimed);
	family(b, "vdipool_base_clones", "gauge", "Clones by the base version (name@version) they are on.");
	for (size_t k = 0; k < nbases; k++)
		sample(b, "vdipool_base_clones", spec->pool,
		       (const char *[]){ "base", *bases[k].base ? bases[k].base : "unknown", NULL }, (double)bases[k].n);
	family(b, "vdipool_rollout_target_info", "gauge", "The base version the spec wants the pool on.");
	sample(b, "vdipool_rollout_target_info", spec->pool, (const char *[]){ "base", target, NULL }, 1);
	family(b, "vdipool_rollout_progress_ratio", "gauge",
	       "Share of the pool's clones on the wanted base version (1: no rollout in progress).");
	sample(b, "vdipool_rollout_progress_ratio", spec->pool, NULL, total ? (double)on_target / (double)total : 1);
	family(b, "vdipool_bytes", "gauge", "Bytes on disk by host, tier and kind (delta, data, base).");
	for (size_t h = 0; h < nh; h++) {
		uint64_t d = 0, data = 0;
		const char *host = vp_fleet_host_at(f, h)->name;

		if (!st[h])
			continue;
		for (size_t i = 0; i < st[h]->count; i++) {
			d += st[h]->clones[i].delta_bytes;
			data += st[h]->clones[i].data_bytes;
		}
		sample(b, "vdipool_bytes", spec->pool, (const char *[]){ "host", host, "tier", deltas, "kind", "delta", NULL },
		       (double)d);
		sample(b, "vdipool_bytes", spec->pool, (const char *[]){ "host", host, "tier", datatier, "kind", "data", NULL },
		       (double)data);
		sample(b, "vdipool_bytes", spec->pool, (const char *[]){ "host", host, "tier", basetier, "kind", "base", NULL },
		       (double)st[h]->base_bytes);
	}
}

void cli_metrics_apply(vp_buf *b, const char *pool, double seconds, bool ok, double when)
{
	family(b, "vdipool_last_apply_duration_seconds", "gauge", "How long the last apply took.");
	sample(b, "vdipool_last_apply_duration_seconds", pool, NULL, seconds);
	family(b, "vdipool_last_apply_success", "gauge", "1 when the last apply succeeded, else 0.");
	sample(b, "vdipool_last_apply_success", pool, NULL, ok ? 1 : 0);
	family(b, "vdipool_last_apply_timestamp_seconds", "gauge", "When the last apply ended (Unix time).");
	sample(b, "vdipool_last_apply_timestamp_seconds", pool, NULL, when);
}

int cli_textfile_write(cli *c, const char *pool, const char *what, const vp_buf *b)
{
	char path[4352];

	snprintf(path, sizeof(path), "%s/vdipool_%s%s.prom", c->textfile_dir, pool, what);
	/* node_exporter reads *.prom: a temporary name, fsync, rename, so it never sees half a file. */
	if (vp_fs_write_atomic(path, vp_buf_cstr(b), strlen(vp_buf_cstr(b)), 0644) < 0) {
		fprintf(stderr, "vdipool %s: --textfile: cannot write %s: %s\n", c->cmd->name, path,
			vp_error_last()->message);
		return VP_EXIT_FAIL;
	}
	return VP_EXIT_OK;
}

int cli_fleet_status(cli *c, vp_fleet *f, vp_pool_status ***out)
{
	size_t n = vp_fleet_host_count(f);
	vp_pool_status **st = calloc(n ? n : 1, sizeof(*st));
	int rc = 0;

	if (!st)
		return cli_fail(c, vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory"));
	for (size_t i = 0; i < n && rc == 0; i++)
		if (vp_fleet_host_at(f, i)->reachable)
			rc = vp_pool_status_get(vp_fleet_host_at(f, i)->pool, &st[i]);
	if (rc < 0) {
		cli_fleet_status_free(st, n);
		return cli_fail(c, rc);
	}
	*out = st;
	return VP_EXIT_OK;
}

void cli_fleet_status_free(vp_pool_status **st, size_t n)
{
	for (size_t i = 0; st && i < n; i++)
		vp_pool_status_free(st[i]);
	free(st);
}

int cli_metrics_after_apply(cli *c, const vp_spec *spec, vp_fleet *f, double seconds, bool ok)
{
	vp_buf b = VP_BUF_INIT;
	vp_pool_status **st = NULL;
	int code;

	cli_metrics_apply(&b, spec->pool, seconds, ok, (double)time(NULL));
	code = cli_textfile_write(c, spec->pool, "_apply", &b);
	vp_buf_release(&b);
	/* The pool as the apply left it: read the world again. */
	if (code == VP_EXIT_OK && vp_fleet_inventory(f, false, -1) == 0 &&
	    cli_fleet_status(c, f, &st) == VP_EXIT_OK) {
		cli_metrics_status(&b, spec, f, st);
		code = cli_textfile_write(c, spec->pool, "", &b);
		vp_buf_release(&b);
		cli_fleet_status_free(st, vp_fleet_host_count(f));
	}
	return code;
}
