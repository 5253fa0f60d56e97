/* store_derive.c: deriving a new base version from an old one: maintenance delta, seal, abort. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "util/fs.h"
#include "util/run.h"
#include "vdipool/qcow2.h"

#define STATE_MAX 4096
#define DERIVE_PREFIX ".derive-"

static const char *const qemu_env[] = { "LC_ALL=C", NULL };

/* ---- where a derivation lives ------------------------------------------------------ */

/* The plugin ABI has no derivation ops yet: the maintenance delta is a file
 * that QEMU boots, so it needs a tier with paths. */
static int need_dir_tier(vp_store *s)
{
	if (strcmp(s->base.ops->name, "dir") || s->base.path[0] != '/')
		return vp_error_set(VP_ERR_STORE, VP_ENOTSUP,
				    "base tier '%s' (%s): derivation needs a dir tier", s->base.name,
				    s->base.ops->name);
	return 0;
}

static int derive_path(char *buf, vp_store *s, const char *name, const char *version,
		       const char *file)
{
	int n = snprintf(buf, PATH_MAX, "%s/bases/%s/" DERIVE_PREFIX "%s%s%s", s->base.path, name,
			 version, file ? "/" : "", file ? file : "");

	if (n < 0 || n >= PATH_MAX)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "path too long for '%s@%s'", name, version);
	return 0;
}

/* "name@V2" with an explicit, valid version (no "latest": it names nothing yet). */
static int parse_target(const char *ref, char *name, char *version)
{
	int rc = store_parse_ref(ref, name, version);

	if (rc == 0 && !strcmp(version, "latest"))
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				  "'%s': name the version being derived (NAME@VERSION)", ref);
	return rc;
}

/* ---- the state file ----------------------------------------------------------------- */

static int write_state(const char *path, const vp_derive_info *d)
{
	VP_AUTOFREE char *text = vp_strdup_printf("vdipool-derive=1\nname=%s\nversion=%s\nparent=%s\n"
						  "parent_sha256=%s\nstarted=%s\n", d->name,
						  d->version, d->parent, d->parent_sha256, d->started);

	if (!text)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return vp_fs_write_atomic(path, text, strlen(text), 0644);
}

static void copy_field(char *dst, size_t len, const char *v)
{
	snprintf(dst, len, "%s", v);
}

static int parse_state(vp_derive_info *d, char *text, const char *what)
{
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (!strcmp(line, "name"))
			copy_field(d->name, sizeof(d->name), eq + 1);
		else if (!strcmp(line, "version"))
			copy_field(d->version, sizeof(d->version), eq + 1);
		else if (!strcmp(line, "parent"))
			copy_field(d->parent, sizeof(d->parent), eq + 1);
		else if (!strcmp(line, "parent_sha256"))
			copy_field(d->parent_sha256, sizeof(d->parent_sha256), eq + 1);
		else if (!strcmp(line, "started"))
			copy_field(d->started, sizeof(d->started), eq + 1);
	}
	if (!d->name[0] || !d->version[0] || !vp_store_version_valid(d->parent))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "%s: malformed (no name, version or parent)",
				    what);
	return 0;
}

static int load(vp_store *s, const char *name, const char *version, vp_derive_info *d)
{
	char dir[PATH_MAX], state[PATH_MAX];
	VP_AUTOFREE char *text = NULL;
	int rc;

	memset(d, 0, sizeof(*d));
	if ((rc = derive_path(dir, s, name, version, NULL)) < 0 ||
	    (rc = derive_path(state, s, name, version, "state")) < 0)
		return rc;
	if (!vp_fs_exists(dir))
		return vp_error_set(VP_ERR_STORE, VP_ENOENT,
				    "no derivation of '%s@%s' in progress (start one with "
				    "'vdipool base derive %s@VERSION --version %s')", name, version, name,
				    version);
	if (!vp_fs_exists(state))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "the derivation of '%s@%s' is incomplete "
				    "(%s has no state file): abort it", name, version, dir);
	if ((rc = vp_fs_read_all(state, STATE_MAX, &text, NULL)) < 0 ||
	    (rc = parse_state(d, text, state)) < 0)
		return rc;
	if (strcmp(d->name, name) || strcmp(d->version, version))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "%s names '%s@%s': was it moved?", state,
				    d->name, d->version);
	return derive_path(d->location, s, name, version, "disk.qcow2");
}

/* Serialises seal and abort on one derivation (and a derive racing them). */
static int lock_dir(const char *dir, const char *name, const char *version)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return vp_error_set_os(errno, "cannot open '%s'", dir);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return vp_error_set(VP_ERR_STORE, VP_EBUSY, "another vdipool is working on the "
					    "derivation of '%s@%s'", name, version);
		return vp_error_set_os(e, "cannot lock '%s'", dir);
	}
	return fd;
}

/* ---- derive ------------------------------------------------------------------------- */

static int check_new_version(vp_store *s, const char *name, const char *version)
{
	vp_base_info b;
	char dir[PATH_MAX];
	int rc;

	if (!vp_store_version_valid(version))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
				    "invalid version '%s': use 1 to 64 of [A-Za-z0-9._+-], not starting "
				    "with '.', no '..', not 'latest'", version);
	rc = store_load(s, name, version, &b, NULL);
	if (rc == 0)
		return vp_error_set(VP_ERR_STORE, VP_EEXIST, "version %s of '%s' exists already "
				    "(imported %s): choose a new version", version, name, b.imported);
	if (rc != VP_ENOENT)
		return rc;
	vp_error_clear();
	if ((rc = derive_path(dir, s, name, version, NULL)) < 0)
		return rc;
	if (vp_fs_exists(dir))
		return vp_error_set(VP_ERR_STORE, VP_EEXIST, "'%s@%s' is being derived already (%s): "
				    "seal or abort it first", name, version, dir);
	return 0;
}

static int create_delta(const vp_base_info *parent, const vp_derive_info *d)
{
	vp_qcow2_create_opts o;

	vp_qcow2_create_opts_init(&o);
	o.backing_file = parent->location;
	o.backing_format = parent->format;
	o.mode = 0600; /* guest data, like a clone's delta */
	if (vp_qcow2_create(d->location, &o) < 0)
		return vp_error_last()->code;
	/* The umask can only have taken bits away: make it exactly 0600. */
	if (chmod(d->location, 0600) < 0)
		return vp_error_set_os(errno, "cannot set the mode of '%s'", d->location);
	return 0;
}

static int derive_unlocked(vp_store *s, const char *ref, const char *version, vp_derive_info *out)
{
	char name[VP_PLUGIN_NAME_MAX] = "", from[VP_PLUGIN_NAME_MAX] = "";
	char dir[PATH_MAX], state[PATH_MAX];
	vp_base_info parent;
	vp_derive_info d;
	int rc;

	memset(&d, 0, sizeof(d));
	if ((rc = need_dir_tier(s)) < 0 || (rc = store_resolve(s, ref, name, from)) < 0 ||
	    (rc = store_load(s, name, from, &parent, NULL)) < 0 ||
	    (rc = check_new_version(s, name, version)) < 0 ||
	    (rc = derive_path(dir, s, name, version, NULL)) < 0 ||
	    (rc = derive_path(state, s, name, version, "state")) < 0 ||
	    (rc = derive_path(d.location, s, name, version, "disk.qcow2")) < 0)
		goto out;
	/* mkdir is the claim: of two derives of one version, one wins. */
	if (mkdir(dir, 0755) < 0) {
		rc = errno == EEXIST
			     ? vp_error_set(VP_ERR_STORE, VP_EEXIST, "'%s@%s' is being derived already",
					    name, version)
			     : vp_error_set_os(errno, "cannot create '%s'", dir);
		goto out;
	}
	snprintf(d.name, sizeof(d.name), "%s", name);
	snprintf(d.version, sizeof(d.version), "%s", version);
	snprintf(d.parent, sizeof(d.parent), "%s", from);
	snprintf(d.parent_sha256, sizeof(d.parent_sha256), "%s", parent.sha256);
	vp_now_iso8601(d.started, sizeof(d.started));
	/* The state file last: without it the directory is not a derivation. */
	if ((rc = create_delta(&parent, &d)) < 0 || (rc = write_state(state, &d)) < 0 ||
	    (rc = vp_fs_fsync_parent(dir)) < 0) {
		VP_AUTOFREE char *msg = vp_strdup(vp_error_last()->message);
		vp_fs_rm_rf(dir);
		vp_error_set(VP_ERR_STORE, rc, "%s", msg ? msg : "cannot create the maintenance delta");
		goto out;
	}
	if (out)
		*out = d;
out:
	if (rc < 0 && from[0])
		vp_error_prefix("cannot derive '%s@%s' from '%s@%s'", name, version, name, from);
	else if (rc < 0)
		vp_error_prefix("cannot derive '%s' from '%s'", version, ref);
	return rc;
}

/* ---- stat, list, abort ------------------------------------------------------------------ */

int vp_store_derive_stat(vp_store *s, const char *ref, vp_derive_info *out)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX];
	int rc;

	if ((rc = need_dir_tier(s)) < 0 || (rc = parse_target(ref, name, version)) < 0)
		return rc;
	return load(s, name, version, out);
}

static int list_name(vp_store *s, const char *name, vp_derive_info **out, size_t *n)
{
	char dir[PATH_MAX];
	struct dirent **ents = NULL;
	int count, rc = 0;

	if (snprintf(dir, sizeof(dir), "%s/bases/%s", s->base.path, name) >= (int)sizeof(dir))
		return 0;
	if ((count = scandir(dir, &ents, NULL, alphasort)) < 0)
		return 0; /* no such name: nothing in progress */
	for (int i = 0; i < count; i++) {
		const char *v = ents[i]->d_name + strlen(DERIVE_PREFIX);
		vp_derive_info d, *grown;
		if (rc == 0 && !strncmp(ents[i]->d_name, DERIVE_PREFIX, strlen(DERIVE_PREFIX)) &&
		    vp_store_version_valid(v)) {
			if (load(s, name, v, &d) < 0) {
				/* Incomplete or damaged: list it anyway, so it can be aborted. */
				memset(&d, 0, sizeof(d));
				snprintf(d.name, sizeof(d.name), "%s", name);
				snprintf(d.version, sizeof(d.version), "%s", v);
				vp_error_clear();
			}
			if (!(grown = realloc(*out, (*n + 1) * sizeof(**out))))
				rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			else
				(*out = grown)[(*n)++] = d;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int vp_store_derive_list(vp_store *s, const char *name, vp_derive_info **out, size_t *n)
{
	char bases[PATH_MAX];
	struct dirent **ents = NULL;
	int count, rc = 0;

	*out = NULL;
	*n = 0;
	if (strcmp(s->base.ops->name, "dir") || s->base.path[0] != '/')
		return 0; /* other backends cannot derive: nothing in progress */
	if (name)
		rc = list_name(s, name, out, n);
	else if (snprintf(bases, sizeof(bases), "%s/bases", s->base.path) < (int)sizeof(bases) &&
		 (count = scandir(bases, &ents, NULL, alphasort)) >= 0) {
		for (int i = 0; i < count; i++) {
			if (rc == 0 && ents[i]->d_name[0] != '.')
				rc = list_name(s, ents[i]->d_name, out, n);
			free(ents[i]);
		}
		free(ents);
	}
	if (rc < 0) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int abort_unlocked(vp_store *s, const char *ref)
{
	char name[VP_PLUGIN_NAME_MAX], version[VP_PLUGIN_NAME_MAX], dir[PATH_MAX];
	int rc, fd;

	if ((rc = need_dir_tier(s)) < 0 || (rc = parse_target(ref, name, version)) < 0 ||
	    (rc = derive_path(dir, s, name, version, NULL)) < 0)
		return rc;
	if (!vp_fs_exists(dir))
		return vp_error_set(VP_ERR_STORE, VP_ENOENT, "no derivation of '%s@%s' in progress",
				    name, version);
	if ((fd = lock_dir(dir, name, version)) < 0)
		return fd;
	rc = vp_fs_rm_rf(dir);
	if (rc == 0)
		vp_fs_fsync_parent(dir);
	close(fd);
	if (rc < 0)
		vp_error_prefix("cannot abort the derivation of '%s@%s'", name, version);
	return rc;
}

/* ---- seal --------------------------------------------------------------------------------- */

/* QEMU locks the images a running VM has open for writing; qemu-img then
 * fails with "Failed to get shared \"write\" lock". That is our "VM running". */
static int flatten(const vp_derive_info *d, const char *target)
{
	const char *argv[] = { "qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", d->location,
			       target, NULL };
	vp_run_opts opts = { .env = qemu_env };
	vp_run_result res;
	int rc = vp_run(argv, &opts, &res);

	if (rc == 0 && (res.signal || res.exit_code)) {
		if (strstr(vp_buf_cstr(&res.err), "lock"))
			rc = vp_error_set(VP_ERR_STORE, VP_EBUSY,
					  "the maintenance delta %s is in use (is its VM still running? "
					  "shut it down first)", d->location);
		else
			rc = vp_run_ok(argv, &opts, NULL); /* records qemu-img's own text */
		if (rc == 0)
			rc = vp_error_set(VP_ERR_COMMAND, VP_EIO, "qemu-img convert of %s failed",
					  d->location);
	}
	vp_run_result_release(&res);
	return rc;
}

/* The delta must still back onto its parent: anything else is not what was derived. */
static int check_delta(const vp_derive_info *d, const vp_base_info *parent)
{
	vp_qcow2_info qi;
	int rc = vp_qcow2_read_info(&qi, d->location);

	if (rc < 0)
		return rc;
	if (!qi.has_backing || strcmp(qi.backing_file, parent->location))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "the maintenance delta %s backs onto '%s', "
				    "not onto %s@%s (%s)", d->location, qi.backing_file, parent->name,
				    parent->version, parent->location);
	if (strcmp(parent->sha256, d->parent_sha256))
		return vp_error_set(VP_ERR_STORE, VP_ECONFLICT, "%s@%s changed since the derivation "
				    "started (sha256 %.12s, was %.12s)", parent->name, parent->version,
				    parent->sha256, d->parent_sha256);
	return 0;
}

static int make_tmpdir(char *buf, const vp_store_seal_opts *o, const vp_derive_info *d)
{
	const char *base = o->tmpdir; /* the CLI passes --tmpdir or $TMPDIR: the library reads no environment */

	if (!base || !*base)
		base = "/var/tmp";
	if (snprintf(buf, PATH_MAX, "%s/vdipool-seal-%s-%s-XXXXXX", base, d->name, d->version) >=
	    PATH_MAX)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "temporary directory name too long");
	if (!mkdtemp(buf))
		return vp_error_set_os(errno, "cannot create a temporary directory in '%s'", base);
	return 0;
}

static int publish(vp_store *s, const vp_derive_info *d, const vp_base_info *parent,
		   const vp_store_seal_opts *o, vp_base_info *out)
{
	char tmp[PATH_MAX], flat[PATH_MAX + 16];
	vp_store_import_opts io = { .format = o->format ? o->format : parent->format,
				    .parent = d->parent, .progress = o->progress,
				    .progress_ctx = o->progress_ctx };
	int rc;

	if ((rc = make_tmpdir(tmp, o, d)) < 0)
		return rc;
	snprintf(flat, sizeof(flat), "%s/disk.qcow2", tmp);
	rc = flatten(d, flat);
	if (rc == 0) {
		rc = vp_store_import(s, d->name, d->version, flat, &io, out);
		if (rc == 1) /* published meanwhile with this very content */
			rc = 0;
	}
	if (rc < 0) {
		VP_AUTOFREE char *msg = vp_strdup(vp_error_last()->message);
		vp_error_class klass = vp_error_last()->klass;
		vp_fs_rm_rf(tmp);
		vp_error_set(klass, rc, "%s", msg ? msg : "seal failed");
		return rc;
	}
	vp_fs_rm_rf(tmp);
	return 0;
}

static int seal_unlocked(vp_store *s, const char *ref, const vp_store_seal_opts *opts, vp_base_info *out)
{
	static const vp_store_seal_opts none;
	const vp_store_seal_opts *o = opts ? opts : &none;
	char name[VP_PLUGIN_NAME_MAX] = "", version[VP_PLUGIN_NAME_MAX] = "", dir[PATH_MAX];
	vp_derive_info d;
	vp_base_info parent;
	int rc, fd = -1;

	if ((rc = need_dir_tier(s)) < 0 || (rc = parse_target(ref, name, version)) < 0 ||
	    (rc = derive_path(dir, s, name, version, NULL)) < 0 ||
	    (rc = load(s, name, version, &d)) < 0 || (rc = fd = lock_dir(dir, name, version)) < 0)
		goto out;
	if ((rc = store_load(s, name, d.parent, &parent, NULL)) < 0 ||
	    (rc = check_delta(&d, &parent)) < 0 || (rc = publish(s, &d, &parent, o, out)) < 0)
		goto out;
	/* Published: the maintenance delta has done its job. A failure to remove
	 * it is reported, but V2 stands; abort cleans up. */
	if ((rc = vp_fs_rm_rf(dir)) == 0)
		vp_fs_fsync_parent(dir);
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		vp_error_prefix("cannot seal '%s'", ref);
	return rc;
}

int vp_store_derive(vp_store *s, const char *ref, const char *version, vp_derive_info *out)
{
	bool took;
	int rc = store_excl_begin(s, "derive", &took);

	if (rc == 0)
		rc = derive_unlocked(s, ref, version, out);
	store_excl_end(s, took);
	return rc;
}

int vp_store_derive_abort(vp_store *s, const char *ref)
{
	bool took;
	int rc = store_excl_begin(s, "abandon a derivation", &took);

	if (rc == 0)
		rc = abort_unlocked(s, ref);
	store_excl_end(s, took);
	return rc;
}

int vp_store_seal(vp_store *s, const char *ref, const vp_store_seal_opts *opts, vp_base_info *out)
{
	bool took;
	int rc = store_excl_begin(s, "seal", &took);

	if (rc == 0)
		rc = seal_unlocked(s, ref, opts, out);
	store_excl_end(s, took);
	return rc;
}
