/* test_exec.c: executor ordering, failure isolation, the bound on concurrent starts, and the
 * subprocess runner's timeout (it kills the whole process group). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/exec.h"
#include "util/run.h"
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

/* A process that is gone or a zombie (in a container nobody may reap it). */
static bool process_gone(long pid)
{
	char path[64], buf[512];
	FILE *f;
	const char *state;

	if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (!(f = fopen(path, "r")))
		return true;
	state = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return state && (state[2] == 'Z' || state[2] == 'X');
}

/* The health command's timeout: a shell that started a child must not leave
 * that child running (it kept the output pipe open, too). */
static void test_run_timeout_kills_the_process_group(void)
{
	char dir[] = "/tmp/vp-run-XXXXXX", pidfile[64], script[256];
	const char *argv[] = { "sh", "-c", script, NULL };
	vp_run_opts o = { .timeout = 0.5 };
	vp_run_result res;
	long pid = 0;
	FILE *f;
	bool gone = false;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(pidfile, sizeof(pidfile), "%s/pid", dir);
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; wait", pidfile);
	CU_ASSERT_EQUAL_FATAL(vp_run(argv, &o, &res), 0);
	CU_ASSERT_EQUAL(res.signal, SIGKILL);
	vp_run_result_release(&res);
	f = fopen(pidfile, "r");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fscanf(f, "%ld", &pid), 1);
	fclose(f);
	CU_ASSERT_FATAL(pid > 1);
	for (int i = 0; i < 50 && !(gone = process_gone(pid)); i++)
		usleep(20000);
	CU_ASSERT_TRUE(gone);
	if (!gone)
		kill((pid_t)pid, SIGKILL);
	unlink(pidfile);
	rmdir(dir);
}

static CU_TestInfo tests[] = {
	{ "steps run in safe order with bounded starts", test_steps_run_in_safe_order },
	{ "a failure stops only its clone", test_a_failure_stops_only_its_clone },
	{ "unchanged items are skipped", test_unchanged_items_are_skipped },
	{ "a run's timeout kills its whole process group", test_run_timeout_kills_the_process_group },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "exec", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
