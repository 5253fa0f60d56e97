/* spec_schema.c: the spec's schema: one field table per mapping, defaults, and checks across sections. */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "spec.h"
#include "util/strmap.h"
#include "util/util.h"

#define KIB 1024LL
#define MIB (1024LL * KIB)
#define GIB (1024LL * MIB)
#define TIB (1024LL * GIB)

/* ---- the walk over one mapping ---- */

/* Edit distance, capped: only short keys are ever compared. */
static size_t distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65], i, j;

	if (la > 64 || lb > 64)
		return 99;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		size_t diag = row[0], next;
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			next = row[j];
			row[j] = a[i - 1] == b[j - 1] ? diag : 1 + (diag < row[j - 1] ? (diag < row[j] ? diag : row[j])
										: (row[j - 1] < row[j] ? row[j - 1] : row[j]));
			diag = next;
		}
	}
	return row[lb];
}

static int unknown_key(spec_ctx *c, const spec_node *k, const spec_field *fields, size_t n)
{
	char q[SPEC_QUOTE_MAX], known[512];
	size_t best = 99, d, pos = 0;
	const char *hint = NULL;

	for (size_t i = 0; i < n; i++) {
		d = distance(k->str, fields[i].key);
		/* A suggestion must share more than it changes: 'a' is not 'gc'. */
		if (d <= 2 && d < strlen(k->str) && d < best) {
			best = d;
			hint = fields[i].key;
		}
	}
	spec_quote(q, sizeof(q), k->str);
	if (hint)
		return spec_err(c, k, "unknown key %s, did you mean '%s'?", q, hint);
	known[0] = '\0';
	for (size_t i = 0; i < n && pos < sizeof(known); i++)
		pos += (size_t)snprintf(known + pos, sizeof(known) - pos, "%s%s", i ? ", " : "", fields[i].key);
	return spec_err(c, k, "unknown key %s, expected one of: %s", q, known);
}

/* A missing key is reported where its mapping was named. */
static int missing_key(spec_ctx *c, const spec_node *m, const char *key)
{
	char path[512];
	const spec_node *at = m->key ? m->key : m;

	spec_node_path(m, path, sizeof(path));
	return spec_err_at(c, at->line, at->col, path, "missing required key '%s'", key);
}

static int expect_kind(spec_ctx *c, const spec_node *v, spec_kind kind)
{
	char got[SPEC_QUOTE_MAX];

	if (v->kind == kind)
		return 0;
	return spec_err(c, v, "expected a %s, got %s", kind == SPEC_MAP ? "mapping" : "sequence",
			spec_describe(got, sizeof(got), v));
}

static int record(spec_ctx *c, const spec_node *k, const spec_node *v)
{
	char path[512];

	spec_node_path(v, path, sizeof(path));
	return spec_loc_add(c->in, path, k, v);
}

int spec_walk_map(spec_ctx *c, const spec_node *m, const spec_field *fields, size_t n, void *base,
		  const spec_node **seen)
{
	const spec_node *got[SPEC_MAX_FIELDS] = { 0 }, *k, *v;
	size_t i;
	int r;

	if ((r = expect_kind(c, m, SPEC_MAP)) < 0)
		return r;
	for (k = m->first; k; k = v->next) {
		v = k->next;
		for (i = 0; i < n && strcmp(fields[i].key, k->str); i++)
			;
		if (i == n)
			return unknown_key(c, k, fields, n);
		if ((r = record(c, k, v)) < 0)
			return r;
		r = fields[i].fn(c, v, (char *)(fields[i].raw ? (void *)&c->refs : base) + fields[i].off, &fields[i]);
		if (r < 0)
			return r;
		got[i] = v;
	}
	for (i = 0; i < n; i++)
		if (fields[i].required && !got[i])
			return missing_key(c, m, fields[i].key);
	if (seen)
		memcpy(seen, got, n * sizeof(*got));
	return 0;
}

/* The value of `key` in mapping m, or NULL. */
static const spec_node *map_get(const spec_node *m, const char *key)
{
	for (const spec_node *k = m->first; k && k->next; k = k->next->next)
		if (!strcmp(k->str, key))
			return k->next;
	return NULL;
}

/* Items of a sequence, counted: "must have 1 to N items". */
static int expect_items(spec_ctx *c, const spec_node *v, size_t max)
{
	int r;

	if ((r = expect_kind(c, v, SPEC_SEQ)) < 0)
		return r;
	if (v->count == 0 || v->count > max)
		return spec_err(c, v, "must have 1 to %zu items, got %zu", max, v->count);
	return 0;
}

/* Two list items with one name: the second is reported, naming the first. */
static int check_unique_names(spec_ctx *c, const spec_node *seq, const char *what)
{
	vp_strmap seen = VP_STRMAP_INIT;
	char q[SPEC_QUOTE_MAX];
	int r = 0;

	for (const spec_node *it = seq->first; it && r == 0; it = it->next) {
		const spec_node *name = map_get(it, "name"), *prev;
		if ((prev = vp_strmap_get(&seen, name->str)))
			r = spec_err(c, name, "duplicate %s name %s, first used at line %u, column %u", what,
				     spec_quote(q, sizeof(q), name->str), prev->line, prev->col);
		else
			r = vp_strmap_put(&seen, name->str, (void *)name);
	}
	vp_strmap_release(&seen);
	return r;
}

#define F(k, fn_, type, field) { .key = k, .fn = fn_, .off = offsetof(type, field) }
#define FREQ(k, fn_, type, field) { .key = k, .fn = fn_, .off = offsetof(type, field), .required = true }
#define FNUM(k, fn_, type, field, lo, hi) \
	{ .key = k, .fn = fn_, .off = offsetof(type, field), .min = (lo), .max = (hi) }
#define FRAW(k, field) { .key = k, .fn = spec_fn_text, .off = offsetof(spec_refs, field), .raw = true }

/* ---- storage ---- */

static int fn_driver(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s;
	int r;

	if ((r = spec_scalar(c, v, "a storage driver", &s)) < 0)
		return r;
	if (!strcmp(s, "dir"))
		*(vp_storage_driver *)dst = VP_STORAGE_DIR;
	else if (!strcmp(s, "rbd"))
		*(vp_storage_driver *)dst = VP_STORAGE_RBD;
	else
		return spec_err(c, v, "must be 'dir' or 'rbd', got %s", spec_quote(got, sizeof(got), s));
	return 0;
}

/* RADOS pool and namespace names and cephx users: what Ceph's tools take without quoting, and
 * nothing that could split a qemu "rbd:pool/ns/image:id=..:conf=.." location. */
#define RADOS_RULE "must be 1-100 characters of A-Z, a-z, 0-9, '_', '.' and '-', not starting with '.'"

static bool rados_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 100 || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static int fn_rados_name(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s;
	int r;

	if ((r = spec_scalar(c, v, "a RADOS name", &s)) < 0)
		return r;
	if (!rados_name_valid(s))
		return spec_err(c, v, RADOS_RULE ", got %s", spec_quote(got, sizeof(got), s));
	*(const char **)dst = s;
	return 0;
}

/* librados takes the id and adds "client." itself: "client.admin" would log in as
 * "client.client.admin", which fails with a bare permission error far from the spec. */
static int fn_ceph_id(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX], bare[SPEC_QUOTE_MAX];
	const char *s;
	int r;

	if ((r = spec_scalar(c, v, "a cephx user", &s)) < 0)
		return r;
	if (!strncmp(s, "client.", 7) && rados_name_valid(s + 7))
		return spec_err(c, v, "must be the cephx user without 'client.' (librados adds it): write %s, not %s",
				spec_quote(bare, sizeof(bare), s + 7), spec_quote(got, sizeof(got), s));
	if (!strncmp(s, "client.", 7))
		return spec_err(c, v, "must be the cephx user without 'client.' (librados adds it), got %s",
				spec_quote(got, sizeof(got), s));
	return fn_rados_name(c, v, dst, f);
}

static const spec_field tier_fields[] = {
	FREQ("name", spec_fn_name, vp_spec_tier, name),
	F("driver", fn_driver, vp_spec_tier, driver),
	F("path", spec_fn_abs_path, vp_spec_tier, path),
	F("pool", fn_rados_name, vp_spec_tier, rbd_pool),
	F("namespace", fn_rados_name, vp_spec_tier, rbd_namespace),
	F("conf", spec_fn_abs_path, vp_spec_tier, rbd_conf),
	F("id", fn_ceph_id, vp_spec_tier, rbd_id),
	F("keyring", spec_fn_abs_path, vp_spec_tier, rbd_keyring),
};

static bool rbd_only_key(const char *key)
{
	static const char *const keys[] = { "pool", "namespace", "conf", "id", "keyring" };

	for (size_t i = 0; i < VP_ARRAY_SIZE(keys); i++)
		if (!strcmp(key, keys[i]))
			return true;
	return false;
}

/* The keys of one driver, checked once the whole item is read: 'driver' may come last. Keys of
 * the other driver are reported in document order, then what is missing. */
static int check_tier_keys(spec_ctx *c, const spec_node *it, const vp_spec_tier *t)
{
	for (const spec_node *k = it->first; k && k->next; k = k->next->next) {
		if (t->driver == VP_STORAGE_RBD && !strcmp(k->str, "path"))
			return spec_err(c, k->next, "an rbd tier has no path; it names a RADOS pool with 'pool'");
		if (t->driver == VP_STORAGE_DIR && rbd_only_key(k->str))
			return spec_err(c, k->next,
					"a dir tier has no '%s', it is a key of rbd tiers (driver: rbd); a dir "
					"tier keeps its images under 'path'",
					k->str);
	}
	if (t->driver == VP_STORAGE_DIR && !t->path)
		return spec_err(c, it, "missing required key 'path'");
	if (t->driver == VP_STORAGE_RBD && !t->rbd_pool)
		return spec_err(c, it, "missing required key 'pool', the RADOS pool an rbd tier keeps its images in");
	return 0;
}

/* Defaults of an rbd tier, and `where` for every tier. */
static int finish_tier(spec_ctx *c, vp_spec_tier *t)
{
	char *where;
	size_t n;

	if (t->driver == VP_STORAGE_DIR) {
		t->where = t->path;
		return 0;
	}
	if (!t->rbd_conf)
		t->rbd_conf = "/etc/ceph/ceph.conf";
	if (!t->rbd_id)
		t->rbd_id = "admin";
	n = strlen("rbd:") + strlen(t->rbd_pool) + (t->rbd_namespace ? 1 + strlen(t->rbd_namespace) : 0) + 1;
	if (!(where = spec_alloc(&c->in->arena, n)))
		return VP_ENOMEM;
	snprintf(where, n, "rbd:%s%s%s", t->rbd_pool, t->rbd_namespace ? "/" : "",
		 t->rbd_namespace ? t->rbd_namespace : "");
	t->where = where;
	return 0;
}

static int fn_tiers(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	vp_spec_storage *st = dst;
	vp_spec_tier *tiers;
	size_t i = 0;
	int r;

	if ((r = expect_items(c, v, VP_SPEC_MAX_TIERS)) < 0)
		return r;
	if (!(tiers = spec_alloc(&c->in->arena, v->count * sizeof(*tiers))))
		return VP_ENOMEM;
	for (const spec_node *it = v->first; it; it = it->next, i++) {
		tiers[i].driver = VP_STORAGE_DIR;
		if ((r = record(c, NULL, it)) < 0 ||
		    (r = spec_walk_map(c, it, tier_fields, VP_ARRAY_SIZE(tier_fields), &tiers[i], NULL)) < 0 ||
		    (r = check_tier_keys(c, it, &tiers[i])) < 0 || (r = finish_tier(c, &tiers[i])) < 0)
			return r;
	}
	st->tiers = tiers;
	st->tier_count = v->count;
	return check_unique_names(c, v, "tier");
}

static const vp_spec_tier *find_tier(const vp_spec_storage *st, const char *name)
{
	for (size_t i = 0; i < st->tier_count; i++)
		if (!strcmp(st->tiers[i].name, name))
			return &st->tiers[i];
	return NULL;
}

/* A tier named by another key: written (at its value) or the only tier. */
static int resolve_tier(spec_ctx *c, const char *path, const char *name, const vp_spec_tier **out)
{
	const vp_spec_storage *st = &c->spec->storage;
	char q[SPEC_QUOTE_MAX], list[256];
	size_t pos = 0;

	if ((*out = find_tier(st, name)))
		return 0;
	list[0] = '\0';
	for (size_t i = 0; i < st->tier_count && pos < sizeof(list); i++)
		pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s'%s'", i ? ", " : "", st->tiers[i].name);
	return spec_err_path(c, path, "unknown tier %s, the tiers are %s", spec_quote(q, sizeof(q), name), list);
}

static int default_tier(spec_ctx *c, const spec_node *m, const char *key, const char *ref, const vp_spec_tier **out)
{
	char path[64];

	snprintf(path, sizeof(path), "storage.%s", key);
	if (ref)
		return resolve_tier(c, path, ref, out);
	if (c->spec->storage.tier_count == 1) {
		*out = &c->spec->storage.tiers[0];
		return 0;
	}
	return spec_err_at(c, m->key->line, m->key->col, "storage",
			   "missing required key '%s', needed when there is more than one tier", key);
}

static const spec_field storage_fields[] = {
	{ .key = "tiers", .fn = fn_tiers, .off = 0, .required = true },
	FRAW("bases", bases),
	FRAW("deltas", deltas),
	F("state_dir", spec_fn_abs_path, vp_spec_storage, state_dir),
};

/* A delta is made from a base in the tier's own way: a qcow2 file backed by a base file, or an
 * RBD clone of a base snapshot in the same cluster. The mixes that cannot be made are refused
 * here, on storage.deltas: the key that pairs the two. A data disk is a standalone image, so
 * data_disk.tier may be on any driver. */
static int check_tier_mix(spec_ctx *c, const vp_spec_storage *st)
{
	const vp_spec_tier *b = st->bases, *d = st->deltas;
	char qb[SPEC_QUOTE_MAX], qd[SPEC_QUOTE_MAX];

	if (d->driver == VP_STORAGE_RBD && b->driver != VP_STORAGE_RBD)
		return spec_err_path(c, "storage.deltas",
				     "RBD clones are made from RBD snapshots: a delta tier with driver rbd needs the "
				     "bases tier on rbd too (tier '%s' is a dir tier)", b->name);
	if (b->driver == VP_STORAGE_RBD && d->driver != VP_STORAGE_RBD)
		return spec_err_path(c, "storage.deltas",
				     "a qcow2 delta on a dir tier cannot be backed by an RBD snapshot: put deltas on "
				     "an rbd tier, or bases on a dir tier (tier '%s' is an rbd tier)", b->name);
	if (b->driver == VP_STORAGE_RBD && strcmp(b->rbd_conf, d->rbd_conf))
		return spec_err_path(c, "storage.deltas",
				     "an RBD clone lives in the cluster of its parent snapshot: tiers '%s' and '%s' "
				     "name different clusters (conf %s and %s)", b->name, d->name,
				     spec_quote(qb, sizeof(qb), b->rbd_conf), spec_quote(qd, sizeof(qd), d->rbd_conf));
	return 0;
}

static size_t tier_index(const vp_spec_storage *st, const vp_spec_tier *t)
{
	return (size_t)(t - st->tiers);
}

/* What a clone's domain reaches its RBD disks with: libvirt 9.0 cannot name an RBD namespace to
 * QEMU (it would open the wrong image), and a domain's disks authenticate as one cephx user. */
static int check_rbd_disks(spec_ctx *c, const vp_spec *s)
{
	const vp_spec_storage *st = &s->storage;
	const vp_spec_tier *d = st->deltas->driver == VP_STORAGE_RBD ? st->deltas : NULL;
	const vp_spec_tier *dd = s->data_disk.size && s->data_disk.tier->driver == VP_STORAGE_RBD
					 ? s->data_disk.tier : NULL;
	char path[64];

	for (int i = 0; i < 2; i++) {
		const vp_spec_tier *t = i ? dd : d;
		if (!t || !t->rbd_namespace)
			continue;
		snprintf(path, sizeof(path), "storage.tiers[%zu].namespace", tier_index(st, t));
		return spec_err_path(c, path,
				     "tier '%s' holds %s, which domains open through libvirt, and libvirt "
				     "cannot pass an RBD namespace to QEMU: keep namespaces to the bases tier",
				     t->name, i ? "data disks" : "clone disks");
	}
	if (d && dd && (strcmp(d->rbd_id, dd->rbd_id) ||
			(d->rbd_keyring ? !dd->rbd_keyring || strcmp(d->rbd_keyring, dd->rbd_keyring)
					: dd->rbd_keyring != NULL))) {
		snprintf(path, sizeof(path), "storage.tiers[%zu].id", tier_index(st, dd));
		return spec_err_path(c, path,
				     "a clone's disks authenticate as one cephx user: tiers '%s' (deltas) and "
				     "'%s' (data disks) must have the same id and keyring", d->name, dd->name);
	}
	return 0;
}

static int fn_storage(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	vp_spec_storage *st = dst;
	int r;

	if ((r = spec_walk_map(c, v, storage_fields, VP_ARRAY_SIZE(storage_fields), st, NULL)) < 0)
		return r;
	if ((r = default_tier(c, v, "bases", c->refs.bases, &st->bases)) < 0 ||
	    (r = default_tier(c, v, "deltas", c->refs.deltas, &st->deltas)) < 0)
		return r;
	/* A dir bases tier is a directory the controller has anyway; a Ceph pool is not. */
	if (!st->state_dir)
		st->state_dir = st->bases->driver == VP_STORAGE_DIR ? st->bases->path : "/var/lib/vdipool";
	return check_tier_mix(c, st);
}

/* ---- pool, base, clones ---- */

static const spec_field pool_fields[] = { FREQ("name", spec_fn_name, vp_spec, pool) };

static int fn_pool(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, pool_fields, VP_ARRAY_SIZE(pool_fields), c->spec, NULL);
}

static const spec_field base_fields[] = {
	FREQ("name", spec_fn_name, vp_spec_base, name),
	F("version", spec_fn_version, vp_spec_base, version),
};

static int fn_base(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, base_fields, VP_ARRAY_SIZE(base_fields), dst, NULL);
}

static const char *const mode_choices[] = { "linked", "full", NULL };

static const spec_field clones_fields[] = {
	{ .key = "count", .fn = spec_fn_uint, .off = offsetof(vp_spec_clones, count), .min = 1, .max = 10000,
	  .required = true },
	F("name", spec_fn_pattern, vp_spec_clones, name),
	FNUM("start_index", spec_fn_uint, vp_spec_clones, start_index, 0, 1000000),
	{ .key = "mode", .fn = spec_fn_enum, .off = offsetof(vp_spec_clones, mode), .choices = mode_choices },
	FNUM("spares", spec_fn_uint, vp_spec_clones, spares, 0, 1000),
	FNUM("parked", spec_fn_uint, vp_spec_clones, parked, 0, 1000),
	F("warm_base", spec_fn_bool, vp_spec_clones, warm_base),
};

static int fn_clones(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, clones_fields, VP_ARRAY_SIZE(clones_fields), dst, NULL);
}

/* ---- delta and data disk ---- */

static const char *const prealloc_choices[] = { "off", "metadata", NULL };
static const char *const encrypt_choices[] = { "none", "luks", NULL };

static const spec_field delta_fields[] = {
	FNUM("cluster_size", spec_fn_cluster, vp_spec_delta, cluster_size, 16 * KIB, 2 * MIB),
	F("extended_l2", spec_fn_bool, vp_spec_delta, extended_l2),
	{ .key = "preallocation", .fn = spec_fn_enum, .off = offsetof(vp_spec_delta, preallocation),
	  .choices = prealloc_choices },
	FNUM("max_depth", spec_fn_uint, vp_spec_delta, max_depth, 1, 16),
	{ .key = "size", .fn = spec_fn_size, .off = offsetof(vp_spec_delta, size), .min = MIB,
	  .max = 64 * TIB, .align = 512 },
	{ .key = "encrypt", .fn = spec_fn_enum, .off = offsetof(vp_spec_delta, encrypt),
	  .choices = encrypt_choices },
};

static int fn_delta(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	const spec_node *seen[VP_ARRAY_SIZE(delta_fields)];
	vp_spec_delta *d = dst;
	int r;

	if ((r = spec_walk_map(c, v, delta_fields, VP_ARRAY_SIZE(delta_fields), d, seen)) < 0)
		return r;
	/* Defaults follow extended_l2 so that turning it off alone stays valid. */
	if (!seen[0])
		d->cluster_size = d->extended_l2 ? 128 * KIB : 64 * KIB;
	if (!seen[2])
		d->preallocation = d->extended_l2 ? VP_SPEC_PREALLOC_METADATA : VP_SPEC_PREALLOC_OFF;
	else if (d->preallocation == VP_SPEC_PREALLOC_METADATA && !d->extended_l2)
		return spec_err(c, seen[2],
				"'metadata' needs extended_l2: true, qemu refuses preallocation with a backing "
				"file otherwise");
	return 0;
}

static const spec_field data_disk_fields[] = {
	{ .key = "size", .fn = spec_fn_size, .off = offsetof(vp_spec_data_disk, size), .required = true,
	  .min = MIB, .max = 64 * TIB, .align = 512 },
	FRAW("tier", data_tier),
};

static int fn_data_disk(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, data_disk_fields, VP_ARRAY_SIZE(data_disk_fields), dst, NULL);
}

/* ---- domain ---- */

static const char *const accel_choices[] = { "auto", "kvm", "tcg", NULL };

static const spec_field domain_fields[] = {
	F("template", spec_fn_template, vp_spec_domain, template_name),
	FNUM("vcpus", spec_fn_uint, vp_spec_domain, vcpus, 1, 256),
	{ .key = "memory", .fn = spec_fn_size, .off = offsetof(vp_spec_domain, memory_bytes), .min = 16 * MIB,
	  .max = 4 * TIB, .align = MIB },
	F("network", spec_fn_network, vp_spec_domain, network),
	F("start", spec_fn_bool, vp_spec_domain, start),
	FNUM("max_parallel_starts", spec_fn_uint, vp_spec_domain, max_parallel_starts, 1, 1000),
	{ .key = "accel", .fn = spec_fn_enum, .off = offsetof(vp_spec_domain, accel), .choices = accel_choices },
};

static int fn_domain(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, domain_fields, VP_ARRAY_SIZE(domain_fields), dst, NULL);
}

/* ---- rollout ---- */

/* A list is an argv as is; a string is a shell command line. */
static int fn_command(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	vp_spec_health *h = dst;
	const char **argv, *s;
	size_t i = 0;
	int r;

	if (v->kind == SPEC_SCALAR && !spec_is_null(v)) {
		if (strspn(v->str, " ") == v->len)
			return spec_err(c, v, "must not be empty");
		if (!(argv = spec_alloc(&c->in->arena, 4 * sizeof(*argv))))
			return VP_ENOMEM;
		argv[0] = "/bin/sh", argv[1] = "-c", argv[2] = v->str;
		h->argv = argv, h->argc = 3;
		return 0;
	}
	if (v->kind != SPEC_SEQ)
		return spec_scalar(c, v, "a command (a list of arguments or a string)", &s);
	if ((r = expect_items(c, v, 256)) < 0)
		return r;
	if (!(argv = spec_alloc(&c->in->arena, (v->count + 1) * sizeof(*argv))))
		return VP_ENOMEM;
	for (const spec_node *it = v->first; it; it = it->next, i++)
		if ((r = record(c, NULL, it)) < 0 || (r = spec_scalar(c, it, "a string", &argv[i])) < 0)
			return r;
	h->argv = argv, h->argc = v->count;
	return 0;
}

static const spec_field health_fields[] = {
	{ .key = "command", .fn = fn_command, .off = 0 },
	FNUM("timeout", spec_fn_duration, vp_spec_health, timeout_sec, 1, 3600),
};

static int fn_health(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, health_fields, VP_ARRAY_SIZE(health_fields), dst, NULL);
}

/* readiness: the same shape as rollout.health; its timeout bounds one run of the command. */
static int fn_readiness(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, health_fields, VP_ARRAY_SIZE(health_fields), dst, NULL);
}

static int fn_max_unavailable(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	static const char what[] = "a count of at least 1 or a percentage like '25%'";
	vp_spec_rollout *ro = dst;
	spec_field pct = { .min = 1, .max = 100 }, cnt = { .min = 1, .max = 10000 };
	spec_node num;
	char got[SPEC_QUOTE_MAX], digits[16];
	const char *s;
	size_t n;
	int r;

	if ((r = spec_scalar(c, v, what, &s)) < 0)
		return r;
	n = strlen(s);
	if (n < 2 || n > sizeof(digits) || s[n - 1] != '%') {
		if (!v->plain)
			return spec_err(c, v, "expected %s, got %s", what, spec_quote(got, sizeof(got), s));
		ro->max_unavailable_percent = false;
		return spec_fn_uint(c, v, &ro->max_unavailable, &cnt);
	}
	/* "25%": the number alone goes through the integer check, at the same place. */
	memcpy(digits, s, n - 1);
	digits[n - 1] = '\0';
	num = *v;
	num.str = digits, num.len = n - 1, num.plain = true;
	if (spec_fn_uint(c, &num, &ro->max_unavailable, &pct) < 0)
		return spec_err(c, v, "must be a percentage from 1%% to 100%%, got %s", spec_quote(got, sizeof(got), s));
	ro->max_unavailable_percent = true;
	return 0;
}

/* A duration, or 'manual' (the default written out): wait for `vdipool rollout continue`. */
static int fn_canary_pause(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char got[SPEC_QUOTE_MAX];
	const char *s;
	int r;

	if ((r = spec_scalar(c, v, "'manual' or a duration like '30m'", &s)) < 0)
		return r;
	if (!strcmp(s, "manual")) {
		*(unsigned *)dst = VP_SPEC_PAUSE_MANUAL;
		return 0;
	}
	/* A word is most likely a misspelt 'manual': say both forms. */
	if (!isdigit((unsigned char)s[0]))
		return spec_err(c, v, "expected 'manual' or a duration like '30m', got %s", spec_quote(got, sizeof(got), s));
	return spec_fn_duration(c, v, dst, f);
}

static const spec_field rollout_fields[] = {
	{ .key = "max_unavailable", .fn = fn_max_unavailable, .off = 0 },
	{ .key = "health", .fn = fn_health, .off = offsetof(vp_spec_rollout, health) },
	FNUM("shutdown_timeout", spec_fn_duration, vp_spec_rollout, shutdown_timeout_sec, 1, 3600),
	FNUM("canary", spec_fn_uint, vp_spec_rollout, canary, 0, 10000),
	FNUM("canary_pause", fn_canary_pause, vp_spec_rollout, canary_pause_sec, 1, 86400),
};

static int fn_rollout(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, rollout_fields, VP_ARRAY_SIZE(rollout_fields), dst, NULL);
}

/* ---- hosts ---- */

static const spec_field ssh_fields[] = {
	F("user", spec_fn_user, vp_spec_ssh, user),
	FNUM("port", spec_fn_uint, vp_spec_ssh, port, 1, 65535),
	F("known_hosts", spec_fn_abs_path, vp_spec_ssh, known_hosts),
	F("identity", spec_fn_abs_path, vp_spec_ssh, identity),
	F("host", spec_fn_ssh_host, vp_spec_ssh, host),
	F("compress", spec_fn_bool, vp_spec_ssh, compress),
};

static int fn_ssh(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	vp_spec_host *h = (vp_spec_host *)((char *)dst - offsetof(vp_spec_host, ssh));

	h->has_ssh = true;
	return spec_walk_map(c, v, ssh_fields, VP_ARRAY_SIZE(ssh_fields), dst, NULL);
}

/* Overcommit ratios: 0.1 to 64, in thousandths. */
#define RATIO_MIN 100
#define RATIO_MAX 64000

static const spec_field host_fields[] = {
	FREQ("name", spec_fn_name, vp_spec_host, name),
	F("uri", spec_fn_uri, vp_spec_host, uri),
	F("ssh", fn_ssh, vp_spec_host, ssh),
	FNUM("max_clones", spec_fn_uint, vp_spec_host, max_clones, 0, 10000),
	FNUM("cpu_overcommit", spec_fn_milli, vp_spec_host, cpu_overcommit_milli, RATIO_MIN, RATIO_MAX),
	FNUM("memory_overcommit", spec_fn_milli, vp_spec_host, memory_overcommit_milli, RATIO_MIN, RATIO_MAX),
};

static int fn_hosts(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	vp_spec_host *hosts;
	size_t i = 0;
	int r;

	if ((r = expect_items(c, v, VP_SPEC_MAX_HOSTS)) < 0)
		return r;
	if (!(hosts = spec_alloc(&c->in->arena, v->count * sizeof(*hosts))))
		return VP_ENOMEM;
	for (const spec_node *it = v->first; it; it = it->next, i++) {
		hosts[i].uri = "qemu:///system";
		hosts[i].ssh.port = 22;
		hosts[i].max_clones = VP_SPEC_UNLIMITED;
		/* Overcommit left at 0 here: finish() gives the placement section's. */
		if ((r = record(c, NULL, it)) < 0 ||
		    (r = spec_walk_map(c, it, host_fields, VP_ARRAY_SIZE(host_fields), &hosts[i], NULL)) < 0)
			return r;
	}
	c->spec->hosts = hosts;
	c->spec->host_count = v->count;
	return check_unique_names(c, v, "host");
}

/* ---- gc and the top level ---- */

static const spec_field gc_fields[] = { FNUM("keep", spec_fn_uint, vp_spec_gc, keep, 0, 1000) };

static int fn_gc(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, gc_fields, VP_ARRAY_SIZE(gc_fields), dst, NULL);
}

/* ---- placement and distribution ---- */

static const char *const policy_choices[] = { "spread", "pack", NULL };

static const spec_field placement_fields[] = {
	{ .key = "policy", .fn = spec_fn_enum, .off = offsetof(vp_spec_placement, policy), .choices = policy_choices },
	FNUM("cpu_overcommit", spec_fn_milli, vp_spec_placement, cpu_overcommit_milli, RATIO_MIN, RATIO_MAX),
	FNUM("memory_overcommit", spec_fn_milli, vp_spec_placement, memory_overcommit_milli, RATIO_MIN, RATIO_MAX),
};

static int fn_placement(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	char q[SPEC_QUOTE_MAX];

	/* "placement: pack" is the natural slip: show the section's shape. */
	if (v->kind == SPEC_SCALAR && (!strcmp(v->str, "spread") || !strcmp(v->str, "pack")))
		return spec_err(c, v, "expected a mapping, got %s: write 'placement: {policy: %s}'",
				spec_quote(q, sizeof(q), v->str), v->str);
	return spec_walk_map(c, v, placement_fields, VP_ARRAY_SIZE(placement_fields), dst, NULL);
}

static const spec_field distribution_fields[] = {
	FNUM("max_parallel_hosts", spec_fn_uint, vp_spec_distribution, max_parallel_hosts, 1, 1000),
	F("fanout", spec_fn_bool, vp_spec_distribution, fanout),
	F("seed_vdipool", spec_fn_abs_path, vp_spec_distribution, seed_vdipool),
	F("seed_identity", spec_fn_abs_path, vp_spec_distribution, seed_identity),
	F("seed_known_hosts", spec_fn_abs_path, vp_spec_distribution, seed_known_hosts),
};

static int fn_distribution(spec_ctx *c, const spec_node *v, void *dst, const spec_field *f)
{
	return spec_walk_map(c, v, distribution_fields, VP_ARRAY_SIZE(distribution_fields), dst, NULL);
}

static const spec_field top_fields[] = {
	{ .key = "pool", .fn = fn_pool, .required = true },
	FREQ("base", fn_base, vp_spec, base),
	FREQ("storage", fn_storage, vp_spec, storage),
	FREQ("clones", fn_clones, vp_spec, clones),
	F("delta", fn_delta, vp_spec, delta),
	F("data_disk", fn_data_disk, vp_spec, data_disk),
	F("domain", fn_domain, vp_spec, domain),
	F("rollout", fn_rollout, vp_spec, rollout),
	{ .key = "hosts", .fn = fn_hosts },
	F("gc", fn_gc, vp_spec, gc),
	F("placement", fn_placement, vp_spec, placement),
	F("distribution", fn_distribution, vp_spec, distribution),
	F("readiness", fn_readiness, vp_spec, readiness),
};

static void set_defaults(vp_spec *s)
{
	s->clones = (vp_spec_clones){ .name = "{pool}-{index}", .start_index = 1, .mode = VP_CLONE_LINKED };
	s->delta = (vp_spec_delta){ .cluster_size = 128 * KIB, .extended_l2 = true,
				    .preallocation = VP_SPEC_PREALLOC_METADATA, .max_depth = 8 };
	s->domain = (vp_spec_domain){ .template_name = "server", .vcpus = 1, .memory_bytes = 512 * MIB,
				      .network = "default", .start = true, .max_parallel_starts = 4 };
	s->rollout = (vp_spec_rollout){ .max_unavailable = 25, .max_unavailable_percent = true,
					.health = { .timeout_sec = 300 }, .shutdown_timeout_sec = 120 };
	s->readiness.timeout_sec = 30;
	s->gc.keep = 2;
	/* CPU time is shared well by idle desktops and CI jobs that wait on I/O, so
	 * 4 vCPUs per CPU is a safe start; memory is not (overcommit means swap or
	 * the OOM killer in the guests), so 1.0. */
	s->placement = (vp_spec_placement){ .policy = VP_SPEC_POLICY_SPREAD, .cpu_overcommit_milli = 4000,
					    .memory_overcommit_milli = 1000 };
	s->distribution.max_parallel_hosts = 4;
}

/* Checks that need more than one section, after all of them were read. */
static int check_names(spec_ctx *c)
{
	const vp_spec_clones *cl = &c->spec->clones;
	unsigned ends[2] = { cl->start_index, cl->start_index + cl->count - 1 };
	char name[256], q[SPEC_QUOTE_MAX];

	if (cl->count > 1 && !strstr(cl->name, "{index"))
		return spec_err_path(c, "clones.name", "must contain '{index}' so that the %u clones get different names",
				     cl->count);
	if (cl->spares && !strstr(cl->name, "{index"))
		return spec_err_path(c, "clones.name", "must contain '{index}': with clones.spares the pool grows "
				     "beyond clones.count while clones are claimed");
	if (cl->parked > cl->spares)
		return spec_err_path(c, "clones.parked", "must be at most clones.spares (%u), got %u: parked clones "
				     "are spares saved to disk", cl->spares, cl->parked);
	if (cl->parked && (!c->spec->domain.start || !c->spec->domain.network))
		return spec_err_path(c, "clones.parked", "needs %s: a spare is parked once it is booted and ready",
				     !c->spec->domain.start ? "domain.start: true" : "a domain.network");
	for (size_t i = 0; i < 2; i++) {
		if (spec_render_name(cl->name, c->spec->pool, ends[i], name, sizeof(name)) < 0 || !vp_name_valid(name))
			return spec_err_path(c, "clones.name", "renders %s for clone %u, which is not a valid name: "
					     SPEC_NAME_RULE, spec_quote(q, sizeof(q), name), ends[i]);
	}
	return 0;
}

/* Hosts that do not set a ratio take the placement section's, wherever
 * that section was written. */
static void inherit_overcommit(vp_spec *s)
{
	vp_spec_host *h = (vp_spec_host *)s->hosts;

	for (size_t i = 0; i < s->host_count; i++) {
		if (!h[i].cpu_overcommit_milli)
			h[i].cpu_overcommit_milli = s->placement.cpu_overcommit_milli;
		if (!h[i].memory_overcommit_milli)
			h[i].memory_overcommit_milli = s->placement.memory_overcommit_milli;
	}
}

/* Where each host's storage is: a host whose uri names a machine is remote, and bases and deltas
 * reach it over SSH only, so it needs the ssh mapping (ssh: {} takes every default); ssh.host
 * defaults to the uri's host, and a local uri has none to give. */
static int resolve_ssh(spec_ctx *c)
{
	vp_spec_host *h = (vp_spec_host *)c->spec->hosts;
	char path[64], q[SPEC_QUOTE_MAX], q2[SPEC_QUOTE_MAX];

	for (size_t i = 0; i < c->spec->host_count; i++) {
		const char *uh;
		size_t n = spec_uri_host(h[i].uri, &uh);

		h[i].remote = n > 0;
		if (h[i].remote && !h[i].has_ssh) {
			snprintf(path, sizeof(path), "hosts[%zu].uri", i);
			return spec_err_path(c, path,
					     "host %s is remote (%s): its storage is reached over SSH, which needs "
					     "an 'ssh' mapping (write 'ssh: {}' for the defaults: host from the uri, "
					     "port 22, keys of ssh-agent)",
					     spec_quote(q, sizeof(q), h[i].name), spec_quote(q2, sizeof(q2), h[i].uri));
		}
		if (!h[i].has_ssh || h[i].ssh.host)
			continue;
		snprintf(path, sizeof(path), "hosts[%zu].ssh", i);
		if (!h[i].remote)
			return spec_err_path(c, path,
					     "host %s: 'host' is required: the uri %s names no host to SSH to",
					     spec_quote(q, sizeof(q), h[i].name), spec_quote(q2, sizeof(q2), h[i].uri));
		if (!spec_ssh_host_valid(uh, n)) {
			snprintf(path, sizeof(path), "hosts[%zu].uri", i);
			return spec_err_path(c, path,
					     "host %s: the uri's host part is no address to SSH to; set ssh.host",
					     spec_quote(q, sizeof(q), h[i].name));
		}
		if (!(h[i].ssh.host = spec_strndup(&c->in->arena, uh, n)))
			return VP_ENOMEM;
	}
	return 0;
}

/* cluster_size, extended_l2 and preallocation shape a qcow2 delta; an RBD clone has none of
 * them, nor has a full clone (a copy of the base keeps the base's layout). delta.size: an RBD
 * clone has its parent's size. Their defaults are left in place unread; written out, they would promise what is not
 * done. The first one written, in document order, is reported. */
static int check_delta_format(spec_ctx *c)
{
	static const char *const qcow2_keys[] = { "delta.cluster_size", "delta.extended_l2", "delta.preallocation" };
	const char *first = NULL;
	vp_spec_loc loc, best = { 0 };

	if (c->spec->storage.deltas->driver == VP_STORAGE_RBD && vp_spec_locate(c->spec, "delta.size", &loc) == 0)
		return spec_err_path(c, "delta.size",
				     "an RBD clone has its parent snapshot's size: tier '%s' makes RBD clones "
				     "(drop the key, or put deltas on a dir tier)", c->spec->storage.deltas->name);
	if (c->spec->storage.deltas->driver != VP_STORAGE_RBD && c->spec->clones.mode != VP_CLONE_FULL)
		return 0;
	for (size_t i = 0; i < VP_ARRAY_SIZE(qcow2_keys); i++) {
		if (vp_spec_locate(c->spec, qcow2_keys[i], &loc) != 0)
			continue;
		if (!first || loc.key_line < best.key_line ||
		    (loc.key_line == best.key_line && loc.key_column < best.key_column))
			first = qcow2_keys[i], best = loc;
	}
	if (!first)
		return 0;
	if (c->spec->storage.deltas->driver != VP_STORAGE_RBD)
		return spec_err_path(c, first,
				     "qcow2 delta settings do not apply to full clones: clones.mode 'full' copies "
				     "the base with its own layout (drop the key)");
	return spec_err_path(c, first,
			     "qcow2 delta settings do not apply to an rbd delta tier: tier '%s' makes RBD clones "
			     "(drop the key)", c->spec->storage.deltas->name);
}

/* LUKS disks are made by qemu-img on this machine with a key handed over in memory, and their
 * keys go into this machine's libvirt: dir tiers, local hosts, qcow2 deltas of linked clones. */
static int check_encrypt(spec_ctx *c, const vp_spec *s)
{
	const vp_spec_tier *dd = s->data_disk.size ? s->data_disk.tier : NULL;

	if (s->delta.encrypt == VP_SPEC_ENCRYPT_NONE)
		return 0;
	if (s->storage.deltas->driver == VP_STORAGE_RBD || (dd && dd->driver == VP_STORAGE_RBD))
		return spec_err_path(c, "delta.encrypt",
				     "'luks' encrypts qcow2 disks on dir tiers: tier '%s' is rbd (drop the key, "
				     "or put deltas and data disks on dir tiers)",
				     s->storage.deltas->driver == VP_STORAGE_RBD ? s->storage.deltas->name : dd->name);
	if (s->clones.mode == VP_CLONE_FULL)
		return spec_err_path(c, "delta.encrypt",
				     "'luks' is for linked clones: clones.mode 'full' copies the base as it is "
				     "(drop one of the keys)");
	if (s->host_count > 1)
		return spec_err_path(c, "delta.encrypt",
				     "'luks' is for one-host pools for now (this spec has %zu hosts): a disk's "
				     "key lives in its host's libvirt, and moving clones would have to move it",
				     s->host_count);
	for (size_t i = 0; i < s->host_count; i++)
		if (s->hosts[i].remote || s->hosts[i].has_ssh)
			return spec_err_path(c, "delta.encrypt",
					     "'luks' needs the pool's disks and libvirt on this machine: host '%s' "
					     "is reached over SSH (its keys would have to cross the network)",
					     s->hosts[i].name);
	return 0;
}

static int finish(spec_ctx *c)
{
	vp_spec *s = c->spec;
	vp_spec_host *local;
	int r;

	if ((r = check_delta_format(c)) < 0)
		return r;
	if (s->data_disk.size) {
		if (!c->refs.data_tier)
			s->data_disk.tier = s->storage.deltas;
		else if ((r = resolve_tier(c, "data_disk.tier", c->refs.data_tier, &s->data_disk.tier)) < 0)
			return r;
	}
	if (!s->host_count) {
		if (!(local = spec_alloc(&c->in->arena, sizeof(*local))))
			return VP_ENOMEM;
		*local = (vp_spec_host){ .name = "local", .uri = "qemu:///system", .ssh.port = 22,
					 .max_clones = VP_SPEC_UNLIMITED };
		s->hosts = local;
		s->host_count = 1;
	}
	if ((r = check_rbd_disks(c, s)) < 0)
		return r;
	/* Every host of a pool on shared storage would list every clone's disk as its own: until
	 * a host's inventory is cut to its placed clones, such a pool has one host. */
	if (s->host_count > 1 &&
	    (s->storage.bases->driver == VP_STORAGE_RBD || s->storage.deltas->driver == VP_STORAGE_RBD ||
	     (s->data_disk.size && s->data_disk.tier->driver == VP_STORAGE_RBD)))
		return spec_err_path(c, "hosts",
				     "a pool whose disks are on an rbd tier runs on one host for now (this spec "
				     "has %zu); use one pool per host, or dir tiers for a pool over many hosts",
				     s->host_count);
	inherit_overcommit(s);
	if ((r = resolve_ssh(c)) < 0 || (r = check_encrypt(c, s)) < 0 || (r = check_names(c)) < 0)
		return r;
	return spec_resolve_template(c);
}

int spec_walk(spec_ctx *c, const spec_node *root)
{
	char got[SPEC_QUOTE_MAX];
	int r;

	if (root->kind != SPEC_MAP)
		return spec_err(c, root, "expected a mapping of spec sections at the top level, got %s",
				spec_describe(got, sizeof(got), root));
	if ((r = spec_loc_add(c->in, "", NULL, root)) < 0)
		return r;
	set_defaults(c->spec);
	if ((r = spec_walk_map(c, root, top_fields, VP_ARRAY_SIZE(top_fields), c->spec, NULL)) < 0)
		return r;
	return finish(c);
}
