/* test_exec.c: executor ordering, failure isolation and the bound on concurrent starts. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/exec.h"
#include "vp_test.h"

#define N 40

typedef struct rec {
	pthread_mutex_t lock;
	char log[N * 8][32];
	size_t nlog;
	atomic_int starting, max_starting, working, max_working;
	const char *fail_name;
	unsigned fail_step;
} rec;

static int step(void *ctx, const vp_plan_item *it, unsigned s)
{
	rec *r = ctx;
	int w = atomic_fetch_add(&r->working, 1) + 1;

	if (w > atomic_load(&r->max_working))
		atomic_store(&r->max_working, w);
	if (s == VP_STEP_START) {
		int n = atomic_fetch_add(&r->starting, 1) + 1;
		if (n > atomic_load(&r->max_starting))
			atomic_store(&r->max_starting, n);
		usleep(2000);
		atomic_fetch_sub(&r->starting, 1);
	}
	pthread_mutex_lock(&r->lock);
	snprintf(r->log[r->nlog++], 32, "%s:%s", it->name, vp_step_name(s));
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_sub(&r->working, 1);
	if (r->fail_name && !strcmp(it->name, r->fail_name) && s == r->fail_step)
		return vp_error_set(VP_ERR_VIRT, VP_EIO, "boom");
	return 0;
}

static char names[N][12];
static vp_plan_item items[N];

static vp_plan make_plan(size_t removals, size_t creates)
{
	vp_plan p = { .count = removals + creates, .items = items };

	for (size_t i = 0; i < p.count; i++) {
		snprintf(names[i], sizeof(names[i]), "c%02u", (unsigned)i);
		items[i] = (vp_plan_item){ .name = names[i], .index = (unsigned)i };
		if (i < removals) {
			items[i].change = VP_CHANGE_REMOVE;
			items[i].steps = VP_STEP_STOP | VP_STEP_UNDEFINE | VP_STEP_DELETE_DELTA;
		} else {
			items[i].change = VP_CHANGE_CREATE;
			items[i].steps = VP_STEP_START | VP_STEP_CREATE_DELTA | VP_STEP_DEFINE;
		}
	}
	return p;
}

static size_t pos(rec *r, const char *entry)
{
	for (size_t i = 0; i < r->nlog; i++)
		if (!strcmp(r->log[i], entry))
			return i;
	return SIZE_MAX;
}

static void test_steps_run_in_safe_order(void)
{
	static rec r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	vp_plan p = make_plan(5, 30);
	vp_exec_ops ops = { .step = step };
	vp_exec_opts o = { .parallel = 8, .max_starts = 3 };
	vp_exec_result res;
	char a[48], b[48], c[48];

	CU_ASSERT_EQUAL_FATAL(vp_exec_run(&p, &ops, &r, &o, &res), 0);
	CU_ASSERT_EQUAL(res.done, 35);
	CU_ASSERT_EQUAL(res.failed, 0);
	CU_ASSERT_EQUAL(r.nlog, 5 * 3 + 30 * 3);
	for (size_t i = 5; i < 35; i++) {
		snprintf(a, sizeof(a), "%.11s:create delta", names[i]);
		snprintf(b, sizeof(b), "%.11s:define", names[i]);
		snprintf(c, sizeof(c), "%.11s:start", names[i]);
		CU_ASSERT(pos(&r, a) < pos(&r, b));
		CU_ASSERT(pos(&r, b) < pos(&r, c));
		CU_ASSERT(pos(&r, "c04:delete delta") < pos(&r, a)); /* removals finish first */
	}
	for (size_t i = 0; i < 5; i++) {
		snprintf(a, sizeof(a), "%.11s:stop", names[i]);
		snprintf(b, sizeof(b), "%.11s:undefine", names[i]);
		snprintf(c, sizeof(c), "%.11s:delete delta", names[i]);
		CU_ASSERT(pos(&r, a) < pos(&r, b));
		CU_ASSERT(pos(&r, b) < pos(&r, c));
	}
	CU_ASSERT(atomic_load(&r.max_starting) <= 3);
	CU_ASSERT(atomic_load(&r.max_working) <= 8);
}

static void test_a_failure_stops_only_its_clone(void)
{
	static rec r = { .lock = PTHREAD_MUTEX_INITIALIZER, .fail_name = "c03", .fail_step = VP_STEP_DEFINE };
	vp_plan p = make_plan(0, 10);
	vp_exec_ops ops = { .step = step };
	vp_exec_result res;

	CU_ASSERT_EQUAL(vp_exec_run(&p, &ops, &r, NULL, &res), VP_EGENERIC);
	CU_ASSERT_EQUAL(res.done, 9);
	CU_ASSERT_EQUAL(res.failed, 1);
	VP_ASSERT_STR_EQ(res.first_error, "c03: define: boom");
	VP_ASSERT_STR_EQ(vp_error_last()->message, "1 of 10 clones failed; first: c03: define: boom");
	CU_ASSERT_NOT_EQUAL(pos(&r, "c03:define"), SIZE_MAX);
	CU_ASSERT_EQUAL(pos(&r, "c03:start"), SIZE_MAX);
	CU_ASSERT_NOT_EQUAL(pos(&r, "c09:start"), SIZE_MAX);
}

static void test_unchanged_items_are_skipped(void)
{
	static rec r = { .lock = PTHREAD_MUTEX_INITIALIZER };
	vp_plan p = make_plan(0, 4);
	vp_exec_ops ops = { .step = step };
	vp_exec_result res;

	items[1].steps = 0;
	items[1].change = VP_CHANGE_NONE;
	CU_ASSERT_EQUAL(vp_exec_run(&p, &ops, &r, NULL, &res), 0);
	CU_ASSERT_EQUAL(res.done, 3);
	CU_ASSERT_EQUAL(pos(&r, "c01:define"), SIZE_MAX);
}

static CU_TestInfo tests[] = {
	{ "steps run in safe order with bounded starts", test_steps_run_in_safe_order },
	{ "a failure stops only its clone", test_a_failure_stops_only_its_clone },
	{ "unchanged items are skipped", test_unchanged_items_are_skipped },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "exec", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
