/* exec.c: worker threads over a plan: per-clone steps in safe order, bounded starts. */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

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
} exec_state;

/* Fault injection for the crash tests: VDIPOOL_TEST_CRASH_AT="before|after:STEP:N"
 * SIGKILLs this process at the Nth time STEP ("create delta", "define", ...)
 * is reached, exactly like a kill -9 from outside at that point. */
static struct {
	pthread_once_t once;
	bool after;
	char step[32];
	long n;
	atomic_long seen;
} crash = { .once = PTHREAD_ONCE_INIT };

static void crash_parse(void)
{
	const char *v = getenv("VDIPOOL_TEST_CRASH_AT");
	char when[8] = "";

	if (!v || sscanf(v, "%7[a-z]:%31[a-z ]:%ld", when, crash.step, &crash.n) != 3)
		crash.step[0] = '\0';
	crash.after = !strcmp(when, "after");
}

static void crash_point(bool after, unsigned step)
{
	pthread_once(&crash.once, crash_parse);
	if (crash.step[0] && crash.after == after && !strcmp(crash.step, vp_step_name(step)) &&
	    atomic_fetch_add(&crash.seen, 1) + 1 == crash.n)
		kill(getpid(), SIGKILL);
}

static int run_item(exec_state *st, const vp_plan_item *it)
{
	for (unsigned bit = 1; bit && bit <= it->steps; bit <<= 1) {
		int rc;

		if (!(it->steps & bit))
			continue;
		if (bit == VP_STEP_START)
			sem_wait(&st->starts);
		crash_point(false, bit);
		rc = st->ops->step(st->ctx, it, bit);
		if (rc == 0)
			crash_point(true, bit);
		if (bit == VP_STEP_START)
			sem_post(&st->starts);
		if (rc < 0) {
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
	run_phase(&st, 0, removals, parallel);
	run_phase(&st, removals, plan->count, parallel);
	sem_destroy(&st.starts);
	pthread_mutex_destroy(&st.lock);
	if (res->failed)
		return vp_error_set(VP_ERR_EXEC, VP_EGENERIC, "%zu of %zu clones failed; first: %s",
				    res->failed, st.total, res->first_error);
	return 0;
}
