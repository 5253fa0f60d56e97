/* exec.c: worker threads over a plan: per-clone steps in safe order, bounded starts. */
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "vdipool/error.h"
#include "vdipool/exec.h"
#include "util/util.h"

typedef struct exec_state {
	const vp_plan *plan;
	const vp_exec_ops *ops;
	void *ctx;
	pthread_mutex_t lock;
	size_t next;       /* next item index to take */
	size_t end;        /* one past the last item of the current phase */
	size_t done_items; /* items finished, for progress */
	size_t total;
	sem_t starts;
	vp_exec_result *res;
	atomic_bool host_failed; /* a step failed for every clone (VP_EHOST): take no more */
} exec_state;

/* VP_EHOST_SKIPPED: not attempted, because another clone's step failed for the whole host. */
#define VP_EHOST_SKIPPED 1

#ifdef VP_TEST_HOOKS
/* Fault injection for the crash and lock tests (test builds only: BUILD_TESTS defines
 * VP_TEST_HOOKS; an installed vdipool has none), read once from the environment:
 *   VDIPOOL_TEST_CRASH_AT="before|after:STEP:N"  SIGKILL this process (like a kill -9
 *                                                from outside) the Nth time STEP is reached;
 *   VDIPOOL_TEST_PAUSE_AT="before|after:STEP:N:SECONDS"  sleep there instead.
 * STEP is a step name as vp_step_name() gives it ("create delta", "define", ...).
 *   VDIPOOL_TEST_START_LOG=FILE  append "begin|end NAME SECONDS" around each start step, inside
 *                                the max_starts bound, a pause after the start included (the
 *                                boot-storm test counts how many starts held a slot at once). */
typedef struct fault {
	bool set, after;
	char step[32];
	long n;
	unsigned seconds;
	atomic_long seen;
} fault;

static fault crash_fault, pause_fault;
static pthread_once_t fault_once = PTHREAD_ONCE_INIT;
static int start_log_fd = -1;

static void fault_parse(fault *f, const char *env, bool with_seconds)
{
	const char *v = getenv(env);
	char when[8] = "";
	int want = with_seconds ? 4 : 3;

	if (!v)
		return;
	f->set = sscanf(v, "%7[a-z]:%31[a-z ]:%ld:%u", when, f->step, &f->n, &f->seconds) >= want;
	f->after = !strcmp(when, "after");
}

static void faults_parse(void)
{
	fault_parse(&crash_fault, "VDIPOOL_TEST_CRASH_AT", false);
	fault_parse(&pause_fault, "VDIPOOL_TEST_PAUSE_AT", true);
	if (getenv("VDIPOOL_TEST_START_LOG"))
		start_log_fd = open(getenv("VDIPOOL_TEST_START_LOG"), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
}

static void start_log(bool after, const char *name)
{
	struct timespec ts;
	char line[160];
	int n;

	pthread_once(&fault_once, faults_parse);
	if (start_log_fd < 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = snprintf(line, sizeof(line), "%s %s %lld.%09ld\n", after ? "end" : "begin", name,
		     (long long)ts.tv_sec, ts.tv_nsec);
	if (n > 0 && (size_t)n < sizeof(line) && write(start_log_fd, line, (size_t)n) < 0)
		return; /* a test hook: the test sees the missing line */
}

static bool fault_hit(fault *f, bool after, unsigned step)
{
	return f->set && f->after == after && !strcmp(f->step, vp_step_name(step)) &&
	       atomic_fetch_add(&f->seen, 1) + 1 == f->n;
}

static void fault_point(bool after, unsigned step)
{
	pthread_once(&fault_once, faults_parse);
	if (fault_hit(&crash_fault, after, step))
		kill(getpid(), SIGKILL);
	if (fault_hit(&pause_fault, after, step))
		sleep(pause_fault.seconds);
}

#else
static void fault_point(bool after, unsigned step)
{
	(void)after;
	(void)step;
}

static void start_log(bool after, const char *name)
{
	(void)after;
	(void)name;
}
#endif

static int run_item(exec_state *st, const vp_plan_item *it)
{
	for (unsigned bit = 1; bit && bit <= it->steps; bit <<= 1) {
		int rc;

		if (!(it->steps & bit))
			continue;
		if (bit == VP_STEP_START)
			sem_wait(&st->starts);
		if (atomic_load(&st->host_failed)) {
			if (bit == VP_STEP_START)
				sem_post(&st->starts);
			return VP_EHOST_SKIPPED;
		}
		fault_point(false, bit);
		if (bit == VP_STEP_START)
			start_log(false, it->name);
		rc = st->ops->step(st->ctx, it, bit);
		if (rc == 0)
			fault_point(true, bit);
		if (bit == VP_STEP_START) {
			start_log(true, it->name);
			sem_post(&st->starts);
		}
		if (rc < 0) {
			if (rc == VP_EHOST)
				atomic_store(&st->host_failed, true);
			vp_error_prefix("%s: %s", it->name, vp_step_name(bit));
			return rc;
		}
	}
	return 0;
}

static void finish(exec_state *st, const vp_plan_item *it, int rc)
{
	const char *msg = rc < 0 ? vp_error_last()->message : NULL;

	pthread_mutex_lock(&st->lock);
	st->done_items++;
	if (rc == VP_EHOST_SKIPPED) {
		st->res->skipped++;
		pthread_mutex_unlock(&st->lock);
		return;
	}
	if (rc < 0) {
		if (st->res->failed++ == 0)
			snprintf(st->res->first_error, sizeof(st->res->first_error), "%s", msg);
	} else {
		st->res->done++;
	}
	if (st->ops->progress)
		st->ops->progress(st->ctx, st->done_items, st->total, it, rc, msg);
	pthread_mutex_unlock(&st->lock);
}

static void *worker(void *arg)
{
	exec_state *st = arg;

	for (;;) {
		const vp_plan_item *it;

		pthread_mutex_lock(&st->lock);
		while (st->next < st->end && !st->plan->items[st->next].steps)
			st->next++;
		if (st->next < st->end && atomic_load(&st->host_failed)) {
			/* Count what is left once, without touching it. */
			for (; st->next < st->end; st->next++)
				st->res->skipped += st->plan->items[st->next].steps != 0;
		}
		if (st->next >= st->end) {
			pthread_mutex_unlock(&st->lock);
			return NULL;
		}
		it = &st->plan->items[st->next++];
		pthread_mutex_unlock(&st->lock);
		finish(st, it, run_item(st, it));
	}
}

static void run_phase(exec_state *st, size_t from, size_t to, unsigned parallel)
{
	pthread_t tids[64];
	unsigned n = 0;

	st->next = from;
	st->end = to;
	if (parallel > VP_ARRAY_SIZE(tids))
		parallel = VP_ARRAY_SIZE(tids);
	for (; n < parallel; n++)
		if (pthread_create(&tids[n], NULL, worker, st) != 0)
			break;
	if (n == 0)
		worker(st); /* no threads to be had: do the work here */
	for (unsigned i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

int vp_exec_run(const vp_plan *plan, const vp_exec_ops *ops, void *ctx, const vp_exec_opts *opts,
		vp_exec_result *res)
{
	exec_state st = { .plan = plan, .ops = ops, .ctx = ctx, .res = res };
	unsigned parallel = opts && opts->parallel ? opts->parallel : 8;
	unsigned starts = opts && opts->max_starts ? opts->max_starts : 4;
	size_t removals = 0;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < plan->count; i++) {
		if (plan->items[i].steps)
			st.total++;
		if (plan->items[i].change == VP_CHANGE_REMOVE)
			removals = i + 1;
	}
	pthread_mutex_init(&st.lock, NULL);
	sem_init(&st.starts, 0, starts);
	atomic_init(&st.host_failed, false);
	run_phase(&st, 0, removals, parallel);
	run_phase(&st, removals, plan->count, parallel);
	sem_destroy(&st.starts);
	pthread_mutex_destroy(&st.lock);
	if (atomic_load(&st.host_failed))
		return vp_error_set(VP_ERR_EXEC, VP_EHOST, "%s (%zu of %zu clones failed, %zu not attempted: "
				    "the cause holds for every clone of the host)",
				    res->first_error, res->failed, st.total, res->skipped);
	if (res->failed)
		return vp_error_set(VP_ERR_EXEC, VP_EGENERIC, "%zu of %zu clones failed; first: %s",
				    res->failed, st.total, res->first_error);
	return 0;
}
