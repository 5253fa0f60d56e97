/* pool_cli.h: what plan, apply, status, destroy and reset share: loading, plan output, progress. */
#ifndef VP_POOL_CLI_H
#define VP_POOL_CLI_H

#include "cli.h"
#include "vdipool/fleet.h"
#include "vdipool/plan.h"
#include "vdipool/pool.h"
#include "vdipool/spec.h"

typedef enum { POOL_CLI_NO_LOCK, POOL_CLI_LOCK, POOL_CLI_LOCK_WAIT } pool_cli_lock;

/* Loads the spec, opens its pool, takes its lock (commands that change the
 * pool) and reads the world (need_base: the spec's base must resolve). On
 * failure reports, frees both and returns the exit code; 0 otherwise. */
int pool_cli_open(cli *c, const char *path, pool_cli_lock lock, bool need_base, vp_spec **spec,
		  vp_pool **pool);

/* Prints a plan (table: changed clones only; json: everything). */
/* Says once on stderr when the pool's clones fall back to TCG, and why. */
void pool_cli_warn_accel(cli *c, vp_pool *pool);
void pool_cli_print_plan(cli *c, const vp_spec *spec, vp_pool *pool, const vp_plan *plan);

/* --parallel N and --wait, for the commands that change a pool; ctx is a vp_apply_opts. */
enum { POOL_OPT_PARALLEL = 0x300, POOL_OPT_WAIT };
#define POOL_CLI_APPLY_LONGOPTS                                            \
	{ "parallel", required_argument, NULL, POOL_OPT_PARALLEL },         \
	{ "wait", no_argument, NULL, POOL_OPT_WAIT }
int pool_cli_apply_opt(cli *c, int o, const char *arg, void *ctx);

/* Executes the plan with progress on stderr (bar on a terminal, lines with
 * -v), waves on stdout, and a closing summary "VERB N clones in S s";
 * returns the exit code. t0: when the command started. */
int pool_cli_run(cli *c, vp_pool *pool, const vp_plan *plan, vp_apply_opts *ao, const char *verb, double t0);


/* The same for a pool over all its hosts: loads the spec, connects to every host (an
 * unreachable one is a warning here, and the apply's failure later), locks, reads the world and
 * places the clones (want_count: -1 the spec's, 0 destroy), then (plan) plans. */
int fleet_cli_open(cli *c, const char *path, pool_cli_lock lock, bool need_base, long want_count,
		   bool plan, vp_spec **spec, vp_fleet **fleet);
/* Prints the fleet's plan: a one-host pool exactly as pool_cli_print_plan, more hosts with a
 * section per host (clones, new, removed, bytes of base to push) and the unplaced clones. */
void fleet_cli_print_plan(cli *c, const vp_spec *spec, vp_fleet *fleet);
/* Executes the fleet's plan; exit code 1 when a clone or a host failed or a host was unreachable. */
int fleet_cli_run(cli *c, vp_fleet *fleet, vp_apply_opts *ao, const char *verb, double t0);

/* Tears down a pool `vdipool up` made (cmd_down.c): its clones, deltas, data disks, then its
 * expiry record. only_expired: only when the expiry passed. quiet_if_not: say nothing when it is
 * not torn down (release --expired on a pool that is not up). *went: it was to be torn down.
 * Returns the exit code. */
int down_pool(cli *c, const char *spec_path, bool only_expired, bool quiet_if_not, bool *went);

/* "2026-11-30T10:05:01Z": seconds since the epoch as ISO 8601 UTC. */
void cli_iso8601(char *buf, size_t len, int64_t t);
/* Who a claim or an up pool is for when --for is not given: "USER@HOSTNAME", in buf. */
const char *cli_default_who(char *buf, size_t len);

/* A pins source (vp_store_set_pins_source) reading the domains of several libvirt URIs. */
typedef struct cli_hosts {
	const char *const *uris;
	size_t n;
} cli_hosts;
int cli_hosts_pins(void *ctx, vp_store_pins *pins);

/* The URIs of the spec's hosts, for cli_hosts (free() the array). */
int cli_spec_uris(cli *c, const vp_spec *spec, cli_hosts *out);

#endif
