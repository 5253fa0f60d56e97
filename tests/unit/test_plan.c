/* test_plan.c: the pure planner, table by table: create, no-op, scale, repair, conflicts, drift. */
#include <stdio.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/plan.h"
#include "util/strmap.h"
#include "vp_test.h"

#define MAXC 12000

static char names[MAXC][32];
static vp_desired_clone want[MAXC];
static vp_observed_clone have[MAXC];

static vp_desired desired(size_t count, bool start)
{
	for (size_t i = 0; i < count; i++) {
		snprintf(names[i], sizeof(names[i]), "ci-%03u", (unsigned)i + 1);
		want[i] = (vp_desired_clone){ .name = names[i], .index = (unsigned)i + 1 };
	}
	return (vp_desired){ .pool = "ci", .base_ref = "tiny@v1", .spec_hash = "h1", .start = start,
			     .count = count, .clones = want, .delta_bytes = 1000, .data_bytes = 0,
			     .base_bytes = 1000000 };
}

/* Observed clones 1..count, complete and matching desired(...). */
static vp_observed observed(size_t count, unsigned extra_flags)
{
	for (size_t i = 0; i < count; i++) {
		snprintf(names[i], sizeof(names[i]), "ci-%03u", (unsigned)i + 1);
		have[i] = (vp_observed_clone){ .name = names[i], .index = (unsigned)i + 1,
					       .flags = VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_DELTA | extra_flags,
					       .pool = "ci", .base_ref = "tiny@v1", .spec_hash = "h1",
					       .delta_bytes = 500 };
	}
	return (vp_observed){ .count = count, .clones = have };
}

static const vp_plan_item *find(const vp_plan *p, const char *name)
{
	for (size_t i = 0; i < p->count; i++)
		if (!strcmp(p->items[i].name, name))
			return &p->items[i];
	return NULL;
}

static void test_empty_world_creates_all(void)
{
	vp_desired d = desired(5, true);
	vp_observed o = { .count = 0 };
	vp_plan *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->count, 5);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_CREATE], 5);
	for (size_t i = 0; i < p->count; i++) {
		CU_ASSERT_EQUAL(p->items[i].change, VP_CHANGE_CREATE);
		CU_ASSERT_EQUAL(p->items[i].steps, VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_START);
		CU_ASSERT_EQUAL(p->items[i].index, i + 1);
	}
	CU_ASSERT_EQUAL(p->bytes_to_write, 5 * 1000);
	CU_ASSERT_EQUAL(p->pool_bytes, 5 * 1000 + 1000000);
	CU_ASSERT_EQUAL(p->full_copy_bytes, 5 * 1000000);
	CU_ASSERT_TRUE(vp_plan_has_changes(p));
	vp_plan_free(p);
}

static void test_matching_world_is_noop(void)
{
	vp_observed o = observed(20, VP_OBS_RUNNING);
	vp_desired d = desired(20, true);
	vp_plan *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_FALSE(vp_plan_has_changes(p));
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_NONE], 20);
	CU_ASSERT_EQUAL(p->bytes_to_write, 0);
	CU_ASSERT_EQUAL(p->pool_bytes, 20 * 500 + 1000000);
	vp_plan_free(p);
}

static void test_scale_down_removes_highest_first(void)
{
	vp_observed o = observed(25, 0);
	vp_desired d;
	vp_plan *p = NULL;

	have[24].flags |= VP_OBS_RUNNING;
	have[20].flags |= VP_OBS_DATA;
	d = desired(10, false);
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REMOVE], 15);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_NONE], 10);
	/* removals come first, from the highest index down */
	CU_ASSERT_EQUAL(p->items[0].index, 25);
	CU_ASSERT_EQUAL(p->items[0].steps, VP_STEP_STOP | VP_STEP_UNDEFINE | VP_STEP_DELETE_DELTA);
	for (size_t i = 1; i < 15; i++) {
		CU_ASSERT_EQUAL(p->items[i].index, 25 - i);
		CU_ASSERT_EQUAL(p->items[i].change, VP_CHANGE_REMOVE);
	}
	CU_ASSERT_EQUAL(p->items[1].steps, VP_STEP_UNDEFINE | VP_STEP_DELETE_DELTA);
	CU_ASSERT_TRUE(find(p, "ci-021")->keeps_data);
	CU_ASSERT_FALSE(find(p, "ci-022")->keeps_data);
	CU_ASSERT_EQUAL(find(p, "ci-010")->change, VP_CHANGE_NONE);
	vp_plan_free(p);
}

static void test_scale_up_creates_only_new(void)
{
	vp_observed o = observed(20, 0);
	vp_desired d = desired(25, false);
	vp_plan *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_CREATE], 5);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_NONE], 20);
	CU_ASSERT_EQUAL(find(p, "ci-021")->steps, VP_STEP_CREATE_DELTA | VP_STEP_DEFINE);
	CU_ASSERT_EQUAL(find(p, "ci-020")->steps, 0);
	vp_plan_free(p);
}

static void test_repairs_half_made_clones(void)
{
	vp_observed o = observed(4, 0);
	vp_desired d = desired(4, true);
	vp_plan *p = NULL;

	have[0].flags = VP_OBS_DELTA;                                   /* delta, no domain */
	have[1].flags = VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_RUNNING;   /* running, delta gone */
	have[2].flags = VP_OBS_DOMAIN | VP_OBS_OURS;                    /* stopped, delta gone */
	have[3].flags |= VP_OBS_RUNNING;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_REPAIR);
	CU_ASSERT_EQUAL(find(p, "ci-001")->steps, VP_STEP_DEFINE | VP_STEP_START);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->reason, "domain missing");
	CU_ASSERT_EQUAL(find(p, "ci-002")->steps,
			VP_STEP_STOP | VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_START);
	VP_ASSERT_STR_EQ(find(p, "ci-002")->reason, "delta missing");
	CU_ASSERT_EQUAL(find(p, "ci-003")->steps, VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_START);
	CU_ASSERT_EQUAL(find(p, "ci-004")->steps, 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REPAIR], 3);
	vp_plan_free(p);
}

static void test_foreign_domain_is_a_conflict(void)
{
	vp_observed o = observed(3, 0);
	vp_desired d = desired(3, true);
	vp_plan *p = (vp_plan *)1;

	have[1].flags = VP_OBS_DOMAIN; /* no metadata */
	CU_ASSERT_EQUAL(vp_plan_build(&p, &d, &o), VP_ECONFLICT);
	CU_ASSERT_PTR_NULL(p);
	VP_ASSERT_STR_EQ(vp_error_last()->message,
			 "domain 'ci-002' exists and is not managed by vdipool (no vdipool metadata); "
			 "vdipool never overwrites it: rename or remove it, or change the name pattern");
}

static void test_other_pools_domain_is_a_conflict(void)
{
	vp_observed o = observed(3, 0);
	vp_desired d = desired(3, true);
	vp_plan *p = NULL;

	have[2].pool = "desktops";
	CU_ASSERT_EQUAL(vp_plan_build(&p, &d, &o), VP_ECONFLICT);
	VP_ASSERT_STR_EQ(vp_error_last()->message,
			 "domain 'ci-003' belongs to pool 'desktops', not 'ci'; change one pool's name pattern");
}

static void test_foreign_domains_outside_the_pool_are_left_alone(void)
{
	vp_observed o = observed(5, 0);
	vp_desired d = desired(2, false);
	vp_plan *p = NULL;

	have[2].flags = VP_OBS_DOMAIN | VP_OBS_RUNNING; /* someone else's VM, no metadata */
	have[3].flags = VP_OBS_DOMAIN | VP_OBS_OURS;   /* another pool's */
	have[3].pool = "other";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REMOVE], 1);
	CU_ASSERT_PTR_NULL(find(p, "ci-003"));
	CU_ASSERT_PTR_NULL(find(p, "ci-004"));
	CU_ASSERT_EQUAL(find(p, "ci-005")->change, VP_CHANGE_REMOVE);
	vp_plan_free(p);
}

static void test_drift_update_rebase_start_stop_data(void)
{
	vp_observed o = observed(5, 0);
	vp_desired d = desired(5, false);
	vp_plan *p = NULL;

	have[0].spec_hash = "h0";
	have[1].base_ref = "tiny@v0";
	have[2].flags |= VP_OBS_RUNNING;
	have[3].flags |= VP_OBS_DATA;
	d.data_disk = true;
	d.data_bytes = 200;
	for (int i = 0; i < 5; i++)
		if (i != 3)
			have[i].flags |= VP_OBS_DATA;
	have[4].flags &= ~(unsigned)VP_OBS_DATA;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_UPDATE);
	CU_ASSERT_EQUAL(find(p, "ci-001")->steps, VP_STEP_DEFINE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->change, VP_CHANGE_REBASE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->wave, 1);
	VP_ASSERT_STR_EQ(find(p, "ci-002")->from_base, "tiny@v0");
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_STOP);
	CU_ASSERT_EQUAL(find(p, "ci-003")->steps, VP_STEP_STOP);
	CU_ASSERT_EQUAL(find(p, "ci-004")->change, VP_CHANGE_NONE);
	CU_ASSERT_EQUAL(find(p, "ci-005")->change, VP_CHANGE_REPAIR);
	CU_ASSERT_EQUAL(find(p, "ci-005")->steps, VP_STEP_CREATE_DATA);
	CU_ASSERT_EQUAL(p->bytes_to_write, 1000 + 200);
	vp_plan_free(p);
}

/* Claimed clones are their holder's: no rebase, update, stop or removal while claimed; destroy
 * (claimed_too) takes them like the others. */
static void test_claimed_clones_are_left_alone(void)
{
	vp_observed o = observed(4, VP_OBS_RUNNING);
	vp_desired d = desired(2, false);
	vp_plan *p = NULL;

	for (int i = 0; i < 4; i++)
		have[i].base_ref = "tiny@v0";
	have[0].claimed_by = "job-1";
	have[3].claimed_by = "job-2";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_NONE);
	CU_ASSERT_EQUAL(find(p, "ci-001")->steps, 0);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->reason, "claimed: rebased once released");
	CU_ASSERT_EQUAL(find(p, "ci-002")->change, VP_CHANGE_REBASE);
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_REMOVE);
	CU_ASSERT_EQUAL(find(p, "ci-004")->change, VP_CHANGE_NONE);
	VP_ASSERT_STR_EQ(find(p, "ci-004")->reason, "claimed: stays until released");
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REMOVE], 1);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 1);
	CU_ASSERT_EQUAL(p->waves, 1);
	vp_plan_free(p);
	d = desired(0, false);
	d.claimed_too = true;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REMOVE], 4);
	vp_plan_free(p);
	have[0].claimed_by = have[3].claimed_by = NULL;
}

static void test_rebase_in_waves(void)
{
	vp_observed o = observed(10, 0);
	vp_desired d = desired(10, true);
	vp_plan *p = NULL;

	for (int i = 0; i < 10; i++)
		have[i].base_ref = "tiny@v0";
	have[0].flags |= VP_OBS_RUNNING;
	d.max_unavailable = 3;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 10);
	CU_ASSERT_EQUAL(p->waves, 4);
	for (unsigned i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(p->items[i].wave, i / 3 + 1);
	/* running: stopped for the swap, started again; stopped ones start as the spec says */
	CU_ASSERT_EQUAL(p->items[0].steps, VP_STEP_STOP | VP_STEP_REBASE | VP_STEP_DEFINE | VP_STEP_START);
	CU_ASSERT_EQUAL(p->items[1].steps, VP_STEP_REBASE | VP_STEP_DEFINE | VP_STEP_START);
	vp_plan_free(p);
	d.start = false;
	d.max_unavailable = 0;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->waves, 1);
	CU_ASSERT_EQUAL(p->items[9].wave, 1);
	CU_ASSERT_EQUAL(p->items[1].steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	vp_plan_free(p);
}

/* 10,000 clones: a no-op plan must find every clone by name (hash map, linear). */
static void test_ten_thousand_clones(void)
{
	vp_observed o = observed(10000, VP_OBS_RUNNING);
	vp_desired d = desired(10000, true);
	vp_plan *p = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->count, 10000);
	CU_ASSERT_FALSE(vp_plan_has_changes(p));
	vp_plan_free(p);
	d = desired(9000, true);
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REMOVE], 1000);
	CU_ASSERT_EQUAL(p->items[0].index, 10000);
	CU_ASSERT_EQUAL(p->items[999].index, 9001);
	vp_plan_free(p);
}

/* After a gate failed in wave 2, a rollback gives each clone its own target:
 * those moved to v2 go back to v1, the untouched ones stay on v1. */
static void test_rollback_gives_each_clone_its_own_base(void)
{
	vp_observed o = observed(10, 0);
	vp_desired d = desired(10, false);
	vp_plan *p = NULL;

	d.base_ref = "tiny@v2";
	d.max_unavailable = 3;
	for (int i = 0; i < 10; i++) {
		have[i].base_ref = i < 6 ? "tiny@v2" : "tiny@v1";
		have[i].disk_base_ref = have[i].base_ref;
		want[i].base_ref = "tiny@v1";
	}
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 6);
	CU_ASSERT_EQUAL(p->waves, 2);
	for (int i = 0; i < 10; i++) {
		const vp_plan_item *it = find(p, names[i]);
		VP_ASSERT_STR_EQ(it->to_base, "tiny@v1");
		CU_ASSERT_EQUAL(it->change, i < 6 ? VP_CHANGE_REBASE : VP_CHANGE_NONE);
		if (i < 6)
			VP_ASSERT_STR_EQ(it->from_base, "tiny@v2");
	}
	vp_plan_free(p);
	for (int i = 0; i < 10; i++)
		want[i].base_ref = NULL;
}

/* A crash between the delta swap and the redefine: the delta is on v2, the
 * domain still says v1. The real backing wins: the clone is rebased. */
static void test_real_backing_beats_metadata(void)
{
	vp_observed o = observed(4, 0);
	vp_desired d = desired(4, false);
	vp_plan *p = NULL;

	d.base_ref = "tiny@v2";
	d.max_unavailable = 1;
	for (int i = 0; i < 4; i++)
		have[i].base_ref = have[i].disk_base_ref = "tiny@v2";
	have[0].base_ref = "tiny@v1";        /* swapped, not redefined */
	have[1].disk_base_ref = "tiny@v1";   /* domain says v2, delta on v1 */
	have[2].disk_base_ref = "";          /* backs onto no known version */
	have[3].flags &= ~(unsigned)(VP_OBS_DOMAIN | VP_OBS_OURS); /* old delta, domain gone */
	have[3].disk_base_ref = "tiny@v1";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 4);
	CU_ASSERT_EQUAL(find(p, "ci-001")->steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->reason, "delta backs onto another base than its domain records");
	VP_ASSERT_STR_EQ(find(p, "ci-001")->from_base, "tiny@v1");
	VP_ASSERT_STR_EQ(find(p, "ci-002")->reason, "delta backs onto another base than its domain records");
	CU_ASSERT_PTR_NULL(find(p, "ci-002")->from_base); /* back to what its domain says */
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_REBASE);
	CU_ASSERT_EQUAL(find(p, "ci-004")->steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	VP_ASSERT_STR_EQ(find(p, "ci-004")->from_base, "tiny@v1");
	CU_ASSERT_EQUAL(p->waves, 4); /* one at a time: max_unavailable 1 */
	vp_plan_free(p);
	have[0].base_ref = "tiny@v2";
	have[1].disk_base_ref = have[2].disk_base_ref = "tiny@v2";
	have[3].flags |= VP_OBS_DOMAIN | VP_OBS_OURS;
	have[3].disk_base_ref = "tiny@v2";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_FALSE(vp_plan_has_changes(p));
	vp_plan_free(p);
}

/* clones.mode full: a standalone disk is on the base its domain records; a disk of the other
 * mode, or a standalone one without its domain (a copy of who knows what), is made again. */
static void test_full_clones(void)
{
	vp_observed o = observed(5, 0);
	vp_desired d = desired(5, false);
	vp_plan *p = NULL;

	d.full = true;
	for (int i = 0; i < 5; i++)
		have[i].flags |= VP_OBS_STANDALONE;
	have[1].flags &= ~(unsigned)VP_OBS_STANDALONE; /* a linked delta on the right base */
	have[1].disk_base_ref = "tiny@v1";
	have[2].base_ref = "tiny@v0";                  /* a rollout */
	have[3].flags &= ~(unsigned)(VP_OBS_DOMAIN | VP_OBS_OURS);
	have[3].disk_base_ref = "";                    /* standalone, domain gone */
	have[4].flags &= ~(unsigned)(VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_STANDALONE);
	have[4].disk_base_ref = "tiny@v1";             /* linked, domain gone */
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_NONE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	VP_ASSERT_STR_EQ(find(p, "ci-002")->reason, "a linked delta; clones.mode is full");
	CU_ASSERT_PTR_NULL(find(p, "ci-002")->from_base); /* the recorded previous version stays */
	VP_ASSERT_STR_EQ(find(p, "ci-003")->reason, "on another base version");
	VP_ASSERT_STR_EQ(find(p, "ci-003")->from_base, "tiny@v0");
	CU_ASSERT_EQUAL(find(p, "ci-004")->steps, VP_STEP_REBASE | VP_STEP_DEFINE);
	CU_ASSERT_PTR_NULL(find(p, "ci-004")->from_base);
	VP_ASSERT_STR_EQ(find(p, "ci-005")->reason, "domain missing, disk of the other clones.mode");
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 4);
	vp_plan_free(p);

	d.full = false; /* back to linked: the full copies are made again as deltas */
	for (int i = 0; i < 5; i++)
		have[i] = (vp_observed_clone){ .name = names[i], .index = (unsigned)i + 1,
					       .flags = VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_DELTA,
					       .pool = "ci", .base_ref = "tiny@v1", .spec_hash = "h1" };
	have[0].flags |= VP_OBS_STANDALONE;
	have[0].disk_base_ref = ""; /* what the inventory gives a linked pool's standalone disk */
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->reason,
			 "a disk without backing file (a full copy); clones.mode is linked");
	CU_ASSERT_PTR_NULL(find(p, "ci-001")->from_base);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 1);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_NONE], 4);
	vp_plan_free(p);
}

/* Detached clones (`vdipool detach`) keep their disk and definition: no rebase, update or
 * re-link, whatever their disk; start/stop still follow the spec. */
static void test_detached_clones_are_left_alone(void)
{
	vp_observed o = observed(5, VP_OBS_DETACHED);
	vp_desired d = desired(5, true);
	vp_plan *p = NULL;

	d.base_ref = "tiny@v2";                 /* a rollout */
	have[0].flags |= VP_OBS_STANDALONE;     /* flattened */
	have[0].disk_base_ref = "";
	have[1].disk_base_ref = "tiny@v1";      /* flatten pending */
	have[1].flags |= VP_OBS_RUNNING;
	have[2].spec_hash = "h0";               /* the spec changed */
	have[2].flags |= VP_OBS_STANDALONE | VP_OBS_RUNNING;
	have[2].disk_base_ref = "";
	have[3].flags &= ~(unsigned)VP_OBS_DETACHED; /* an ordinary clone rolls */
	have[4].flags &= ~(unsigned)(VP_OBS_DOMAIN | VP_OBS_OURS); /* no domain: no mark to trust */
	have[4].flags |= VP_OBS_STANDALONE;
	have[4].disk_base_ref = "";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_START);
	CU_ASSERT_EQUAL(find(p, "ci-001")->steps, VP_STEP_START);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->to_base, "tiny@v1");
	CU_ASSERT_EQUAL(find(p, "ci-002")->change, VP_CHANGE_NONE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->steps, 0);
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_NONE);
	CU_ASSERT_EQUAL(find(p, "ci-004")->change, VP_CHANGE_REBASE);
	CU_ASSERT_EQUAL(find(p, "ci-005")->change, VP_CHANGE_REBASE);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_REBASE], 2);
	vp_plan_free(p);
}

/* Updates and repairs take clones down too: waves of max_unavailable, with
 * the rebases, in index order; creations are not held back. */
static void test_updates_and_repairs_go_in_waves(void)
{
	vp_observed o = observed(8, VP_OBS_RUNNING);
	vp_desired d = desired(10, true);
	vp_plan *p = NULL;

	d.max_unavailable = 2;
	have[0].spec_hash = have[1].spec_hash = have[2].spec_hash = "old"; /* updates */
	have[3].flags &= ~(unsigned)VP_OBS_DELTA;                           /* repair */
	have[5].flags &= ~(unsigned)(VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_RUNNING); /* repair */
	have[6].base_ref = "tiny@v0";                                       /* rebase */
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(p->waves, 3);
	CU_ASSERT_EQUAL(find(p, "ci-001")->wave, 1);
	CU_ASSERT_EQUAL(find(p, "ci-002")->wave, 1);
	CU_ASSERT_EQUAL(find(p, "ci-003")->wave, 2);
	CU_ASSERT_EQUAL(find(p, "ci-004")->wave, 2);
	CU_ASSERT_EQUAL(find(p, "ci-005")->wave, 0); /* unchanged */
	CU_ASSERT_EQUAL(find(p, "ci-006")->wave, 3);
	CU_ASSERT_EQUAL(find(p, "ci-007")->wave, 3);
	CU_ASSERT_EQUAL(find(p, "ci-009")->change, VP_CHANGE_CREATE);
	CU_ASSERT_EQUAL(find(p, "ci-009")->wave, 0);
	vp_plan_free(p);
}

/* A deliberately poor hash (16 values) forces collisions. */
static void weak_mac(void *ctx, const char *name, unsigned attempt, char mac[18])
{
	unsigned h = attempt * 7;

	(void)ctx;
	for (const char *c = name; *c; c++)
		h = h * 31 + (unsigned char)*c;
	snprintf(mac, 18, "02:00:00:00:00:%02x", h % 16);
}

static size_t distinct_macs(const vp_plan *p)
{
	vp_strmap seen = VP_STRMAP_INIT;
	size_t n = 0;

	for (size_t i = 0; i < p->count; i++)
		if (p->items[i].mac[0] && !vp_strmap_get(&seen, p->items[i].mac)) {
			CU_ASSERT_EQUAL(vp_strmap_put(&seen, p->items[i].mac, (void *)p->items[i].name), 0);
			n++;
		}
	vp_strmap_release(&seen);
	return n;
}

static void test_macs_are_unique_and_kept(void)
{
	const char *taken_macs[] = { "02:00:00:00:00:00", "02:00:00:00:00:01" };
	vp_observed o = observed(4, 0);
	vp_desired d = desired(12, false);
	vp_plan *p = NULL;
	char first[12][18];

	o.macs_taken = taken_macs;
	o.nmacs_taken = 2;
	d.mac_of = weak_mac;
	have[0].mac = "02:00:00:00:00:0a";
	have[1].mac = "02:00:00:00:00:0a"; /* an old collision: the later clone moves */
	have[2].mac = "02:00:00:00:00:01"; /* another pool's clone has it */
	have[3].mac = "02:00:00:00:00:0b";
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(distinct_macs(p), 12);
	for (size_t i = 0; i < p->count; i++)
		for (size_t k = 0; k < 2; k++)
			CU_ASSERT_STRING_NOT_EQUAL(p->items[i].mac, taken_macs[k]);
	VP_ASSERT_STR_EQ(find(p, "ci-001")->mac, "02:00:00:00:00:0a");
	CU_ASSERT_EQUAL(find(p, "ci-001")->change, VP_CHANGE_NONE);
	VP_ASSERT_STR_EQ(find(p, "ci-004")->mac, "02:00:00:00:00:0b");
	CU_ASSERT_EQUAL(find(p, "ci-002")->change, VP_CHANGE_UPDATE);
	CU_ASSERT_EQUAL(find(p, "ci-002")->steps, VP_STEP_DEFINE);
	VP_ASSERT_STR_EQ(find(p, "ci-002")->reason, "its MAC address is another clone's");
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_UPDATE);
	for (size_t i = 0; i < p->count; i++)
		snprintf(first[i], 18, "%s", p->items[i].mac);
	vp_plan_free(p);
	/* deterministic: the same inputs give the same MACs */
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	for (size_t i = 0; i < p->count; i++)
		VP_ASSERT_STR_EQ(p->items[i].mac, first[i]);
	vp_plan_free(p);
}

static void real_mac(void *ctx, const char *name, unsigned attempt, char mac[18])
{
	vp_domain_mac(ctx, name, attempt, mac);
}

/* 10,000 clones named desk-N on one host: no two share a MAC, whether new or
 * carried over from the old 24-bit derivation (which collides 4 times). */
static void test_ten_thousand_desks_get_distinct_macs(void)
{
	static char legacy[10000][18];
	vp_observed o;
	vp_desired d;
	vp_plan *p = NULL;
	size_t updates = 0;

	d = desired(10000, false);
	for (unsigned i = 0; i < 10000; i++) {
		snprintf(names[i], sizeof(names[i]), "desk-%u", i + 1);
		want[i].name = names[i];
	}
	d.pool = "desk";
	d.mac_of = real_mac;
	d.mac_ctx = (void *)"desk";
	o = (vp_observed){ .count = 0 };
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(distinct_macs(p), 10000);
	vp_plan_free(p);
	/* a pool defined before MACs were recorded: legacy MACs, some shared */
	for (unsigned i = 0; i < 10000; i++) {
		have[i] = (vp_observed_clone){ .name = names[i], .index = i + 1,
					       .flags = VP_OBS_DOMAIN | VP_OBS_OURS | VP_OBS_DELTA,
					       .pool = "desk", .base_ref = "tiny@v1", .spec_hash = "h1" };
		vp_domain_mac_legacy("desk", names[i], legacy[i]);
		have[i].mac = legacy[i];
	}
	o = (vp_observed){ .count = 10000, .clones = have };
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(distinct_macs(p), 10000);
	for (size_t i = 0; i < p->count; i++)
		updates += p->items[i].change == VP_CHANGE_UPDATE;
	CU_ASSERT(updates > 0 && updates < 10); /* only the colliding clones change */
	vp_plan_free(p);
}

/* The same pool name on another tier: another pool, never taken over. */
static void test_namesake_pool_on_another_tier(void)
{
	vp_observed o = observed(5, 0);
	vp_desired d = desired(3, false);
	vp_plan *p = NULL;

	have[4].flags |= VP_OBS_ELSEWHERE; /* not wanted: left alone, not surplus */
	have[4].flags &= ~(unsigned)VP_OBS_DELTA;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_EQUAL(find(p, "ci-004")->change, VP_CHANGE_REMOVE);
	CU_ASSERT_PTR_NULL(find(p, "ci-005"));
	vp_plan_free(p);
	have[1].flags |= VP_OBS_ELSEWHERE; /* wanted: a conflict */
	CU_ASSERT_EQUAL(vp_plan_build(&p, &d, &o), VP_ECONFLICT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message,
				      "domain 'ci-002' belongs to another pool named 'ci' whose deltas lie on "
				      "another storage tier"));
}

/* A clone that left only its data disk (plain destroy, scale-down) is listed
 * unchanged, so destroy --purge-data can find it; nothing else happens to it. */
static void test_leftover_data_disk(void)
{
	vp_observed o = observed(3, 0);
	vp_desired d = desired(2, false);
	vp_plan *p = NULL;

	have[2].flags = VP_OBS_DATA;
	CU_ASSERT_EQUAL_FATAL(vp_plan_build(&p, &d, &o), 0);
	CU_ASSERT_FALSE(vp_plan_has_changes(p));
	CU_ASSERT_EQUAL(find(p, "ci-003")->change, VP_CHANGE_NONE);
	CU_ASSERT_TRUE(find(p, "ci-003")->keeps_data);
	CU_ASSERT_EQUAL(p->counts[VP_CHANGE_NONE], 2); /* clones only */
	vp_plan_free(p);
}

static void test_names(void)
{
	VP_ASSERT_STR_EQ(vp_change_name(VP_CHANGE_REMOVE), "remove");
	VP_ASSERT_STR_EQ(vp_change_name(VP_CHANGE_NONE), "unchanged");
	VP_ASSERT_STR_EQ(vp_step_name(VP_STEP_CREATE_DELTA), "create delta");
	VP_ASSERT_STR_EQ(vp_step_name(3), "?");
}

static CU_TestInfo tests[] = {
	{ "empty world creates all", test_empty_world_creates_all },
	{ "matching world is a no-op", test_matching_world_is_noop },
	{ "scale down removes highest index first", test_scale_down_removes_highest_first },
	{ "scale up creates only the new clones", test_scale_up_creates_only_new },
	{ "half-made clones are repaired", test_repairs_half_made_clones },
	{ "a foreign domain with a wanted name is a conflict", test_foreign_domain_is_a_conflict },
	{ "another pool's domain is a conflict", test_other_pools_domain_is_a_conflict },
	{ "domains outside the pool are left alone", test_foreign_domains_outside_the_pool_are_left_alone },
	{ "drift: update, rebase, stop, data disk", test_drift_update_rebase_start_stop_data },
	{ "claimed clones are left alone", test_claimed_clones_are_left_alone },
	{ "rebase in waves of max_unavailable", test_rebase_in_waves },
	{ "ten thousand clones", test_ten_thousand_clones },
	{ "rollback: each clone to its own base", test_rollback_gives_each_clone_its_own_base },
	{ "the delta's real backing beats the metadata", test_real_backing_beats_metadata },
	{ "full clones: standalone disks, a disk of the other mode is made again", test_full_clones },
	{ "detached clones are left alone (start/stop only)", test_detached_clones_are_left_alone },
	{ "updates and repairs go in waves", test_updates_and_repairs_go_in_waves },
	{ "MACs are unique on the host and kept", test_macs_are_unique_and_kept },
	{ "10,000 desks get distinct MACs", test_ten_thousand_desks_get_distinct_macs },
	{ "a namesake pool on another tier is not ours", test_namesake_pool_on_another_tier },
	{ "a leftover data disk is listed, unchanged", test_leftover_data_disk },
	{ "change and step names", test_names },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "plan", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
