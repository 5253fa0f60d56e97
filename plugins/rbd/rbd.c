/* rbd.c: the `rbd` storage plugin: bases as protected snapshots and deltas as RBD clones in a Ceph pool. */
/*
 * Images in the tier's RADOS pool (and namespace, when one is set):
 *   base.<name>.<version>            a published base; snapshot "vdipool" (protected),
 *                                    manifest in the image metadata "vdipool.manifest"
 *   delta.<pool>.<clone>             a clone of a base snapshot (rbd_clone3)
 *   data.<pool>.<clone>              a standalone data disk
 *   .import.<name>.<version>.<owner> an import in progress
 *   .remove.<name>.<version>.<owner> a base being removed
 *   .rebase-delta.<pool>.<clone>.<owner>  the new disk of a rebase or an overwrite, before
 *   .rebase-data.<pool>.<clone>.<owner>   the swap
 *   .gone.<image>.<owner>            a disk being removed (renamed away first, so that a removal
 *                                    killed half-way never leaves a zombie under the disk's name)
 *   .flatten-delta.<pool>.<clone>.<owner> a new delta being flattened, before its rename
 *   .new-delta.<pool>.<clone>.<owner>, .new-data.<pool>.<clone>.<owner>  a new disk before its
 *                                    rename (a create killed half-way leaves no wreck under the
 *                                    disk's name)
 * <owner> is "<host>-<pid>": sweep removes the temporaries of dead processes of this host only
 * (the pool is shared; another host's process cannot be checked from here).
 * Names and pools are [a-z0-9-], so the first dots split them; versions may hold dots.
 * Snapshots are protected (clone v1 needs it). Under clone v2 unprotect and snap_remove pass
 * while clones exist (the snapshot would go to the trash), so the clones are counted with
 * rbd_list_children3 before any snapshot is removed.
 *
 * Chain depth (tier setting max_depth, 1..16, default 8): a delta stands on its base's snapshot,
 * which may itself be a clone (a derived base). A delta that would stand on more than max_depth
 * parents is flattened under a temporary name before it takes its own, so no crash leaves a
 * too-deep disk under a published name; a base whose staged image already stands on max_depth
 * parents is flattened before its snapshot, since each of its deltas would be one deeper.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rados/librados.h>
#include <rbd/librbd.h>

#include "vdipool/plugin.h"

#define SNAP "vdipool"
#define MANIFEST_KEY "vdipool.manifest"
#define MANIFEST_MAX (64 * 1024)
#define DEPTH_MIN 1
#define DEPTH_MAX 16
#define DEPTH_DEFAULT 8
#define IMG_MAX 256
#define DISK_FEATURES                                                                 \
	(RBD_FEATURE_LAYERING | RBD_FEATURE_EXCLUSIVE_LOCK | RBD_FEATURE_OBJECT_MAP | \
	 RBD_FEATURE_FAST_DIFF | RBD_FEATURE_DEEP_FLATTEN)

static const vp_plugin_host *host;

/* One RADOS client per cluster and user, shared by the tiers a process opens on it (a pool has
 * its bases, deltas and data tiers, each opened more than once): one set of messenger threads
 * and one monitor session instead of one per handle. */
struct cluster {
	char key[2300];   /* conf NUL id NUL keyring NUL timeout, as one string with '\n's */
	rados_t rados;
	unsigned refs;
	struct cluster *next;
};
static pthread_mutex_t clusters_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cluster *clusters;

struct rbd_tier {
	/* The plugin is VP_THREAD_MODEL_PARALLEL (librbd is thread-safe, and RBD calls wait on
	 * the network: apply's workers overlap them); mu guards the mutable state below. */
	pthread_mutex_t mu;
	struct cluster *cl;
	rados_t cluster;  /* cl->rados */
	rados_ioctx_t io;
	char pool[128];
	char ns[128];
	char opts[1024];  /* ":id=..:conf=..:keyring=.." for qemu's rbd: locations */
	char owner[96];   /* "<host>-<pid>" of this process */
	int max_depth;    /* parents a delta may stand on (DEPTH_MIN..DEPTH_MAX) */
	/* The last base whose chain too_deep counted: location, image id, parents under it */
	char chain_loc[VP_PLUGIN_LOCATION_MAX];
	char chain_id[64];
	int chain_depth;
	/* base_read is called chunk by chunk: the image stays open between calls */
	rbd_image_t rd;
	char rd_name[IMG_MAX];
};

/* ---- errors and names ------------------------------------------------------------- */

static int code_of(int rc)
{
	switch (rc) {
	case -ENOENT: return VP_ENOENT;
	case -EEXIST: return VP_EEXIST;
	case -EBUSY: case -ENOTEMPTY: return VP_EBUSY;
	case -ENOMEM: return VP_ENOMEM;
	case -EINVAL: case -ERANGE: return VP_EINVAL;
	case -EOPNOTSUPP: return VP_ENOTSUP;
	default: return VP_EIO;
	}
}

/* A librbd/librados failure (rc = -errno) as our error, keeping its text. */
static int ceph_error(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ceph_error(int rc, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return host->error(code_of(rc), "%s: %s", msg, strerror(-rc));
}

static int fmt_name(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fmt_name(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, IMG_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= IMG_MAX)
		return host->error(VP_EINVAL, "image name too long: '%.64s...'", buf);
	return 0;
}

/* [a-z0-9-] names (no dot: dots split image names); versions may hold dots, never '/' or '@'. */
static int word_ok(const char *what, const char *s, bool dots)
{
	size_t n = s ? strlen(s) : 0;

	if (!n || n >= VP_PLUGIN_NAME_MAX || s[0] == '.' || s[0] == '-')
		return host->error(VP_EINVAL, "invalid %s '%s'", what, s ? s : "");
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || (dots && c == '.')))
			return host->error(VP_EINVAL, "invalid %s '%s'", what, s);
	}
	return 0;
}

static int base_image(char *buf, const char *name, const char *version, const char *kind,
		      const struct rbd_tier *t)
{
	if (word_ok("base name", name, false) < 0 || word_ok("version", version, true) < 0)
		return VP_EINVAL;
	if (!strcmp(kind, "base"))
		return fmt_name(buf, "base.%s.%s", name, version);
	return fmt_name(buf, ".%s.%s.%s.%s", kind, name, version, t->owner);
}

static const char *disk_prefix(int kind) { return kind == VP_DISK_DATA ? "data" : "delta"; }

static int disk_image(char *buf, int kind, const char *pool, const char *clone)
{
	if (word_ok("pool", pool, false) < 0 || word_ok("clone", clone, false) < 0)
		return VP_EINVAL;
	return fmt_name(buf, "%s.%s.%s", disk_prefix(kind), pool, clone);
}

static void location(char *buf, const struct rbd_tier *t, const char *pool, const char *ns,
		     const char *image, const char *snap)
{
	snprintf(buf, VP_PLUGIN_LOCATION_MAX, "rbd:%s/%s%s%s%s%s%s", pool, ns, *ns ? "/" : "", image,
		 snap ? "@" : "", snap ? snap : "", t->opts);
}

/* ---- images ------------------------------------------------------------------------ */

static void close_reader_locked(struct rbd_tier *t)
{
	if (t->rd)
		rbd_close(t->rd);
	t->rd = NULL;
	t->rd_name[0] = '\0';
}

static void close_reader(struct rbd_tier *t)
{
	pthread_mutex_lock(&t->mu);
	close_reader_locked(t);
	pthread_mutex_unlock(&t->mu);
}

static int open_image(struct rbd_tier *t, const char *img, const char *snap, bool ro,
		      rbd_image_t *im)
{
	int rc = ro ? rbd_open_read_only(t->io, img, im, snap) : rbd_open(t->io, img, im, snap);

	if (rc < 0) {
		*im = NULL;
		return ceph_error(rc, "cannot open RBD image '%s/%s%s%s'", t->pool, img,
				  snap ? "@" : "", snap ? snap : "");
	}
	return 0;
}

/* How many clones a snapshot has (trashed ones included), through a handle of its own. */
static int snap_clones(struct rbd_tier *t, const char *img, const char *snap, size_t *count)
{
	rbd_linked_image_spec_t kids[4];
	size_t n = 4;
	rbd_image_t im;
	int rc = rbd_open_read_only(t->io, img, &im, snap);

	*count = 0;
	if (rc < 0)
		return rc;
	rc = rbd_list_children3(im, kids, &n);
	rbd_close(im);
	if (rc == -ERANGE) {
		*count = n;
		return 0;
	}
	if (rc < 0)
		return rc;
	*count = n;
	rbd_linked_image_spec_list_cleanup(kids, n);
	return 0;
}

/* Removes an image with all its snapshots (unprotecting them). Fails, leaving the
 * image, when a snapshot still has clones. Absent image: 0. */
static int destroy_image(struct rbd_tier *t, const char *img)
{
	rbd_snap_info_t snaps[16];
	int max = 16, n, rc;
	rbd_image_t im;

	close_reader(t);
	rc = rbd_open(t->io, img, &im, NULL);
	if (rc == -ENOENT) {
		/* Absent, or half-removed by a killed process (the directory still names it,
		 * its header is gone): rbd_remove finishes that. */
		rc = rbd_remove(t->io, img);
		if (rc < 0 && rc != -ENOENT)
			return ceph_error(rc, "cannot remove RBD image '%s/%s'", t->pool, img);
		return 0;
	}
	if (rc < 0)
		return ceph_error(rc, "cannot open RBD image '%s/%s'", t->pool, img);
	n = rbd_snap_list(im, snaps, &max);
	if (n < 0) {
		rbd_close(im);
		return ceph_error(n, "cannot list the snapshots of '%s/%s'", t->pool, img);
	}
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		size_t kids = 0;
		int prot = 0;

		/* Under clone v2 neither unprotect nor snap_remove refuses a snapshot with
		 * clones (it would go to the trash, needed by no one we know): count them. */
		if ((rc = snap_clones(t, img, snaps[i].name, &kids)) == 0 && kids) {
			host->error(VP_EBUSY, "snapshot '%s/%s@%s' has clones: not removed", t->pool,
				    img, snaps[i].name);
			rc = -EBUSY;
			break;
		}
		if (rc == 0 && (rc = rbd_snap_is_protected(im, snaps[i].name, &prot)) == 0 && prot)
			rc = rbd_snap_unprotect(im, snaps[i].name);
		if (rc == 0)
			rc = rbd_snap_remove(im, snaps[i].name);
		if (rc < 0)
			ceph_error(rc, "cannot remove snapshot '%s/%s@%s'", t->pool, img, snaps[i].name);
	}
	rbd_snap_list_end(snaps);
	rbd_close(im);
	if (rc < 0)
		return code_of(rc);
	rc = rbd_remove(t->io, img);
	if (rc < 0 && rc != -ENOENT)
		return ceph_error(rc, "cannot remove RBD image '%s/%s'", t->pool, img);
	return 0;
}

static int image_exists(struct rbd_tier *t, const char *img)
{
	rbd_image_t im;
	int rc = rbd_open_read_only(t->io, img, &im, NULL);

	if (rc == 0) {
		rbd_close(im);
		return 1;
	}
	return rc == -ENOENT ? 0 : ceph_error(rc, "cannot open RBD image '%s/%s'", t->pool, img);
}

/* Moves *io and *im on to a parent: its pool and namespace, its image at the parent snapshot
 * (by ids, so a parent in the trash is found too). */
static int open_parent(struct rbd_tier *t, const rbd_linked_image_spec_t *parent,
		       const rbd_snap_spec_t *psnap, rados_ioctx_t *io, rbd_image_t *im)
{
	int rc;

	rbd_close(*im);
	*im = NULL;
	rados_ioctx_destroy(*io);
	if ((rc = rados_ioctx_create(t->cluster, parent->pool_name, io)) < 0) {
		*io = NULL;
		goto fail;
	}
	rados_ioctx_set_namespace(*io, parent->pool_namespace);
	if ((rc = rbd_open_by_id_read_only(*io, parent->image_id, im, NULL)) < 0) {
		*im = NULL;
		goto fail;
	}
	if ((rc = rbd_snap_set_by_id(*im, psnap->id)) < 0)
		goto fail;
	return 0;
fail:
	return ceph_error(rc, "cannot open parent '%s/%s@%s'", parent->pool_name, parent->image_name,
			  psnap->name ? psnap->name : "");
}

/* Parents under `image` (at `snap`, or its head when NULL) in pool/ns: 0 when it is flat. Counts
 * at most `limit` of them, enough to compare with max_depth (and no loop can run away). `id`
 * (or NULL) gets the image's id. */
static int chain_depth(struct rbd_tier *t, const char *pool, const char *ns, const char *image,
		       const char *snap, int limit, int *depth, char id[64])
{
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t psnap;
	rados_ioctx_t io = NULL;
	rbd_image_t im = NULL;
	int rc;

	*depth = 0;
	if ((rc = rados_ioctx_create(t->cluster, pool, &io)) < 0)
		return ceph_error(rc, "cannot open RADOS pool '%s' of '%s'", pool, image);
	rados_ioctx_set_namespace(io, ns);
	if ((rc = rbd_open_read_only(io, image, &im, snap)) < 0) {
		rados_ioctx_destroy(io);
		return ceph_error(rc, "cannot open RBD image '%s/%s%s%s'", pool, image, snap ? "@" : "",
				  snap ? snap : "");
	}
	if (id && rbd_get_id(im, id, 64) < 0)
		id[0] = '\0';
	for (rc = 0; *depth < limit; ) {
		if ((rc = rbd_get_parent(im, &parent, &psnap)) == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc < 0) {
			rc = ceph_error(rc, "cannot read the parent of '%s/%s' (%d down)", pool, image, *depth);
			break;
		}
		++*depth;
		rc = open_parent(t, &parent, &psnap, &io, &im);
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&psnap);
		if (rc < 0)
			break;
	}
	if (im)
		rbd_close(im);
	if (io)
		rados_ioctx_destroy(io);
	return rc;
}

struct flatten_progress {
	const char *img;
	int shown;  /* percent last shown */
};

static int flatten_step(uint64_t done, uint64_t total, void *arg)
{
	struct flatten_progress *p = arg;
	int pct = total ? (int)(done * 100 / total) : 100;

	if (pct >= p->shown + 10) {
		p->shown = pct;
		host->debug("rbd: flattening '%s': %d%%", p->img, pct);
	}
	return 0;
}

/* Copies the parents' data into `img` and cuts it from them, with progress on the debug output. */
static int flatten_image(struct rbd_tier *t, const char *img)
{
	struct flatten_progress p = { img, 0 };
	rbd_image_t im;
	int rc;

	if ((rc = open_image(t, img, NULL, false, &im)) < 0)
		return rc;
	host->debug("rbd: flattening '%s/%s'", t->pool, img);
	rc = rbd_flatten_with_progress(im, flatten_step, &p);
	rbd_close(im);
	if (rc < 0)
		return ceph_error(rc, "cannot flatten '%s/%s'", t->pool, img);
	host->debug("rbd: '%s/%s' is flat", t->pool, img);
	return 0;
}

/* A delta flattened for depth has no parent left: the base it was made from is kept in its
 * metadata, so that it still names it as `backing` (the planner and gc then see it on that base,
 * not as a stray standalone disk). Without the client options: locations compare without them. */
#define BASE_KEY "vdipool.base"

static int record_base(struct rbd_tier *t, const char *img, const char *base_location)
{
	char canon[VP_PLUGIN_LOCATION_MAX];
	const char *opt = strchr(base_location + 4, ':');
	rbd_image_t im;
	int rc;

	snprintf(canon, sizeof(canon), "%.*s", opt ? (int)(opt - base_location) : (int)strlen(base_location),
		 base_location);
	if ((rc = open_image(t, img, NULL, false, &im)) < 0)
		return rc;
	rc = rbd_metadata_set(im, BASE_KEY, canon);
	rbd_close(im);
	if (rc < 0)
		return ceph_error(rc, "cannot record the base of '%s/%s'", t->pool, img);
	return 0;
}

static int flatten_delta(struct rbd_tier *t, const char *img, const char *base_location)
{
	int rc = record_base(t, img, base_location);

	return rc < 0 ? rc : flatten_image(t, img);
}

static int count_extent(uint64_t off, size_t len, int exists, void *arg)
{
	(void)off;
	if (exists)
		*(uint64_t *)arg += len;
	return 0;
}

/* Size, allocation (own objects only, from the object map) and times of an open image. */
static int stat_open(struct rbd_tier *t, rbd_image_t im, const char *img, vp_image_info *out)
{
	struct timespec ts;
	uint64_t alloc = 0;
	int rc;

	if ((rc = rbd_get_size(im, &out->size)) < 0)
		return ceph_error(rc, "cannot get the size of '%s/%s'", t->pool, img);
	out->virtual_size = out->size;
	if ((rc = rbd_diff_iterate2(im, NULL, 0, out->size, 0, 1, count_extent, &alloc)) == 0)
		out->allocated = alloc;
	if (rbd_get_modify_timestamp(im, &ts) == 0) {
		out->mtime_sec = (int64_t)ts.tv_sec;
		out->mtime_nsec = ts.tv_nsec;
	}
	snprintf(out->format, sizeof(out->format), "raw");
	return 0;
}

/* ---- tiers -------------------------------------------------------------------------- */

static int rbd_load(const vp_plugin_host *h)
{
	host = h;
	return 0;
}

static const char *param(const vp_tier_config *cfg, const char *key)
{
	for (size_t i = 0; i < cfg->nparams; i++)
		if (!strcmp(cfg->params[i].key, key))
			return cfg->params[i].value;
	return NULL;
}

static int check_params(const vp_tier_config *cfg)
{
	static const char *const known[] = { "conf", "id", "keyring", "max_depth", "namespace",
					     "timeout" };

	for (size_t i = 0; i < cfg->nparams; i++) {
		bool ok = false;
		for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			ok = ok || !strcmp(cfg->params[i].key, known[k]);
		if (!ok)
			return host->error(VP_EINVAL, "tier '%s': the rbd backend has no setting '%s' "
					   "(it has conf, id, keyring, max_depth, namespace, timeout)",
					   cfg->tier, cfg->params[i].key);
	}
	return 0;
}

static int parse_depth(const vp_tier_config *cfg, int *out)
{
	const char *v = param(cfg, "max_depth");
	char *end;
	long n;

	*out = DEPTH_DEFAULT;
	if (!v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end || errno || n < DEPTH_MIN || n > DEPTH_MAX)
		return host->error(VP_EINVAL, "tier '%s': max_depth must be between %d and %d, got '%s'",
				   cfg->tier, DEPTH_MIN, DEPTH_MAX, v);
	*out = (int)n;
	return 0;
}

/* The key must not be readable by others: refuse a keyring that is. */
static int keyring_ok(const vp_tier_config *cfg, const char *keyring)
{
	struct stat st;

	if (stat(keyring, &st) < 0)
		return host->error(errno == ENOENT ? VP_ENOENT : VP_EIO,
				   "tier '%s': cannot use keyring '%s': %s", cfg->tier, keyring,
				   strerror(errno));
	if (st.st_mode & S_IROTH)
		return host->error(VP_EINVAL, "tier '%s': keyring '%s' is readable by everyone "
				   "(chmod o-r it)", cfg->tier, keyring);
	return 0;
}

static void make_owner(struct rbd_tier *t)
{
	char h[64] = "";
	size_t i;

	gethostname(h, sizeof(h) - 1);
	for (i = 0; h[i] && h[i] != '.'; i++)
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9')))
			h[i] = '-';
	h[i] = '\0';
	snprintf(t->owner, sizeof(t->owner), "%s-%ld", *h ? h : "host", (long)getpid());
}

/* A new client of the cluster, connected. */
static int new_cluster(rados_t *out, const vp_tier_config *cfg)
{
	const char *conf = param(cfg, "conf"), *id = param(cfg, "id");
	const char *keyring = param(cfg, "keyring"), *timeout = param(cfg, "timeout");
	rados_t r;
	int rc;

	if (!timeout)
		timeout = "10";
	if ((rc = rados_create(&r, id)) < 0)
		return ceph_error(rc, "tier '%s': cannot create a RADOS client", cfg->tier);
	if ((rc = rados_conf_read_file(r, conf)) < 0)
		rc = ceph_error(rc, "tier '%s': cannot read Ceph configuration '%s'", cfg->tier,
				conf ? conf : "(default search path)");
	else if (keyring && (rc = rados_conf_set(r, "keyring", keyring)) < 0)
		rc = ceph_error(rc, "tier '%s': cannot set keyring '%s'", cfg->tier, keyring);
	/* A down cluster must fail in seconds, not hang in the monitor hunt. */
	else if ((rc = rados_conf_set(r, "client_mount_timeout", timeout)) < 0 ||
		 (rc = rados_conf_set(r, "rados_mon_op_timeout", timeout)) < 0 ||
		 (rc = rados_conf_set(r, "rados_osd_op_timeout", "60")) < 0)
		rc = ceph_error(rc, "tier '%s': invalid timeout '%s'", cfg->tier, timeout);
	else if ((rc = rados_connect(r)) < 0)
		rc = ceph_error(rc, "tier '%s': cannot connect to the Ceph cluster (conf '%s', "
				"client '%s')", cfg->tier, conf ? conf : "default", id ? id : "admin");
	if (rc < 0) {
		rados_shutdown(r); /* as Ceph's own connect-failure test does */
		return rc;
	}
	*out = r;
	return 0;
}

static int connect_cluster(struct rbd_tier *t, const vp_tier_config *cfg)
{
	const char *conf = param(cfg, "conf"), *id = param(cfg, "id");
	const char *keyring = param(cfg, "keyring"), *timeout = param(cfg, "timeout");
	char key[sizeof(((struct cluster *)0)->key)];
	struct cluster *c;
	int n, rc = 0;

	n = snprintf(key, sizeof(key), "%s\n%s\n%s\n%s", conf ? conf : "", id ? id : "",
		     keyring ? keyring : "", timeout ? timeout : "");
	if (n < 0 || (size_t)n >= sizeof(key))
		return host->error(VP_EINVAL, "tier '%s': conf, id and keyring are too long", cfg->tier);
	pthread_mutex_lock(&clusters_lock);
	for (c = clusters; c && strcmp(c->key, key); c = c->next)
		;
	if (c) {
		c->refs++;
	} else if (!(c = calloc(1, sizeof(*c)))) {
		rc = host->error(VP_ENOMEM, "out of memory");
	} else if ((rc = new_cluster(&c->rados, cfg)) < 0) {
		free(c);
		c = NULL;
	} else {
		snprintf(c->key, sizeof(c->key), "%s", key);
		c->refs = 1;
		c->next = clusters;
		clusters = c;
	}
	pthread_mutex_unlock(&clusters_lock);
	if (rc < 0)
		return rc;
	t->cl = c;
	t->cluster = c->rados;
	if ((rc = rados_ioctx_create(t->cluster, cfg->path, &t->io)) < 0) {
		t->io = NULL;
		return ceph_error(rc, "tier '%s': cannot open RADOS pool '%s'", cfg->tier, cfg->path);
	}
	rados_ioctx_set_namespace(t->io, t->ns);
	return 0;
}

static void put_cluster(struct cluster *c)
{
	struct cluster **pp;

	pthread_mutex_lock(&clusters_lock);
	if (--c->refs == 0) {
		for (pp = &clusters; *pp != c; pp = &(*pp)->next)
			;
		*pp = c->next;
	} else {
		c = NULL;
	}
	pthread_mutex_unlock(&clusters_lock);
	if (c) {
		rados_shutdown(c->rados);
		free(c);
	}
}

static void rbd_close_tier(void *tier)
{
	struct rbd_tier *t = tier;

	if (!t)
		return;
	close_reader(t);
	if (t->io)
		rados_ioctx_destroy(t->io);
	if (t->cl)
		put_cluster(t->cl);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

static int rbd_open_tier(const vp_tier_config *cfg, void **tier)
{
	const char *conf, *id, *keyring, *ns;
	struct rbd_tier *t;
	int rc, n, depth;

	if (!cfg->path || !*cfg->path || strchr(cfg->path, '/') || strchr(cfg->path, ':'))
		return host->error(VP_EINVAL, "tier '%s': the rbd backend needs a RADOS pool name, "
				   "got '%s'", cfg->tier, cfg->path ? cfg->path : "");
	if ((rc = check_params(cfg)) < 0 || (rc = parse_depth(cfg, &depth)) < 0)
		return rc;
	conf = param(cfg, "conf");
	id = param(cfg, "id");
	keyring = param(cfg, "keyring");
	ns = param(cfg, "namespace");
	if (keyring && (rc = keyring_ok(cfg, keyring)) < 0)
		return rc;
	if (!(t = calloc(1, sizeof(*t))))
		return host->error(VP_ENOMEM, "out of memory");
	pthread_mutex_init(&t->mu, NULL);
	snprintf(t->pool, sizeof(t->pool), "%s", cfg->path);
	t->max_depth = depth;
	snprintf(t->ns, sizeof(t->ns), "%s", ns ? ns : "");
	n = snprintf(t->opts, sizeof(t->opts), "%s%s%s%s%s%s", id ? ":id=" : "", id ? id : "",
		     conf ? ":conf=" : "", conf ? conf : "", keyring ? ":keyring=" : "",
		     keyring ? keyring : "");
	if (n < 0 || (size_t)n >= sizeof(t->opts)) {
		pthread_mutex_destroy(&t->mu);
		free(t);
		return host->error(VP_EINVAL, "tier '%s': conf, id and keyring are too long", cfg->tier);
	}
	make_owner(t);
	if ((rc = connect_cluster(t, cfg)) < 0) {
		rbd_close_tier(t);
		return rc;
	}
	*tier = t;
	return 0;
}

/* ---- bases --------------------------------------------------------------------------- */

static int rbd_base_stage(void *tier, const char *name, const char *version, const char *format,
			  vp_image_info *staged)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX];
	int rc;

	if (strcmp(format, "raw"))
		return host->error(VP_EINVAL, "the rbd backend stores raw images, not '%s'", format);
	if ((rc = base_image(img, name, version, "import", t)) < 0)
		return rc;
	/* Ours from an earlier attempt of this process: qemu-img creates the image itself. */
	if ((rc = destroy_image(t, img)) < 0)
		return rc;
	snprintf(staged->name, sizeof(staged->name), "%s", name);
	snprintf(staged->version, sizeof(staged->version), "%s", version);
	snprintf(staged->format, sizeof(staged->format), "raw");
	location(staged->location, t, t->pool, t->ns, img, NULL);
	return 0;
}

/* Undoes a half-made snapshot of the staged image, so that no error leaves one behind. */
static void drop_snap(rbd_image_t im)
{
	int prot = 0;

	if (rbd_snap_is_protected(im, SNAP, &prot) == 0 && prot)
		rbd_snap_unprotect(im, SNAP);
	rbd_snap_remove(im, SNAP);
}

static int rbd_base_commit(void *tier, const char *name, const char *version, const char *manifest)
{
	struct rbd_tier *t = tier;
	char stage[IMG_MAX], final[IMG_MAX];
	rbd_image_t im;
	int rc, depth;

	if ((rc = base_image(stage, name, version, "import", t)) < 0 ||
	    (rc = base_image(final, name, version, "base", t)) < 0)
		return rc;
	close_reader(t);
	if ((rc = image_exists(t, final)) != 0)
		return rc < 0 ? rc : host->error(VP_EEXIST, "base '%s@%s' exists already", name, version);
	/* A derived base: its deltas stand one deeper than it, so at max_depth it goes flat
	 * (before the snapshot, which would keep the parent). */
	if ((rc = chain_depth(t, t->pool, t->ns, stage, NULL, t->max_depth, &depth, NULL)) < 0)
		return rc;
	if (depth >= t->max_depth) {
		host->debug("rbd: base '%s@%s' stands on %d parent%s (max_depth %d)", name, version,
			    depth, depth == 1 ? "" : "s", t->max_depth);
		if ((rc = flatten_image(t, stage)) < 0)
			return rc;
	}
	if ((rc = open_image(t, stage, NULL, false, &im)) < 0)
		return rc;
	if ((rc = rbd_metadata_set(im, MANIFEST_KEY, manifest)) < 0) {
		rbd_close(im);
		return ceph_error(rc, "cannot write the manifest of '%s/%s'", t->pool, stage);
	}
	if ((rc = rbd_snap_create(im, SNAP)) < 0 || (rc = rbd_snap_protect(im, SNAP)) < 0) {
		ceph_error(rc, "cannot snapshot '%s/%s@%s'", t->pool, stage, SNAP);
		drop_snap(im);
		rbd_close(im);
		return code_of(rc);
	}
	rbd_close(im);
	/* The rename publishes: base.* images are complete (manifest and snapshot). */
	if ((rc = rbd_rename(t->io, stage, final)) < 0) {
		ceph_error(rc, "cannot publish '%s/%s' as '%s'", t->pool, stage, final);
		if (open_image(t, stage, NULL, false, &im) == 0) {
			drop_snap(im);
			rbd_close(im);
		}
		return rc == -EEXIST ? host->error(VP_EEXIST, "base '%s@%s' exists already", name,
						   version) : code_of(rc);
	}
	return 0;
}

static int rbd_base_abort(void *tier, const char *name, const char *version)
{
	struct rbd_tier *t = tier;
	char stage[IMG_MAX];
	int rc = base_image(stage, name, version, "import", t);

	return rc < 0 ? rc : destroy_image(t, stage);
}

static int base_read_locked(struct rbd_tier *t, const char *name, const char *version, int staged,
			    void *buf, size_t len, uint64_t offset, size_t *got)
{
	char img[IMG_MAX];
	uint64_t size;
	ssize_t r;
	int rc;

	*got = 0;
	if ((rc = base_image(img, name, version, staged ? "import" : "base", t)) < 0)
		return rc;
	if (strcmp(t->rd_name, img)) {
		close_reader_locked(t);
		if ((rc = open_image(t, img, staged ? NULL : SNAP, true, &t->rd)) < 0)
			return rc;
		snprintf(t->rd_name, sizeof(t->rd_name), "%s", img);
	}
	/* librbd refuses reads past the end (EINVAL): the end is *got = 0 here */
	if ((rc = rbd_get_size(t->rd, &size)) < 0)
		return ceph_error(rc, "cannot get the size of '%s/%s'", t->pool, img);
	if (offset >= size)
		return 0;
	if (len > size - offset)
		len = (size_t)(size - offset);
	r = rbd_read(t->rd, offset, len, buf);
	if (r < 0)
		return ceph_error((int)r, "cannot read '%s/%s' at %" PRIu64, t->pool, img, offset);
	*got = (size_t)r;
	return 0;
}

static int rbd_base_read(void *tier, const char *name, const char *version, int staged, void *buf,
			 size_t len, uint64_t offset, size_t *got)
{
	struct rbd_tier *t = tier;
	int rc;

	pthread_mutex_lock(&t->mu);
	rc = base_read_locked(t, name, version, staged, buf, len, offset, got);
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static int rbd_base_stat(void *tier, const char *name, const char *version, int staged,
			 vp_image_info *out)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX];
	rbd_image_t im;
	uint64_t sid;
	struct timespec ts;
	int rc;

	if ((rc = base_image(img, name, version, staged ? "import" : "base", t)) < 0)
		return rc;
	if ((rc = open_image(t, img, staged ? NULL : SNAP, true, &im)) < 0)
		return rc;
	rc = stat_open(t, im, img, out);
	/* A staged image's mtime says nothing of the published version: its snapshot, made at
	 * commit, is immutable. 0 tells the host not to compare (plugin.h). */
	if (staged)
		out->mtime_sec = out->mtime_nsec = 0;
	if (rc == 0 && !staged && rbd_snap_get_id(im, SNAP, &sid) == 0 &&
	    rbd_snap_get_timestamp(im, sid, &ts) == 0) {
		out->mtime_sec = (int64_t)ts.tv_sec;
		out->mtime_nsec = ts.tv_nsec;
	}
	rbd_close(im);
	if (rc < 0)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", name);
	snprintf(out->version, sizeof(out->version), "%s", version);
	location(out->location, t, t->pool, t->ns, img, staged ? NULL : SNAP);
	return 0;
}

static int rbd_base_manifest(void *tier, const char *name, const char *version, char **text)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX];
	size_t len = MANIFEST_MAX;
	rbd_image_t im;
	char *buf;
	int rc;

	*text = NULL;
	if ((rc = base_image(img, name, version, "base", t)) < 0 ||
	    (rc = open_image(t, img, NULL, true, &im)) < 0)
		return rc;
	if (!(buf = malloc(len))) {
		rbd_close(im);
		return host->error(VP_ENOMEM, "out of memory");
	}
	rc = rbd_metadata_get(im, MANIFEST_KEY, buf, &len);
	rbd_close(im);
	if (rc < 0) {
		free(buf);
		return ceph_error(rc, "cannot read the manifest of base '%s@%s'", name, version);
	}
	buf[len < MANIFEST_MAX ? len : MANIFEST_MAX - 1] = '\0';
	*text = buf;
	return 0;
}

/* Calls fn for each image of the tier whose name starts with prefix. */
typedef int (*image_fn)(struct rbd_tier *t, const char *img, void *ctx);
static int each_image(struct rbd_tier *t, const char *prefix, image_fn fn, void *ctx)
{
	rbd_image_spec_t *specs = NULL;
	size_t n = 64;
	int rc;

	for (;;) {
		free(specs);
		if (!(specs = calloc(n, sizeof(*specs))))
			return host->error(VP_ENOMEM, "out of memory");
		rc = rbd_list2(t->io, specs, &n);
		if (rc != -ERANGE)
			break;
	}
	if (rc < 0) {
		free(specs);
		return ceph_error(rc, "cannot list the images of RADOS pool '%s'", t->pool);
	}
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		if (!strncmp(specs[i].name, prefix, strlen(prefix)))
			rc = fn(t, specs[i].name, ctx);
	rbd_image_spec_list_cleanup(specs, n);
	free(specs);
	return rc;
}

struct list_ctx {
	const char *want;   /* base name or pool filter; NULL: all */
	vp_plugin_list_fn fn;
	void *ctx;
};

/* "a.b.rest" -> first = "a", second = "b", rest; false when the shape differs. */
static bool split3(const char *img, char *first, char *second, char *rest)
{
	const char *d1 = strchr(img, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	if (!d1 || !d2 || d1 == img || d2 == d1 + 1 || !d2[1] || (size_t)(d1 - img) >= VP_PLUGIN_NAME_MAX ||
	    (size_t)(d2 - d1 - 1) >= VP_PLUGIN_NAME_MAX || strlen(d2 + 1) >= VP_PLUGIN_NAME_MAX)
		return false;
	snprintf(first, VP_PLUGIN_NAME_MAX, "%.*s", (int)(d1 - img), img);
	snprintf(second, VP_PLUGIN_NAME_MAX, "%.*s", (int)(d2 - d1 - 1), d1 + 1);
	snprintf(rest, VP_PLUGIN_NAME_MAX, "%s", d2 + 1);
	return true;
}

static int list_base(struct rbd_tier *t, const char *img, void *ctx)
{
	struct list_ctx *l = ctx;
	char kind[VP_PLUGIN_NAME_MAX], name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	vp_image_info info;
	int rc;

	if (!split3(img, kind, name, version) || (l->want && strcmp(l->want, name)))
		return 0;
	memset(&info, 0, sizeof(info));
	rc = rbd_base_stat(t, name, version, 0, &info);
	if (rc == VP_ENOENT)  /* removed meanwhile */
		return 0;
	return rc < 0 ? rc : l->fn(l->ctx, &info);
}

static int rbd_base_list(void *tier, const char *name, vp_plugin_list_fn fn, void *ctx)
{
	struct list_ctx l = { name, fn, ctx };

	return each_image(tier, "base.", list_base, &l);
}

/* Fills a disk's info from its image name and, when it can be opened, the image; parent_id
 * (or NULL) gets the id of its parent image, "" when it has none. */
static int stat_disk_image(struct rbd_tier *t, const char *img, vp_image_info *out,
			   char parent_id[64])
{
	char kind[VP_PLUGIN_NAME_MAX];
	rbd_linked_image_spec_t parent;
	rbd_snap_spec_t psnap;
	rbd_image_t im;
	int rc;

	if (!split3(img, kind, out->pool, out->name))
		return host->error(VP_EINVAL, "'%s' is not a vdipool disk image", img);
	out->kind = strcmp(kind, "data") ? VP_DISK_DELTA : VP_DISK_DATA;
	location(out->location, t, t->pool, t->ns, img, NULL);
	out->backing[0] = '\0';
	if (parent_id)
		parent_id[0] = '\0';
	if ((rc = open_image(t, img, NULL, true, &im)) < 0)
		return rc;
	rc = stat_open(t, im, img, out);
	if (rc == 0 && rbd_get_parent(im, &parent, &psnap) == 0) {
		location(out->backing, t, parent.pool_name, parent.pool_namespace, parent.image_name,
			 psnap.name);
		if (parent_id)
			snprintf(parent_id, 64, "%s", parent.image_id);
		rbd_linked_image_spec_cleanup(&parent);
		rbd_snap_spec_cleanup(&psnap);
	} else if (rc == 0 && out->kind == VP_DISK_DELTA) {
		size_t len = sizeof(out->backing);
		/* flattened for depth: the base it was made from, as record_base kept it */
		if (rbd_metadata_get(im, BASE_KEY, out->backing, &len) < 0)
			out->backing[0] = '\0';
	}
	rbd_close(im);
	return rc;
}

static int rbd_delta_stat(void *tier, int kind, const char *pool, const char *clone,
			  vp_image_info *out)
{
	char img[IMG_MAX];
	int rc = disk_image(img, kind, pool, clone);

	return rc < 0 ? rc : stat_disk_image(tier, img, out, NULL);
}

static int list_disk(struct rbd_tier *t, const char *img, void *ctx)
{
	struct list_ctx *l = ctx;
	char kind[VP_PLUGIN_NAME_MAX], pool[VP_PLUGIN_NAME_MAX], clone[VP_PLUGIN_NAME_MAX];
	vp_image_info info;
	int rc;

	if (!split3(img, kind, pool, clone) || (l->want && strcmp(l->want, pool)))
		return 0;
	memset(&info, 0, sizeof(info));
	rc = stat_disk_image(t, img, &info, NULL);
	if (rc == VP_ENOENT)
		return 0;
	return rc < 0 ? rc : l->fn(l->ctx, &info);
}

static int rbd_delta_list(void *tier, const char *pool, vp_plugin_list_fn fn, void *ctx)
{
	struct list_ctx l = { pool, fn, ctx };
	int rc = each_image(tier, "delta.", list_disk, &l);

	return rc ? rc : each_image(tier, "data.", list_disk, &l);
}

/* Clones of the base's snapshot, in any pool of the cluster (trashed ones included:
 * they still need the base). */
static int rbd_base_children(void *tier, const char *name, const char *version,
			     vp_plugin_list_fn fn, void *ctx)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX], base_loc[VP_PLUGIN_LOCATION_MAX];
	rbd_linked_image_spec_t *kids = NULL;
	size_t n = 16;
	rbd_image_t im;
	int rc;

	if ((rc = base_image(img, name, version, "base", t)) < 0 ||
	    (rc = open_image(t, img, SNAP, true, &im)) < 0)
		return rc;
	for (;;) {
		free(kids);
		if (!(kids = calloc(n, sizeof(*kids)))) {
			rbd_close(im);
			return host->error(VP_ENOMEM, "out of memory");
		}
		rc = rbd_list_children3(im, kids, &n);
		if (rc != -ERANGE)
			break;
	}
	rbd_close(im);
	if (rc < 0) {
		free(kids);
		return ceph_error(rc, "cannot list the clones of '%s/%s@%s'", t->pool, img, SNAP);
	}
	location(base_loc, t, t->pool, t->ns, img, SNAP);
	rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		vp_image_info info;
		char kind[VP_PLUGIN_NAME_MAX];

		memset(&info, 0, sizeof(info));
		if (!split3(kids[i].image_name, kind, info.pool, info.name))
			snprintf(info.name, sizeof(info.name), "%.*s", VP_PLUGIN_NAME_MAX - 1,
				 kids[i].image_name);
		info.kind = VP_DISK_DELTA;
		snprintf(info.format, sizeof(info.format), "raw");
		location(info.location, t, kids[i].pool_name, kids[i].pool_namespace,
			 kids[i].image_name, NULL);
		snprintf(info.backing, sizeof(info.backing), "%s", base_loc);
		rc = fn(ctx, &info);
	}
	rbd_linked_image_spec_list_cleanup(kids, n);
	free(kids);
	return rc;
}

static int count_child(void *ctx, const vp_image_info *info)
{
	(void)info;
	++*(size_t *)ctx;
	return 0;
}

/* Refused while clones exist; the rename first takes the version out of listings, so a
 * crash halfway leaves a .remove.* image that sweep finishes, never a base without snapshot. */
static int rbd_base_remove(void *tier, const char *name, const char *version)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX], tmp[IMG_MAX];
	size_t kids = 0;
	int rc;

	if ((rc = base_image(img, name, version, "base", t)) < 0 ||
	    (rc = base_image(tmp, name, version, "remove", t)) < 0)
		return rc;
	close_reader(t);
	if ((rc = rbd_base_children(t, name, version, count_child, &kids)) < 0)
		return rc;
	if (kids)
		return host->error(VP_EBUSY, "base '%s@%s' has %zu clone%s on RBD: not removed", name,
				   version, kids, kids == 1 ? "" : "s");
	if ((rc = rbd_rename(t->io, img, tmp)) < 0)
		return ceph_error(rc, "cannot remove base '%s@%s' ('%s/%s')", name, version, t->pool, img);
	if ((rc = destroy_image(t, tmp)) < 0) {
		/* a clone appeared meanwhile: the base stays */
		if (rbd_rename(t->io, tmp, img) < 0)
			host->debug("rbd: '%s' left for sweep", tmp);
		return rc;
	}
	return 0;
}

/* ---- disks ------------------------------------------------------------------------------ */

static int copy_part(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -1;
	memcpy(dst, src, n + 1);
	return 0;
}

/* "rbd:pool/[ns/]image@snap[:opts]" of a base into its parts. */
static int parse_base_location(const char *loc, char *pool, char *ns, char *image, char *snap)
{
	char spec[1024], *at, *s1, *s2, *colon;

	if (strncmp(loc, "rbd:", 4) || strlen(loc + 4) >= sizeof(spec))
		return host->error(VP_EINVAL, "base '%s' is not on RBD: the rbd backend clones RBD "
				   "snapshots only", loc);
	snprintf(spec, sizeof(spec), "%s", loc + 4);
	if ((colon = strchr(spec, ':')))
		*colon = '\0';
	at = strchr(spec, '@');
	s1 = strchr(spec, '/');
	if (!at || !s1 || at < s1)
		return host->error(VP_EINVAL, "invalid RBD base location '%s'", loc);
	*at = '\0';
	*s1 = '\0';
	s2 = strchr(s1 + 1, '/');
	if (s2)
		*s2 = '\0';
	if (copy_part(pool, 128, spec) || copy_part(ns, 128, s2 ? s1 + 1 : "") ||
	    copy_part(image, IMG_MAX, s2 ? s2 + 1 : s1 + 1) || copy_part(snap, 128, at + 1))
		return host->error(VP_EINVAL, "invalid RBD base location '%s': a part is too long", loc);
	return 0;
}

static int clone_base(struct rbd_tier *t, const char *base_location, const char *img)
{
	char pool[128], ns[128], image[IMG_MAX], snap[128];
	rados_ioctx_t pio = NULL;
	rbd_image_options_t o;
	int rc;

	if ((rc = parse_base_location(base_location, pool, ns, image, snap)) < 0)
		return rc;
	if ((rc = rados_ioctx_create(t->cluster, pool, &pio)) < 0)
		return ceph_error(rc, "cannot open RADOS pool '%s' of base '%s'", pool, image);
	rados_ioctx_set_namespace(pio, ns);
	rbd_image_options_create(&o);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, DISK_FEATURES);
	rc = rbd_clone3(pio, image, snap, t->io, img, o);
	rbd_image_options_destroy(o);
	rados_ioctx_destroy(pio);
	if (rc < 0)
		return ceph_error(rc, "cannot clone '%s/%s@%s' to '%s/%s'", pool, image, snap, t->pool, img);
	return 0;
}

static int create_data(struct rbd_tier *t, const vp_delta_request *req, const char *img)
{
	rbd_image_options_t o;
	int rc;

	if (!req->size)
		return host->error(VP_EINVAL, "data disk '%s/%s' needs a size", req->pool, req->clone);
	rbd_image_options_create(&o);
	rbd_image_options_set_uint64(o, RBD_IMAGE_OPTION_FEATURES, DISK_FEATURES);
	rc = rbd_create4(t->io, img, req->size, o);
	rbd_image_options_destroy(o);
	if (rc < 0)
		return ceph_error(rc, "cannot create RBD image '%s/%s'", t->pool, img);
	return 0;
}

static int make_disk(struct rbd_tier *t, const vp_delta_request *req, const char *img)
{
	if (req->kind == VP_DISK_DATA)
		return create_data(t, req, img);
	return clone_base(t, req->base_location, img);
}

/* Takes a disk's name away before removing it: a removal killed half-way leaves a half-removed
 * image in the RBD directory under the name it had, and a disk of that name made later would
 * stand beside it (two directory entries, one name). Renamed first (one atomic directory op), a
 * cut removal leaves only ".gone.<img>.<owner>", which sweep removes. Absent disk: VP_ENOENT. */
static int remove_disk(struct rbd_tier *t, const char *img)
{
	char gone[IMG_MAX];
	int rc;

	if ((rc = fmt_name(gone, ".gone.%s.%s", img, t->owner)) < 0)
		return rc;
	if ((rc = rbd_rename(t->io, img, gone)) < 0)
		return ceph_error(rc, "cannot remove RBD image '%s/%s' (renaming it away)", t->pool, img);
	if ((rc = destroy_image(t, gone)) < 0)
		host->debug("rbd: '%s/%s' left for sweep", t->pool, gone);
	return 0;
}

/* The new disk `tmp` takes the place of `img`: the old one is renamed away, the new one renamed
 * in, then the old one removed. Cut between the renames, sweep renames the new one in. */
static int swap_in(struct rbd_tier *t, const char *tmp, const char *img)
{
	char gone[IMG_MAX];
	int rc;

	if ((rc = fmt_name(gone, ".gone.%s.%s", img, t->owner)) < 0)
		return rc;
	if ((rc = rbd_rename(t->io, img, gone)) < 0 && rc != -ENOENT) {
		ceph_error(rc, "cannot replace RBD image '%s/%s' (renaming it away)", t->pool, img);
		destroy_image(t, tmp);
		return code_of(rc);
	}
	if ((rc = rbd_rename(t->io, tmp, img)) < 0)
		return ceph_error(rc, "cannot rename '%s/%s' to '%s' (sweep finishes it)", t->pool, tmp,
				  img);
	if (destroy_image(t, gone) < 0)
		host->debug("rbd: '%s/%s' left for sweep", t->pool, gone);
	return 0;
}

/* Whether a clone of the base would stand on more than max_depth parents: the base's own
 * chain plus the base itself. The count of the last base is kept: the chain under a published
 * base's snapshot is fixed when it is cloned from (a snapshot is read-only; a flatten only
 * shortens it), so it holds as long as that base image does, which delta_create checks on each
 * new disk by its parent's image id (an apply makes its clones without one open per clone). */
static int too_deep(struct rbd_tier *t, const char *base_location, bool *deep)
{
	char pool[128], ns[128], image[IMG_MAX], snap[128];
	int rc = 0;

	*deep = false;
	pthread_mutex_lock(&t->mu);
	if (strcmp(t->chain_loc, base_location)) {
		t->chain_loc[0] = '\0';
		if ((rc = parse_base_location(base_location, pool, ns, image, snap)) == 0 &&
		    (rc = chain_depth(t, pool, ns, image, snap, t->max_depth, &t->chain_depth,
				      t->chain_id)) == 0)
			snprintf(t->chain_loc, sizeof(t->chain_loc), "%s", base_location);
	}
	if (rc == 0 && t->chain_depth + 1 > t->max_depth) {
		host->debug("rbd: a clone of '%s' would stand on %d parents or more (max_depth %d)",
			    base_location, t->chain_depth + 1, t->max_depth);
		*deep = true;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

/* The new delta `img` (made on a counted chain) stands on the image that was counted; else that
 * base was replaced since: count again, flatten it if too deep. */
static int check_counted(struct rbd_tier *t, const vp_delta_request *req, const char *img,
			 vp_image_info *out)
{
	char parent_id[64];
	bool deep, same;
	int rc;

	if ((rc = stat_disk_image(t, img, out, parent_id)) < 0 || req->kind != VP_DISK_DELTA)
		return rc;
	pthread_mutex_lock(&t->mu);
	same = !strcmp(parent_id, t->chain_id);
	if (!same)
		t->chain_loc[0] = '\0';
	pthread_mutex_unlock(&t->mu);
	if (same)
		return 0;
	host->debug("rbd: base '%s' was replaced since its chain was counted", req->base_location);
	if ((rc = too_deep(t, req->base_location, &deep)) < 0 || !deep)
		return rc;
	if ((rc = flatten_delta(t, img, req->base_location)) < 0)
		return rc;
	return stat_disk_image(t, img, out, NULL);
}

/* Flattens the new disk `tmp` when it stands too deep; on failure nothing of it stays. */
static int flatten_new(struct rbd_tier *t, const char *tmp, bool deep, const char *base_location)
{
	int rc;

	if (!deep || (rc = flatten_delta(t, tmp, base_location)) == 0)
		return 0;
	if (destroy_image(t, tmp) < 0)
		host->debug("rbd: '%s' left for sweep", tmp);
	return rc;
}

/* Gives the flattened new disk `tmp` its name, which must be free. */
static int publish_new(struct rbd_tier *t, const vp_delta_request *req, const char *tmp,
		       const char *img)
{
	int rc = rbd_rename(t->io, tmp, img);

	if (rc == 0)
		return 0;
	destroy_image(t, tmp);
	if (rc == -EEXIST)
		return host->error(VP_EEXIST, "disk '%s/%s' exists already", req->pool, req->clone);
	return ceph_error(rc, "cannot rename '%s/%s' to '%s'", t->pool, tmp, img);
}

/* A delta standing too deep is made under a temporary name and flattened there: sweep removes
 * that name (an overwrite's .rebase-* only replaces the disk after the flatten), so a crash
 * never leaves a too-deep disk under the disk's own name. */
static int rbd_delta_create(void *tier, const vp_delta_request *req, vp_image_info *out)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX], tmp[IMG_MAX];
	bool overwrite = req->flags & VP_DELTA_OVERWRITE, deep = false;
	int rc;

	if (req->flags & ~(unsigned)(VP_DELTA_PREALLOC_METADATA | VP_DELTA_OVERWRITE | VP_DELTA_EXTENDED_L2))
		return host->error(VP_ENOTSUP, "disk '%s/%s': the rbd backend does not know flags 0x%x%s",
				   req->pool, req->clone, req->flags,
				   req->flags & VP_DELTA_FULL ? " (full clones are not made on rbd yet)" : "");
	if ((rc = disk_image(img, req->kind, req->pool, req->clone)) < 0)
		return rc;
	if (req->kind == VP_DISK_DELTA) {
		if (!req->base_location)
			return host->error(VP_EINVAL, "delta '%s/%s' needs a base", req->pool, req->clone);
		if ((rc = too_deep(t, req->base_location, &deep)) < 0)
			return rc;
	}
	/* Made under a temporary name and renamed (one atomic directory op): a clone or create
	 * killed half-way leaves its wreck under ".new-*", which sweep removes, never a broken disk
	 * under the disk's own name. */
	if ((rc = fmt_name(tmp, ".%s-%s.%s.%s.%s", overwrite ? "rebase" : deep ? "flatten" : "new",
			   disk_prefix(req->kind), req->pool, req->clone, t->owner)) < 0 ||
	    /* a wreck of this process's own earlier attempt is in the way: remove it, once */
	    ((rc = make_disk(t, req, tmp)) == VP_EEXIST &&
	     ((rc = destroy_image(t, tmp)) < 0 || (rc = make_disk(t, req, tmp)) < 0)) || rc < 0 ||
	    (rc = flatten_new(t, tmp, deep, req->base_location)) < 0)
		return rc;
	if (!overwrite && !deep) {
		if ((rc = publish_new(t, req, tmp, img)) < 0)
			return rc;
		return check_counted(t, req, img, out);
	}
	rc = overwrite ? swap_in(t, tmp, img) : publish_new(t, req, tmp, img);
	return rc < 0 ? rc : stat_disk_image(t, img, out, NULL);
}

static int rbd_delta_remove(void *tier, int kind, const char *pool, const char *clone)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX];
	int rc;

	if ((rc = disk_image(img, kind, pool, clone)) < 0)
		return rc;
	if ((rc = remove_disk(t, img)) < 0)
		return host->error(rc, "cannot remove disk '%s/%s' ('%s/%s')%s", pool, clone, t->pool, img,
				   rc == VP_ENOENT ? ": there is none" : "");
	return 0;
}

static int rbd_delta_rebase(void *tier, const char *pool, const char *clone,
			    const char *base_location, const char *base_format)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX], tmp[IMG_MAX];
	bool deep;
	int rc;

	(void)base_format;
	if ((rc = disk_image(img, VP_DISK_DELTA, pool, clone)) < 0 ||
	    (rc = fmt_name(tmp, ".rebase-delta.%s.%s.%s", pool, clone, t->owner)) < 0)
		return rc;
	if ((rc = image_exists(t, img)) <= 0)
		return rc < 0 ? rc : host->error(VP_ENOENT, "no delta '%s/%s'", pool, clone);
	if ((rc = too_deep(t, base_location, &deep)) < 0 || (rc = destroy_image(t, tmp)) < 0 ||
	    (rc = clone_base(t, base_location, tmp)) < 0 ||
	    (rc = flatten_new(t, tmp, deep, base_location)) < 0)
		return rc;
	return swap_in(t, tmp, img);
}

static int rbd_delta_flatten(void *tier, const char *pool, const char *clone)
{
	struct rbd_tier *t = tier;
	char img[IMG_MAX], parent_id[64];
	vp_image_info info;
	int rc;

	if ((rc = disk_image(img, VP_DISK_DELTA, pool, clone)) < 0)
		return rc;
	memset(&info, 0, sizeof(info));
	if ((rc = stat_disk_image(t, img, &info, parent_id)) < 0)
		return rc;
	/* flat already (no parent): nothing to do */
	return parent_id[0] ? flatten_delta(t, img, info.backing) : 0;
}

/* ---- sweep ---------------------------------------------------------------------------- */

/* For ".<kind>.<a>.<b...>.<host>-<pid>": true when host is ours and the pid is dead. */
static bool owner_dead(const struct rbd_tier *t, const char *img)
{
	const char *dot = strrchr(img, '.'), *dash = dot ? strrchr(dot, '-') : NULL;
	const char *mine = strrchr(t->owner, '-');
	char *end;
	long pid;

	if (!dash || (size_t)(dash - dot - 1) != (size_t)(mine - t->owner) ||
	    strncmp(dot + 1, t->owner, (size_t)(mine - t->owner)))
		return false;
	pid = strtol(dash + 1, &end, 10);
	if (end == dash + 1 || *end || pid <= 0)
		return false;
	return pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static int sweep_one(struct rbd_tier *t, const char *img, void *ctx)
{
	char kind[VP_PLUGIN_NAME_MAX], pool[VP_PLUGIN_NAME_MAX], clone[VP_PLUGIN_NAME_MAX];
	char target[IMG_MAX];
	int rc;

	(void)ctx;
	if (!owner_dead(t, img))
		return 0;
	host->debug("rbd: sweeping '%s/%s'", t->pool, img);
	/* a rebase that died between removing the old disk and renaming the new one: finish it */
	if (!strncmp(img, ".rebase-", 8) && split3(img + 8, kind, pool, clone)) {
		char *dot = strchr(clone, '.');
		if (dot)
			*dot = '\0';
		if ((!strcmp(kind, "delta") || !strcmp(kind, "data")) &&
		    fmt_name(target, "%s.%s.%s", kind, pool, clone) == 0 && image_exists(t, target) == 0 &&
		    rbd_rename(t->io, img, target) == 0)
			return 0;
	}
	/* A process killed with an image open leaves its watch on the image until the OSD
	 * times it out (osd_client_watch_timeout, 30 s): librbd refuses the removal (EBUSY)
	 * until then. Not an error: the temporary goes at a later sweep. */
	if ((rc = destroy_image(t, img)) == VP_EBUSY) {
		host->debug("rbd: '%s/%s' is still watched (its dead owner's watch has not timed "
			    "out yet) or has clones: left for a later sweep", t->pool, img);
		return 0;
	}
	return rc;
}

static int rbd_sweep(void *tier)
{
	return each_image(tier, ".", sweep_one, NULL);
}

static vp_plugin_ops rbd_ops = {
	.name = "rbd",
	.version = "0.1",
	.description = "bases as protected RBD snapshots and deltas as RBD clones in a Ceph pool",
	.capabilities = VP_CAP_LINKED_CLONE | VP_CAP_REBASE | VP_CAP_FLATTEN | VP_CAP_SHARED,
	.thread_model = VP_THREAD_MODEL_PARALLEL, /* see struct rbd_tier's mu */
	.load = rbd_load,
	.open = rbd_open_tier,
	.close = rbd_close_tier,
	.base_stage = rbd_base_stage,
	.base_commit = rbd_base_commit,
	.base_abort = rbd_base_abort,
	.base_read = rbd_base_read,
	.base_stat = rbd_base_stat,
	.base_manifest = rbd_base_manifest,
	.base_remove = rbd_base_remove,
	.base_list = rbd_base_list,
	.delta_create = rbd_delta_create,
	.delta_stat = rbd_delta_stat,
	.delta_remove = rbd_delta_remove,
	.delta_list = rbd_delta_list,
	.delta_rebase = rbd_delta_rebase,
	.delta_flatten = rbd_delta_flatten,
	.base_children = rbd_base_children,
	.sweep = rbd_sweep,
};

VP_REGISTER_PLUGIN(rbd_ops);
