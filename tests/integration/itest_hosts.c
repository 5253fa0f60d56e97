/* itest_hosts.c: lib/virt/ through qemu+libssh2 against 3 test hosts: open, list, node capacity per host, metadata host, accelerator. */
/*
 * The suite brings up 3 throw-away hosts with scripts/test-hosts-up.sh (its own run dir, ports
 * and user prefix) and takes them down at the end. Each host's session libvirtd is its own: what
 * is defined on one is not on another.
 */
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "vp_test.h"

#define NHOSTS 3

static char run[64], src[512], uri[NHOSTS][640];
static int lock_fd = -1;
static bool up;

static int hosts(const char *script)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "VP_TEST_HOSTS_DIR=%s VP_TEST_HOSTS_PORT=22460 VP_TEST_HOSTS_USER=vpvirtc "
		 "bash %s/scripts/%s >%s.log 2>&1", run, src, script, run);
	return system(cmd);
}

/* RUN/hosts: "i user port pid uri" lines. */
static int read_uris(void)
{
	char path[128], line[1024];
	FILE *f;
	int n = 0;

	snprintf(path, sizeof(path), "%s/hosts", run);
	if (!(f = fopen(path, "r")))
		return -1;
	while (n < NHOSTS && fgets(line, sizeof(line), f)) {
		char u[600];
		if (sscanf(line, "%*d %*s %*d %*d %599s", u) == 1)
			snprintf(uri[n++], sizeof(uri[0]), "%s", u);
	}
	fclose(f);
	return n == NHOSTS ? 0 : -1;
}

static int suite_init(void)
{
	const char *s = getenv("VP_SOURCE_DIR");

	if (getuid() != 0) {
		fprintf(stderr, "itest_hosts: needs root (users, namespaces); skipped\n");
		return 0;
	}
	lock_fd = open("/tmp/vp-itest.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
		return -1;
	snprintf(src, sizeof(src), "%s", s ? s : "..");
	/* Short: the hosts' HOMEs hold QEMU's monitor sockets. */
	snprintf(run, sizeof(run), "/tmp/vphc-%d", (int)getpid());
	if (hosts("test-hosts-up.sh 3") != 0 || read_uris() < 0) {
		fprintf(stderr, "itest_hosts: test-hosts-up.sh failed, see %s.log\n", run);
		hosts("test-hosts-down.sh");
		return -1;
	}
	up = true;
	return 0;
}

static int suite_clean(void)
{
	char log[96];

	if (up)
		hosts("test-hosts-down.sh");
	snprintf(log, sizeof(log), "%s.log", run);
	unlink(log);
	if (lock_fd >= 0)
		close(lock_fd);
	return 0;
}

#define NEED_HOSTS() do { if (!up) return; } while (0)

static vp_virt *open_host(int i)
{
	vp_virt *v = NULL;

	if (vp_virt_open(&v, uri[i]) < 0)
		fprintf(stderr, "\n  open: %s\n", vp_error_last()->message);
	return v;
}

/* A small domain (never started) with vdipool metadata of pool on host (pool NULL: none). */
static int define(vp_virt *v, const char *name, const char *pool, const char *host, unsigned mib)
{
	vp_domain_meta m = { .pool = (char *)pool, .index = 1, .delta_path = (char *)"/var/lib/vdipool/x.qcow2",
			     .host = (char *)host };
	char *md = NULL, xml[4096];
	int rc;

	if (pool && vp_domain_meta_format(&md, &m) < 0)
		return -1;
	snprintf(xml, sizeof(xml),
		 "<domain type='qemu'><name>%s</name><memory unit='MiB'>%u</memory><vcpu>2</vcpu>"
		 "<os><type arch='x86_64'>hvm</type></os><metadata>%s</metadata></domain>",
		 name, mib, md ? md : "");
	free(md);
	if ((rc = vp_virt_define(v, xml, false)) < 0)
		fprintf(stderr, "\n  define: %s\n", vp_error_last()->message);
	return rc;
}

static void test_each_host_answers(void)
{
	NEED_HOSTS();
	for (int i = 0; i < NHOSTS; i++) {
		vp_virt *v = open_host(i);
		vp_virt_domain *doms = NULL;
		vp_virt_capacity c;
		size_t n = 99;

		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		VP_ASSERT_STR_EQ(vp_virt_uri(v), uri[i]);
		CU_ASSERT_EQUAL(vp_virt_list(v, &doms, &n), 0);
		CU_ASSERT_EQUAL(n, 0);
		vp_virt_domains_free(doms, n);
		CU_ASSERT_EQUAL(vp_virt_node_capacity(v, NULL, &c), 0);
		CU_ASSERT(c.cpus > 0);
		CU_ASSERT(c.memory_bytes > 64ull << 20);
		CU_ASSERT_EQUAL(c.committed_domains, 0);
		CU_ASSERT_EQUAL(c.committed_memory_bytes, 0);
		vp_virt_free(v);
	}
}

/* What is defined on host1 commits host1 only, and its own pool is left out when asked. */
static void test_capacity_per_host_and_pool(void)
{
	vp_virt *v1, *v2;
	vp_virt_capacity c;
	vp_virt_domain d;

	NEED_HOSTS();
	v1 = open_host(0);
	v2 = open_host(1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v2);
	CU_ASSERT_EQUAL_FATAL(define(v1, "p-1", "p", "host1", 256), 0);
	CU_ASSERT_EQUAL_FATAL(define(v1, "other", NULL, NULL, 128), 0);
	CU_ASSERT_EQUAL(vp_virt_node_capacity(v1, NULL, &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 2);
	CU_ASSERT_EQUAL(c.committed_memory_bytes, 384ull << 20);
	CU_ASSERT_EQUAL(c.committed_vcpus, 4);
	CU_ASSERT_EQUAL(vp_virt_node_capacity(v1, "p", &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 1);
	CU_ASSERT_EQUAL(c.committed_memory_bytes, 128ull << 20);
	CU_ASSERT_EQUAL(vp_virt_node_capacity(v2, NULL, &c), 0);
	CU_ASSERT_EQUAL(c.committed_domains, 0);
	CU_ASSERT_EQUAL(vp_virt_lookup(v2, "p-1", &d), VP_ENOENT);
	vp_error_clear();

	CU_ASSERT_EQUAL_FATAL(vp_virt_lookup(v1, "p-1", &d), 0);
	CU_ASSERT_TRUE(d.has_meta);
	VP_ASSERT_STR_EQ(d.meta.pool, "p");
	VP_ASSERT_STR_EQ(d.meta.host, "host1");
	vp_virt_domain_release(&d);
	CU_ASSERT_EQUAL(vp_virt_undefine(v1, "p-1"), 0);
	CU_ASSERT_EQUAL(vp_virt_undefine(v1, "other"), 0);
	vp_virt_free(v1);
	vp_virt_free(v2);
}

/* The hosts' users have no /dev/kvm: auto decides TCG, per host, without a probe guest. */
static void test_accel_per_host(void)
{
	char cache[96];

	NEED_HOSTS();
	snprintf(cache, sizeof(cache), "%s/accel", run);
	for (int i = 0; i < NHOSTS; i++) {
		vp_virt *v = open_host(i);
		vp_accel a;

		CU_ASSERT_PTR_NOT_NULL_FATAL(v);
		vp_virt_set_accel_cache_dir(v, cache);
		CU_ASSERT_EQUAL(vp_virt_accel(v, VP_ACCEL_AUTO, &a), 0);
		VP_ASSERT_STR_EQ(a.domain_type, "qemu");
		vp_virt_free(v);
	}
}

static CU_TestInfo tests[] = {
	{ "each host answers through qemu+libssh2: list, node capacity", test_each_host_answers },
	{ "capacity per host, other pools only; metadata host", test_capacity_per_host_and_pool },
	{ "accelerator decided per host", test_accel_per_host },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "hosts", suite_init, suite_clean, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
