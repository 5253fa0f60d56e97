/* metrics.h: Prometheus metrics of a pool (status -o prometheus, apply/status --textfile DIR). */
#ifndef VP_CLI_METRICS_H
#define VP_CLI_METRICS_H

#include "pool_cli.h"
#include "util/util.h"

/* Clones by host and state, base versions in use, rollout progress, bytes per tier; st[i] is
 * host i's status (NULL: unreachable). */
void cli_metrics_status(vp_buf *b, const vp_spec *spec, vp_fleet *f, vp_pool_status **st);
/* The last apply: duration, success, end time. */
void cli_metrics_apply(vp_buf *b, const char *pool, double seconds, bool ok, double when);
/* Writes b as DIR/vdipool_POOL<what>.prom atomically (c->textfile_dir); an exit code. */
int cli_textfile_write(cli *c, const char *pool, const char *what, const vp_buf *b);

/* Every reachable host's status (NULL for the others); an exit code. */
int cli_fleet_status(cli *c, vp_fleet *f, vp_pool_status ***out);
void cli_fleet_status_free(vp_pool_status **st, size_t n);
/* After an apply with a textfile directory: DIR/vdipool_POOL_apply.prom (the apply) and
 * DIR/vdipool_POOL.prom (the pool as the apply left it). */
int cli_metrics_after_apply(cli *c, const vp_spec *spec, vp_fleet *f, double seconds, bool ok);

#endif
