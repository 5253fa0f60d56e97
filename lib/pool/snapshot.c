/* snapshot.c: external, disk-only snapshots of a shut-off clone on a dir tier (vdipool snapshot).
 *
 * The clone's domain always names its disk CLONE.qcow2 (the active image). Taking snapshot
 * NAME hard-links the active image as CLONE.snap/NAME.qcow2 and then atomically replaces
 * CLONE.qcow2 by a fresh overlay backing onto that link: the chain grows
 * base <- ... <- NAME <- CLONE.qcow2, and nothing that reads the domain or the deltas listing
 * sees another path. The snapshots are exactly the images of CLONE.snap/ in the active chain;
 * anything else there (a link an interrupted snapshot left, sharing the active image's inode,
 * or snapshots a revert or rm was interrupted before removing) is swept first by every
 * operation, under the pool's lock, so a crash at any point leaves a state the next command
 * repairs and the domain never points at a missing disk. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/pool_int.h"
#include "util/fs.h"
#include "util/run.h"

typedef struct snap_ctx {
	char active[PATH_MAX];     /* CLONE.qcow2, canonical */
	char dir[PATH_MAX - 512];  /* CLONE.snap, canonical parent (room for a name under it) */
	vp_qcow2_chain chain;
	size_t first, n;           /* chain.layers[first .. first + n) are snapshots, newest first */
	vp_qcow2_info top;
} snap_ctx;

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > 63 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

/* The name of the snapshot an image of the chain is ("" when it is not one). */
static void layer_name(const snap_ctx *s, const char *path, char out[64])
{
	char real[PATH_MAX];
	size_t n = strlen(s->dir), len;

	out[0] = '\0';
	if (!realpath(path, real) || strncmp(real, s->dir, n) || real[n] != '/' || strchr(real + n + 1, '/'))
		return;
	len = strlen(real + n + 1);
	if (len > 6 && len - 6 < 64 && !strcmp(real + n + 1 + len - 6, ".qcow2"))
		snprintf(out, 64, "%.*s", (int)(len - 6), real + n + 1);
}

static int read_chain(snap_ctx *s)
{
	int rc;

	vp_qcow2_chain_release(&s->chain);
	s->n = 0;
	s->first = 1;
	if ((rc = vp_qcow2_read_chain(&s->chain, s->active)) < 0)
		return rc;
	s->top = s->chain.layers[0].info;
	for (size_t i = 1; i < s->chain.depth; i++) {
		char name[64];

		layer_name(s, s->chain.layers[i].path, name);
		if (!*name)
			break;
		s->n++;
	}
	return 0;
}

/* Removes what CLONE.snap/ holds beyond the chain's snapshots (see the top of the file). */
static int sweep(snap_ctx *s)
{
	struct stat act, st;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	if (stat(s->active, &act) < 0)
		return vp_error_set(VP_ERR_OS, VP_EIO, "cannot stat '%s': %s", s->active, strerror(errno));
	if (!(d = opendir(s->dir)))
		return errno == ENOENT ? 0 : vp_error_set(VP_ERR_OS, VP_EIO, "cannot read '%s': %s", s->dir, strerror(errno));
	while ((e = readdir(d)) && rc == 0) {
		char path[PATH_MAX];
		bool keep = false;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", s->dir, e->d_name);
		if (lstat(path, &st) == 0 && !(st.st_dev == act.st_dev && st.st_ino == act.st_ino))
			for (size_t i = s->first; i < s->first + s->n && !keep; i++) {
				char name[64];
				layer_name(s, s->chain.layers[i].path, name);
				keep = strlen(e->d_name) == strlen(name) + 6 && !strncmp(e->d_name, name, strlen(name)) &&
				       !strcmp(e->d_name + strlen(name), ".qcow2");
			}
		if (!keep && unlink(path) < 0 && errno != ENOENT)
			rc = vp_error_set(VP_ERR_OS, VP_EIO, "cannot remove '%s': %s", path, strerror(errno));
	}
	closedir(d);
	if (rc == 0 && s->n == 0 && rmdir(s->dir) < 0 && errno != ENOENT && errno != ENOTEMPTY)
		rc = vp_error_set(VP_ERR_OS, VP_EIO, "cannot remove '%s': %s", s->dir, strerror(errno));
	return rc < 0 ? rc : vp_fs_fsync_parent(s->active);
}

/* Finds the clone, checks it may be worked on, reads its chain and sweeps its snapshot directory. */
static int open_clone(vp_pool *p, const char *clone, bool need_off, snap_ctx *s)
{
	const vp_observed_clone *o = pool_find_obs(p, clone);
	const vp_virt_domain *dom = pool_dom_of(p, clone);
	vp_image_info info;
	size_t n;
	int rc;

	memset(s, 0, sizeof(*s));
	if (!o || !(o->flags & VP_OBS_OURS) || strcmp(o->pool, p->spec->pool))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "'%s' is not a clone of pool '%s'", clone,
				    p->spec->pool);
	if (p->spec->storage.deltas->driver != VP_STORAGE_DIR)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "clone '%s': snapshots need a dir deltas tier; tier '%s' is %s", clone,
				    p->spec->storage.deltas->name, p->deltas.ops->name);
	/* A snapshot's overlay would be a plain qcow2 over the encrypted disk: refused. */
	if (p->spec->delta.encrypt == VP_SPEC_ENCRYPT_LUKS)
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP,
				    "clone '%s': pool '%s' has encrypted disks (delta.encrypt: luks); snapshots "
				    "of encrypted clones are not supported yet", clone, p->spec->pool);
	if (!(o->flags & VP_OBS_DELTA))
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "clone '%s' has no disk; run 'vdipool apply' to repair it", clone);
	if (need_off && dom && (dom->state == VP_DOM_RUNNING || dom->state == VP_DOM_PAUSED))
		return vp_error_set(VP_ERR_INVALID, VP_EBUSY,
				    "clone '%s' is running: shut it down first (virsh shutdown %s); "
				    "snapshots are taken and reverted with the clone off", clone, clone);
	/* A parked spare's saved memory belongs to this very disk: a restore on a changed disk
	 * would corrupt the guest's file systems. */
	if (need_off && dom && dom->saved)
		return vp_error_set(VP_ERR_INVALID, VP_EBUSY,
				    "clone '%s' is parked (its memory is saved to disk as a spare); drop the saved "
				    "state first (virsh managedsave-remove %s), then take or revert snapshots",
				    clone, clone);
	if ((rc = p->deltas.ops->delta_stat(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, clone, &info)) < 0)
		return rc;
	if (!realpath(info.location, s->active))
		return vp_error_set(VP_ERR_OS, VP_EIO, "cannot resolve '%s': %s", info.location, strerror(errno));
	n = strlen(s->active);
	if (n < 7 || strcmp(s->active + n - 6, ".qcow2"))
		return vp_error_set(VP_ERR_INVALID, VP_ENOTSUP, "clone '%s': disk '%s' is not CLONE.qcow2", clone,
				    s->active);
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%.*s.snap", (int)(n - 6), s->active) >= sizeof(s->dir))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "clone '%s': path '%s' is too long", clone, s->active);
	if ((rc = read_chain(s)) < 0 || (rc = sweep(s)) < 0)
		return rc;
	return 0;
}

static void close_clone(snap_ctx *s)
{
	vp_qcow2_chain_release(&s->chain);
}

/* Index in the chain of snapshot `name`, or 0 when it has none by that name. */
static size_t find(const snap_ctx *s, const char *name)
{
	for (size_t i = s->first; i < s->first + s->n; i++) {
		char n[64];
		layer_name(s, s->chain.layers[i].path, n);
		if (!strcmp(n, name))
			return i;
	}
	return 0;
}

/* "'a', 'b'": the names of chain layers [from, to), oldest first. */
static void quote_names(const snap_ctx *s, size_t from, size_t to, vp_buf *b)
{
	for (size_t i = to; i-- > from;) {
		char n[64];
		layer_name(s, s->chain.layers[i].path, n);
		vp_buf_printf(b, "%s'%s'", b->len ? ", " : "", n);
	}
}

static int no_such(const snap_ctx *s, const char *clone, const char *name)
{
	vp_buf b = VP_BUF_INIT;
	int rc;

	quote_names(s, s->first, s->first + s->n, &b);
	rc = vp_error_set(VP_ERR_INVALID, VP_ENOENT, "clone '%s' has no snapshot '%s' (it has %s)", clone,
			  name, b.len ? vp_buf_cstr(&b) : "none");
	vp_buf_release(&b);
	return rc;
}

/* A fresh overlay on `backing` replacing the active image atomically, in the active one's flavour. */
static int new_top(const snap_ctx *s, const char *backing)
{
	vp_qcow2_create_opts o;
	int rc;

	vp_qcow2_create_opts_init(&o);
	o.backing_file = backing;
	o.backing_format = "qcow2";
	o.size = s->top.virtual_size;
	o.cluster_size = s->top.cluster_size;
	o.extended_l2 = s->top.extended_l2;
	o.prealloc = s->top.extended_l2 ? VP_QCOW2_PREALLOC_METADATA : VP_QCOW2_PREALLOC_OFF;
	o.overwrite = true;
	o.mode = 0600;
	if ((rc = vp_qcow2_create(s->active, &o)) < 0)
		return rc;
	if (chmod(s->active, 0600) < 0)
		return vp_error_set(VP_ERR_OS, VP_EIO, "cannot set the mode of '%s': %s", s->active, strerror(errno));
	return 0;
}

static int check_name(const char *clone, const char *name)
{
	if (!name_ok(name))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "clone '%s': invalid snapshot name '%s': 1-63 of a-z, 0-9 and '-', starting "
				    "with a letter or digit", clone, name);
	return 0;
}

/* open_clone for revert and rm (the clone off), and *at: where snapshot `name` is in its chain. */
static int open_snapshot(vp_pool *p, const char *clone, const char *name, snap_ctx *s, size_t *at)
{
	int rc;

	if ((rc = check_name(clone, name)) < 0 || (rc = open_clone(p, clone, true, s)) < 0)
		return rc;
	if (!(*at = find(s, name)))
		return no_such(s, clone, name);
	return 0;
}

int vp_pool_snapshot_create(vp_pool *p, const char *clone, const char *name)
{
	unsigned max = p->spec->delta.max_depth ? p->spec->delta.max_depth : 8;
	char path[PATH_MAX];
	snap_ctx s = { 0 };
	int rc;

	if ((rc = check_name(clone, name)) < 0 || (rc = open_clone(p, clone, true, &s)) < 0)
		goto out;
	if (find(&s, name)) {
		rc = vp_error_set(VP_ERR_INVALID, VP_EEXIST, "clone '%s' has a snapshot '%s' already", clone, name);
		goto out;
	}
	/* The new overlay stands on everything the disk stands on now, and on the disk. */
	if (s.chain.depth > max) {
		rc = vp_error_set(VP_ERR_INVALID, VP_ECONFLICT,
				  "clone '%s': a snapshot would put %zu images under its disk, more than "
				  "delta.max_depth (%u); remove a snapshot first (vdipool snapshot rm) or raise "
				  "delta.max_depth", clone, s.chain.depth, max);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.qcow2", s.dir, name);
	/* 0755 like the pool's directory: QEMU (libvirt relabels the 0600 images, not directories)
	 * must reach the images. */
	if ((rc = vp_fs_mkdir_p(s.dir, 0755)) < 0)
		goto out;
	/* Until the overlay replaces it, the link shares the active image's inode: sweep() knows it
	 * for the leftover of an interrupted snapshot. */
	if (link(s.active, path) < 0) {
		rc = vp_error_set(VP_ERR_OS, VP_EIO, "cannot link '%s' to '%s': %s", s.active, path, strerror(errno));
		goto out;
	}
	if ((rc = vp_fs_fsync_dir(s.dir)) < 0 || (rc = new_top(&s, path)) < 0) {
		unlink(path);
		goto out;
	}
out:
	close_clone(&s);
	return rc;
}

int vp_pool_snapshot_list(vp_pool *p, const char *clone, vp_snapshot **out, size_t *n)
{
	snap_ctx s = { 0 };
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = open_clone(p, clone, false, &s)) < 0)
		goto out;
	if (!(*out = calloc(s.n + 1, sizeof(**out)))) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	/* Oldest first: the chain lists them newest first. */
	for (size_t i = s.first + s.n; i-- > s.first;) {
		vp_snapshot *sn = &(*out)[(*n)++];
		struct stat st;

		layer_name(&s, s.chain.layers[i].path, sn->name);
		snprintf(sn->path, sizeof(sn->path), "%s/%s.qcow2", s.dir, sn->name);
		if (stat(sn->path, &st) == 0) {
			sn->bytes = (uint64_t)st.st_blocks * 512;
			sn->taken = (double)st.st_ctim.tv_sec + st.st_ctim.tv_nsec / 1e9;
		}
	}
	rc = 0;
out:
	close_clone(&s);
	return rc;
}

int vp_pool_snapshot_revert(vp_pool *p, const char *clone, const char *name, bool drop_later,
			    size_t *dropped)
{
	char path[PATH_MAX];
	size_t at;
	snap_ctx s = { 0 };
	int rc;

	*dropped = 0;
	if ((rc = open_snapshot(p, clone, name, &s, &at)) < 0)
		goto out;
	/* Snapshots taken after it stand between it and the disk: a revert drops them. */
	if (at > s.first && !drop_later) {
		vp_buf b = VP_BUF_INIT;

		quote_names(&s, s.first, at, &b);
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				  "clone '%s': reverting to '%s' removes the snapshots taken after it (%s); "
				  "pass --yes to do so", clone, name, vp_buf_cstr(&b));
		vp_buf_release(&b);
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%s.qcow2", s.dir, name);
	if ((rc = new_top(&s, path)) < 0 || (rc = read_chain(&s)) < 0)
		goto out;
	*dropped = at - s.first;
	rc = sweep(&s);
out:
	close_clone(&s);
	return rc;
}

int vp_pool_snapshot_remove(vp_pool *p, const char *clone, const char *name)
{
	const char *child, *parent, *pfmt;
	size_t at;
	snap_ctx s = { 0 };
	int rc;

	if ((rc = open_snapshot(p, clone, name, &s, &at)) < 0)
		goto out;
	/* The image above it takes over what only it holds (qemu-img rebase in its safe mode: the
	 * data is copied first, the backing name changed last, so an interrupted rm changes no
	 * content and the next command sweeps the snapshot once nothing stands on it). */
	child = s.chain.layers[at - 1].path;
	parent = s.chain.layers[at + 1].path;
	pfmt = s.chain.layers[at + 1].format;
	{
		const char *argv[] = { "qemu-img", "rebase", "-f", "qcow2", "-F", pfmt, "-b", parent,
				       child, NULL };
		if ((rc = vp_run_ok(argv, NULL, NULL)) < 0) {
			vp_error_prefix("clone '%s': cannot remove snapshot '%s'", clone, name);
			goto out;
		}
	}
	if ((rc = read_chain(&s)) == 0)
		rc = sweep(&s);
out:
	close_clone(&s);
	return rc;
}

bool pool_has_snapshots(const vp_pool *p, const char *clone, char *first, size_t len)
{
	vp_image_info info;
	char dir[PATH_MAX];
	struct dirent *e;
	size_t n;
	DIR *d;
	bool any = false;

	if (p->spec->storage.deltas->driver != VP_STORAGE_DIR ||
	    p->deltas.ops->delta_stat(p->deltas.handle, VP_DISK_DELTA, p->spec->pool, clone, &info) < 0) {
		vp_error_clear();
		return false;
	}
	n = strlen(info.location);
	if (n < 7 || (size_t)snprintf(dir, sizeof(dir), "%.*s.snap", (int)(n - 6), info.location) >= sizeof(dir) ||
	    !(d = opendir(dir)))
		return false;
	while ((e = readdir(d)) && !any)
		if (e->d_name[0] != '.' && strlen(e->d_name) > 6 &&
		    !strcmp(e->d_name + strlen(e->d_name) - 6, ".qcow2")) {
			snprintf(first, len, "%.*s", (int)(strlen(e->d_name) - 6), e->d_name);
			any = true;
		}
	closedir(d);
	return any;
}

void vp_snapshot_list_free(vp_snapshot *list)
{
	free(list);
}
