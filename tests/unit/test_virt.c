/* test_virt.c: vp_virt against libvirt's in-process test driver (test:///default): node capacity and what other pools' domains commit, disk paths, cephx auth up to libvirt. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "virt/virt_int.h"
#include "vp_test.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)

/* A domain of the test driver with vdipool metadata of pool (NULL: none). */
static void define(vp_virt *v, const char *name, const char *pool, unsigned mib, unsigned vcpus)
{
	vp_domain_meta m = { .pool = (char *)pool, .index = 1, .delta_path = (char *)"/d/x.qcow2",
			     .host = (char *)"hv1" };
	char *md = NULL, xml[4096];

	if (pool)
		CU_ASSERT_EQUAL_FATAL(vp_domain_meta_format(&md, &m), 0);
	snprintf(xml, sizeof(xml),
		 "<domain type='test'><name>%s</name><memory unit='MiB'>%u</memory><vcpu>%u</vcpu>"
		 "<os><type>hvm</type></os><metadata>%s</metadata></domain>",
		 name, mib, vcpus, md ? md : "");
	free(md);
	if (vp_virt_define(v, xml, false) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
}

static void test_node_capacity(void)
{
	vp_virt *v = NULL;
	vp_virt_capacity c;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	/* The driver's node: 16 CPUs, 3 GiB; its one domain 'test' (running, no metadata of
	 * ours): 8 GiB, 2 vCPUs. */
	CU_ASSERT_EQUAL_FATAL(vp_virt_node_capacity(v, NULL, &c), 0);
	CU_ASSERT_EQUAL(c.cpus, 16);
	CU_ASSERT_EQUAL(c.memory_bytes, 3072 * MiB);
	CU_ASSERT_EQUAL(c.committed_domains, 1);
	CU_ASSERT_EQUAL(c.committed_memory_bytes, 8192 * MiB);
	CU_ASSERT_EQUAL(c.committed_vcpus, 2);

	define(v, "a-1", "a", 1024, 2);
	define(v, "a-2", "a", 1024, 2);
	define(v, "b-1", "b", 512, 1);
	define(v, "plain", NULL, 256, 4);
	/* Defined and shut off still commit: they may start. */
	CU_ASSERT_EQUAL_FATAL(vp_virt_node_capacity(v, NULL, &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 5);
	CU_ASSERT_EQUAL(c.committed_memory_bytes, (8192 + 2048 + 512 + 256) * MiB);
	CU_ASSERT_EQUAL(c.committed_vcpus, 2 + 4 + 1 + 4);
	/* Pool a counts its own clones itself. */
	CU_ASSERT_EQUAL_FATAL(vp_virt_node_capacity(v, "a", &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 3);
	CU_ASSERT_EQUAL(c.committed_memory_bytes, (8192 + 512 + 256) * MiB);
	CU_ASSERT_EQUAL(c.committed_vcpus, 2 + 1 + 4);
	CU_ASSERT_EQUAL(c.cpus, 16);
	/* A pool with no domain here excludes nothing. */
	CU_ASSERT_EQUAL_FATAL(vp_virt_node_capacity(v, "zz", &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 5);
	vp_virt_free(v);
}

/* The metadata written by vp_domain_meta_format reads back through libvirt with its host. */
static void test_list_meta_host(void)
{
	vp_virt *v = NULL;
	vp_virt_domain d;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	define(v, "h-1", "h", 128, 1);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "h-1", &d), 0);
	CU_ASSERT_TRUE_FATAL(d.has_meta);
	VP_ASSERT_STR_EQ(d.meta.pool, "h");
	VP_ASSERT_STR_EQ(d.meta.host, "hv1");
	vp_virt_domain_release(&d);
	vp_virt_free(v);
}

/* A claim written with vp_virt_set_meta reads back, the rest of the metadata unchanged. */
static void test_set_meta_claim(void)
{
	vp_virt *v = NULL;
	vp_virt_domain d;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	define(v, "c-1", "c", 128, 1);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "c-1", &d), 0);
	CU_ASSERT_PTR_NULL(d.meta.claimed_by);
	d.meta.claimed_by = strdup("job-7");
	d.meta.claimed_at = 100;
	d.meta.claimed_until = 160;
	CU_ASSERT_EQUAL_FATAL(vp_virt_set_meta(v, "c-1", &d.meta), 0);
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "c-1", &d), 0);
	CU_ASSERT_TRUE_FATAL(d.has_meta);
	VP_ASSERT_STR_EQ(d.meta.claimed_by, "job-7");
	CU_ASSERT_EQUAL(d.meta.claimed_until, 160);
	VP_ASSERT_STR_EQ(d.meta.pool, "c");
	VP_ASSERT_STR_EQ(d.meta.host, "hv1");
	VP_ASSERT_STR_EQ(d.meta.delta_path, "/d/x.qcow2");
	free(d.meta.claimed_by);
	d.meta.claimed_by = NULL; /* released: no claim element at all */
	CU_ASSERT_EQUAL_FATAL(vp_virt_set_meta(v, "c-1", &d.meta), 0);
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "c-1", &d), 0);
	CU_ASSERT_PTR_NULL(d.meta.claimed_by);
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL(vp_virt_set_meta(v, "nope", &(vp_domain_meta){ .pool = (char *)"c" }), VP_ENOENT);
	vp_virt_free(v);
}

/* Parking through the test driver: a managed save makes the domain 'saved'; a stop drops it; the
 * test driver's start boots (it has no image to restore), which resume_parked must not take for a
 * restore: stopped again, VP_ENOENT. */
static void test_park_and_resume(void)
{
	vp_virt *v = NULL;
	vp_virt_domain d;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	define(v, "p-1", "p", 128, 1);
	CU_ASSERT_EQUAL_FATAL(vp_virt_start(v, "p-1"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "p-1", &d), 0);
	CU_ASSERT_EQUAL(d.state, VP_DOM_RUNNING);
	CU_ASSERT_FALSE(d.saved);
	CU_ASSERT_FALSE(d.restored);
	vp_virt_domain_release(&d);

	CU_ASSERT_EQUAL_FATAL(vp_virt_park(v, "p-1"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "p-1", &d), 0);
	CU_ASSERT_EQUAL(d.state, VP_DOM_SHUTOFF);
	CU_ASSERT_TRUE(d.saved);
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL(vp_virt_stop(v, "p-1", 0), 0); /* stopped: nothing to resume */
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "p-1", &d), 0);
	CU_ASSERT_FALSE(d.saved);
	vp_virt_domain_release(&d);

	CU_ASSERT_EQUAL_FATAL(vp_virt_start(v, "p-1"), 0);
	CU_ASSERT_EQUAL_FATAL(vp_virt_park(v, "p-1"), 0);
	CU_ASSERT_EQUAL(vp_virt_resume_parked(v, "p-1"), VP_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "no saved state left to restore"));
	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v, "p-1", &d), 0);
	CU_ASSERT_EQUAL(d.state, VP_DOM_SHUTOFF);
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL(vp_virt_discard_saved(v, "p-1"), 0);
	CU_ASSERT_EQUAL(vp_virt_park(v, "nope"), VP_ENOENT);
	vp_virt_free(v);
}

/* Two hosts may differ (one has KVM, one has not): the probe's cache is one file per URI. */
static void test_accel_cache_per_uri(void)
{
	vp_virt a = { .uri = (char *)"qemu+libssh2://vphost1@127.0.0.1:22201/session",
		      .accel_cache_dir = (char *)"/c" };
	vp_virt b = a, c = a;
	char *pa, *pb, *pc;

	b.uri = (char *)"qemu+libssh2://vphost2@127.0.0.1:22202/session";
	c.probe_xml = (char *)"<domain/>";
	c.probe_key = (char *)"spec-hash";
	pa = virt_accel_cache_path(&a);
	pb = virt_accel_cache_path(&b);
	pc = virt_accel_cache_path(&c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pc);
	CU_ASSERT_EQUAL(strncmp(pa, "/c/", 3), 0);
	CU_ASSERT_STRING_NOT_EQUAL(pa, pb);
	CU_ASSERT_STRING_NOT_EQUAL(pa, pc);
	/* Same host: same file name prefix (the URI's part). */
	CU_ASSERT_EQUAL(strncmp(pa, pc, strlen("/c/") + 16), 0);
	free(pa);
	free(pb);
	free(pc);
}

/* File disks by path, RBD network disks by their image, as gc compares them. */
static void test_disk_paths_rbd(void)
{
	vp_virt *v = NULL;
	char **paths = NULL;
	size_t n = 0;
	int seen = 0;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	if (vp_virt_define(v, "<domain type='test'><name>rbd-1</name><memory unit='MiB'>64</memory>"
			   "<os><type>hvm</type></os><devices>"
			   "<disk type='file' device='disk'><source file='/d/f.qcow2'/><target dev='vda'/></disk>"
			   "<disk type='network' device='disk'><source protocol='rbd' name='vdipool/delta.p.c1'>"
			   "<host name='127.0.0.1' port='6789'/></source><target dev='vdb'/></disk>"
			   "<disk type='network' device='cdrom'><source protocol='http' name='/x.iso'>"
			   "<host name='h'/></source><target dev='hdc'/></disk>"
			   "</devices></domain>", false) < 0)
		fprintf(stderr, "\n  %s\n", vp_error_last()->message);
	CU_ASSERT_EQUAL_FATAL(vp_virt_disk_paths(v, &paths, &n), 0);
	for (size_t i = 0; i < n; i++) {
		seen |= !strcmp(paths[i], "/d/f.qcow2") ? 1 : !strcmp(paths[i], "rbd:vdipool/delta.p.c1") ? 2 : 0;
		CU_ASSERT_PTR_NULL(strstr(paths[i], "x.iso"));
		free(paths[i]);
	}
	free(paths);
	CU_ASSERT_EQUAL(seen, 3);
	vp_virt_undefine(v, "rbd-1");
	vp_virt_free(v);
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

#define KEY_B64 "AQAAAABfAAAAABAAQUJDREVGR0hJSktMTU5PUA=="

/* Each failure names its file and reason, leaves out empty and never shows the key. The test
 * driver has no secrets: the files read, the call stops at libvirt (itest_virt_rbd goes on). */
/* libvirt's interfaces as our addresses: useless ones out, each once, IPv4 first. */
static void test_addrs_collect(void)
{
	virDomainIPAddress a0[] = {
		{ VIR_IP_ADDR_TYPE_IPV6, (char *)"fe80::5054:ff:fe00:1", 64 },
		{ VIR_IP_ADDR_TYPE_IPV6, (char *)"fd00::7", 64 },
		{ VIR_IP_ADDR_TYPE_IPV4, (char *)"192.168.122.57", 24 },
	};
	virDomainIPAddress a1[] = {
		{ VIR_IP_ADDR_TYPE_IPV4, (char *)"127.0.0.1", 8 },
		{ VIR_IP_ADDR_TYPE_IPV4, (char *)"169.254.3.4", 16 },
		{ VIR_IP_ADDR_TYPE_IPV4, (char *)"10.0.0.2; rm -rf /", 8 },
		{ VIR_IP_ADDR_TYPE_IPV4, (char *)"10.0.0.2", 8 },
		{ VIR_IP_ADDR_TYPE_IPV6, (char *)"::1", 128 },
	};
	virDomainIPAddress a2[] = { { VIR_IP_ADDR_TYPE_IPV4, (char *)"192.168.122.57", 24 } };
	virDomainInterface lease = { (char *)"vnet3", (char *)"52:54:00:aa:bb:cc", 3, a0 };
	virDomainInterface lo = { (char *)"lo", NULL, 5, a1 };
	virDomainInterface again = { (char *)"eth0", (char *)"52:54:00:aa:bb:cc", 1, a2 };
	virDomainInterfacePtr first[] = { &lease }, second[] = { &lo, &again };
	vp_virt_addr *list = NULL;
	size_t n = 0;

	CU_ASSERT_EQUAL_FATAL(virt_addrs_collect(&list, &n, first, 1, false), 0);
	CU_ASSERT_EQUAL_FATAL(virt_addrs_collect(&list, &n, second, 2, true), 0);
	virt_addrs_order(list, n);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	VP_ASSERT_STR_EQ(list[0].addr, "192.168.122.57");
	CU_ASSERT_EQUAL(list[0].prefix, 24);
	CU_ASSERT_FALSE(list[0].ipv6);
	CU_ASSERT_FALSE(list[0].from_agent);
	VP_ASSERT_STR_EQ(list[0].mac, "52:54:00:aa:bb:cc");
	VP_ASSERT_STR_EQ(list[0].ifname, "vnet3");
	VP_ASSERT_STR_EQ(list[1].addr, "10.0.0.2");
	CU_ASSERT_TRUE(list[1].from_agent);
	VP_ASSERT_STR_EQ(list[1].mac, "");
	VP_ASSERT_STR_EQ(list[2].addr, "fd00::7");
	CU_ASSERT_TRUE(list[2].ipv6);
	free(list);
}

/* Through libvirt: a domain that does not run has no address; a missing one is ENOENT. */
static void test_addresses_test_driver(void)
{
	vp_virt *v = NULL;
	vp_virt_addr *list = (vp_virt_addr *)1;
	size_t n = 9;
	double t = 1;

	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	define(v, "addr-off", NULL, 64, 1);
	CU_ASSERT_EQUAL(vp_virt_addresses(v, "addr-off", &list, &n), 0);
	CU_ASSERT_PTR_NULL(list);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(vp_virt_addresses(v, "no-such-domain", &list, &n), VP_ENOENT);
	/* The driver's running domain 'test' has one NIC with a made-up lease. */
	CU_ASSERT_EQUAL_FATAL(vp_virt_addresses(v, "test", &list, &n), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	VP_ASSERT_STR_EQ(list[0].addr, "192.168.122.3");
	CU_ASSERT_EQUAL(list[0].prefix, 24);
	VP_ASSERT_STR_EQ(list[0].mac, "aa:bb:cc:dd:ee:ff");
	CU_ASSERT_FALSE(list[0].from_agent);
	free(list);
	/* Only the local system QEMU driver can say when a domain started. */
	CU_ASSERT_EQUAL(vp_virt_started_at(v, "test", &t), 0);
	CU_ASSERT_EQUAL(t, 0);
	vp_virt_free(v);
}

static void test_rbd_auth_errors(void)
{
	char dir[64] = "/tmp/vp-test-rbdauth-XXXXXX", conf[128], want[512];
	vp_virt *v = NULL;
	vp_rbd_auth a;
	const char *msg;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_EQUAL_FATAL(vp_virt_open(&v, "test:///default"), 0);
	snprintf(conf, sizeof(conf), "%s/ceph.conf", dir);

	CU_ASSERT_EQUAL(vp_virt_rbd_auth(v, conf, "vdipool", NULL, &a), VP_ENOENT);
	snprintf(want, sizeof(want), "cannot read ceph conf '%s': No such file or directory", conf);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	CU_ASSERT_EQUAL(vp_virt_rbd_auth(v, conf, "client.vdipool", NULL, &a), VP_EINVAL);

	put(dir, "ceph.conf", "[global]\nfsid = f00\n");
	CU_ASSERT_EQUAL(vp_virt_rbd_auth(v, conf, "vdipool", NULL, &a), VP_EINVAL);
	snprintf(want, sizeof(want), "ceph conf '%s' has no mon host (mon_host in [global])", conf);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);

	/* the keyring the conf names, $name expanded */
	snprintf(want, sizeof(want), "[global]\nfsid = f00\nmon host = [v2:127.0.0.1:3340,v1:127.0.0.1:3341]\n"
		 "keyring = %s/$name.keyring\n", dir);
	put(dir, "ceph.conf", want);
	put(dir, "client.vdipool.keyring", "[client.other]\n\tkey = " KEY_B64 "\n");
	CU_ASSERT_EQUAL(vp_virt_rbd_auth(v, conf, "vdipool", NULL, &a), VP_ENOENT);
	snprintf(want, sizeof(want), "keyring '%s/client.vdipool.keyring' has no key for client.vdipool", dir);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);

	put(dir, "client.vdipool.keyring", "[client.vdipool]\n\tkey = " KEY_B64 "\n");
	CU_ASSERT(vp_virt_rbd_auth(v, conf, "vdipool", NULL, &a) < 0);
	msg = vp_error_last()->message;
	CU_ASSERT_PTR_NOT_NULL(strstr(msg, "libvirt secret 'vdipool client.vdipool f00'"));
	CU_ASSERT_PTR_NULL(strstr(msg, KEY_B64));
	CU_ASSERT_PTR_NULL(strstr(msg, "ABCDEFGHIJKLMNOP"));
	CU_ASSERT_PTR_NULL(a.user);
	CU_ASSERT_PTR_NULL(a.hosts);
	CU_ASSERT_EQUAL(a.nhosts, 0);

	/* an explicit keyring wins over the conf's */
	snprintf(want, sizeof(want), "%s/nope.keyring", dir);
	CU_ASSERT_EQUAL(vp_virt_rbd_auth(v, conf, "vdipool", want, &a), VP_ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "cannot read keyring '"));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "nope.keyring"));
	vp_virt_free(v);
	snprintf(want, sizeof(want), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(want), 0);
}

static CU_TestInfo tests[] = {
	{ "node capacity and what other pools commit", test_node_capacity },
	{ "metadata host through libvirt", test_list_meta_host },
	{ "a claim written into the metadata through libvirt", test_set_meta_claim },
	{ "park (managed save), stop drops it, a boot is not a restore", test_park_and_resume },
	{ "KVM probe cache: one file per URI", test_accel_cache_per_uri },
	{ "disk paths: files, and RBD disks by image", test_disk_paths_rbd },
	{ "cephx auth: errors name file and reason, never the key", test_rbd_auth_errors },
	{ "addresses: filtered, once each, IPv4 first", test_addrs_collect },
	{ "addresses through libvirt's test driver", test_addresses_test_driver },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "virt", NULL, NULL, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
