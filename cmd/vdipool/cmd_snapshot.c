/* cmd_snapshot.c: `vdipool snapshot`: take, list, revert to and remove disk snapshots of a clone. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pool_cli.h"

const char cmd_snapshot_help[] =
	"usage: vdipool snapshot POOL.yaml CLONE NAME          (also: snapshot create ...)\n"
	"       vdipool snapshot ls POOL.yaml CLONE\n"
	"       vdipool snapshot revert [--yes] POOL.yaml CLONE NAME   (also: vdipool revert ...)\n"
	"       vdipool snapshot rm POOL.yaml CLONE NAME\n"
	"\n"
	"Keep a clone's disk as it is now, to come back to it later: before a risky\n"
	"support session, or to keep a failed CI runner's state for debugging.\n"
	"\n"
	"A snapshot is external and disk-only: the clone's disk (deltas/POOL/CLONE.qcow2)\n"
	"becomes the read-only image deltas/POOL/CLONE.snap/NAME.qcow2 and a fresh\n"
	"overlay on it takes its place, so the domain keeps its definition and the next\n"
	"snapshot stacks on this one. Memory is not saved: the clone must be shut off\n"
	"(virsh shutdown CLONE) to take, revert or remove a snapshot. The data disk\n"
	"(data_disk) is not part of it.\n"
	"\n"
	"  (create)  take snapshot NAME (1-63 of a-z, 0-9, '-'); refused when the new\n"
	"            image would put more images under the disk than delta.max_depth\n"
	"  ls        the clone's snapshots, oldest first, with the bytes each holds\n"
	"  revert    throw away what was written since NAME was taken; NAME stays\n"
	"            (revert again later). Snapshots taken after NAME are removed, which\n"
	"            needs --yes\n"
	"  rm        remove NAME; what it held moves into the image above it, so the\n"
	"            disk reads the same (qemu-img rebase)\n"
	"\n"
	"While a clone has snapshots, apply refuses to give it a fresh disk (a rollout to\n"
	"a new base version, a reset, a repair) and changes nothing: remove them first.\n"
	"gc and base rm keep the base under them; destroy removes them with the clone.\n"
	"Dir deltas tiers and one-host pools only (exit 3 otherwise). Exit 0 done,\n"
	"1 failed or refused (running clone, depth, no such snapshot), 2 bad usage.\n"
	"\n"
	"Example:\n"
	"  vdipool snapshot ci.yaml ci-007 before-upgrade\n"
	"  vdipool snapshot ls ci.yaml ci-007\n"
	"  vdipool snapshot revert ci.yaml ci-007 before-upgrade\n"
	"  vdipool snapshot rm ci.yaml ci-007 before-upgrade\n";

enum { OPT_YES = 0x500 };

static int yes_opt(cli *c, int o, const char *arg, void *ctx)
{
	(void)c;
	(void)arg;
	if (o != OPT_YES)
		return VP_EXIT_USAGE;
	*(bool *)ctx = true;
	return 0;
}

static int list(cli *c, vp_pool *pool, const char *clone)
{
	vp_snapshot *s = NULL;
	size_t n = 0;
	int rc = vp_pool_snapshot_list(pool, clone, &s, &n);

	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON) {
		vp_buf b = VP_BUF_INIT;

		vp_buf_puts(&b, "{\"clone\":");
		vp_buf_json_str(&b, clone);
		vp_buf_puts(&b, ",\"snapshots\":[");
		for (size_t i = 0; i < n; i++) {
			vp_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
			vp_buf_json_str(&b, s[i].name);
			vp_buf_puts(&b, ",\"image\":");
			vp_buf_json_str(&b, s[i].path);
			vp_buf_printf(&b, ",\"bytes\":%" PRIu64 ",\"taken\":%.3f}", s[i].bytes, s[i].taken);
		}
		vp_buf_puts(&b, "]}\n");
		fputs(vp_buf_cstr(&b), stdout);
		vp_buf_release(&b);
	} else if (!n) {
		printf("%s has no snapshots\n", clone);
	} else {
		printf("%-24s %-20s %12s\n", "SNAPSHOT", "TAKEN (UTC)", "BYTES");
		for (size_t i = 0; i < n; i++) {
			char when[32] = "?";
			time_t t = (time_t)s[i].taken;
			struct tm tm;

			if (t && gmtime_r(&t, &tm))
				strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
			printf("%-24s %-20s %12" PRIu64 "\n", s[i].name, when, s[i].bytes);
		}
	}
	vp_snapshot_list_free(s);
	return VP_EXIT_OK;
}

int cmd_snapshot(cli *c, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "yes", no_argument, NULL, OPT_YES },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub = "create";
	vp_spec *spec = NULL;
	vp_pool *pool = NULL;
	bool yes = false;
	size_t dropped = 0;
	int idx, rc = 0, code, want;

	CLI_PARSE(idx, c, argc, argv, "", longopts, yes_opt, &yes);
	if (idx < argc && (!strcmp(argv[idx], "create") || !strcmp(argv[idx], "ls") ||
			   !strcmp(argv[idx], "list") || !strcmp(argv[idx], "revert") ||
			   !strcmp(argv[idx], "rm")))
		sub = argv[idx++];
	want = !strcmp(sub, "ls") || !strcmp(sub, "list") ? 2 : 3;
	if (argc - idx != want)
		return cli_usage_error(c, "%s: expected POOL.yaml CLONE%s", sub, want == 3 ? " NAME" : "");
	if (yes && strcmp(sub, "revert"))
		return cli_usage_error(c, "--yes: only revert takes it");
	/* The pool's lock (and a shared hold on the store, so gc waits) for the whole command. */
	if ((code = pool_cli_open(c, argv[idx], POOL_CLI_LOCK, false, &spec, &pool)) != 0)
		return code;
	if (want == 2) {
		code = list(c, pool, argv[idx + 1]);
		goto out;
	}
	if (!strcmp(sub, "create"))
		rc = vp_pool_snapshot_create(pool, argv[idx + 1], argv[idx + 2]);
	else if (!strcmp(sub, "revert"))
		rc = vp_pool_snapshot_revert(pool, argv[idx + 1], argv[idx + 2], yes, &dropped);
	else
		rc = vp_pool_snapshot_remove(pool, argv[idx + 1], argv[idx + 2]);
	if (rc < 0) {
		code = cli_fail(c, rc);
		goto out;
	}
	if (!strcmp(sub, "create"))
		cli_info(c, "took snapshot '%s' of %s\n", argv[idx + 2], argv[idx + 1]);
	else if (!strcmp(sub, "revert"))
		cli_info(c, "reverted %s to snapshot '%s'%s\n", argv[idx + 1], argv[idx + 2],
			 dropped ? " (the snapshots taken after it were removed)" : "");
	else
		cli_info(c, "removed snapshot '%s' of %s\n", argv[idx + 2], argv[idx + 1]);
	code = VP_EXIT_OK;
out:
	vp_pool_free(pool);
	vp_spec_free(spec);
	return code;
}
