/* test_placement.c: placement rules one by one: spread, pack, capacity, drain, stickiness, scale-down, rebalance, scale. */
#include <stdio.h>

#include "vdipool/error.h"
#include "vdipool/placement.h"
#include "vdipool/spec.h"
#include "vp_test.h"

#define GIB (1ull << 30)
#define MAXC 12000
#define MAXH 128

static char names[MAXC][16];
static vp_placement_clone cl[MAXC];
static vp_placement_host hs[MAXH];
static char hnames[MAXH][8];

/* A reachable host: `mem` GiB, `cpus` CPUs, default ratios (4.0, 1.0), no limit. */
static vp_placement_host *host(size_t i, uint64_t mem, unsigned cpus)
{
	snprintf(hnames[i], sizeof(hnames[i]), "h%zu", i + 1);
	hs[i] = (vp_placement_host){ .name = hnames[i], .reachable = true, .memory_bytes = mem * GIB, .cpus = cpus,
				     .cpu_overcommit_milli = 4000, .memory_overcommit_milli = 1000,
				     .max_clones = VP_PLACEMENT_UNLIMITED };
	return &hs[i];
}

/* Clones 1..n (index i + 1, name c-N) of `mem` GiB and `vcpus`, all new. */
static void clones(size_t n, uint64_t mem, unsigned vcpus)
{
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "c-%zu", i + 1);
		cl[i] = (vp_placement_clone){ .name = names[i], .index = (unsigned)i + 1, .memory_bytes = mem * GIB,
					      .vcpus = vcpus };
	}
}

static vp_placement_input input(vp_placement_policy policy, size_t nh, size_t nc)
{
	return (vp_placement_input){ .policy = policy, .host_count = nh, .hosts = hs, .clone_count = nc, .clones = cl };
}

static vp_placement *compute(vp_placement_policy policy, size_t nh, size_t nc)
{
	vp_placement_input in = input(policy, nh, nc);
	vp_placement *p = NULL;

	if (vp_placement_compute(&p, &in) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	return p;
}

static const vp_placement_assignment *find(const vp_placement *p, const char *name)
{
	for (size_t i = 0; i < p->count; i++)
		if (!strcmp(p->clones[i].clone, name))
			return &p->clones[i];
	return NULL;
}

static bool has_warning(const vp_placement *p, const char *text)
{
	for (size_t i = 0; i < p->warning_count; i++)
		if (!strcmp(p->warnings[i], text))
			return true;
	for (size_t i = 0; i < p->warning_count; i++)
		fprintf(stderr, "\n  warning: %s", p->warnings[i]);
	fprintf(stderr, "\n  expected: %s\n", text);
	return false;
}

/* ---- spread and pack ---- */

static void test_spread_equal(void)
{
	vp_placement *p;

	for (size_t i = 0; i < 3; i++)
		host(i, 64, 16);
	clones(10, 4, 2);
	p = compute(VP_PLACEMENT_SPREAD, 3, 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 4);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 3);
	CU_ASSERT_EQUAL(p->hosts[2].clones, 3);
	CU_ASSERT_EQUAL(p->placed, 10);
	CU_ASSERT_EQUAL(p->kept, 0);
	CU_ASSERT_EQUAL(p->unplaced, 0);
	CU_ASSERT_EQUAL(p->warning_count, 0);
	/* Round by round in index order: 1 2 3 on h1 h2 h3, then 4 on h1 again. */
	for (size_t i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(p->clones[i].status, VP_PLACED_NEW);
		CU_ASSERT_EQUAL(p->clones[i].host, i % 3);
		VP_ASSERT_STR_EQ(p->clones[i].host_name, hnames[i % 3]);
		CU_ASSERT_PTR_NULL(p->clones[i].why);
	}
	CU_ASSERT_EQUAL(p->hosts[0].memory_committed, 16 * GIB);
	CU_ASSERT_EQUAL(p->hosts[0].memory_capacity, 64 * GIB);
	CU_ASSERT_EQUAL(p->hosts[0].vcpus_committed_milli, 8000);
	CU_ASSERT_EQUAL(p->hosts[0].vcpus_capacity_milli, 64000);
	vp_placement_free(p);
}

/* Spread follows the free fraction: a host twice as large takes twice as many. */
static void test_spread_proportional(void)
{
	vp_placement *p;

	host(0, 32, 64);
	host(1, 64, 64);
	clones(12, 4, 1);
	p = compute(VP_PLACEMENT_SPREAD, 2, 12);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 4);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 8);
	vp_placement_free(p);
}

static void test_pack(void)
{
	vp_placement *p;

	for (size_t i = 0; i < 3; i++)
		host(i, 16, 16);
	clones(6, 4, 1);
	p = compute(VP_PLACEMENT_PACK, 3, 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 4);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 2);
	CU_ASSERT_EQUAL(p->hosts[2].clones, 0);
	for (size_t i = 0; i < 6; i++)
		CU_ASSERT_EQUAL(p->clones[i].host, i < 4 ? 0 : 1);
	vp_placement_free(p);
}

/* ---- capacity ---- */

static void test_capacity_and_max_clones(void)
{
	vp_placement *p;

	host(0, 64, 64)->max_clones = 2;
	host(1, 8, 64);
	clones(5, 4, 1);
	p = compute(VP_PLACEMENT_SPREAD, 2, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 2);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 2);
	CU_ASSERT_EQUAL(p->placed, 4);
	CU_ASSERT_EQUAL(p->unplaced, 1);
	CU_ASSERT_EQUAL(p->clones[4].status, VP_PLACED_NONE);
	CU_ASSERT_EQUAL(p->clones[4].host, VP_PLACEMENT_NO_HOST);
	CU_ASSERT_PTR_NULL(p->clones[4].host_name);
	VP_ASSERT_STR_EQ(p->clones[4].why,
			 "h1: holds its max_clones (2); h2: not enough memory (needs 4.0 GiB, 0 B free of 8.0 GiB)");
	CU_ASSERT_EQUAL(p->warning_count, 0);
	vp_placement_free(p);

	/* Pack honours the same limits. */
	host(0, 64, 64)->max_clones = 2;
	host(1, 8, 64);
	p = compute(VP_PLACEMENT_PACK, 2, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 2);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 2);
	CU_ASSERT_EQUAL(p->unplaced, 1);
	vp_placement_free(p);
}

static void test_overcommit_math(void)
{
	vp_placement *p;
	vp_placement_host *h;

	/* 3 CPUs x 1.5 = 4.5 vCPUs: four 1-vCPU clones fit, a fifth does not. */
	h = host(0, 64, 3);
	h->cpu_overcommit_milli = 1500;
	clones(5, 1, 1);
	p = compute(VP_PLACEMENT_SPREAD, 1, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].vcpus_capacity_milli, 4500);
	CU_ASSERT_EQUAL(p->placed, 4);
	VP_ASSERT_STR_EQ(p->clones[4].why, "h1: not enough vCPUs (needs 1, 0.5 free of 4.5)");
	vp_placement_free(p);

	/* 10 GiB x 1.5 = 15 GiB: three 4 GiB clones; other domains' memory counts. */
	h = host(0, 10, 64);
	h->memory_overcommit_milli = 1500;
	clones(4, 4, 1);
	p = compute(VP_PLACEMENT_SPREAD, 1, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].memory_capacity, 15 * GIB);
	CU_ASSERT_EQUAL(p->placed, 3);
	vp_placement_free(p);
	h->other_memory_bytes = 4 * GIB;
	p = compute(VP_PLACEMENT_SPREAD, 1, 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->placed, 2);
	CU_ASSERT_EQUAL(p->hosts[0].memory_committed, 12 * GIB);
	VP_ASSERT_STR_EQ(p->clones[2].why, "h1: not enough memory (needs 4.0 GiB, 3.0 GiB free of 15.0 GiB)");
	vp_placement_free(p);

	/* The default 4.0: 2 CPUs carry 8 vCPUs, four 2-vCPU clones; other vCPUs count too. */
	host(0, 64, 2);
	clones(5, 1, 2);
	p = compute(VP_PLACEMENT_SPREAD, 1, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->placed, 4);
	vp_placement_free(p);
	hs[0].other_vcpus = 3;
	p = compute(VP_PLACEMENT_SPREAD, 1, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->placed, 2);
	VP_ASSERT_STR_EQ(p->clones[2].why, "h1: not enough vCPUs (needs 2, 1 free of 8)");
	vp_placement_free(p);

	/* Memory and vCPUs short at once: both are said. Ratio below 1 shrinks. */
	h = host(0, 8, 1);
	h->memory_overcommit_milli = 500;
	h->cpu_overcommit_milli = 1000;
	clones(2, 4, 1);
	p = compute(VP_PLACEMENT_SPREAD, 1, 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->placed, 1);
	VP_ASSERT_STR_EQ(p->clones[1].why, "h1: not enough memory (needs 4.0 GiB, 0 B free of 4.0 GiB), not enough "
					   "vCPUs (needs 1, 0 free of 1)");
	vp_placement_free(p);
}

/* ---- stickiness ---- */

static void test_drain_keeps_existing(void)
{
	vp_placement *p;

	host(0, 64, 16)->max_clones = 0;
	host(1, 64, 16);
	clones(5, 4, 1);
	for (size_t i = 0; i < 3; i++)
		cl[i].host = "h1";
	p = compute(VP_PLACEMENT_SPREAD, 2, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(p->clones[i].status, VP_PLACED_KEPT);
		CU_ASSERT_EQUAL(p->clones[i].host, 0);
	}
	CU_ASSERT_EQUAL(p->clones[3].host, 1);
	CU_ASSERT_EQUAL(p->clones[4].host, 1);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 3);
	CU_ASSERT_EQUAL(p->hosts[0].new_clones, 0);
	CU_ASSERT_EQUAL(p->hosts[1].new_clones, 2);
	CU_ASSERT_EQUAL(p->hosts[0].over_capacity, true);
	CU_ASSERT_EQUAL(p->kept, 3);
	CU_ASSERT_EQUAL(p->placed, 2);
	CU_ASSERT(has_warning(p, "host 'h1' takes no new clones (max_clones: 0) and still holds 3; `vdipool "
				 "rebalance` moves them"));
	vp_placement_free(p);

	/* Drained and nowhere else: refused with the reason. */
	p = compute(VP_PLACEMENT_PACK, 1, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->unplaced, 2);
	VP_ASSERT_STR_EQ(p->clones[3].why, "h1: takes no new clones (max_clones: 0)");
	vp_placement_free(p);
}

static void test_sticky_over_capacity(void)
{
	vp_placement *p;

	host(0, 8, 1)->cpu_overcommit_milli = 500;
	host(1, 64, 16);
	clones(5, 4, 1);
	for (size_t i = 0; i < 4; i++)
		cl[i].host = "h1";
	p = compute(VP_PLACEMENT_PACK, 2, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < 4; i++) {
		CU_ASSERT_EQUAL(p->clones[i].status, VP_PLACED_KEPT);
		VP_ASSERT_STR_EQ(p->clones[i].host_name, "h1");
	}
	CU_ASSERT_EQUAL(p->clones[4].status, VP_PLACED_NEW);
	VP_ASSERT_STR_EQ(p->clones[4].host_name, "h2");
	CU_ASSERT_EQUAL(p->hosts[0].over_capacity, true);
	CU_ASSERT_EQUAL(p->hosts[1].over_capacity, false);
	CU_ASSERT(has_warning(p, "host 'h1' is over its memory capacity: 16.0 GiB committed of 8.0 GiB"));
	CU_ASSERT(has_warning(p, "host 'h1' is over its vCPU capacity: 4 committed of 0.5"));
	vp_placement_free(p);
}

static void test_added_host_takes_only_new(void)
{
	vp_placement *p;

	for (size_t i = 0; i < 3; i++)
		host(i, 64, 32);
	clones(13, 4, 1);
	for (size_t i = 0; i < 10; i++)
		cl[i].host = i < 5 ? "h1" : "h2";
	p = compute(VP_PLACEMENT_SPREAD, 3, 13);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	for (size_t i = 0; i < 10; i++) {
		CU_ASSERT_EQUAL(p->clones[i].status, VP_PLACED_KEPT);
		CU_ASSERT_EQUAL(p->clones[i].host, i < 5 ? 0 : 1);
	}
	for (size_t i = 10; i < 13; i++)
		VP_ASSERT_STR_EQ(p->clones[i].host_name, "h3");
	CU_ASSERT_EQUAL(p->hosts[2].clones, 3);
	CU_ASSERT_EQUAL(p->warning_count, 0);
	CU_ASSERT_EQUAL_FATAL(find(p, "c-1") != NULL, true);
	CU_ASSERT_EQUAL(find(p, "c-1")->status, VP_PLACED_KEPT);
	CU_ASSERT_EQUAL(find(p, "c-13")->status, VP_PLACED_NEW);
	vp_placement_free(p);
}

static void test_unreachable(void)
{
	vp_placement *p;

	for (size_t i = 0; i < 3; i++)
		host(i, 64, 32);
	hs[1].reachable = false;
	clones(8, 4, 1);
	cl[0].host = "h2";
	cl[1].host = "h2";
	p = compute(VP_PLACEMENT_SPREAD, 3, 8);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->clones[0].status, VP_PLACED_KEPT);
	CU_ASSERT_EQUAL(p->clones[1].host, 1);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 2);
	CU_ASSERT_EQUAL(p->hosts[1].new_clones, 0);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 3);
	CU_ASSERT_EQUAL(p->hosts[2].clones, 3);
	CU_ASSERT(has_warning(p, "host 'h2' is unreachable: its 2 clones are left where they are"));
	vp_placement_free(p);

	/* A clone on a host the spec no longer names stays there too, and is said. */
	cl[0].host = "old-b";
	cl[1].host = "old-a";
	cl[2].host = "old-b";
	p = compute(VP_PLACEMENT_SPREAD, 3, 8);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->clones[0].status, VP_PLACED_KEPT);
	CU_ASSERT_EQUAL(p->clones[0].host, VP_PLACEMENT_NO_HOST);
	VP_ASSERT_STR_EQ(p->clones[0].host_name, "old-b");
	CU_ASSERT_EQUAL_FATAL(p->warning_count, 2);
	VP_ASSERT_STR_EQ(p->warnings[0], "host 'old-a' is not in the spec: its 1 clone is left where it is");
	VP_ASSERT_STR_EQ(p->warnings[1], "host 'old-b' is not in the spec: its 2 clones are left where they are");
	vp_placement_free(p);
}

static void test_unplaceable_reasons(void)
{
	vp_placement *p;

	host(0, 64, 32)->reachable = false;
	host(1, 64, 32)->max_clones = 0;
	host(2, 64, 32)->max_clones = 1;
	host(3, 4, 32);
	clones(6, 4, 1);
	p = compute(VP_PLACEMENT_SPREAD, 4, 6);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->placed, 2);
	CU_ASSERT_EQUAL(p->unplaced, 4);
	VP_ASSERT_STR_EQ(p->clones[2].why, "h1: unreachable; h2: takes no new clones (max_clones: 0); h3: holds its "
					   "max_clones (1); h4: not enough memory (needs 4.0 GiB, 0 B free of 4.0 GiB)");
	/* Nothing changed in between: the same reason, shared. */
	CU_ASSERT_PTR_EQUAL(p->clones[3].why, p->clones[2].why);
	CU_ASSERT_PTR_EQUAL(p->clones[5].why, p->clones[2].why);
	vp_placement_free(p);

	/* No hosts at all. */
	p = compute(VP_PLACEMENT_SPREAD, 0, 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	VP_ASSERT_STR_EQ(p->clones[0].why, "no hosts");
	vp_placement_free(p);
}

static void test_bad_input(void)
{
	vp_placement_input in;
	vp_placement *p = (vp_placement *)1;

	host(0, 64, 16);
	host(1, 64, 16);
	hs[1].name = "h1";
	clones(2, 1, 1);
	in = input(VP_PLACEMENT_SPREAD, 2, 2);
	CU_ASSERT_EQUAL(vp_placement_compute(&p, &in), VP_EINVAL);
	CU_ASSERT_PTR_NULL(p);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "placement: host 'h1' is listed twice");
	host(1, 64, 16);
	cl[1].name = "c-1";
	CU_ASSERT_EQUAL(vp_placement_compute(&p, &in), VP_EINVAL);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "placement: clone 'c-1' is listed twice");
	vp_placement_free(NULL);
	vp_placement_moves_free(NULL);
	VP_ASSERT_STR_EQ(vp_placement_policy_name(VP_PLACEMENT_PACK), "pack");
	VP_ASSERT_STR_EQ(vp_placement_policy_name(VP_PLACEMENT_SPREAD), "spread");
	/* The spec's values are passed through unconverted. */
	CU_ASSERT_EQUAL(VP_SPEC_UNLIMITED, VP_PLACEMENT_UNLIMITED);
	CU_ASSERT_EQUAL((int)VP_SPEC_POLICY_SPREAD, (int)VP_PLACEMENT_SPREAD);
	CU_ASSERT_EQUAL((int)VP_SPEC_POLICY_PACK, (int)VP_PLACEMENT_PACK);
}

/* ---- determinism ---- */

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 33;
}

static void shuffle(vp_placement_clone *a, size_t n, uint64_t seed)
{
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = lcg(&seed) % (i + 1);
		vp_placement_clone t = a[i];
		a[i] = a[j];
		a[j] = t;
	}
}

static void test_deterministic(void)
{
	vp_placement *ref, *p;

	for (size_t i = 0; i < 7; i++)
		host(i, 16 + 8 * i, 4 + (unsigned)i)->max_clones = 40;
	hs[3].reachable = false;
	clones(300, 2, 1);
	for (size_t i = 0; i < 300; i += 7)
		cl[i].host = hnames[i % 5];
	for (size_t i = 0; i < 300; i += 11)
		cl[i].memory_bytes = GIB / 2; /* some smaller clones fill gaps */
	for (int pol = 0; pol < 2; pol++) {
		ref = compute((vp_placement_policy)pol, 7, 300);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
		CU_ASSERT(ref->unplaced > 0); /* the reasons are compared too */
		for (uint64_t seed = 1; seed <= 5; seed++) {
			shuffle(cl, 300, seed);
			p = compute((vp_placement_policy)pol, 7, 300);
			CU_ASSERT_PTR_NOT_NULL_FATAL(p);
			CU_ASSERT_EQUAL(p->count, ref->count);
			for (size_t i = 0; i < p->count; i++) {
				CU_ASSERT_STRING_EQUAL(p->clones[i].clone, ref->clones[i].clone);
				CU_ASSERT_EQUAL(p->clones[i].host, ref->clones[i].host);
				CU_ASSERT_EQUAL(p->clones[i].status, ref->clones[i].status);
				CU_ASSERT((p->clones[i].why == NULL) == (ref->clones[i].why == NULL));
				if (p->clones[i].why && ref->clones[i].why)
					CU_ASSERT_STRING_EQUAL(p->clones[i].why, ref->clones[i].why);
			}
			CU_ASSERT_EQUAL(p->warning_count, ref->warning_count);
			for (size_t i = 0; i < p->warning_count && i < ref->warning_count; i++)
				CU_ASSERT_STRING_EQUAL(p->warnings[i], ref->warnings[i]);
			vp_placement_free(p);
		}
		vp_placement_free(ref);
	}
}

/* ---- scale-down ---- */

static void test_surplus(void)
{
	vp_placement_input in;
	const char **out = NULL;
	size_t n = 0;

	for (size_t i = 0; i < 4; i++)
		host(i, 64, 32);
	clones(16, 1, 1);
	/* h1: 1-5, h2: 6-8, h3: 9-13, h4 (unreachable): 14-15, c-16 on an unknown host. */
	for (size_t i = 0; i < 16; i++)
		cl[i].host = i < 5 ? "h1" : i < 8 ? "h2" : i < 13 ? "h3" : i < 15 ? "h4" : "gone";
	hs[3].reachable = false;
	shuffle(cl, 16, 42);
	in = input(VP_PLACEMENT_SPREAD, 4, 16);
	CU_ASSERT_EQUAL_FATAL(vp_placement_surplus(&out, &n, &in, 5), 0);
	CU_ASSERT_EQUAL_FATAL(n, 5);
	/* h1 5 = h3 5: the later, h3; then h1 5; then h1 4 = h3 4: h3; then h1; then 3/3/3: h3. */
	VP_ASSERT_STR_EQ(out[0], "c-13");
	VP_ASSERT_STR_EQ(out[1], "c-5");
	VP_ASSERT_STR_EQ(out[2], "c-12");
	VP_ASSERT_STR_EQ(out[3], "c-4");
	VP_ASSERT_STR_EQ(out[4], "c-11");
	free(out);

	/* More than can go: the unreachable host's and the unknown host's stay. */
	CU_ASSERT_EQUAL_FATAL(vp_placement_surplus(&out, &n, &in, 100), 0);
	CU_ASSERT_EQUAL(n, 13);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT(strcmp(out[i], "c-14") && strcmp(out[i], "c-15") && strcmp(out[i], "c-16"));
	free(out);

	CU_ASSERT_EQUAL_FATAL(vp_placement_surplus(&out, &n, &in, 0), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(out);
}

/* ---- rebalance ---- */

/* Carries out the moves on cl[] (by name) and checks each against the rules. */
static void apply_moves(const vp_placement_moves *m, size_t nh, size_t nc)
{
	for (size_t i = 0; i < m->count; i++) {
		const vp_placement_move *mv = &m->moves[i];
		size_t j;
		CU_ASSERT_FATAL(mv->to < nh && mv->from < nh);
		CU_ASSERT(hs[mv->to].reachable);
		CU_ASSERT(hs[mv->from].reachable);
		CU_ASSERT(mv->from != mv->to);
		VP_ASSERT_STR_EQ(mv->to_name, hs[mv->to].name);
		for (j = 0; j < nc && strcmp(cl[j].name, mv->clone); j++)
			;
		CU_ASSERT_FATAL(j < nc);
		VP_ASSERT_STR_EQ(cl[j].host, mv->from_name);
		cl[j].host = mv->to_name;
	}
}

static void test_rebalance(void)
{
	vp_placement_input in;
	vp_placement_moves *m = NULL;
	vp_placement *p;

	for (size_t i = 0; i < 3; i++)
		host(i, 64, 32);
	clones(10, 4, 1);
	for (size_t i = 0; i < 10; i++)
		cl[i].host = "h1";
	in = input(VP_PLACEMENT_SPREAD, 3, 10);

	/* A budget of 2: the two highest indexes go, one to each empty host. */
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 2), 0);
	CU_ASSERT_EQUAL(m->target[0], 4);
	CU_ASSERT_EQUAL(m->target[1], 3);
	CU_ASSERT_EQUAL(m->target[2], 3);
	CU_ASSERT_EQUAL_FATAL(m->count, 2);
	CU_ASSERT_EQUAL(m->pending, 4);
	VP_ASSERT_STR_EQ(m->moves[0].clone, "c-10");
	VP_ASSERT_STR_EQ(m->moves[0].to_name, "h2");
	VP_ASSERT_STR_EQ(m->moves[1].clone, "c-9");
	VP_ASSERT_STR_EQ(m->moves[1].to_name, "h3");
	vp_placement_moves_free(m);

	/* Unbounded: balanced to the target, and the result is a placement without warnings. */
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 1000), 0);
	CU_ASSERT_EQUAL(m->count, 6);
	CU_ASSERT_EQUAL(m->pending, 0);
	apply_moves(m, 3, 10);
	vp_placement_moves_free(m);
	p = compute(VP_PLACEMENT_SPREAD, 3, 10);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->hosts[0].clones, 4);
	CU_ASSERT_EQUAL(p->hosts[1].clones, 3);
	CU_ASSERT_EQUAL(p->hosts[2].clones, 3);
	vp_placement_free(p);
	/* Balanced: nothing more to do. */
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 1000), 0);
	CU_ASSERT_EQUAL(m->count, 0);
	CU_ASSERT_EQUAL(m->pending, 0);
	vp_placement_moves_free(m);

	/* Under pack the target is packed: clones gather on the first hosts. */
	for (size_t i = 0; i < 3; i++)
		host(i, 16, 32);
	clones(6, 4, 1);
	for (size_t i = 0; i < 6; i++)
		cl[i].host = hnames[i % 3];
	in = input(VP_PLACEMENT_PACK, 3, 6);
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 1000), 0);
	CU_ASSERT_EQUAL(m->target[0], 4);
	CU_ASSERT_EQUAL(m->target[1], 2);
	CU_ASSERT_EQUAL(m->target[2], 0);
	CU_ASSERT_EQUAL_FATAL(m->count, 2);
	VP_ASSERT_STR_EQ(m->moves[0].clone, "c-6");
	VP_ASSERT_STR_EQ(m->moves[0].to_name, "h1");
	VP_ASSERT_STR_EQ(m->moves[1].clone, "c-3");
	VP_ASSERT_STR_EQ(m->moves[1].to_name, "h1");
	apply_moves(m, 3, 6);
	vp_placement_moves_free(m);
}

/* Never onto an unreachable, drained or full host; a drained host is emptied. */
static void test_rebalance_limits(void)
{
	vp_placement_input in;
	vp_placement_moves *m = NULL;

	host(0, 64, 32)->max_clones = 0; /* drained: its clones leave */
	host(1, 64, 32)->reachable = false;
	host(2, 8, 32);                  /* room for two */
	host(3, 64, 32)->max_clones = 3;
	clones(12, 4, 1);
	for (size_t i = 0; i < 12; i++)
		cl[i].host = i < 8 ? "h1" : "h2";
	cl[11].host = NULL; /* new: not rebalance's business */
	in = input(VP_PLACEMENT_PACK, 4, 12);
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 100), 0);
	CU_ASSERT_EQUAL(m->target[0], 0);
	CU_ASSERT_EQUAL(m->target[1], 3);
	CU_ASSERT_EQUAL(m->target[2], 2);
	CU_ASSERT_EQUAL(m->target[3], 3);
	/* 8 on h1 want out, 5 places exist: 5 moves, then stuck (not pending). */
	CU_ASSERT_EQUAL(m->count, 5);
	CU_ASSERT_EQUAL(m->pending, 0);
	for (size_t i = 0; i < m->count; i++) {
		CU_ASSERT_EQUAL(m->moves[i].from, 0);
		CU_ASSERT(m->moves[i].to == 2 || m->moves[i].to == 3);
	}
	/* Highest index first: c-8 .. c-4 leave h1. */
	VP_ASSERT_STR_EQ(m->moves[0].clone, "c-8");
	VP_ASSERT_STR_EQ(m->moves[4].clone, "c-4");
	apply_moves(m, 4, 12);
	vp_placement_moves_free(m);
	/* After the moves no host that received clones is over anything. */
	{
		vp_placement *p = compute(VP_PLACEMENT_PACK, 4, 11);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_EQUAL(p->hosts[2].clones, 2);
		CU_ASSERT_EQUAL(p->hosts[2].over_capacity, false);
		CU_ASSERT_EQUAL(p->hosts[3].clones, 3);
		CU_ASSERT_EQUAL(p->hosts[3].over_capacity, false);
		CU_ASSERT_EQUAL(p->hosts[0].clones, 3);
		vp_placement_free(p);
	}
}

/* ---- scale: 10,000 clones over 100 hosts (correctness only, no timing) ---- */

static void test_scale(void)
{
	vp_placement_input in;
	vp_placement_moves *m = NULL;
	const char **out = NULL;
	size_t n = 0, total = 0;
	vp_placement *p;

	for (size_t i = 0; i < 100; i++)
		host(i, 256 + 64 * (i % 4), 64);
	clones(10000, 2, 1);
	for (size_t i = 0; i < 10000; i += 3)
		cl[i].host = hnames[(i / 3) % 50]; /* a third already on the first 50 hosts */
	shuffle(cl, 10000, 7);
	for (int pol = 0; pol < 2; pol++) {
		p = compute((vp_placement_policy)pol, 100, 10000);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p);
		CU_ASSERT_EQUAL(p->count, 10000);
		CU_ASSERT_EQUAL(p->kept, 3334);
		CU_ASSERT_EQUAL(p->placed + p->kept + p->unplaced, 10000);
		CU_ASSERT_EQUAL(p->unplaced, 0);
		CU_ASSERT_EQUAL(p->warning_count, 0);
		total = 0;
		for (size_t h = 0; h < 100; h++) {
			CU_ASSERT(p->hosts[h].memory_committed <= p->hosts[h].memory_capacity);
			CU_ASSERT(p->hosts[h].vcpus_committed_milli <= p->hosts[h].vcpus_capacity_milli);
			total += p->hosts[h].clones;
		}
		CU_ASSERT_EQUAL(total, 10000);
		for (size_t i = 1; i < p->count; i++)
			CU_ASSERT(p->clones[i - 1].index < p->clones[i].index);
		if (pol == VP_PLACEMENT_SPREAD) {
			/* Equal hosts (same size class) end within one clone of each other
			 * among the empty half, which only took new clones. */
			for (size_t h = 54; h < 100; h++)
				CU_ASSERT(p->hosts[h].clones + 1 >= p->hosts[h - 4].clones &&
					  p->hosts[h].clones <= p->hosts[h - 4].clones + 1);
		} else {
			/* Pack fills hosts in order: 64 vCPUs x 4 = 256 one-vCPU clones... or
			 * memory first; the last hosts stay empty. */
			CU_ASSERT_EQUAL(p->hosts[99].clones, 0);
		}
		vp_placement_free(p);
	}
	for (size_t i = 0; i < 10000; i++)
		if (!cl[i].host)
			cl[i].host = hnames[0]; /* everything else on h1: very unbalanced */
	in = input(VP_PLACEMENT_SPREAD, 100, 10000);
	CU_ASSERT_EQUAL_FATAL(vp_placement_surplus(&out, &n, &in, 1000), 0);
	CU_ASSERT_EQUAL(n, 1000);
	free(out);
	CU_ASSERT_EQUAL_FATAL(vp_placement_rebalance(&m, &in, 500), 0);
	CU_ASSERT_EQUAL(m->count, 500);
	CU_ASSERT(m->pending > 0);
	for (size_t i = 0; i < m->count; i++)
		CU_ASSERT(m->moves[i].from == 0 && m->moves[i].to != 0);
	vp_placement_moves_free(m);
}

static CU_TestInfo placement_tests[] = {
	{ "spread over 3 equal hosts: 4/3/3", test_spread_equal },
	{ "spread follows free capacity", test_spread_proportional },
	{ "pack fills host 1, then 2", test_pack },
	{ "capacity and max_clones", test_capacity_and_max_clones },
	{ "overcommit math", test_overcommit_math },
	{ "max_clones 0 drains, keeps existing", test_drain_keeps_existing },
	{ "a placed clone never moves, even over capacity", test_sticky_over_capacity },
	{ "an added host takes only new clones", test_added_host_takes_only_new },
	{ "unreachable and unknown hosts keep their clones", test_unreachable },
	{ "unplaceable clones with reasons", test_unplaceable_reasons },
	{ "bad input", test_bad_input },
	{ "deterministic under shuffled input", test_deterministic },
	{ "scale-down from the fullest host", test_surplus },
	{ "rebalance within a budget", test_rebalance },
	{ "rebalance never onto unreachable, drained or full hosts", test_rebalance_limits },
	{ "10,000 clones over 100 hosts", test_scale },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "placement", NULL, NULL, NULL, NULL, placement_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
