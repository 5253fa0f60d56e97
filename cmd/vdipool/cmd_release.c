/* cmd_release.c: `vdipool release`: give claimed clones back, reset to a pristine delta, as spares. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "pool_cli.h"
#include "vdipool/virt.h"

const char cmd_release_help[] =
	"usage: vdipool release [--connect URI] CLONE...\n"
	"       vdipool release POOL.yaml CLONE...\n"
	"       vdipool release --expired POOL.yaml\n"
	"\n"
	"Give claimed clones back (see vdipool claim): each is forced off, gets a\n"
	"fresh delta on the base version it is on (what it wrote is gone; UUID, MAC\n"
	"and data disk stay), is defined again without its claim and started again\n"
	"when the spec starts clones: a spare for the next claim. Without POOL.yaml\n"
	"the pool is the spec file the claim recorded, found through the clone's\n"
	"metadata on --connect (default qemu:///system). A clone that is not claimed\n"
	"is left as it is (exit 0: releasing twice is harmless).\n"
	"\n"
	"--expired: release every clone of the pool whose claim's --ttl has passed\n"
	"(apply does the same before it plans; this is for a timer between applies);\n"
	"a pool brought up by vdipool up whose --ttl passed is torn down instead\n"
	"(see vdipool down --help).\n"
	"\n"
	"Exit codes: 0 released (or nothing to release); 1 a reset failed or libvirt\n"
	"could not be reached; 2 bad usage, an unknown clone or a clone whose claim\n"
	"recorded no spec.\n"
	"\n"
	"Examples:\n"
	"  vdipool release ci-003\n"
	"  vdipool release ci.yaml ci-003 ci-004\n"
	"  vdipool release --expired ci.yaml\n";

enum { OPT_EXPIRED = 0x3a0, OPT_CONNECT };

typedef struct release_args {
	bool expired;
	const char *uri;
} release_args;

static int release_opt(cli *c, int o, const char *arg, void *ctx)
{
	release_args *a = ctx;

	(void)c;
	if (o == OPT_EXPIRED)
		a->expired = true;
	else if (o == OPT_CONNECT)
		a->uri = arg;
	else
		return VP_EXIT_USAGE;
	return 0;
}

static bool is_spec_arg(const char *s)
{
	size_t n = strlen(s);
	struct stat st;

	return (n > 5 && !strcmp(s + n - 5, ".yaml")) || (n > 4 && !strcmp(s + n - 4, ".yml")) ||
	       (strchr(s, '/') && stat(s, &st) == 0 && S_ISREG(st.st_mode));
}

/* The spec the claim of `name` recorded (the caller's, free()); NULL after reporting why. */
static char *spec_of_claim(cli *c, const char *uri, const char *name, int *code)
{
	vp_virt *v = NULL;
	vp_virt_domain d;
	char *path = NULL;
	int rc;

	if ((rc = vp_virt_open(&v, uri)) < 0) {
		*code = cli_fail(c, rc);
		return NULL;
	}
	if ((rc = vp_virt_lookup(v, name, &d)) < 0) {
		*code = rc == VP_ENOENT ? VP_EXIT_USAGE : VP_EXIT_FAIL;
		fprintf(stderr, "vdipool release: %s\n", vp_error_last()->message);
	} else {
		if (d.has_meta && d.meta.claimed_spec && *d.meta.claimed_spec)
			path = strdup(d.meta.claimed_spec);
		else if (d.has_meta && !d.meta.claimed_by)
			*code = VP_EXIT_OK, printf("%s is not claimed: nothing to release\n", name);
		else
			*code = VP_EXIT_USAGE,
			fprintf(stderr, "vdipool release: '%s' records no pool spec with its claim; name it: "
					"vdipool release POOL.yaml %s\n", name, name);
		vp_virt_domain_release(&d);
	}
	vp_virt_free(v);
	return path;
}

/* Releases `names` (NULL with --expired: the claims whose time has passed). */
static int release_in(cli *c, const char *spec_path, char **names, size_t n, bool expired)
{
	vp_apply_opts ao = { .wait_lock = true };
	vp_spec *spec = NULL;
	vp_fleet *fleet = NULL;
	vp_claim_info *claims = NULL;
	const char **go = NULL;
	size_t nc, ngo = 0;
	double t0 = vp_now();
	int rc, code;

	if ((code = fleet_cli_open(c, spec_path, POOL_CLI_LOCK_WAIT, true, -1, false, &spec, &fleet)) != 0)
		return code;
	nc = vp_fleet_claims(fleet, &claims);
	if (!(go = calloc(nc + 1, sizeof(*go)))) {
		code = VP_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		while (k < nc && strcmp(claims[k].name, names[i]))
			k++;
		if (k == nc) {
			if (!c->quiet)
				printf("%s is not claimed: nothing to release\n", names[i]);
			continue;
		}
		go[ngo++] = claims[k].name;
	}
	for (size_t k = 0; expired && k < nc; k++)
		if (claims[k].until && claims[k].until <= (int64_t)time(NULL))
			go[ngo++] = claims[k].name;
	for (size_t i = 0; i < ngo && !c->quiet; i++)
		for (size_t k = 0; k < nc; k++)
			if (!strcmp(claims[k].name, go[i]))
				printf("releasing %s (claimed by %s%s)\n", go[i], claims[k].by,
				       expired ? ", expired" : "");
	code = VP_EXIT_OK;
	if (!ngo) {
		if (expired && !c->quiet)
			printf("No expired claim in pool '%s'.\n", spec->pool);
		goto out;
	}
	if ((rc = vp_fleet_plan_release(fleet, go, ngo)) < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	code = fleet_cli_run(c, fleet, &ao, "Released", t0);
out:
	free(go);
	free(claims);
	vp_fleet_free(fleet);
	vp_spec_free(spec);
	return code;
}

int cmd_release(cli *c, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "expired", no_argument, NULL, OPT_EXPIRED },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ 0 },
	};
	release_args a = { .uri = "qemu:///system" };
	char *found = NULL;
	int idx, code = VP_EXIT_OK;

	CLI_PARSE(idx, c, argc, argv, NULL, lo, release_opt, &a);
	if (a.expired) {
		bool went;

		if (idx != argc - 1 || !is_spec_arg(argv[idx]))
			return cli_usage_error(c, "--expired takes one POOL.yaml and no clone");
		/* A pool of vdipool up whose --ttl passed goes as a whole (its claims with it). */
		code = down_pool(c, argv[idx], true, true, &went);
		return went ? code : release_in(c, argv[idx], NULL, 0, true);
	}
	if (idx >= argc)
		return cli_usage_error(c, "expected CLONE... or POOL.yaml CLONE...");
	if (is_spec_arg(argv[idx])) {
		if (idx == argc - 1)
			return cli_usage_error(c, "expected at least one CLONE after POOL.yaml (or --expired)");
		return release_in(c, argv[idx], argv + idx + 1, (size_t)(argc - idx - 1), false);
	}
	/* Clones only: each one's claim names its spec; clones of one spec go together. */
	for (int i = idx; i < argc; i++) {
		int one = VP_EXIT_OK;

		found = spec_of_claim(c, a.uri, argv[i], &one);
		if (found)
			one = release_in(c, found, argv + i, 1, false);
		free(found);
		if (one != VP_EXIT_OK && code == VP_EXIT_OK)
			code = one;
	}
	return code;
}
