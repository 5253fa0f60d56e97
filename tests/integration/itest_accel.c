/* itest_accel.c: the KVM probe and its cache against the real libvirtd, and a start that fails for
 * a host-wide reason (a root-only /dev/kvm) coming back as VP_EHOST with the reason in plain words.
 * It changes /dev/kvm's mode for a moment and puts it back; on a machine without /dev/kvm the
 * cases that need one say SKIP with the reason. */
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/fs.h"
#include "vp_test.h"

static char cache[64];
static struct stat kvm_st;
static bool have_kvm;

static int setup(void)
{
	snprintf(cache, sizeof(cache), "/tmp/vp-itest-accel-XXXXXX");
	have_kvm = stat("/dev/kvm", &kvm_st) == 0;
	return mkdtemp(cache) ? 0 : -1;
}

static void restore_kvm(void)
{
	if (have_kvm) {
		chown("/dev/kvm", kvm_st.st_uid, kvm_st.st_gid);
		chmod("/dev/kvm", kvm_st.st_mode & 07777);
	}
}

static int teardown(void)
{
	restore_kvm();
	vp_fs_rm_rf(cache);
	return 0;
}

/* libvirt notices a changed /dev/kvm by its ctime in whole seconds. */
static void set_kvm(uid_t uid, gid_t gid, mode_t mode)
{
	sleep(1);
	CU_ASSERT_EQUAL(chown("/dev/kvm", uid, gid), 0);
	CU_ASSERT_EQUAL(chmod("/dev/kvm", mode), 0);
}

static vp_virt *open_virt(void)
{
	vp_virt *v = NULL;

	if (vp_virt_open(&v, "qemu:///system") < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	if (v)
		vp_virt_set_accel_cache_dir(v, cache);
	return v;
}

static void test_probe_is_cached_until_dev_kvm_changes(void)
{
	struct group *kvm = getgrnam("kvm");
	vp_virt *v;
	vp_accel a, b;

	if (!have_kvm || !kvm) {
		printf("\n  SKIP: no /dev/kvm or no group kvm on this machine\n");
		return;
	}
	set_kvm(0, kvm->gr_gid, 0660);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v = open_virt());
	CU_ASSERT_EQUAL_FATAL(vp_virt_accel(v, VP_ACCEL_AUTO, &a), 0);
	CU_ASSERT_FALSE(a.cached);
	vp_virt_free(v);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v = open_virt());
	CU_ASSERT_EQUAL_FATAL(vp_virt_accel(v, VP_ACCEL_AUTO, &b), 0);
	CU_ASSERT_TRUE(b.cached);
	CU_ASSERT_EQUAL(a.kvm, b.kvm);
	VP_ASSERT_STR_EQ(a.reason, b.reason);
	vp_virt_free(v);

	/* A chmod (as libvirt-up.sh or an admin does) is a new /dev/kvm: probed again. */
	set_kvm(0, 0, 0600);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v = open_virt());
	CU_ASSERT_EQUAL(vp_virt_accel(v, VP_ACCEL_AUTO, &a), 0);
	CU_ASSERT_FALSE(a.cached);
	CU_ASSERT_FALSE(a.kvm);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.reason, "/dev/kvm is not accessible to QEMU (permission denied"));
	CU_ASSERT_EQUAL(vp_virt_accel(v, VP_ACCEL_KVM, &a), VP_EHOST);
	vp_virt_free(v);
	restore_kvm();
}

/* A domain already defined for KVM (before /dev/kvm broke) fails to start: VP_EHOST, said plainly. */
static void test_start_on_a_root_only_dev_kvm(void)
{
	static const char xml[] = "<domain type='kvm'><name>vp-itest-accel-start</name><memory unit='MiB'>32</memory>"
				  "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os>"
				  "<devices><memballoon model='none'/></devices></domain>";
	vp_virt *v;
	int rc;

	if (!have_kvm) {
		printf("\n  SKIP: no /dev/kvm on this machine to make root-only\n");
		return;
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(v = open_virt());
	/* Defined while /dev/kvm is usable: libvirt takes a KVM domain only then. */
	if (vp_virt_define(v, xml, false) < 0) {
		printf("\n  SKIP: libvirt takes no KVM domain here: %s\n", vp_error_last()->message);
		vp_virt_free(v);
		return;
	}
	set_kvm(0, 0, 0600);
	rc = vp_virt_start(v, "vp-itest-accel-start");
	if (rc == 0) {
		/* libvirt noticed first and ran it another way: not the case under test. */
		vp_virt_stop(v, "vp-itest-accel-start", 0);
		printf("\n  SKIP: the domain started despite a root-only /dev/kvm\n");
	} else {
		CU_ASSERT_EQUAL(rc, VP_EHOST);
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot start guests under KVM"));
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "/dev/kvm"));
	}
	restore_kvm();
	CU_ASSERT_EQUAL(vp_virt_undefine(v, "vp-itest-accel-start"), 0);
	vp_virt_free(v);
}

/* A probe guest that fails for a reason of its own (its disk cannot be opened) says nothing
 * about KVM: a bare guest decides, and the disk's problem is not given as KVM's. */
static void test_a_guests_own_failure_is_not_kvms(void)
{
	static const char xml[] = "<domain type='kvm'><name>x</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>"
				  "<os><type arch='x86_64'>hvm</type></os><devices><disk type='file' device='disk'>"
				  "<driver name='qemu' type='qcow2'/><source file='/nonexistent/vp-itest/base.qcow2'/>"
				  "<target dev='vda' bus='virtio'/></disk><memballoon model='none'/></devices></domain>";
	struct group *kvm = getgrnam("kvm");
	vp_virt *v;
	vp_accel bare, a;

	if (!have_kvm || !kvm) {
		printf("\n  SKIP: no /dev/kvm or no group kvm on this machine\n");
		return;
	}
	set_kvm(0, kvm->gr_gid, 0660);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v = open_virt());
	CU_ASSERT_EQUAL_FATAL(vp_virt_accel(v, VP_ACCEL_AUTO, &bare), 0);
	vp_virt_set_accel_probe(v, xml, "broken-disk");
	CU_ASSERT_EQUAL_FATAL(vp_virt_accel(v, VP_ACCEL_AUTO, &a), 0);
	CU_ASSERT_FALSE(a.cached);
	CU_ASSERT_EQUAL(a.kvm, bare.kvm);
	CU_ASSERT_PTR_NULL(strstr(a.reason, "nonexistent"));
	vp_virt_free(v);
	restore_kvm();
}

static CU_TestInfo tests[] = {
	{ "a guest's own failure is not kvm's", test_a_guests_own_failure_is_not_kvms },
	{ "the probe is cached until /dev/kvm changes", test_probe_is_cached_until_dev_kvm_changes },
	{ "a start on a root-only /dev/kvm is VP_EHOST", test_start_on_a_root_only_dev_kvm },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "accel", setup, teardown, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
