/* test_accel.c: the KVM-or-TCG decision on the failures seen on real hosts, the spec key, the
 * domain hash that follows the accelerator, and the executor stopping a wave on a host failure. */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "vdipool/accel.h"
#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/exec.h"
#include "vdipool/spec.h"
#include "vp_test.h"

/* Verbatim from a fresh Debian 12 host whose /dev/kvm is crw------- root root. */
static const char perm_denied[] =
	"internal error: process exited while connecting to monitor: Could not access KVM kernel module: "
	"Permission denied\n2026-11-20T13:16:02.123456Z qemu-system-x86_64: failed to initialize kvm: "
	"Permission denied";
/* Verbatim from the same host with the permission fixed: nested KVM refuses a vCPU MSR. */
static const char nested_msr[] =
	"qemu-system-x86_64: error: failed to set MSR 0x10a to 0x20000004c\n"
	"qemu-system-x86_64: ../../target/i386/kvm/kvm.c:3063: kvm_buf_set_msrs: Assertion `ret == "
	"cpu->kvm_msr_buf->nmsrs' failed.";
static const char no_dev_kvm[] =
	"internal error: process exited while connecting to monitor: Could not access KVM kernel module: "
	"No such file or directory";

static void test_tcg_asks_nothing(void)
{
	vp_accel a;
	vp_accel_probe ok = { .ran = true, .ok = true };

	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_TCG, "h", true, &ok), 0);
	CU_ASSERT_FALSE(a.kvm);
	VP_ASSERT_STR_EQ(a.domain_type, "qemu");
	VP_ASSERT_STR_EQ(a.reason, "");
}

static void test_kvm_when_the_probe_runs(void)
{
	vp_accel_probe ok = { .ran = true, .ok = true };
	vp_accel a;

	for (int m = VP_ACCEL_AUTO; m <= VP_ACCEL_KVM; m++) {
		CU_ASSERT_EQUAL(vp_accel_decide(&a, (vp_accel_mode)m, "h", true, &ok), 0);
		CU_ASSERT_TRUE(a.kvm);
		VP_ASSERT_STR_EQ(a.domain_type, "kvm");
		VP_ASSERT_STR_EQ(a.reason, "");
	}
}

/* Listed by libvirt is not enough: auto falls back with the reason, kvm refuses with it. */
static void check_failure(const char *qemu_says, const char *reason_has)
{
	vp_accel_probe failed = { .ran = true, .ok = false, .message = qemu_says };
	vp_accel a;

	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_AUTO, "qemu:///system", true, &failed), 0);
	CU_ASSERT_FALSE(a.kvm);
	VP_ASSERT_STR_EQ(a.domain_type, "qemu");
	CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "host 'qemu:///system': clones run under TCG"));
	if (!strstr(a.reason, reason_has))
		fprintf(stderr, "\n  reason: %s\n  expected to contain: %s\n", a.reason, reason_has);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, reason_has));

	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_KVM, "qemu:///system", true, &failed), VP_EHOST);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "domain.accel is 'kvm' but KVM cannot run a guest"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, reason_has));
	CU_ASSERT_TRUE(vp_accel_host_failure(qemu_says));
}

static void test_root_only_dev_kvm(void)
{
	check_failure(perm_denied, "/dev/kvm is not accessible to QEMU (permission denied");
}

static void test_nested_kvm_msr(void)
{
	check_failure(nested_msr, "the CPU refused a vCPU register (MSR), as nested virtualisation");
}

static void test_no_dev_kvm(void)
{
	check_failure(no_dev_kvm, "this host has no /dev/kvm");
}

static void test_unknown_failure_keeps_qemus_words(void)
{
	vp_accel_probe failed = { .ran = true, .ok = false, .message = "something new\nsecond line" };
	vp_accel a;

	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_AUTO, "h", true, &failed), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "a probe guest did not start under KVM: something new"));
	CU_ASSERT_PTR_NULL(strstr(a.reason, "second line"));
}

static void test_libvirt_lists_no_kvm(void)
{
	vp_accel a;

	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_AUTO, "h", false, NULL), 0);
	CU_ASSERT_FALSE(a.kvm);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "libvirt lists no KVM domain type"));
	CU_ASSERT_EQUAL(vp_accel_decide(&a, VP_ACCEL_KVM, "h", false, NULL), VP_EHOST);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "host 'h'"));
}

/* Only KVM failures stop a wave: a clone's own problem must not hold back the others. */
static void test_host_failures_are_only_kvm_ones(void)
{
	CU_ASSERT_FALSE(vp_accel_host_failure("Cannot access storage file '/t/deltas/p/c.qcow2': No such file"));
	CU_ASSERT_FALSE(vp_accel_host_failure("unsupported configuration: unknown disk bus"));
	CU_ASSERT_FALSE(vp_accel_host_failure(NULL));
	CU_ASSERT_TRUE(vp_accel_host_failure(no_dev_kvm));
}

/* ---- the spec key and the hash ---- */

#define SPEC "pool:\n  name: ci\nbase:\n  name: tiny\nstorage:\n  tiers:\n    - name: t\n      path: /tmp\n" \
	     "clones:\n  count: 2\n"

static void test_spec_accel_key(void)
{
	static const char *const yaml[] = { SPEC, SPEC "domain:\n  accel: kvm\n", SPEC "domain:\n  accel: tcg\n",
					    SPEC "domain:\n  accel: auto\n" };
	static const vp_spec_accel want[] = { VP_SPEC_ACCEL_AUTO, VP_SPEC_ACCEL_KVM, VP_SPEC_ACCEL_TCG,
					      VP_SPEC_ACCEL_AUTO };

	for (size_t i = 0; i < 4; i++) {
		vp_spec *s = NULL;
		CU_ASSERT_EQUAL_FATAL(vp_spec_parse(&s, "pool.yaml", yaml[i], strlen(yaml[i])), 0);
		CU_ASSERT_EQUAL(s->domain.accel, want[i]);
		vp_spec_free(s);
	}
}

static void test_domain_hash_follows_tcg(void)
{
	char plain[VP_SPEC_HASH_LEN], kvm[VP_SPEC_HASH_LEN], tcg[VP_SPEC_HASH_LEN];
	vp_spec *s = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_spec_parse(&s, "pool.yaml", SPEC, strlen(SPEC)), 0);
	CU_ASSERT_EQUAL(vp_spec_hash(s, plain), 0);
	CU_ASSERT_EQUAL(vp_spec_domain_hash(s, "kvm", kvm), 0);
	CU_ASSERT_EQUAL(vp_spec_domain_hash(s, "qemu", tcg), 0);
	/* Pools defined under KVM before domain.accel keep their hash; TCG redefines. */
	VP_ASSERT_STR_EQ(kvm, plain);
	CU_ASSERT_STRING_NOT_EQUAL(tcg, plain);
	vp_spec_free(s);
}

/* ---- the CPU follows the accelerator ---- */

static char *xpath_str(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "d.xml", NULL, XML_PARSE_NONET);
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	char *out = strdup(r && r->stringval ? (const char *)r->stringval : "");

	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return out;
}

static void check_cpu(const char *tpl_text, const char *type, const char *want_mode, const char *want_count)
{
	char path[] = "/tmp/vp-test-accel-tpl-XXXXXX";
	int fd = mkstemp(path);
	vp_domain_params p = { .name = "c1", .domain_type = type, .network = "none", .memory_bytes = 64ull << 20,
			       .vcpus = 1, .delta_format = "qcow2",
			       .meta = { .pool = "p", .index = 1, .base_name = "b", .base_version = "1",
					 .base_image = "/b.qcow2", .delta_path = "/d.qcow2", .spec_hash = "h" } };
	char *xml = NULL, *mode, *count;

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_EQUAL(write(fd, tpl_text, strlen(tpl_text)), (ssize_t)strlen(tpl_text));
	close(fd);
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, path, &p), 0);
	mode = xpath_str(xml, "string(/domain/cpu/@mode)");
	count = xpath_str(xml, "string(count(/domain/cpu))");
	VP_ASSERT_STR_EQ(count, want_count);
	VP_ASSERT_STR_EQ(mode, want_mode);
	free(mode);
	free(count);
	mode = xpath_str(xml, "string(/domain/@type)");
	VP_ASSERT_STR_EQ(mode, type);
	free(mode);
	free(xml);
	unlink(path);
}

static void test_cpu_follows_accel(void)
{
	static const char with_cpu[] = "<domain type='kvm'><name>t</name><cpu mode='host-passthrough'/>"
				       "<devices/></domain>";
	static const char without_cpu[] = "<domain type='kvm'><name>t</name><devices/></domain>";

	check_cpu(with_cpu, "kvm", "host-passthrough", "1"); /* the template's choice under KVM */
	check_cpu(without_cpu, "kvm", "host-model", "1");    /* host-model when it has none */
	check_cpu(with_cpu, "qemu", "", "0");                /* QEMU's TCG model under TCG */
	check_cpu(without_cpu, "qemu", "", "0");
}

/* ---- the executor: one host failure, said once, no more attempts ---- */

#define NCLONES 12

static atomic_int start_calls, define_calls;

static int step_kvm_broken(void *ctx, const vp_plan_item *it, unsigned s)
{
	if (s == VP_STEP_DEFINE)
		atomic_fetch_add(&define_calls, 1);
	if (s != VP_STEP_START)
		return 0;
	atomic_fetch_add(&start_calls, 1);
	usleep(20000); /* a failing QEMU start is not free */
	return vp_error_set(VP_ERR_VIRT, VP_EHOST, "host 'qemu:///system' cannot start guests under KVM: x");
}

static void test_wave_stops_on_a_host_failure(void)
{
	static char names[NCLONES][8];
	vp_plan_item items[NCLONES];
	vp_plan p = { .count = NCLONES, .items = items };
	vp_exec_ops ops = { .step = step_kvm_broken };
	vp_exec_opts o = { .parallel = 1, .max_starts = 1 };
	vp_exec_result res;

	for (int i = 0; i < NCLONES; i++) {
		snprintf(names[i], sizeof(names[i]), "c%02d", i);
		items[i] = (vp_plan_item){ .name = names[i], .index = (unsigned)i, .change = VP_CHANGE_CREATE,
					   .steps = VP_STEP_CREATE_DELTA | VP_STEP_DEFINE | VP_STEP_START };
	}
	CU_ASSERT_EQUAL(vp_exec_run(&p, &ops, NULL, &o, &res), VP_EHOST);
	CU_ASSERT_EQUAL(atomic_load(&start_calls), 1);
	CU_ASSERT_EQUAL(res.failed, 1);
	CU_ASSERT_EQUAL(res.skipped, NCLONES - 1);
	CU_ASSERT_EQUAL(res.done, 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot start guests under KVM"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "11 not attempted"));

	/* With 4 workers and 4 starts in flight, at most those already started fail. */
	atomic_store(&start_calls, 0);
	o = (vp_exec_opts){ .parallel = 4, .max_starts = 4 };
	CU_ASSERT_EQUAL(vp_exec_run(&p, &ops, NULL, &o, &res), VP_EHOST);
	CU_ASSERT(atomic_load(&start_calls) <= 4);
	CU_ASSERT_EQUAL(res.failed + res.skipped, NCLONES);
	CU_ASSERT_EQUAL((size_t)atomic_load(&start_calls), res.failed);
}

static CU_TestInfo decide_tests[] = {
	{ "tcg asks nothing", test_tcg_asks_nothing },
	{ "kvm when a probe guest runs", test_kvm_when_the_probe_runs },
	{ "root-only /dev/kvm", test_root_only_dev_kvm },
	{ "nested kvm refuses an msr", test_nested_kvm_msr },
	{ "no /dev/kvm", test_no_dev_kvm },
	{ "unknown failure keeps qemu's first line", test_unknown_failure_keeps_qemus_words },
	{ "libvirt lists no kvm", test_libvirt_lists_no_kvm },
	{ "host failures are kvm ones only", test_host_failures_are_only_kvm_ones },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo spec_tests[] = {
	{ "domain.accel parses", test_spec_accel_key },
	{ "domain hash follows tcg", test_domain_hash_follows_tcg },
	{ "the cpu follows the accelerator", test_cpu_follows_accel },
	CU_TEST_INFO_NULL,
};

static CU_TestInfo exec_tests[] = {
	{ "a wave stops on a host failure", test_wave_stops_on_a_host_failure },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "decide", NULL, NULL, NULL, NULL, decide_tests },
	{ "spec", NULL, NULL, NULL, NULL, spec_tests },
	{ "exec", NULL, NULL, NULL, NULL, exec_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
