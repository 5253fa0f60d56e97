/* test_fanout.c: the round plan of a base push to many hosts (vp_fanout_round): who serves whom
 * each round, deterministic; rounds grow with log(hosts) with fan-out, with hosts without. */
#include <stdio.h>

#include "vdipool/fleet.h"
#include "vp_test.h"

#define MAXH 1000

static unsigned char st[MAXH];
static bool seed[MAXH];
static long src[MAXH];

/* n hosts all wanting; h0 first hosts already hold it. */
static void hosts(size_t n, size_t h0, bool fanout)
{
	for (size_t i = 0; i < n; i++) {
		st[i] = i < h0 ? VP_FANOUT_HOLDS : VP_FANOUT_WANTS;
		seed[i] = fanout && i < h0;
	}
}

/* Runs rounds assuming every push succeeds; the plan as text "r1: c>0 | r2: 0>1 c>2 | ...". */
static unsigned rounds(size_t n, unsigned width, bool fanout, char *text, size_t len)
{
	unsigned r = 0;
	size_t used = 0;

	if (text)
		text[0] = '\0';
	while (vp_fanout_round(n, st, seed, width, src)) {
		r++;
		if (text)
			used += (size_t)snprintf(text + used, used < len ? len - used : 0, "%sr%u:", r > 1 ? " | " : "", r);
		for (size_t i = 0; i < n; i++) {
			if (src[i] == VP_FANOUT_NO_SOURCE)
				continue;
			/* A host never receives twice nor serves before it holds. */
			CU_ASSERT(st[i] == VP_FANOUT_WANTS || st[i] == VP_FANOUT_WANTS_DIRECT);
			CU_ASSERT(src[i] == -1 || st[src[i]] == VP_FANOUT_HOLDS);
			if (text) {
				if (src[i] < 0)
					used += (size_t)snprintf(text + used, used < len ? len - used : 0, " c>%zu", i);
				else
					used += (size_t)snprintf(text + used, used < len ? len - used : 0, " %ld>%zu", src[i], i);
			}
		}
		for (size_t i = 0; i < n; i++)
			if (src[i] != VP_FANOUT_NO_SOURCE) {
				st[i] = VP_FANOUT_HOLDS;
				seed[i] = fanout;
			}
		CU_ASSERT_FATAL(r <= n);
	}
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(st[i], VP_FANOUT_HOLDS);
	return r;
}

static void test_four_hosts_width_one(void)
{
	char t[256];

	hosts(4, 0, true);
	CU_ASSERT_EQUAL(rounds(4, 1, true, t, sizeof(t)), 3);
	VP_ASSERT_STR_EQ(t, "r1: c>0 | r2: 0>1 c>2 | r3: 0>3");
	hosts(4, 0, false);
	CU_ASSERT_EQUAL(rounds(4, 1, false, t, sizeof(t)), 4);
	VP_ASSERT_STR_EQ(t, "r1: c>0 | r2: c>1 | r3: c>2 | r4: c>3");
}

static void test_width_two(void)
{
	char t[256];

	hosts(7, 0, true);
	CU_ASSERT_EQUAL(rounds(7, 2, true, t, sizeof(t)), 3);
	VP_ASSERT_STR_EQ(t, "r1: c>0 c>1 | r2: 0>2 1>3 c>4 c>5 | r3: 0>6");
}

static void test_holders_seed_first_round(void)
{
	char t[256];

	/* Hosts 0 and 1 hold it: they seed in round 1 beside the controller. */
	hosts(5, 2, true);
	CU_ASSERT_EQUAL(rounds(5, 1, true, t, sizeof(t)), 1);
	VP_ASSERT_STR_EQ(t, "r1: 0>2 1>3 c>4");
}

static void test_direct_only_and_nothing_to_do(void)
{
	size_t n;

	/* A target whose seeded push failed is the controller's only. */
	st[0] = VP_FANOUT_HOLDS, seed[0] = true;
	st[1] = VP_FANOUT_WANTS_DIRECT, seed[1] = false;
	st[2] = VP_FANOUT_WANTS, seed[2] = false;
	st[3] = VP_FANOUT_NONE, seed[3] = false;
	n = vp_fanout_round(4, st, seed, 1, src);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(src[2], 0);
	CU_ASSERT_EQUAL(src[1], -1);
	CU_ASSERT_EQUAL(src[0], VP_FANOUT_NO_SOURCE);
	CU_ASSERT_EQUAL(src[3], VP_FANOUT_NO_SOURCE);
	/* No seeds (NULL) and nothing wanted: no round. */
	st[1] = st[2] = VP_FANOUT_HOLDS;
	CU_ASSERT_EQUAL(vp_fanout_round(4, st, NULL, 4, src), 0);
	CU_ASSERT_EQUAL(vp_fanout_round(0, st, NULL, 4, src), 0);
}

/* Holders grow h -> 2h + width: rounds are about log2(hosts / width). */
static void test_log_rounds(void)
{
	static const struct { size_t n; unsigned w, fan, plain; } cases[] = {
		{ 1, 1, 1, 1 },   { 3, 1, 2, 3 },    { 15, 1, 4, 15 },  { 16, 1, 5, 16 },
		{ 100, 4, 5, 25 }, { 1000, 4, 8, 250 }, { 1000, 1000, 1, 1 },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		unsigned r;

		hosts(cases[k].n, 0, true);
		r = rounds(cases[k].n, cases[k].w, true, NULL, 0);
		if (r != cases[k].fan)
			fprintf(stderr, "\n  %zu hosts width %u: %u rounds with fan-out\n", cases[k].n, cases[k].w, r);
		CU_ASSERT_EQUAL(r, cases[k].fan);
		hosts(cases[k].n, 0, false);
		CU_ASSERT_EQUAL(rounds(cases[k].n, cases[k].w, false, NULL, 0), cases[k].plain);
	}
}

static CU_TestInfo fanout_tests[] = {
	{ "4 hosts, width 1: c>h1, then h1>h2 and c>h3, then h1>h4", test_four_hosts_width_one },
	{ "width 2", test_width_two },
	{ "hosts holding it seed from round 1", test_holders_seed_first_round },
	{ "direct-only targets, nothing to do", test_direct_only_and_nothing_to_do },
	{ "rounds grow with log(hosts)", test_log_rounds },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "fanout", NULL, NULL, NULL, NULL, fanout_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
