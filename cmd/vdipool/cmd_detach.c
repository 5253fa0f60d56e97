/* cmd_detach.c: `vdipool detach`: linked clones become standalone (full) ones, freeing their base. */
#include <stdio.h>
#include <string.h>

#include "pool_cli.h"

const char cmd_detach_help[] =
	"usage: vdipool detach POOL.yaml CLONE...\n"
	"\n"
	"Turn linked clones into full ones: each named clone's disk gets every block\n"
	"of its base copied in (the backend's flatten: qemu-img convert into a\n"
	"temporary, fsync, rename on a dir tier; rbd flatten on Ceph), so it no longer\n"
	"needs its base. Its domain keeps its name, UUID, MAC, data disk and disk path.\n"
	"\n"
	"What changes for the clone:\n"
	"  - its metadata says detached, so gc and base rm no longer count it as a\n"
	"    user of its base: once every clone of a version is detached (or moved on),\n"
	"    that version can go;\n"
	"  - apply, rollouts and rollback leave its disk and definition alone: it is\n"
	"    not rebased to a new version, not redefined, not re-linked (start/stop\n"
	"    still follow domain.start; destroy and a smaller clones.count remove it);\n"
	"  - `vdipool reset` links it again: a fresh delta on the version it records.\n"
	"\n"
	"On a dir tier a running clone is shut down for the flatten\n"
	"(rollout.shutdown_timeout, then forced) and started again; on rbd it keeps\n"
	"running (flattened in place). The mark is written first: killed half-way, the\n"
	"clone is marked with its old linked disk, still usable and still keeping its\n"
	"base; running detach again finishes it. A clone already detached is left as\n"
	"it is. One-host pools; a backend without flatten is refused (exit 3).\n"
	"\n"
	"Example:\n"
	"  vdipool detach office.yaml desk-007     # desk-007 keeps its disk for good\n"
	"  vdipool gc --keep 0 --yes               # its old base can go once unused\n";

int cmd_detach(cli *c, int argc, char **argv)
{
	vp_spec *spec = NULL;
	vp_pool *pool = NULL;
	int idx, rc, code = VP_EXIT_OK;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (argc - idx < 2)
		return cli_usage_error(c, "expected POOL.yaml and at least one CLONE");
	if ((code = pool_cli_open(c, argv[idx], POOL_CLI_LOCK, false, &spec, &pool)) != 0)
		return code;
	if (spec->host_count > 1) {
		fprintf(stderr, "vdipool detach: pool '%s' has %zu hosts: detach works on one-host pools for now\n",
			spec->pool, spec->host_count);
		code = VP_EXIT_NOTSUP;
		goto out;
	}
	for (int i = idx + 1; i < argc; i++) {
		bool already;
		double t0 = vp_now();

		if ((rc = vp_pool_detach(pool, argv[i], &already)) < 0) {
			code = cli_fail(c, rc);
			goto out;
		}
		if (!c->quiet)
			printf(already ? "%s: detached already\n" : "Detached %s in %.1f s\n", argv[i], vp_now() - t0);
	}
out:
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
