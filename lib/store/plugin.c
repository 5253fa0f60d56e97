/* plugin.c: loads storage plugins (dlopen), checks and normalises their ops table, keeps a registry. */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vdipool/plugin.h"
#include "util/run.h"
#include "util/util.h"

struct vp_plugin {
	char *file;         /* path, or "(built-in)" */
	char *name;
	char *error;        /* why it was refused; NULL when loaded */
	void *dl;           /* dlopen handle; NULL for built-ins */
	vp_plugin_ops ops;  /* full size, zero-filled tail, defaults filled in */
	int loaded;         /* .load was called (so .unload is due) */
};

/* The built-in dir backend (lib/store/store_builtin_dir.c). */
const vp_plugin_ops *vp_builtin_dir_init(void);

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

static void host_debug(const char *fmt, ...)
{
	/* The library never prints: plugin debug output is dropped until the
	 * library grows a log callback. Kept in the ABI so plugins can call it. */
	(void)fmt;
}

static int host_run(const char *const *argv)
{
	static const char *const env[] = { "LC_ALL=C", NULL };
	vp_run_opts opts = { .env = env };

	return vp_run_ok(argv, &opts, NULL);
}

static const vp_plugin_host host_table = {
	._struct_size = sizeof(vp_plugin_host),
	._api_version = VP_PLUGIN_API_VERSION,
	.error = host_error,
	.debug = host_debug,
	.run = host_run,
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

static int load_dl(vp_plugin *p)
{
	const vp_plugin_ops *(*init)(void);
	void *sym;

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

static vp_plugin *reg_lookup(const char *name)
{
	for (size_t i = 0; i < nreg; i++)
		if (!reg[i]->error && !strcmp(reg[i]->name, name))
			return reg[i];
	return NULL;
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
		if (rc == 0 && path && name && !reg_lookup(name))
			rc = reg_load_file(path, name);
		free(names[i]);
	}
	free(names);
	return rc;
}

static void build_search_path(void)
{
	const char *env = getenv("VDIPOOL_PLUGIN_PATH");

	snprintf(search_path, sizeof(search_path), "%s%s%s", env && *env ? env : "",
		 env && *env ? ":" : "", VP_PLUGIN_DIR);
}

static int add_builtins(void)
{
	vp_plugin *p;
	int rc;

	if (reg_lookup("dir"))
		return 0;
	p = plugin_alloc("(built-in)");
	if (!p)
		return VP_ENOMEM;
	rc = adopt_ops(p, vp_builtin_dir_init());
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
		rc = scan_dir(dir);
	free(copy);
	if (rc == 0)
		rc = add_builtins();
	scanned = rc == 0;
	return rc;
}

int vp_plugin_find(const vp_plugin **out, const char *name)
{
	int rc;

	*out = NULL;
	pthread_mutex_lock(&reg_lock);
	rc = scan_locked();
	if (rc == 0) {
		*out = reg_lookup(name);
		if (!*out)
			rc = vp_error_set(VP_ERR_PLUGIN, VP_ENOENT,
					  "no storage plugin '%s' (looked for vdipool-%s.so in %s)", name,
					  name, search_path);
	}
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
