/* test_plan.c: the pure planner, table by table: create, no-op, scale, repair, conflicts, drift. */
#include <stdio.h>

#include "vdipool/error.h"
#include "vdipool/plan.h"
#include "vp_test.h"

#define MAXC 12000

static char names[MAXC][32];
static vp_desired_clone want[MAXC];
static vp_observed_clone have[MAXC];

static vp_desired desired(size_t count, bool start)
{
	for (size_t i = 0; i < count; i++) {
		snprintf(names[i], sizeof(names[i]), "ci-%03u", (unsigned)i + 1);
		want[i] = (vp_desired_clone){ names[i], (unsigned)i + 1 };
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
	return (vp_observed){ count, have };
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
	vp_observed o = { 0, NULL };
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
	{ "rebase in waves of max_unavailable", test_rebase_in_waves },
	{ "ten thousand clones", test_ten_thousand_clones },
	{ "change and step names", test_names },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "plan", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
