/* pool_cli.h: what plan, apply, status, destroy and reset share: loading, plan output, progress. */
#ifndef VP_POOL_CLI_H
#define VP_POOL_CLI_H

#include "cli.h"
#include "vdipool/plan.h"
#include "vdipool/pool.h"
#include "vdipool/spec.h"

/* Loads the spec and opens its pool; on failure reports and returns the exit code. */
int pool_cli_open(cli *c, const char *path, vp_spec **spec, vp_pool **pool);

/* Prints a plan (table: changed clones only; json: everything). */
void pool_cli_print_plan(cli *c, const vp_spec *spec, vp_pool *pool, const vp_plan *plan);

/* Options for vp_pool_apply with a progress display that suits stderr. */
void pool_cli_apply_opts(cli *c, vp_apply_opts *opts);

/* Prints the end-of-apply summary line(s). */
void pool_cli_print_result(cli *c, const char *verb, const vp_exec_result *res, double seconds);

#endif
