/* placement.c: which host each clone runs on, which clones go when the pool shrinks, which move when asked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdipool/error.h"
#include "vdipool/placement.h"
#include "util/strmap.h"
#include "util/util.h"

const char *vp_placement_policy_name(vp_placement_policy policy)
{
	return policy == VP_PLACEMENT_PACK ? "pack" : policy == VP_PLACEMENT_SPREAD ? "spread" : "?";
}

/* ---- shared state ---------------------------------------------------------- */

/* One host while clones are being given out. vCPUs in thousandths. */
typedef struct hstate {
	const vp_placement_host *h;
	uint64_t mem_cap, mem_used;
	uint64_t cpu_cap, cpu_used;
	unsigned count, new_count;
} hstate;

typedef struct ctx {
	const vp_placement_input *in;
	vp_strmap hosts;  /* name -> index + 1 */
	const vp_placement_clone **sorted; /* clones by index, then name */
	size_t *host_of;  /* per sorted clone: input host index or VP_PLACEMENT_NO_HOST */
	hstate *hs;
} ctx;

/* bytes x ratio/1000, exact, saturating (no host has 2^64 bytes). */
static uint64_t mul_milli(uint64_t n, unsigned milli)
{
	uint64_t q = n / 1000, r = n % 1000;

	if (q && milli > UINT64_MAX / q)
		return UINT64_MAX;
	return q * milli + r * milli / 1000;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static int by_index(const void *a, const void *b)
{
	const vp_placement_clone *x = *(const vp_placement_clone *const *)a, *y = *(const vp_placement_clone *const *)b;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void ctx_release(ctx *c)
{
	vp_strmap_release(&c->hosts);
	free(c->sorted);
	free(c->host_of);
	free(c->hs);
}

static void hstate_init(hstate *s, const vp_placement_host *h)
{
	*s = (hstate){ .h = h };
	s->mem_cap = mul_milli(h->memory_bytes, h->memory_overcommit_milli);
	s->cpu_cap = (uint64_t)h->cpus * h->cpu_overcommit_milli;
	s->mem_used = h->other_memory_bytes;
	s->cpu_used = h->other_vcpus > UINT64_MAX / 1000 ? UINT64_MAX : h->other_vcpus * 1000;
}

static void hstate_add(hstate *s, const vp_placement_clone *cl, bool is_new)
{
	s->mem_used = add_sat(s->mem_used, cl->memory_bytes);
	s->cpu_used = add_sat(s->cpu_used, (uint64_t)cl->vcpus * 1000);
	s->count++;
	s->new_count += is_new;
}

static void hstate_remove(hstate *s, const vp_placement_clone *cl)
{
	s->mem_used -= cl->memory_bytes < s->mem_used ? cl->memory_bytes : s->mem_used;
	s->cpu_used -= (uint64_t)cl->vcpus * 1000 < s->cpu_used ? (uint64_t)cl->vcpus * 1000 : s->cpu_used;
	s->count--;
}

/* Checks the input, maps host names, sorts the clones and accounts every
 * clone that has an input host to it. */
static int ctx_init(ctx *c, const vp_placement_input *in)
{
	vp_strmap names = VP_STRMAP_INIT;
	size_t i, n = in->clone_count;
	int r = 0;

	*c = (ctx){ .in = in, .hosts = VP_STRMAP_INIT };
	if ((in->host_count && !in->hosts) || (n && !in->clones))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "placement: hosts or clones missing");
	c->hs = calloc(in->host_count ? in->host_count : 1, sizeof(*c->hs));
	c->sorted = calloc(n ? n : 1, sizeof(*c->sorted));
	c->host_of = calloc(n ? n : 1, sizeof(*c->host_of));
	if (!c->hs || !c->sorted || !c->host_of) {
		ctx_release(c);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (i = 0; i < in->host_count && r == 0; i++) {
		const char *name = in->hosts[i].name;
		if (!name)
			r = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "placement: host %zu has no name", i);
		else if (vp_strmap_get(&c->hosts, name))
			r = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "placement: host '%s' is listed twice", name);
		else
			r = vp_strmap_put(&c->hosts, name, (void *)(uintptr_t)(i + 1));
		hstate_init(&c->hs[i], &in->hosts[i]);
	}
	for (i = 0; i < n && r == 0; i++) {
		const char *name = in->clones[i].name;
		if (!name)
			r = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "placement: clone %zu has no name", i);
		else if (vp_strmap_get(&names, name))
			r = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "placement: clone '%s' is listed twice", name);
		else
			r = vp_strmap_put(&names, name, (void *)name);
		c->sorted[i] = &in->clones[i];
	}
	vp_strmap_release(&names);
	if (r < 0) {
		ctx_release(c);
		return r;
	}
	qsort(c->sorted, n, sizeof(*c->sorted), by_index);
	for (i = 0; i < n; i++) {
		uintptr_t h = c->sorted[i]->host ? (uintptr_t)vp_strmap_get(&c->hosts, c->sorted[i]->host) : 0;
		c->host_of[i] = h ? h - 1 : VP_PLACEMENT_NO_HOST;
		if (h)
			hstate_add(&c->hs[h - 1], c->sorted[i], false);
	}
	return 0;
}

/* ---- room and choice -------------------------------------------------------- */

static bool fits(const hstate *s, const vp_placement_clone *cl)
{
	uint64_t cpu = (uint64_t)cl->vcpus * 1000;

	return s->h->reachable && s->count < s->h->max_clones && s->mem_used <= s->mem_cap &&
	       cl->memory_bytes <= s->mem_cap - s->mem_used && s->cpu_used <= s->cpu_cap &&
	       cpu <= s->cpu_cap - s->cpu_used;
}

typedef struct frac {
	uint64_t num, den;
} frac;

/* a < b, exactly; a zero denominator counts as nothing free. */
static bool frac_less(frac a, frac b)
{
	if (!a.den || !b.den)
		return !a.den && b.den && b.num;
	return (unsigned __int128)a.num * b.den < (unsigned __int128)b.num * a.den;
}

/* The free fraction of the scarcer resource. */
static frac free_frac(const hstate *s)
{
	frac m = { s->mem_cap - s->mem_used, s->mem_cap }, c = { s->cpu_cap - s->cpu_used, s->cpu_cap };

	return frac_less(c, m) ? c : m;
}

static size_t choose(const ctx *c, const vp_placement_clone *cl, vp_placement_policy policy, const size_t *want)
{
	size_t best = VP_PLACEMENT_NO_HOST;
	frac bf = { 0, 0 };

	for (size_t i = 0; i < c->in->host_count; i++) {
		const hstate *s = &c->hs[i];
		if (!fits(s, cl) || (want && s->count >= want[i]))
			continue;
		if (policy == VP_PLACEMENT_PACK)
			return i;
		frac f = free_frac(s);
		if (best == VP_PLACEMENT_NO_HOST || frac_less(bf, f)) {
			best = i;
			bf = f;
		}
	}
	return best;
}

/* ---- results' strings ------------------------------------------------------- */

typedef struct placement_priv {
	vp_placement pub; /* first: the public pointer is this one */
	char **strs;
	size_t nstrs, capstrs;
	char **warnings;
	size_t nwarn, capwarn;
} placement_priv;

static int push(char ***arr, size_t *n, size_t *cap, char *s)
{
	if (!s)
		return VP_ENOMEM;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		char **a = realloc(*arr, nc * sizeof(*a));
		if (!a) {
			free(s);
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		}
		*arr = a;
		*cap = nc;
	}
	(*arr)[(*n)++] = s;
	return 0;
}

/* "4", "4.5", "0.125" */
static const char *fmt_milli(char *buf, size_t len, uint64_t milli)
{
	uint64_t rest = milli % 1000;
	int w = 3;

	if (!rest) {
		snprintf(buf, len, "%llu", (unsigned long long)(milli / 1000));
		return buf;
	}
	while (rest % 10 == 0) {
		rest /= 10;
		w--;
	}
	snprintf(buf, len, "%llu.%0*llu", (unsigned long long)(milli / 1000), w, (unsigned long long)rest);
	return buf;
}

/* Why host s cannot take clone cl. */
static void why_not(vp_buf *b, const hstate *s, const vp_placement_clone *cl)
{
	char x[32], y[32], z[32];
	uint64_t cpu = (uint64_t)cl->vcpus * 1000;
	bool mem, vcpu;

	vp_buf_printf(b, "%s: ", s->h->name);
	if (!s->h->reachable) {
		vp_buf_puts(b, "unreachable");
		return;
	}
	if (s->h->max_clones == 0) {
		vp_buf_puts(b, "takes no new clones (max_clones: 0)");
		return;
	}
	if (s->count >= s->h->max_clones) {
		vp_buf_printf(b, "holds its max_clones (%u)", s->h->max_clones);
		return;
	}
	mem = s->mem_used > s->mem_cap || cl->memory_bytes > s->mem_cap - s->mem_used;
	vcpu = s->cpu_used > s->cpu_cap || cpu > s->cpu_cap - s->cpu_used;
	if (mem)
		vp_buf_printf(b, "not enough memory (needs %s, %s free of %s)", vp_fmt_bytes(cl->memory_bytes, x, sizeof(x)),
			      vp_fmt_bytes(s->mem_used > s->mem_cap ? 0 : s->mem_cap - s->mem_used, y, sizeof(y)),
			      vp_fmt_bytes(s->mem_cap, z, sizeof(z)));
	if (vcpu)
		vp_buf_printf(b, "%snot enough vCPUs (needs %u, %s free of %s)", mem ? ", " : "", cl->vcpus,
			      fmt_milli(x, sizeof(x), s->cpu_used > s->cpu_cap ? 0 : s->cpu_cap - s->cpu_used),
			      fmt_milli(y, sizeof(y), s->cpu_cap));
}

static char *reasons(const ctx *c, const vp_placement_clone *cl)
{
	vp_buf b = VP_BUF_INIT;

	if (!c->in->host_count)
		vp_buf_puts(&b, "no hosts");
	for (size_t i = 0; i < c->in->host_count; i++) {
		if (i)
			vp_buf_puts(&b, "; ");
		why_not(&b, &c->hs[i], cl);
	}
	if (b.oom) {
		vp_buf_release(&b);
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		return NULL;
	}
	return vp_buf_detach(&b);
}

/* ---- warnings --------------------------------------------------------------- */

static int host_warnings(placement_priv *p, const ctx *c, size_t i, unsigned kept)
{
	const hstate *s = &c->hs[i];
	const char *name = s->h->name;
	char x[32], y[32];
	int r = 0;

	if (!s->h->reachable && kept)
		r = push(&p->warnings, &p->nwarn, &p->capwarn,
			 vp_strdup_printf("host '%s' is unreachable: its %u clone%s left where %s", name, kept,
					  kept == 1 ? " is" : "s are", kept == 1 ? "it is" : "they are"));
	if (r == 0 && s->count > s->h->max_clones)
		r = push(&p->warnings, &p->nwarn, &p->capwarn,
			 s->h->max_clones == 0
				 ? vp_strdup_printf("host '%s' takes no new clones (max_clones: 0) and still holds %u; "
						    "`vdipool rebalance` moves them", name, s->count)
				 : vp_strdup_printf("host '%s' holds %u clones of this pool, over its max_clones (%u)",
						    name, s->count, s->h->max_clones));
	if (r == 0 && s->mem_used > s->mem_cap)
		r = push(&p->warnings, &p->nwarn, &p->capwarn,
			 vp_strdup_printf("host '%s' is over its memory capacity: %s committed of %s", name,
					  vp_fmt_bytes(s->mem_used, x, sizeof(x)), vp_fmt_bytes(s->mem_cap, y, sizeof(y))));
	if (r == 0 && s->cpu_used > s->cpu_cap)
		r = push(&p->warnings, &p->nwarn, &p->capwarn,
			 vp_strdup_printf("host '%s' is over its vCPU capacity: %s committed of %s", name,
					  fmt_milli(x, sizeof(x), s->cpu_used), fmt_milli(y, sizeof(y), s->cpu_cap)));
	return r;
}

static int by_host_name(const void *a, const void *b)
{
	const vp_placement_clone *x = *(const vp_placement_clone *const *)a, *y = *(const vp_placement_clone *const *)b;

	return strcmp(x->host, y->host);
}

/* Kept clones on hosts that are not in the input, one warning per host, by name. */
static int unknown_warnings(placement_priv *p, const ctx *c)
{
	const vp_placement_clone **lost = NULL;
	size_t n = 0, i, j;
	int r = 0;

	for (i = 0; i < c->in->clone_count; i++)
		if (c->sorted[i]->host && c->host_of[i] == VP_PLACEMENT_NO_HOST)
			n++;
	if (!n)
		return 0;
	if (!(lost = malloc(n * sizeof(*lost))))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (i = 0, n = 0; i < c->in->clone_count; i++)
		if (c->sorted[i]->host && c->host_of[i] == VP_PLACEMENT_NO_HOST)
			lost[n++] = c->sorted[i];
	qsort(lost, n, sizeof(*lost), by_host_name);
	for (i = 0; i < n && r == 0; i = j) {
		for (j = i; j < n && !strcmp(lost[j]->host, lost[i]->host); j++)
			;
		r = push(&p->warnings, &p->nwarn, &p->capwarn,
			 vp_strdup_printf("host '%s' is not in the spec: its %zu clone%s left where %s", lost[i]->host,
					  j - i, j - i == 1 ? " is" : "s are", j - i == 1 ? "it is" : "they are"));
	}
	free(lost);
	return r;
}

/* ---- compute ---------------------------------------------------------------- */

void vp_placement_free(vp_placement *placement)
{
	placement_priv *p = (placement_priv *)placement;

	if (!p)
		return;
	for (size_t i = 0; i < p->nstrs; i++)
		free(p->strs[i]);
	for (size_t i = 0; i < p->nwarn; i++)
		free(p->warnings[i]);
	free(p->strs);
	free(p->warnings);
	free(p->pub.clones);
	free(p->pub.hosts);
	free(p);
}

/* Gives every new clone a host; `want` (rebalance's targets) caps hosts when set. */
static int place_new(placement_priv *p, ctx *c, vp_placement_policy policy)
{
	/* A clone refused on an unchanged state with the same needs gets the same
	 * reason: 10,000 refused clones share one string, not 10,000. */
	uint64_t gen = 0, why_gen = UINT64_MAX, why_mem = 0;
	unsigned why_cpu = 0;
	char *why = NULL;
	int r;

	for (size_t i = 0; i < c->in->clone_count; i++) {
		const vp_placement_clone *cl = c->sorted[i];
		vp_placement_assignment *a = &p->pub.clones[i];
		size_t h;

		*a = (vp_placement_assignment){ .clone = cl->name, .index = cl->index, .host = c->host_of[i] };
		if (cl->host) {
			a->status = VP_PLACED_KEPT;
			a->host_name = cl->host;
			p->pub.kept++;
			continue;
		}
		if ((h = choose(c, cl, policy, NULL)) != VP_PLACEMENT_NO_HOST) {
			hstate_add(&c->hs[h], cl, true);
			c->host_of[i] = h;
			*a = (vp_placement_assignment){ .clone = cl->name, .index = cl->index, .status = VP_PLACED_NEW,
							.host = h, .host_name = c->in->hosts[h].name };
			p->pub.placed++;
			gen++;
			continue;
		}
		if (why_gen != gen || why_mem != cl->memory_bytes || why_cpu != cl->vcpus) {
			if ((r = push(&p->strs, &p->nstrs, &p->capstrs, reasons(c, cl))) < 0)
				return r;
			why = p->strs[p->nstrs - 1];
			why_gen = gen, why_mem = cl->memory_bytes, why_cpu = cl->vcpus;
		}
		a->status = VP_PLACED_NONE;
		a->why = why;
		p->pub.unplaced++;
	}
	return 0;
}

static int finish_result(placement_priv *p, ctx *c)
{
	unsigned *kept = calloc(c->in->host_count ? c->in->host_count : 1, sizeof(*kept));
	int r = 0;

	if (!kept)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; i < c->in->clone_count; i++)
		if (p->pub.clones[i].status == VP_PLACED_KEPT && p->pub.clones[i].host != VP_PLACEMENT_NO_HOST)
			kept[p->pub.clones[i].host]++;
	for (size_t i = 0; i < c->in->host_count; i++) {
		const hstate *s = &c->hs[i];
		p->pub.hosts[i] = (vp_placement_usage){
			.name = s->h->name, .clones = s->count, .new_clones = s->new_count,
			.memory_committed = s->mem_used, .memory_capacity = s->mem_cap,
			.vcpus_committed_milli = s->cpu_used, .vcpus_capacity_milli = s->cpu_cap,
			.over_capacity = s->count > s->h->max_clones || s->mem_used > s->mem_cap || s->cpu_used > s->cpu_cap,
		};
		if (r == 0)
			r = host_warnings(p, c, i, kept[i]);
	}
	free(kept);
	if (r == 0)
		r = unknown_warnings(p, c);
	p->pub.warnings = (const char *const *)p->warnings;
	p->pub.warning_count = p->nwarn;
	return r;
}

static int compute(placement_priv **out, ctx *c, vp_placement_policy policy)
{
	placement_priv *p = calloc(1, sizeof(*p));
	size_t n = c->in->clone_count, nh = c->in->host_count;
	int r;

	*out = NULL;
	if (!p || !(p->pub.clones = calloc(n ? n : 1, sizeof(*p->pub.clones))) ||
	    !(p->pub.hosts = calloc(nh ? nh : 1, sizeof(*p->pub.hosts)))) {
		vp_placement_free(p ? &p->pub : NULL);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	p->pub.count = n;
	p->pub.host_count = nh;
	if ((r = place_new(p, c, policy)) < 0 || (r = finish_result(p, c)) < 0) {
		vp_placement_free(&p->pub);
		return r;
	}
	*out = p;
	return 0;
}

int vp_placement_compute(vp_placement **out, const vp_placement_input *in)
{
	placement_priv *p = NULL;
	ctx c;
	int r;

	*out = NULL;
	if ((r = ctx_init(&c, in)) < 0)
		return r;
	r = compute(&p, &c, in->policy);
	ctx_release(&c);
	if (r == 0)
		*out = &p->pub;
	return r;
}

/* ---- scale-down --------------------------------------------------------------- */

/* Clones of each input host as one array sorted by (host, index, name):
 * host i's are [start[i], start[i + 1]). Only clones on input hosts. */
static int group_by_host(const ctx *c, const vp_placement_clone ***out, size_t **start, bool (*keep)(const ctx *, size_t))
{
	size_t nh = c->in->host_count, n = c->in->clone_count, i;
	const vp_placement_clone **g = calloc(n ? n : 1, sizeof(*g));
	size_t *st = calloc(nh + 1, sizeof(*st)), *fill = calloc(nh + 1, sizeof(*fill));

	if (!g || !st || !fill) {
		free(g), free(st), free(fill);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++)
		if (c->host_of[i] != VP_PLACEMENT_NO_HOST && (!keep || keep(c, i)))
			st[c->host_of[i] + 1]++;
	for (i = 0; i < nh; i++)
		st[i + 1] += st[i];
	memcpy(fill, st, (nh + 1) * sizeof(*st));
	/* c->sorted is in (index, name) order, so each host's slice is too. */
	for (i = 0; i < n; i++)
		if (c->host_of[i] != VP_PLACEMENT_NO_HOST && (!keep || keep(c, i)))
			g[fill[c->host_of[i]]++] = c->sorted[i];
	free(fill);
	*out = g;
	*start = st;
	return 0;
}

int vp_placement_surplus(const char ***out, size_t *nout, const vp_placement_input *in, size_t remove)
{
	const vp_placement_clone **g = NULL;
	size_t *start = NULL, *left = NULL, n = 0;
	const char **names = NULL;
	ctx c;
	int r;

	*out = NULL;
	*nout = 0;
	if ((r = ctx_init(&c, in)) < 0)
		return r;
	if ((r = group_by_host(&c, &g, &start, NULL)) < 0)
		goto out;
	left = calloc(in->host_count + 1, sizeof(*left));
	names = calloc(remove < in->clone_count ? remove + 1 : in->clone_count + 1, sizeof(*names));
	if (!left || !names) {
		r = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < in->host_count; i++)
		left[i] = start[i + 1] - start[i];
	while (n < remove) {
		size_t best = VP_PLACEMENT_NO_HOST;
		for (size_t i = 0; i < in->host_count; i++)
			if (in->hosts[i].reachable && left[i] && (best == VP_PLACEMENT_NO_HOST || left[i] >= left[best]))
				best = i;
		if (best == VP_PLACEMENT_NO_HOST)
			break;
		names[n++] = g[start[best] + --left[best]]->name;
	}
	*out = names;
	*nout = n;
	names = NULL;
out:
	free(names);
	free(left);
	free(g);
	free(start);
	ctx_release(&c);
	return r;
}

/* ---- rebalance -------------------------------------------------------------- */

void vp_placement_moves_free(vp_placement_moves *moves)
{
	if (!moves)
		return;
	free(moves->moves);
	free(moves->target);
	free(moves);
}

static bool movable(const ctx *c, size_t i)
{
	return c->host_of[i] != VP_PLACEMENT_NO_HOST && c->in->hosts[c->host_of[i]].reachable;
}

/* The target: the policy from scratch for every movable clone, the others kept. */
static int scratch_target(const ctx *c, size_t *target)
{
	const vp_placement_input *in = c->in;
	vp_placement_clone *cl = calloc(in->clone_count ? in->clone_count : 1, sizeof(*cl));
	vp_placement_input scratch = *in;
	placement_priv *p = NULL;
	size_t n = 0;
	ctx sc;
	int r;

	if (!cl)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (size_t i = 0; i < in->clone_count; i++) {
		if (!c->sorted[i]->host)
			continue; /* new clones are not rebalance's business */
		cl[n] = *c->sorted[i];
		if (movable(c, i))
			cl[n].host = NULL;
		n++;
	}
	scratch.clones = cl;
	scratch.clone_count = n;
	if ((r = ctx_init(&sc, &scratch)) == 0) {
		if ((r = compute(&p, &sc, in->policy)) == 0)
			for (size_t i = 0; i < in->host_count; i++)
				target[i] = p->pub.hosts[i].clones;
		vp_placement_free(p ? &p->pub : NULL);
		ctx_release(&sc);
	}
	free(cl);
	return r;
}

/* The host furthest above its target with a clone left to give (ties: the
 * later host) that is not stuck. */
static size_t pick_source(const ctx *c, const size_t *target, const size_t *start, const size_t *left, const bool *stuck)
{
	size_t best = VP_PLACEMENT_NO_HOST, over = 0;

	for (size_t i = 0; i < c->in->host_count; i++) {
		size_t cnt = c->hs[i].count;
		if (stuck[i] || left[i] == start[i] || cnt <= target[i])
			continue;
		if (cnt - target[i] >= over) {
			over = cnt - target[i];
			best = i;
		}
	}
	return best;
}

/* The host furthest below its target that can take the clone (ties: the earlier host). */
static size_t pick_dest(const ctx *c, const size_t *target, const vp_placement_clone *cl)
{
	size_t best = VP_PLACEMENT_NO_HOST, under = 0;

	for (size_t i = 0; i < c->in->host_count; i++) {
		size_t cnt = c->hs[i].count;
		if (cnt >= target[i] || !fits(&c->hs[i], cl))
			continue;
		if (target[i] - cnt > under) {
			under = target[i] - cnt;
			best = i;
		}
	}
	return best;
}

static int rebalance(vp_placement_moves *m, ctx *c, size_t max_moves)
{
	size_t nh = c->in->host_count, *start = NULL, *left = NULL, cap = 0;
	const vp_placement_clone **g = NULL;
	bool *stuck = NULL;
	int r;

	if ((r = scratch_target(c, m->target)) < 0 || (r = group_by_host(c, &g, &start, movable)) < 0)
		return r;
	left = calloc(nh + 1, sizeof(*left));
	stuck = calloc(nh + 1, sizeof(*stuck));
	if (!left || !stuck) {
		r = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nh; i++)
		left[i] = start[i + 1]; /* next clone to give is g[left[i] - 1]: the highest index */
	/* Past the budget the same walk goes on, counted only: that is `pending`. */
	for (;;) {
		size_t from = pick_source(c, m->target, start, left, stuck), to;
		const vp_placement_clone *cl;
		if (from == VP_PLACEMENT_NO_HOST)
			break;
		cl = g[left[from] - 1];
		if ((to = pick_dest(c, m->target, cl)) == VP_PLACEMENT_NO_HOST) {
			/* Moves only fill hosts below target, never free room there: stuck for good. */
			stuck[from] = true;
			continue;
		}
		left[from]--;
		hstate_remove(&c->hs[from], cl);
		hstate_add(&c->hs[to], cl, false);
		if (m->count == max_moves) {
			m->pending++;
			continue;
		}
		if (m->count == cap) {
			size_t nc = cap ? cap * 2 : 16;
			vp_placement_move *a = realloc(m->moves, nc * sizeof(*a));
			if (!a) {
				r = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
				goto out;
			}
			m->moves = a;
			cap = nc;
		}
		m->moves[m->count++] = (vp_placement_move){ .clone = cl->name, .index = cl->index, .from = from, .to = to,
							    .from_name = c->in->hosts[from].name,
							    .to_name = c->in->hosts[to].name };
	}
out:
	free(g);
	free(start);
	free(left);
	free(stuck);
	return r;
}

int vp_placement_rebalance(vp_placement_moves **out, const vp_placement_input *in, size_t max_moves)
{
	vp_placement_moves *m = NULL;
	ctx c;
	int r;

	*out = NULL;
	if ((r = ctx_init(&c, in)) < 0)
		return r;
	if (!(m = calloc(1, sizeof(*m))) || !(m->target = calloc(in->host_count + 1, sizeof(*m->target)))) {
		r = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = rebalance(m, &c, max_moves)) < 0)
		goto out;
	*out = m;
	m = NULL;
out:
	vp_placement_moves_free(m);
	ctx_release(&c);
	return r;
}
