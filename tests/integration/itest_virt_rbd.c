/* itest_virt_rbd.c: a guest whose disk is an RBD clone on the throw-away Ceph of scripts/ceph-up.sh, booted by the real libvirtd with vdipool's cephx secret. */
/*
 * The tiny test guest (scripts/build-guest-image.sh) is imported with the rbd CLI, snapshotted,
 * protected and cloned; vp_virt_rbd_auth puts client.vdipool's key into a libvirt secret;
 * vp_domain_render makes templates/server.xml's vda the clone (a network disk); the guest boots
 * (KVM or TCG, as vp_virt_accel decides), writes its clone marker, and shuts down. Checked: the
 * marker is in the clone, the parent snapshot is bit-identical, the secret is private and one,
 * and the key is in no domain XML, QEMU command line, log or libvirt state file. Cleans up its
 * domain, its secret, its logs and the cluster. A machine without the Ceph packages or QEMU's
 * rbd driver prints a SKIP line and passes nothing.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/accel.h"
#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/refs.h"
#include "vdipool/store.h"
#include "vdipool/virt.h"
#include "vp_test.h"

#define RUN "/tmp/vp-ceph-virt"
#define PORT "auto" /* free ports: a cluster a crashed run left behind is no obstacle */
#define URI "qemu:///system"
#define LOGDIR "/var/log/libvirt/qemu"

static char src[512], guest[512], conf[256], keyring[256], admin[700], name[64], key[128];
static char location[800], parent_sha[80], base_marker[600];
static bool up;
static vp_virt *v;
static vp_rbd_auth auth;

static int cluster(const char *script)
{
	return vp_sh("VP_CEPH_DIR=%s VP_CEPH_PORT=%s bash %s/scripts/%s >>%s.log 2>&1", RUN, PORT, src, script,
		  RUN);
}

static int skip(const char *why)
{
	fprintf(stderr, "SKIP: itest_virt_rbd: %s\n", why);
	return 0;
}

static int suite_init(void)
{
	const char *s = getenv("VP_SOURCE_DIR"), *b = getenv("VP_BUILD_DIR"), *g = getenv("VP_GUEST_DIR");

	snprintf(src, sizeof(src), "%s", s ? s : "..");
	snprintf(guest, sizeof(guest), "%s", g ? g : "");
	if (!g)
		snprintf(guest, sizeof(guest), "%s/guest", b ? b : ".");
	snprintf(name, sizeof(name), "vptest-rbd-%d", (int)getpid());
	if (getuid() != 0 && system("command -v ceph-mon >/dev/null 2>&1") != 0)
		return skip("needs the Ceph packages (or root to install them)");
	if (system("ls /usr/lib/*/qemu/block-rbd.so /usr/lib/qemu/block-rbd.so 2>/dev/null | grep -q .") != 0)
		return skip("QEMU has no rbd driver here (qemu-block-extra)");
	if (vp_sh("bash %s/scripts/libvirt-up.sh >%s.libvirt.log 2>&1", src, RUN) != 0 ||
	    vp_sh("bash %s/scripts/build-guest-image.sh %s >%s.guest.log 2>&1", src, guest, RUN) != 0)
		return -1;
	unlink(RUN ".log");
	if (cluster("ceph-up.sh") != 0) {
		if (vp_sh("grep -q 'cannot install' %s.log", RUN) == 0)
			return skip("the Ceph packages cannot be installed here");
		fprintf(stderr, "itest_virt_rbd: ceph-up.sh failed, see %s.log\n", RUN);
		cluster("ceph-down.sh");
		return -1;
	}
	up = true;
	snprintf(conf, sizeof(conf), "%s/ceph.conf", RUN);
	snprintf(keyring, sizeof(keyring), "%s/client.vdipool.keyring", RUN);
	snprintf(admin, sizeof(admin), "rbd -c %s -n client.admin --keyring %s/client.admin.keyring -p rbd",
		 conf, RUN);
	/* The location as the rbd plugin writes it for a tier with conf, id and keyring. */
	snprintf(location, sizeof(location), "rbd:rbd/vpvirt-clone:id=vdipool:conf=%s:keyring=%s", conf,
		 keyring);
	vp_capture(key, sizeof(key), "awk '$1 == \"key\" { print $3 }' %s", keyring);
	vp_capture(base_marker, sizeof(base_marker),
		"dd if=%s/tiny.raw bs=512 skip=98304 count=1 status=none | tr -d '\\000' | head -n 1", guest);
	if (strlen(key) < 40 || strncmp(base_marker, "VDIPOOL-BASE", 12)) {
		fprintf(stderr, "itest_virt_rbd: no key in %s or no base marker in %s/tiny.raw\n", keyring, guest);
		return -1;
	}
	if (vp_sh("%s import --image-format 2 %s/tiny.raw vpvirt-base >/dev/null 2>&1 && %s snap create "
	       "vpvirt-base@golden && %s snap protect vpvirt-base@golden && %s clone "
	       "vpvirt-base@golden vpvirt-clone", admin, guest, admin, admin, admin) != 0)
		return -1;
	vp_capture(parent_sha, sizeof(parent_sha), "%s export vpvirt-base@golden - 2>/dev/null | sha256sum "
		"| cut -c1-64", admin);
	if (vp_virt_open(&v, URI) < 0) {
		fprintf(stderr, "itest_virt_rbd: %s\n", vp_error_last()->message);
		return -1;
	}
	return 0;
}

static int suite_clean(void)
{
	if (v) {
		vp_virt_stop(v, name, 0);
		vp_virt_undefine(v, name);
		vp_virt_free(v);
	}
	if (*auth.secret_uuid)
		vp_sh("virsh -q -c %s secret-undefine %s >/dev/null", URI, auth.secret_uuid);
	vp_rbd_auth_release(&auth);
	vp_sh("rm -f %s/%s-serial.log %s/%s.log", LOGDIR, name, LOGDIR, name);
	if (up)
		cluster("ceph-down.sh");
	if (up && CU_get_number_of_failures() == 0)
		vp_sh("rm -f %s.log %s.libvirt.log %s.guest.log", RUN, RUN, RUN);
	return 0;
}

#define NEED_CLUSTER()        \
	do {                  \
		if (!up)      \
			return; \
	} while (0)

/* One private, persistent secret for client.vdipool, however often it is asked for. */
static void test_secret(void)
{
	vp_rbd_auth again;
	char out[4096];

	NEED_CLUSTER();
	if (vp_virt_rbd_auth(v, conf, "vdipool", keyring, &auth) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_EQUAL_FATAL(auth.nhosts, 1);
	VP_ASSERT_STR_EQ(auth.user, "vdipool");
	VP_ASSERT_STR_EQ(auth.hosts[0].name, "127.0.0.1");
	/* the v1 address of the conf's "mon host = [v2:127.0.0.1:P,v1:127.0.0.1:P+1]" */
	char v1[16];
	vp_capture(v1, sizeof(v1), "sed -n 's/^mon host = .*,v1:127.0.0.1:\\([0-9]*\\)]$/\\1/p' %s", conf);
	CU_ASSERT(atoi(v1) > 0);
	CU_ASSERT_EQUAL(auth.hosts[0].port, atoi(v1));
	CU_ASSERT_EQUAL(strncmp(auth.secret_usage, "vdipool client.vdipool ", 23), 0);
	/* the keyring the conf names ($name expanded) is the same key: the same secret */
	CU_ASSERT_EQUAL_FATAL(vp_virt_rbd_auth(v, conf, "vdipool", NULL, &again), 0);
	VP_ASSERT_STR_EQ(again.secret_uuid, auth.secret_uuid);
	vp_rbd_auth_release(&again);
	vp_capture(out, sizeof(out), "virsh -q -c %s secret-list | grep -cF '%s'", URI, auth.secret_usage);
	VP_ASSERT_STR_EQ(out, "1");
	vp_capture(out, sizeof(out), "virsh -q -c %s secret-dumpxml %s", URI, auth.secret_uuid);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "private='yes'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "ephemeral='no'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "<usage type='ceph'>"));
	/* private: libvirt hands the value to nobody */
	snprintf(out, sizeof(out), "virsh -q -c %s secret-get-value %s >/dev/null 2>&1", URI,
		 auth.secret_uuid);
	CU_ASSERT_NOT_EQUAL(system(out), 0);
}

/* Files QEMU's guest and libvirt leave that would show the key if it leaked (libvirt's own
 * secret store aside, checked for its mode instead). */
static void assert_key_nowhere(void)
{
	char out[4096], pid[32], proc[128] = "";

	vp_capture(pid, sizeof(pid), "cat /run/libvirt/qemu/%s.pid 2>/dev/null", name);
	if (*pid)
		snprintf(proc, sizeof(proc), "/proc/%s/cmdline /proc/%s/environ", pid, pid);
	vp_capture(out, sizeof(out), "grep -rlF -D skip --exclude-dir=secrets -- '%s' /etc/libvirt /run/libvirt "
		"/var/lib/libvirt/qemu %s/%s.log %s/%s-serial.log %s.log %s 2>/dev/null",
		key, LOGDIR, name, LOGDIR, name, RUN, proc);
	if (*out)
		fprintf(stderr, "\n  the cephx key is in: %s\n", out);
	VP_ASSERT_STR_EQ(out, "");
	vp_capture(out, sizeof(out), "stat -c %%a /etc/libvirt/secrets/%s.base64 2>/dev/null || echo none",
		auth.secret_uuid);
	if (strcmp(out, "none"))
		VP_ASSERT_STR_EQ(out, "600");
}

static bool wait_serial(const char *line, int seconds)
{
	for (int i = 0; i < seconds * 2; i++) {
		char cmd[512];
		snprintf(cmd, sizeof(cmd), "tr -d '\\r' < %s/%s-serial.log 2>/dev/null | grep -q '^%s'",
			 LOGDIR, name, line);
		if (system(cmd) == 0)
			return true;
		usleep(500 * 1000);
	}
	return false;
}

static void test_guest_on_rbd_clone(void)
{
	vp_accel acc;
	vp_domain_params p = {
		.name = name, .network = "none", .memory_bytes = 256ull << 20, .vcpus = 1,
		.delta_format = "qcow2", /* rbd: disks are raw whatever this says */
		.meta = { .pool = "vptest-rbd", .index = 1, .base_name = "tiny", .base_version = "golden",
			  .base_image = "rbd:rbd/vpvirt-base@golden", .delta_path = location, .spec_hash = "x" },
	};
	char tpl[600], *xml = NULL, out[8192], used[64], pins_owner[128];
	vp_store_pins *pins = NULL;
	char **paths = NULL;
	size_t n = 0;
	bool listed = false;

	NEED_CLUSTER();
	CU_ASSERT_PTR_NOT_NULL_FATAL(auth.user);
	vp_domain_identity(p.meta.pool, name, p.uuid, p.mac);
	p.rbd = &auth;
	snprintf(tpl, sizeof(tpl), "%s/templates/server.xml", src);
	/* KVM or TCG as a pool decides: nested KVM may start a bare guest and stop this one in its
	 * boot, so the probe boots this guest (read-only, from the clone), uncached. */
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl, &p), 0);
	vp_virt_set_accel_probe(v, xml, "itest_virt_rbd");
	vp_virt_set_accel_cache_dir(v, "");
	free(xml);
	xml = NULL;
	if (vp_virt_accel(v, VP_ACCEL_AUTO, &acc) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	p.domain_type = vp_virt_domain_type(v);
	fprintf(stderr, "\n  domain type %s\n", p.domain_type);
	if (vp_domain_render(&xml, tpl, &p) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_PTR_NOT_NULL_FATAL(xml);
	CU_ASSERT_PTR_NOT_NULL(strstr(xml, "protocol=\"rbd\" name=\"rbd/vpvirt-clone\""));
	CU_ASSERT_PTR_NULL(strstr(xml, key));
	vp_sh("rm -f %s/%s-serial.log", LOGDIR, name);
	if (vp_virt_define(v, xml, true) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	free(xml);
	vp_capture(used, sizeof(used), "%s du vpvirt-clone 2>/dev/null | awk 'NR == 2 { print $4 $5 }'", admin);
	fprintf(stderr, "  clone used before boot: %s\n", used);
	if (vp_virt_start(v, name) < 0) {
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
		vp_sh("tail -n 20 %s/%s.log >&2", LOGDIR, name);
		CU_FAIL_FATAL("the guest did not start");
	}
	CU_ASSERT_TRUE(wait_serial("VDIPOOL-READY", 180));
	vp_capture(out, sizeof(out), "tr -d '\\r' < %s/%s-serial.log | grep '^VDIPOOL-'", LOGDIR, name);
	fprintf(stderr, "%s\n", out);
	{
		char want[800];
		snprintf(want, sizeof(want), "VDIPOOL-BASE-MARKER: %s", base_marker);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
		snprintf(want, sizeof(want), "VDIPOOL-WROTE: VDIPOOL-CLONE %s", name);
		CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
	}
	/* running: the live definition, QEMU's command line and libvirt's state hold no key */
	vp_capture(out, sizeof(out), "virsh -q -c %s dumpxml %s", URI, name);
	CU_ASSERT_PTR_NOT_NULL(strstr(out, "<secret type='ceph' uuid='"));
	CU_ASSERT_PTR_NULL(strstr(out, key));
	assert_key_nowhere();
	/* gc sees the clone as a pin of this domain, and as one of its disk paths */
	CU_ASSERT_EQUAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_libvirt_pins((void *)URI, pins), 0);
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "rbd:rbd/vpvirt-clone", pins_owner, sizeof(pins_owner)), 1);
	VP_ASSERT_STR_EQ(pins_owner, name);
	vp_store_pins_free(pins);
	CU_ASSERT_EQUAL(vp_virt_disk_paths(v, &paths, &n), 0);
	for (size_t i = 0; i < n; i++) {
		listed |= !strcmp(paths[i], "rbd:rbd/vpvirt-clone");
		free(paths[i]);
	}
	free(paths);
	CU_ASSERT_TRUE(listed);

	/* ACPI shutdown: the guest syncs; then the clone holds the marker, the parent does not */
	CU_ASSERT_EQUAL(vp_virt_stop(v, name, 60), 0);
	vp_capture(out, sizeof(out), "%s export vpvirt-clone - 2>/dev/null | dd bs=512 skip=114688 count=1 "
		"status=none | tr -d '\\000' | head -n 1", admin);
	{
		char want[128];
		snprintf(want, sizeof(want), "VDIPOOL-CLONE %s", name);
		VP_ASSERT_STR_EQ(out, want);
	}
	vp_capture(used, sizeof(used), "%s du vpvirt-clone 2>/dev/null | awk 'NR == 2 { print $4 $5 }'", admin);
	fprintf(stderr, "  clone used after boot: %s\n", used);
	CU_ASSERT(strcmp(used, "0B") != 0 && *used);
	vp_capture(out, sizeof(out), "%s export vpvirt-base@golden - 2>/dev/null | sha256sum | cut -c1-64", admin);
	CU_ASSERT_EQUAL(strlen(parent_sha), 64);
	VP_ASSERT_STR_EQ(out, parent_sha);
	vp_capture(out, sizeof(out), "%s export vpvirt-base@golden - 2>/dev/null | dd bs=512 skip=114688 "
		"count=1 status=none | tr -d '\\000' | head -c 64", admin);
	VP_ASSERT_STR_EQ(out, "");
	assert_key_nowhere();
	CU_ASSERT_EQUAL(vp_virt_undefine(v, name), 0);
}

static CU_TestInfo tests[] = {
	{ "one private libvirt secret for client.vdipool, however often asked", test_secret },
	{ "a guest boots from an RBD clone, writes land in the clone only, no key leaks", test_guest_on_rbd_clone },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "virt_rbd", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
