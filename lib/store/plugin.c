/* plugin.c: loads storage plugins (dlopen), checks and normalises their ops table, keeps a registry. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/plugin.h"
#include "util/run.h"
#include "util/util.h"

struct vp_plugin {
	char *file;         /* path, or "(built-in)" */
	char *name;
	char *error;        /* why it was refused; NULL when loaded */
	void *dl;           /* dlopen handle; NULL for built-ins */
	vp_plugin_ops ops;  /* full size, zero-filled tail, defaults filled in; for a
			     * serialised plugin, wrappers that lock per handle */
	vp_plugin_ops real; /* the plugin's own (normalised) table */
	int loaded;         /* .load was called (so .unload is due) */
	int slot;           /* serialised: index + 1 of its open trampoline; 0 none */
};

/* The built-in backends: dir (lib/store/store_builtin_dir.c) and ssh
 * (lib/store/store_builtin_ssh.c). */
const vp_plugin_ops *vp_builtin_dir_init(void);
const vp_plugin_ops *vp_builtin_ssh_init(void);

static const struct {
	const char *name;
	const vp_plugin_ops *(*init)(void);
} builtins[] = {
	{ "dir", vp_builtin_dir_init },
	{ "ssh", vp_builtin_ssh_init },
};

/* ---- the host table ------------------------------------------------------- */

static int host_error(int code, const char *fmt, ...) VP_PRINTF(2, 3);
static void host_debug(const char *fmt, ...) VP_PRINTF(1, 2);

static int host_error(int code, const char *fmt, ...)
{
	VP_AUTOFREE char *msg = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (code >= 0)
		code = VP_EGENERIC;
	return vp_error_set(VP_ERR_PLUGIN, code, "%s", msg ? msg : "plugin error (out of memory)");
}

/* A plugin's debug line goes to the library's debug handler (vp_set_debug_handler). */
static void host_debug(const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	vp_debug("%s", line);
}

static int host_run(const char *const *argv)
{
	static const char *const env[] = { "LC_ALL=C", NULL };
	vp_run_opts opts = { .env = env };

	return vp_run_ok(argv, &opts, NULL);
}

static int host_run_keep_fd(const char *const *argv, int fd)
{
	static const char *const env[] = { "LC_ALL=C", NULL };
	vp_run_opts opts = { .env = env, .keep_fd = fd };

	return vp_run_ok(argv, &opts, NULL);
}

static const vp_plugin_host host_table = {
	._struct_size = sizeof(vp_plugin_host),
	._api_version = VP_PLUGIN_API_VERSION,
	.error = host_error,
	.debug = host_debug,
	.run = host_run,
	.run_keep_fd = host_run_keep_fd,
};

const vp_plugin_host *vp_plugin_host_table(void) { return &host_table; }

/* ---- defaults for optional callbacks -------------------------------------- */

static void default_close(void *tier) { (void)tier; }

static int default_rebase(void *tier, const char *pool, const char *clone,
			  const char *base_location, const char *base_format)
{
	return vp_error_set(VP_ERR_PLUGIN, VP_ENOTSUP,
			    "cannot rebase '%s/%s': the storage backend does not support rebase",
			    pool, clone);
}

static int default_flatten(void *tier, const char *pool, const char *clone)
{
	return vp_error_set(VP_ERR_PLUGIN, VP_ENOTSUP,
			    "cannot flatten '%s/%s': the storage backend does not support flatten",
			    pool, clone);
}

/* ---- checking an ops table ------------------------------------------------- */

#define MANDATORY(field) { #field, offsetof(vp_plugin_ops, field) }

static const struct {
	const char *name;
	size_t off;
} mandatory[] = {
	MANDATORY(open),          MANDATORY(base_stage),    MANDATORY(base_commit),
	MANDATORY(base_abort),    MANDATORY(base_read),     MANDATORY(base_stat),
	MANDATORY(base_manifest), MANDATORY(base_remove),   MANDATORY(base_list),
	MANDATORY(delta_create),  MANDATORY(delta_stat),    MANDATORY(delta_remove),
	MANDATORY(delta_list),
};

static bool plugin_name_valid(const char *s)
{
	if (!s || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		if (i >= 63 || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static int serialise(vp_plugin *p);

/* Copies min(sizes) of the plugin's table, checks it, fills defaults. */
static int adopt_ops(vp_plugin *p, const vp_plugin_ops *src)
{
	uint64_t size;

	if (!src)
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "plugin '%s': %s returned NULL",
				    p->file, VP_PLUGIN_INIT_NAME);
	if (src->_api_version > VP_PLUGIN_API_VERSION)
		return vp_error_set(VP_ERR_PLUGIN, VP_ENOTSUP,
				    "plugin '%s' needs storage plugin API version %d, this vdipool "
				    "supports up to version %d: upgrade vdipool or rebuild the plugin",
				    p->file, src->_api_version, VP_PLUGIN_API_VERSION);
	if (src->_api_version < 1)
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "plugin '%s': invalid API version %d",
				    p->file, src->_api_version);
	/* Smaller than the two stamped fields plus name: not a vdipool plugin. */
	if (src->_struct_size < offsetof(vp_plugin_ops, version) || src->_struct_size > (1u << 20))
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "plugin '%s': invalid struct size %llu",
				    p->file, (unsigned long long)src->_struct_size);
	size = src->_struct_size < sizeof(p->ops) ? src->_struct_size : sizeof(p->ops);
	memset(&p->ops, 0, sizeof(p->ops));
	memcpy(&p->ops, src, (size_t)size);

	if (!plugin_name_valid(p->ops.name))
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "plugin '%s': missing or invalid name",
				    p->file);
	for (size_t i = 0; i < VP_ARRAY_SIZE(mandatory); i++) {
		void *fn;
		memcpy(&fn, (const char *)&p->ops + mandatory[i].off, sizeof(fn));
		if (!fn)
			return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL,
					    "plugin '%s' (%s) lacks the mandatory callback '%s'",
					    p->file, p->ops.name, mandatory[i].name);
	}
	if (!p->ops.close)
		p->ops.close = default_close;
	if (!p->ops.delta_rebase)
		p->ops.delta_rebase = default_rebase;
	if (!p->ops.delta_flatten)
		p->ops.delta_flatten = default_flatten;
	if (!p->ops.version)
		p->ops.version = "";
	if (!p->ops.description)
		p->ops.description = "";
	p->real = p->ops;
	if (p->ops.thread_model != VP_THREAD_MODEL_PARALLEL)
		return serialise(p);
	return 0;
}

/* ---- the thread model ----------------------------------------------------------
 * A plugin that does not declare VP_THREAD_MODEL_PARALLEL (every plugin built
 * before API version 2) gets one call at a time per tier handle: its handle
 * is wrapped with a mutex, transparently to the host's callers. The mutex is
 * recursive because the host may call the same handle from inside a list
 * callback on the same thread. */

struct ser {
	const vp_plugin_ops *real;
	void *h;
	pthread_mutex_t m;
};

#define SER_CALL(tier, call)                               \
	do {                                               \
		struct ser *w_ = (tier);                   \
		int rc_;                                   \
		pthread_mutex_lock(&w_->m);                \
		rc_ = w_->real->call;                      \
		pthread_mutex_unlock(&w_->m);              \
		return rc_;                                \
	} while (0)
#define H (((struct ser *)tier)->h)

static int ser_open_with(const vp_plugin_ops *real, const vp_tier_config *cfg, void **tier)
{
	struct ser *w = calloc(1, sizeof(*w));
	pthread_mutexattr_t a;
	int rc;

	*tier = NULL;
	if (!w)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if ((rc = real->open(cfg, &w->h)) < 0) {
		free(w);
		return rc;
	}
	w->real = real;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&w->m, &a);
	pthread_mutexattr_destroy(&a);
	*tier = w;
	return 0;
}

static void ser_close(void *tier)
{
	struct ser *w = tier;

	if (!w)
		return;
	w->real->close(w->h);
	pthread_mutex_destroy(&w->m);
	free(w);
}

static int ser_stage(void *tier, const char *n, const char *v, const char *f, vp_image_info *i) { SER_CALL(tier, base_stage(H, n, v, f, i)); }
static int ser_commit(void *tier, const char *n, const char *v, const char *m) { SER_CALL(tier, base_commit(H, n, v, m)); }
static int ser_abort(void *tier, const char *n, const char *v) { SER_CALL(tier, base_abort(H, n, v)); }
static int ser_read(void *tier, const char *n, const char *v, int st, void *b, size_t l, uint64_t o, size_t *g) { SER_CALL(tier, base_read(H, n, v, st, b, l, o, g)); }
static int ser_bstat(void *tier, const char *n, const char *v, int st, vp_image_info *i) { SER_CALL(tier, base_stat(H, n, v, st, i)); }
static int ser_manifest(void *tier, const char *n, const char *v, char **t) { SER_CALL(tier, base_manifest(H, n, v, t)); }
static int ser_bremove(void *tier, const char *n, const char *v) { SER_CALL(tier, base_remove(H, n, v)); }
static int ser_blist(void *tier, const char *n, vp_plugin_list_fn fn, void *c) { SER_CALL(tier, base_list(H, n, fn, c)); }
static int ser_dcreate(void *tier, const vp_delta_request *r, vp_image_info *i) { SER_CALL(tier, delta_create(H, r, i)); }
static int ser_dstat(void *tier, int k, const char *p, const char *c, vp_image_info *i) { SER_CALL(tier, delta_stat(H, k, p, c, i)); }
static int ser_dremove(void *tier, int k, const char *p, const char *c) { SER_CALL(tier, delta_remove(H, k, p, c)); }
static int ser_dlist(void *tier, const char *p, vp_plugin_list_fn fn, void *c) { SER_CALL(tier, delta_list(H, p, fn, c)); }
static int ser_rebase(void *tier, const char *p, const char *c, const char *l, const char *f) { SER_CALL(tier, delta_rebase(H, p, c, l, f)); }
static int ser_flatten(void *tier, const char *p, const char *c) { SER_CALL(tier, delta_flatten(H, p, c)); }
static int ser_children(void *tier, const char *n, const char *v, vp_plugin_list_fn fn, void *c) { SER_CALL(tier, base_children(H, n, v, fn, c)); }
static int ser_sweep(void *tier) { SER_CALL(tier, sweep(H)); }
static int ser_hash(void *tier, const char *n, const char *v, char hex[65]) { SER_CALL(tier, base_hash(H, n, v, hex)); }

#undef H
#undef SER_CALL

/* open must know which plugin's table it wraps, and C has no closures: a
 * fixed set of trampolines, one slot per loaded serialised plugin. */
#define NSLOTS 32
static const vp_plugin_ops *slots[NSLOTS];
static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

#define SLOT(i) \
	static int ser_open_##i(const vp_tier_config *c, void **t) { return ser_open_with(slots[i], c, t); }
SLOT(0)
SLOT(1)
SLOT(2)
SLOT(3)
SLOT(4)
SLOT(5)
SLOT(6)
SLOT(7)
SLOT(8)
SLOT(9)
SLOT(10)
SLOT(11)
SLOT(12)
SLOT(13)
SLOT(14)
SLOT(15)
SLOT(16)
SLOT(17)
SLOT(18)
SLOT(19)
SLOT(20)
SLOT(21)
SLOT(22)
SLOT(23)
SLOT(24)
SLOT(25)
SLOT(26)
SLOT(27)
SLOT(28)
SLOT(29)
SLOT(30)
SLOT(31)
#undef SLOT
static int (*const slot_open[NSLOTS])(const vp_tier_config *, void **) = { ser_open_0, ser_open_1, ser_open_2, ser_open_3, ser_open_4, ser_open_5, ser_open_6, ser_open_7, ser_open_8, ser_open_9, ser_open_10, ser_open_11, ser_open_12, ser_open_13, ser_open_14, ser_open_15, ser_open_16, ser_open_17, ser_open_18, ser_open_19, ser_open_20, ser_open_21, ser_open_22, ser_open_23, ser_open_24, ser_open_25, ser_open_26, ser_open_27, ser_open_28, ser_open_29, ser_open_30, ser_open_31 };

static int serialise(vp_plugin *p)
{
	const vp_plugin_ops *r = &p->real;
	size_t i;

	pthread_mutex_lock(&slot_lock);
	for (i = 0; i < NSLOTS && slots[i]; i++)
		;
	if (i < NSLOTS)
		slots[i] = r;
	pthread_mutex_unlock(&slot_lock);
	if (i == NSLOTS)
		return vp_error_set(VP_ERR_PLUGIN, VP_ENOTSUP, "plugin '%s': more than %d serialised "
				    "plugins loaded at once", p->file, NSLOTS);
	p->slot = (int)i + 1;
	p->ops.open = slot_open[i];
	p->ops.close = ser_close;
	p->ops.base_stage = r->base_stage ? ser_stage : NULL;
	p->ops.base_commit = r->base_commit ? ser_commit : NULL;
	p->ops.base_abort = r->base_abort ? ser_abort : NULL;
	p->ops.base_read = r->base_read ? ser_read : NULL;
	p->ops.base_stat = ser_bstat;
	p->ops.base_manifest = ser_manifest;
	p->ops.base_remove = ser_bremove;
	p->ops.base_list = ser_blist;
	p->ops.delta_create = ser_dcreate;
	p->ops.delta_stat = ser_dstat;
	p->ops.delta_remove = ser_dremove;
	p->ops.delta_list = ser_dlist;
	p->ops.delta_rebase = ser_rebase;
	p->ops.delta_flatten = ser_flatten;
	p->ops.base_children = r->base_children ? ser_children : NULL;
	p->ops.sweep = r->sweep ? ser_sweep : NULL;
	p->ops.base_hash = r->base_hash ? ser_hash : NULL;
	return 0;
}

static int call_load(vp_plugin *p)
{
	int rc;

	if (!p->ops.load)
		return 0;
	rc = p->ops.load(&host_table);
	if (rc < 0) {
		vp_error_prefix("plugin '%s': load failed", p->file);
		return rc;
	}
	p->loaded = 1;
	return 0;
}

/* ---- loading --------------------------------------------------------------- */

static vp_plugin *plugin_alloc(const char *file)
{
	vp_plugin *p = calloc(1, sizeof(*p));

	if (!p || !(p->file = vp_strdup(file))) {
		free(p);
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		return NULL;
	}
	return p;
}

/* Code that runs as root: only root may have written it. */
static int check_file(const char *path)
{
	struct stat st;

	if (path[0] != '/')
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL,
				    "cannot load plugin '%s': give an absolute path", path);
	if (stat(path, &st) < 0)
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "cannot load plugin '%s': %s", path,
				    strerror(errno));
	if (!S_ISREG(st.st_mode))
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "cannot load plugin '%s': not a regular file",
				    path);
	if (st.st_uid != 0 || (st.st_mode & 022))
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL,
				    "plugin '%s' is refused: it is owned by uid %u with mode %04o; a plugin "
				    "must be owned by root and writable by no one else (chown root, "
				    "chmod go-w)", path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
	return 0;
}

static int load_dl(vp_plugin *p)
{
	const vp_plugin_ops *(*init)(void);
	void *sym;
	int rc;

	if ((rc = check_file(p->file)) < 0)
		return rc;
	p->dl = dlopen(p->file, RTLD_NOW | RTLD_LOCAL);
	if (!p->dl)
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "cannot load plugin '%s': %s", p->file,
				    dlerror());
	sym = dlsym(p->dl, VP_PLUGIN_INIT_NAME);
	if (!sym)
		return vp_error_set(VP_ERR_PLUGIN, VP_EINVAL,
				    "'%s' is not a vdipool plugin: it does not export %s", p->file,
				    VP_PLUGIN_INIT_NAME);
	/* POSIX guarantees object and function pointers convert (dlsym). */
	memcpy(&init, &sym, sizeof(init));
	return adopt_ops(p, init());
}

int vp_plugin_load_file(vp_plugin **out, const char *path)
{
	vp_plugin *p;
	int rc;

	*out = NULL;
	p = plugin_alloc(path);
	if (!p)
		return VP_ENOMEM;
	rc = load_dl(p);
	if (rc == 0)
		rc = call_load(p);
	if (rc < 0) {
		vp_plugin_free(p);
		return rc;
	}
	p->name = vp_strdup(p->ops.name);
	if (!p->name) {
		vp_plugin_free(p);
		return VP_ENOMEM;
	}
	*out = p;
	return 0;
}

void vp_plugin_free(vp_plugin *p)
{
	if (!p)
		return;
	if (p->loaded && p->ops.unload)
		p->ops.unload();
	if (p->slot) {
		pthread_mutex_lock(&slot_lock);
		slots[p->slot - 1] = NULL;
		pthread_mutex_unlock(&slot_lock);
	}
	if (p->dl)
		dlclose(p->dl);
	free(p->file);
	free(p->name);
	free(p->error);
	free(p);
}

/* ---- accessors ------------------------------------------------------------- */

const char *vp_plugin_name(const vp_plugin *p) { return p->name ? p->name : ""; }
const char *vp_plugin_file(const vp_plugin *p) { return p->file; }
const char *vp_plugin_version(const vp_plugin *p) { return p->error ? "" : p->ops.version; }
const char *vp_plugin_description(const vp_plugin *p) { return p->error ? "" : p->ops.description; }
int vp_plugin_api_version(const vp_plugin *p) { return p->ops._api_version; }
uint64_t vp_plugin_capabilities(const vp_plugin *p) { return p->error ? 0 : p->ops.capabilities; }
const char *vp_plugin_load_error(const vp_plugin *p) { return p->error; }
const vp_plugin_ops *vp_plugin_get_ops(const vp_plugin *p) { return p->error ? NULL : &p->ops; }

const char *vp_plugin_caps_str(uint64_t caps, char *buf, size_t len)
{
	static const struct { uint64_t bit; const char *name; } names[] = {
		{ VP_CAP_LINKED_CLONE, "linked-clone" }, { VP_CAP_PREALLOC_METADATA, "prealloc-metadata" },
		{ VP_CAP_REBASE, "rebase" },             { VP_CAP_FLATTEN, "flatten" },
		{ VP_CAP_SHARED, "shared" },
		{ VP_CAP_FULL_CLONE, "full-clone" },
		{ VP_CAP_ENCRYPT_LUKS, "encrypt-luks" },
	};
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (size_t i = 0; i < VP_ARRAY_SIZE(names); i++) {
		if (!(caps & names[i].bit) || used >= len)
			continue;
		used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? "," : "", names[i].name);
	}
	return buf;
}

/* ---- the registry ----------------------------------------------------------- */

/* Loaded once per process and never freed: plugins stay mapped until exit,
 * so borrowed vp_plugin pointers and ops stay valid everywhere. */
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static vp_plugin **reg;
static size_t nreg;
static bool scanned;
static char search_path[8192];

static int reg_add(vp_plugin *p)
{
	vp_plugin **n = realloc(reg, (nreg + 1) * sizeof(*reg));

	if (!n) {
		vp_plugin_free(p);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	reg = n;
	reg[nreg++] = p;
	return 0;
}


/* The entry of name: a loaded one first, else a refused one; NULL when none. */
static vp_plugin *reg_entry(const char *name)
{
	vp_plugin *refused = NULL;

	for (size_t i = 0; i < nreg; i++) {
		if (!reg[i]->name || strcmp(reg[i]->name, name))
			continue;
		if (!reg[i]->error)
			return reg[i];
		refused = refused ? refused : reg[i];
	}
	return refused;
}

/* "vdipool-<name>.so" -> name (caller frees), NULL when the file is not a plugin. */
static char *file_plugin_name(const char *base)
{
	size_t n = strlen(base);

	if (n <= 11 || strncmp(base, "vdipool-", 8) || strcmp(base + n - 3, ".so"))
		return NULL;
	return vp_strdup_printf("%.*s", (int)(n - 11), base + 8);
}

/* A file that failed keeps an entry with the message, so `vdipool plugins` shows it. */
static int reg_load_file(const char *path, const char *name)
{
	vp_plugin *p = NULL;
	int rc = vp_plugin_load_file(&p, path);

	if (rc == 0 && strcmp(p->name, name) != 0) {
		vp_error_set(VP_ERR_PLUGIN, VP_EINVAL, "plugin file '%s' registers the name '%s'; "
			     "the file must be named 'vdipool-%s.so'", path, p->name, p->name);
		vp_plugin_free(p);
		rc = VP_EINVAL;
	}
	if (rc < 0) {
		p = plugin_alloc(path);
		if (!p)
			return VP_ENOMEM;
		p->name = vp_strdup(name);
		p->error = vp_strdup(vp_error_last()->message);
		if (!p->name || !p->error) {
			vp_plugin_free(p);
			return VP_ENOMEM;
		}
	}
	return reg_add(p);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lists "vdipool-*.so" in dir, sorted (so the order does not depend on readdir). */
static int scan_dir(const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	int rc = 0;

	if (!d)
		return 0; /* a missing directory on the path is not an error */
	while ((e = readdir(d))) {
		char *nm = file_plugin_name(e->d_name);
		char **grown;
		if (!nm)
			continue;
		free(nm);
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (!grown || !(grown[n] = vp_strdup(e->d_name))) {
			names = grown ? grown : names;
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			break;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		VP_AUTOFREE char *path = vp_strdup_printf("%s/%s", dir, names[i]);
		VP_AUTOFREE char *name = file_plugin_name(names[i]);
		if (rc == 0 && path && name && !reg_entry(name))
			rc = reg_load_file(path, name);
		free(names[i]);
	}
	free(names);
	return rc;
}

static char user_path[4096]; /* what vp_plugin_set_search_path gave; "" none */

static void build_search_path(void)
{
	snprintf(search_path, sizeof(search_path), "%s%s%s", user_path, user_path[0] ? ":" : "",
		 VP_PLUGIN_DIR);
}

int vp_plugin_set_search_path(const char *path)
{
	VP_AUTOFREE char *copy = vp_strdup(path ? path : "");
	char *save = NULL;
	int rc = 0;

	if (!copy)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (strlen(copy) >= sizeof(user_path))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "plugin search path too long");
	for (char *d = strtok_r(copy, ":", &save); d && rc == 0; d = strtok_r(NULL, ":", &save))
		if (d[0] != '/')
			rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL,
					  "plugin search path: '%s' is not an absolute directory; "
					  "use absolute directories only", d);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&reg_lock);
	if (scanned || nreg)
		rc = vp_error_set(VP_ERR_INVALID, VP_EBUSY,
				  "plugin search path: set it before the first plugin is looked up");
	else
		snprintf(user_path, sizeof(user_path), "%s", path ? path : "");
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

/* Registers one built-in unless a usable plugin file of that name came first. */
static int add_builtin(size_t i)
{
	vp_plugin *p;
	int rc;

	if (reg_entry(builtins[i].name) && !reg_entry(builtins[i].name)->error)
		return 0;
	p = plugin_alloc("(built-in)");
	if (!p)
		return VP_ENOMEM;
	rc = adopt_ops(p, builtins[i].init());
	if (rc == 0)
		rc = call_load(p);
	if (rc == 0 && !(p->name = vp_strdup(p->ops.name)))
		rc = VP_ENOMEM;
	if (rc < 0) {
		vp_plugin_free(p);
		return rc;
	}
	return reg_add(p);
}

static int add_builtins(void)
{
	int rc = 0;

	for (size_t i = 0; i < VP_ARRAY_SIZE(builtins) && rc == 0; i++)
		rc = add_builtin(i);
	return rc;
}

static bool is_builtin(const char *name)
{
	for (size_t i = 0; i < VP_ARRAY_SIZE(builtins); i++)
		if (!strcmp(builtins[i].name, name))
			return true;
	return false;
}

static int scan_locked(void)
{
	char *copy, *save = NULL;
	int rc = 0;

	if (scanned)
		return 0;
	build_search_path();
	copy = vp_strdup(search_path);
	if (!copy)
		return VP_ENOMEM;
	for (char *dir = strtok_r(copy, ":", &save); dir && rc == 0; dir = strtok_r(NULL, ":", &save))
		if (dir[0] == '/')
			rc = scan_dir(dir);
	free(copy);
	if (rc == 0)
		rc = add_builtins();
	scanned = rc == 0;
	return rc;
}


/* Loads only the plugin asked for (what a spec names): the first
 * vdipool-<name>.so on the search path, else the built-in. */
static int find_locked(const char *name, const vp_plugin **out)
{
	vp_plugin *p = reg_entry(name);
	char *copy, *save = NULL;
	int rc = 0;

	if (!p && !scanned) {
		build_search_path();
		if (!(copy = vp_strdup(search_path)))
			return VP_ENOMEM;
		for (char *d = strtok_r(copy, ":", &save); d && rc == 0 && !p; d = strtok_r(NULL, ":", &save)) {
			VP_AUTOFREE char *path = vp_strdup_printf("%s/vdipool-%s.so", d, name);
			if (!path)
				rc = VP_ENOMEM;
			else if (d[0] == '/' && access(path, F_OK) == 0 && (rc = reg_load_file(path, name)) == 0)
				p = reg_entry(name);
		}
		free(copy);
		if (rc < 0)
			return rc;
	}
	/* A bare directory always works: the built-in dir (or ssh) when no usable file. */
	if ((!p || p->error) && is_builtin(name)) {
		if ((rc = add_builtins()) < 0)
			return rc;
		p = reg_entry(name);
	}
	if (!p)
		return vp_error_set(VP_ERR_PLUGIN, VP_ENOENT,
				    "no storage plugin '%s' (looked for vdipool-%s.so in %s)", name, name,
				    search_path);
	if (p->error)
		return vp_error_set(VP_ERR_PLUGIN, VP_ENOENT, "no storage plugin '%s': %s", name,
				    p->error);
	*out = p;
	return 0;
}

int vp_plugin_find(const vp_plugin **out, const char *name)
{
	int rc;

	*out = NULL;
	pthread_mutex_lock(&reg_lock);
	rc = find_locked(name, out);
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

int vp_plugin_list_all(const vp_plugin *const **out, size_t *n)
{
	int rc;

	pthread_mutex_lock(&reg_lock);
	rc = scan_locked();
	*out = (const vp_plugin *const *)reg;
	*n = rc == 0 ? nreg : 0;
	pthread_mutex_unlock(&reg_lock);
	return rc;
}

const char *vp_plugin_search_path(void)
{
	pthread_mutex_lock(&reg_lock);
	if (!scanned)
		build_search_path();
	pthread_mutex_unlock(&reg_lock);
	return search_path;
}
