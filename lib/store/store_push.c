/* store_push.c: pushing a base version into another host's store over SSH: staged, resumable, hash-checked there, manifest last. */
/*
 * On the host, under the bases tier directory BASES (the dir backend's layout):
 *   BASES/.push-NAME-VERSION-PID/disk.FMT + manifest   the push in progress
 *   BASES/NAME/VERSION/                                 the published version
 * The image travels with vp_ssh_push_file (allocated extents only, pipelined, a
 * resume record beside it, the SHA-256 computed on the host before its rename);
 * the manifest is written last, then one rename publishes the directory. A staging
 * directory an interrupted push left is taken over by the next push (whatever its
 * pid: it is a different controller's pid namespace anyway), so it resumes.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

/* The version on the host: 1 "already there", 0 absent, <0 refused (other hash, or junk). */
static int remote_version(vp_ssh *s, const char *dir, const vp_base_info *b)
{
	vp_base_info rb;
	vp_ssh_stat st;
	VP_AUTOFREE char *path = vp_strdup_printf("%s/manifest", dir);
	VP_AUTOFREE char *text = NULL;
	int rc;

	if (!path)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	rc = vp_ssh_stat_path(s, dir, &st);
	if (rc == VP_ENOENT) {
		vp_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = vp_ssh_read_file(s, path, 1 << 20, &text, NULL);
	if (rc == 0)
		rc = vp_store_manifest_parse(&rb, text, path);
	if (rc < 0)
		return vp_error_set(VP_ERR_SSH, VP_ECONFLICT, "'%s' exists on '%s' but holds no readable "
				    "manifest (%s); it is not a complete version: remove it there first",
				    dir, vp_ssh_label(s), vp_error_last()->message);
	/* Never replaced: deltas on the host may back onto what is there. */
	if (strcmp(rb.sha256, b->sha256))
		return vp_error_set(VP_ERR_SSH, VP_EEXIST, "base %s@%s on '%s' has other content (sha256 "
				    "%s there, %s here); refusing to overwrite it: use a new version",
				    b->name, b->version, vp_ssh_label(s), rb.sha256, b->sha256);
	return 1;
}

/* A staging directory an interrupted push left behind is taken over (renamed to
 * ours), so its partial image is resumed; otherwise a new one is made. */
static int claim_staging(vp_ssh *s, const char *bases, const char *prefix, const char *staging)
{
	char **names = NULL;
	size_t n = 0, plen = strlen(prefix);
	int rc = vp_ssh_mkdir_p(s, bases, 0755);

	if (rc == 0)
		rc = vp_ssh_list_dir(s, bases, &names, &n);
	for (size_t i = 0; i < n; i++) {
		if (rc == 0 && !strncmp(names[i], prefix, plen) &&
		    strspn(names[i] + plen, "0123456789") == strlen(names[i] + plen)) {
			char *old = vp_strdup_printf("%s/%s", bases, names[i]);

			if (old && vp_ssh_rename(s, old, staging) == 0)
				rc = 1;
			vp_error_clear();
			free(old);
		}
		free(names[i]);
	}
	free(names);
	if (rc == 0)
		rc = vp_ssh_mkdir_p(s, staging, 0755);
	return rc < 0 ? rc : 0;
}

/* Where one push goes on the host. */
typedef struct push_job {
	vp_ssh *s;
	const vp_base_info *b;
	const vp_store_push_opts *o;
	const char *manifest;
	char *bases, *prefix, *staging, *name_dir, *final_dir;
	vp_ssh_push_result *res;
} push_job;

/* The image into the staging directory: checked again if an earlier push got as
 * far as publishing it there, else pushed (resumed) and checked on the host. */
static int push_image(push_job *j, const char *rimg)
{
	vp_ssh_push_opts po = { .sha256 = j->b->sha256, .window = j->o ? j->o->window : 0 };
	vp_ssh_stat st;
	int rc;

	if (j->o) {
		po.progress = j->o->progress;
		po.progress_ctx = j->o->progress_ctx;
	}
	if (vp_ssh_stat_path(j->s, rimg, &st) < 0) {
		vp_error_clear();
		return vp_ssh_push_file(j->s, j->b->location, rimg, &po, j->res);
	}
	if ((rc = vp_ssh_sha256(j->s, rimg, j->res->sha256)) < 0)
		return rc;
	if (strcmp(j->res->sha256, j->b->sha256)) {
		vp_ssh_unlink(j->s, rimg);
		return vp_error_set(VP_ERR_SSH, VP_EIO, "'%s' on '%s' is damaged (sha256 %s, expected "
				    "%s); deleted it, push again", rimg, vp_ssh_label(j->s),
				    j->res->sha256, j->b->sha256);
	}
	j->res->resumed = j->res->data = j->b->allocated;
	return 0;
}

static int push_version(push_job *j)
{
	VP_AUTOFREE char *img = vp_strdup(j->b->location);
	VP_AUTOFREE char *rimg = NULL, *rman = NULL;
	int rc;

	if (!img || !(rimg = vp_strdup_printf("%s/%s", j->staging, basename(img))) ||
	    !(rman = vp_strdup_printf("%s/manifest", j->staging)))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if ((rc = push_image(j, rimg)) < 0)
		return rc;
	/* The manifest last: a directory with a manifest is a complete version. */
	vp_ssh_unlink(j->s, rman); /* one left read-only by a push cut after it */
	if ((rc = vp_ssh_write_file(j->s, rman, j->manifest, strlen(j->manifest), 0444)) < 0 ||
	    (rc = vp_ssh_mkdir_p(j->s, j->name_dir, 0755)) < 0)
		return rc;
	return vp_ssh_rename(j->s, j->staging, j->final_dir);
}

static int job_paths(push_job *j, const char *bases)
{
	j->bases = vp_strdup(bases);
	j->prefix = vp_strdup_printf(".push-%s-%s-", j->b->name, j->b->version);
	j->staging = j->prefix ? vp_strdup_printf("%s/%s%ld", bases, j->prefix, (long)getpid()) : NULL;
	j->name_dir = vp_strdup_printf("%s/%s", bases, j->b->name);
	j->final_dir = vp_strdup_printf("%s/%s/%s", bases, j->b->name, j->b->version);
	if (!j->bases || !j->staging || !j->name_dir || !j->final_dir)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return 0;
}

static void job_release(push_job *j)
{
	free(j->bases);
	free(j->prefix);
	free(j->staging);
	free(j->name_dir);
	free(j->final_dir);
}

/* The local version: stat, manifest text, and an image a file (only a dir tier has one). */
static int load_source(vp_store *src, const char *ref, vp_base_info *b, char **manifest)
{
	int rc;

	*manifest = NULL;
	if ((rc = vp_store_stat(src, ref, b)) < 0)
		return rc;
	if (strcmp(src->base.ops->name, "dir") || b->location[0] != '/')
		return vp_error_set(VP_ERR_STORE, VP_ENOTSUP, "cannot push '%s@%s': its base tier '%s' "
				    "is not a local directory (dir backend)", b->name, b->version,
				    src->base.name);
	return src->base.ops->base_manifest(src->base.h, b->name, b->version, manifest);
}

int vp_store_push(vp_store *src, const char *ref, vp_ssh *dst, const char *remote_bases_dir,
		  const vp_store_push_opts *opts, vp_store_push_result *out)
{
	vp_store_push_result res;
	vp_base_info b;
	VP_AUTOFREE char *manifest = NULL;
	push_job j = { .s = dst, .b = &b, .o = opts, .res = &res.xfer };
	int rc;

	memset(&res, 0, sizeof(res));
	if (!remote_bases_dir || remote_bases_dir[0] != '/')
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "push of '%s': the bases directory on "
				    "'%s' must be an absolute path, got '%s'", ref, vp_ssh_label(dst),
				    remote_bases_dir ? remote_bases_dir : "");
	if ((rc = load_source(src, ref, &b, &manifest)) < 0)
		return rc;
	j.manifest = manifest;
	if ((rc = job_paths(&j, remote_bases_dir)) < 0)
		goto out;
	rc = remote_version(dst, j.final_dir, &b);
	if (rc == 1) {
		res.already = true;
		snprintf(res.xfer.sha256, sizeof(res.xfer.sha256), "%s", b.sha256);
		rc = 0;
		goto out;
	}
	if (rc == 0 && (rc = claim_staging(dst, j.bases, j.prefix, j.staging)) == 0)
		rc = push_version(&j);
out:
	job_release(&j);
	if (out)
		*out = res;
	return rc;
}
