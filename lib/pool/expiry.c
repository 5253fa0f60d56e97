/* expiry.c: the expiry of an ephemeral pool (`vdipool up --ttl`), a small record on the
 * controller beside the placement record, written atomically so it survives a crash. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/fs.h"
#include "vdipool/fleet.h"

static char *expiry_path(const vp_spec *spec)
{
	return vp_strdup_printf("%s/placement/%s.expires", spec->storage.state_dir, spec->pool);
}

/* The value of "key=" on a line of its own in text, copied into out (len); false when absent. */
static bool field(const char *text, const char *key, char *out, size_t len)
{
	size_t k = strlen(key);

	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		size_t n = strcspn(l, "\n");

		if (n > k && !strncmp(l, key, k) && l[k] == '=') {
			snprintf(out, len, "%.*s", (int)(n - k - 1), l + k + 1);
			return true;
		}
	}
	return false;
}

int vp_pool_expiry_read(const vp_spec *spec, vp_pool_expiry *out)
{
	VP_AUTOFREE char *path = expiry_path(spec);
	char *text = NULL, num[32];
	size_t len;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!path)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (!vp_fs_exists(path))
		return 0;
	if ((rc = vp_fs_read_all(path, 16384, &text, &len)) < 0)
		return rc;
	if (!strstr(text, "vdipool-up=1\n") || !field(text, "expires", num, sizeof(num)) ||
	    sscanf(num, "%" SCNd64, &out->expires) != 1) {
		free(text);
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT, "pool '%s': the expiry record '%s' is damaged; "
				    "run vdipool up again to write a new one, or remove it", spec->pool, path);
	}
	if (field(text, "created", num, sizeof(num)))
		sscanf(num, "%" SCNd64, &out->created);
	field(text, "by", out->by, sizeof(out->by));
	field(text, "spec", out->spec, sizeof(out->spec));
	out->present = true;
	free(text);
	return 0;
}

int vp_pool_expiry_write(const vp_spec *spec, const vp_pool_expiry *e)
{
	VP_AUTOFREE char *path = expiry_path(spec);
	VP_AUTOFREE char *dir = vp_strdup_printf("%s/placement", spec->storage.state_dir);
	VP_AUTOFREE char *text = NULL;
	int rc;

	if (!path || !dir)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (strchr(e->by, '\n') || strchr(e->spec, '\n'))
		return vp_error_set(VP_ERR_PLAN, VP_EINVAL, "pool '%s': an expiry's holder and spec path are "
				    "one line each", spec->pool);
	text = vp_strdup_printf("vdipool-up=1\nexpires=%" PRId64 "\ncreated=%" PRId64 "\nby=%s\nspec=%s\n",
				e->expires, e->created, e->by, e->spec);
	if (!text)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	vp_fs_sweep_tmp(path);
	if ((rc = vp_fs_mkdir_p(dir, 0700)) == 0)
		rc = vp_fs_write_atomic(path, text, strlen(text), 0600);
	if (rc < 0)
		vp_error_prefix("pool '%s': cannot write its expiry record", spec->pool);
	return rc;
}

int vp_pool_expiry_clear(const vp_spec *spec)
{
	VP_AUTOFREE char *path = expiry_path(spec);

	if (!path)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	vp_fs_sweep_tmp(path);
	if (unlink(path) < 0 && errno != ENOENT)
		return vp_error_set_os(errno, "cannot remove '%s'", path);
	(void)vp_fs_fsync_parent(path); /* the unlink is done; its durability is best effort */
	vp_error_clear();
	return 0;
}

void vp_fleet_stop_now(vp_fleet *f)
{
	for (size_t i = 0; i < vp_fleet_host_count(f); i++)
		if (vp_fleet_host_at(f, i)->pool)
			vp_fleet_host_at(f, i)->pool->stop_now = true;
}
