/* test_domain.c: domain XML rendering from the real templates, identity, metadata round trip. */
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <unistd.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vp_test.h"

static char tpl_server[512], tpl_desktop[512];

static int setup(void)
{
	const char *src = getenv("VP_SOURCE_DIR");

	snprintf(tpl_server, sizeof(tpl_server), "%s/templates/server.xml", src ? src : "..");
	snprintf(tpl_desktop, sizeof(tpl_desktop), "%s/templates/desktop.xml", src ? src : "..");
	return access(tpl_server, R_OK);
}

static vp_domain_params params(void)
{
	vp_domain_params p = {
		.name = "ci-007", .domain_type = "qemu", .network = "default",
		.memory_bytes = 256ull << 20, .vcpus = 2, .delta_format = "qcow2", .data_format = "qcow2",
		.meta = { .pool = "ci", .index = 7, .base_name = "tiny", .base_version = "v1",
			  .base_image = "/b/bases/tiny/v1/disk.qcow2", .delta_path = "/d/deltas/ci/ci-007.qcow2",
			  .data_path = "/d/data/ci/ci-007.qcow2", .spec_hash = "abc123" },
	};
	vp_domain_identity("ci", "ci-007", p.uuid, p.mac);
	return p;
}

/* Evaluates an XPath string expression on the rendered XML. */
static char *xpath(const char *xml, const char *expr)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "d.xml", NULL, 0);
	xmlXPathContextPtr ctx = xmlXPathNewContext(doc);
	xmlXPathObjectPtr r;
	char *out;

	xmlXPathRegisterNs(ctx, BAD_CAST "vp", BAD_CAST VP_METADATA_NS);
	r = xmlXPathEvalExpression(BAD_CAST expr, ctx);
	out = strdup(r && r->stringval ? (const char *)r->stringval : "");
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return out;
}

#define ASSERT_XPATH(xml, expr, want)            \
	do {                                     \
		char *got_ = xpath((xml), (expr)); \
		VP_ASSERT_STR_EQ(got_, (want));  \
		free(got_);                      \
	} while (0)

static void test_identity_is_stable_and_distinct(void)
{
	unsigned char u1[16], u2[16], u3[16];
	char m1[18], m2[18], m3[18], s[37];

	vp_domain_identity("ci", "ci-001", u1, m1);
	vp_domain_identity("ci", "ci-001", u2, m2);
	vp_domain_identity("ci", "ci-002", u3, m3);
	CU_ASSERT_EQUAL(memcmp(u1, u2, 16), 0);
	VP_ASSERT_STR_EQ(m1, m2);
	CU_ASSERT_NOT_EQUAL(memcmp(u1, u3, 16), 0);
	CU_ASSERT_STRING_NOT_EQUAL(m1, m3);
	/* locally administered unicast: second hex digit 2, 6, a or e */
	CU_ASSERT_PTR_NOT_NULL(strchr("26ae", m1[1]));
	CU_ASSERT_EQUAL(strlen(m1), 17);
	vp_domain_mac("ci", "ci-001", 0, m2);
	VP_ASSERT_STR_EQ(m1, m2);
	vp_domain_mac("ci", "ci-001", 1, m2);
	CU_ASSERT_STRING_NOT_EQUAL(m1, m2);
	vp_domain_mac_legacy("ci", "ci-001", m2);
	CU_ASSERT_EQUAL(strncmp(m2, "52:54:00:", 9), 0);
	vp_uuid_format(u1, s);
	CU_ASSERT_EQUAL(strlen(s), 36);
	CU_ASSERT_EQUAL(s[14], '5'); /* name-based version nibble */
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Duplicates among n sorted fixed-size strings. */
static size_t dups(char (*v)[40], size_t n)
{
	size_t d = 0;

	qsort(v, n, sizeof(*v), cmp_str);
	for (size_t i = 1; i < n; i++)
		d += !strcmp(v[i - 1], v[i]);
	return d;
}

/* 10,000 clones named desk-N: 24 bits of a hash gave 4 shared MACs; the full
 * locally administered space gives none (the planner resolves any that would). */
static void test_ten_thousand_desks_distinct(void)
{
	enum { N = 10000 };
	static char macs[N][40], legacy[N][40], uuids[N][40];
	unsigned char u[16];
	char name[32];

	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "desk-%u", i + 1);
		vp_domain_identity("desk", name, u, macs[i]);
		vp_uuid_format(u, uuids[i]);
		vp_domain_mac_legacy("desk", name, legacy[i]);
	}
	CU_ASSERT_EQUAL(dups(macs, N), 0);
	CU_ASSERT_EQUAL(dups(uuids, N), 0);
	CU_ASSERT(dups(legacy, N) > 0); /* why the old derivation had to go */
}

static void test_render_server(void)
{
	vp_domain_params p = params();
	char *xml = NULL, uuid[37], *v;

	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	vp_uuid_format(p.uuid, uuid);
	ASSERT_XPATH(xml, "string(/domain/@type)", "qemu");
	ASSERT_XPATH(xml, "string(/domain/name)", "ci-007");
	ASSERT_XPATH(xml, "string(/domain/uuid)", uuid);
	ASSERT_XPATH(xml, "string(/domain/memory)", "262144");
	ASSERT_XPATH(xml, "string(/domain/memory/@unit)", "KiB");
	ASSERT_XPATH(xml, "string(/domain/vcpu)", "2");
	ASSERT_XPATH(xml, "string(count(/domain/cpu))", "0");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vda']/source/@file)", "/d/deltas/ci/ci-007.qcow2");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vda']/driver/@type)", "qcow2");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vdb']/source/@file)", "/d/data/ci/ci-007.qcow2");
	ASSERT_XPATH(xml, "string(/domain/devices/interface/mac/@address)", p.mac);
	ASSERT_XPATH(xml, "string(/domain/devices/interface/source/@network)", "default");
	ASSERT_XPATH(xml, "string(/domain/devices/serial/log/@file)", "/var/log/libvirt/qemu/ci-007-serial.log");
	ASSERT_XPATH(xml, "string(/domain/sysinfo/system/entry[@name='serial'])", "ci-007");
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/@pool)", "ci");
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/@index)", "7");
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/vp:base/@version)", "v1");
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/vp:spec-hash)", "abc123");
	v = xpath(xml, "string(count(/domain/devices/disk))");
	VP_ASSERT_STR_EQ(v, "2");
	free(v);
	free(xml);
}

static void test_render_desktop_without_network_or_data(void)
{
	vp_domain_params p = params();
	char *xml = NULL;

	p.network = "none";
	p.meta.data_path = NULL;
	p.domain_type = "kvm";
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_desktop, &p), 0);
	ASSERT_XPATH(xml, "string(count(/domain/devices/interface))", "0");
	ASSERT_XPATH(xml, "string(count(/domain/devices/disk))", "1");
	ASSERT_XPATH(xml, "string(/domain/devices/graphics/@type)", "vnc");
	ASSERT_XPATH(xml, "string(/domain/cpu/@mode)", "host-model");
	ASSERT_XPATH(xml, "string(count(/domain/metadata/vp:clone/vp:data))", "0");
	free(xml);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static void test_bad_templates(void)
{
	vp_domain_params p = params();
	char path[] = "/tmp/vp-test-tpl-XXXXXX";
	char *xml = NULL, want[256];
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	write_file(path, "<domain><devices><disk type='file'><target dev='vda'/></disk></devices></domain>");
	CU_ASSERT_EQUAL(vp_domain_render(&xml, path, &p), VP_EINVAL);
	snprintf(want, sizeof(want), "template '%s': a disk on vda or vdb is vdipool's to define "
		 "(the clone's delta and data disk); use another target", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	write_file(path, "<vm><name>x</name></vm>");
	CU_ASSERT_EQUAL(vp_domain_render(&xml, path, &p), VP_EINVAL);
	snprintf(want, sizeof(want), "template '%s': root element must be <domain>", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	write_file(path, "<domain><name>x</name>");
	CU_ASSERT_EQUAL(vp_domain_render(&xml, path, &p), VP_EINVAL);
	snprintf(want, sizeof(want), "template '%s': not well-formed XML", path);
	CU_ASSERT_EQUAL(strncmp(vp_error_last()->message, want, strlen(want)), 0);
	CU_ASSERT_PTR_NULL(xml);
	unlink(path);
}

static void test_metadata_round_trip(void)
{
	vp_domain_params p = params();
	vp_domain_meta m;
	char *xml = NULL;

	p.meta.prev_version = "v0";
	p.meta.prev_image = "/b/bases/tiny/v0/disk.qcow2";
	p.meta.mac = "02:11:22:33:44:55";
	p.meta.tier = "/d";
	p.meta.host = "hv2";
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_format(&xml, &p.meta), 0);
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, xml, strlen(xml)), 0);
	VP_ASSERT_STR_EQ(m.pool, "ci");
	CU_ASSERT_EQUAL(m.index, 7);
	VP_ASSERT_STR_EQ(m.base_name, "tiny");
	VP_ASSERT_STR_EQ(m.base_version, "v1");
	VP_ASSERT_STR_EQ(m.prev_version, "v0");
	VP_ASSERT_STR_EQ(m.prev_image, "/b/bases/tiny/v0/disk.qcow2");
	VP_ASSERT_STR_EQ(m.base_image, "/b/bases/tiny/v1/disk.qcow2");
	VP_ASSERT_STR_EQ(m.delta_path, "/d/deltas/ci/ci-007.qcow2");
	VP_ASSERT_STR_EQ(m.data_path, "/d/data/ci/ci-007.qcow2");
	VP_ASSERT_STR_EQ(m.spec_hash, "abc123");
	VP_ASSERT_STR_EQ(m.mac, "02:11:22:33:44:55");
	VP_ASSERT_STR_EQ(m.tier, "/d");
	VP_ASSERT_STR_EQ(m.host, "hv2");
	vp_domain_meta_release(&m);
	free(xml);
	CU_ASSERT_EQUAL(vp_domain_meta_parse(&m, "<clone/>", 8), VP_EINVAL); /* no pool */
	/* as virDomainGetMetadata returns it: without the namespace */
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, "<clone pool='p' index='3'/>", 27), 0);
	VP_ASSERT_STR_EQ(m.pool, "p");
	CU_ASSERT_EQUAL(m.index, 3);
	CU_ASSERT_PTR_NULL(m.mac); /* defined before MACs were recorded */
	CU_ASSERT_PTR_NULL(m.tier);
	VP_ASSERT_STR_EQ(m.host, ""); /* defined before clones recorded their host */
	vp_domain_meta_release(&m);
	CU_ASSERT_EQUAL(vp_domain_meta_parse(&m, "<x:clone xmlns:x='urn:other'/>", 30), VP_EINVAL);
	CU_ASSERT_EQUAL(vp_domain_meta_parse(&m, "garbage<", 8), VP_EINVAL);
}

/* The host a clone was placed on is in the rendered domain, and no host renders no attribute. */
static void test_metadata_host(void)
{
	vp_domain_params p = params();
	vp_domain_meta m;
	char *xml = NULL;

	p.meta.host = "hv1";
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/@host)", "hv1");
	free(xml);
	p.meta.host = "";
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(count(/domain/metadata/vp:clone/@host))", "0");
	free(xml);
	p.meta.host = NULL;
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_format(&xml, &p.meta), 0);
	CU_ASSERT_PTR_NULL(strstr(xml, "host="));
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, xml, strlen(xml)), 0);
	VP_ASSERT_STR_EQ(m.host, "");
	vp_domain_meta_release(&m);
	free(xml);
}

static CU_TestInfo tests[] = {
	{ "identity is stable and distinct", test_identity_is_stable_and_distinct },
	{ "10,000 desks: no shared MAC or UUID", test_ten_thousand_desks_distinct },
	{ "render the server template", test_render_server },
	{ "render the desktop template without network or data", test_render_desktop_without_network_or_data },
	{ "bad templates are refused", test_bad_templates },
	{ "metadata round trip", test_metadata_round_trip },
	{ "metadata: the host a clone was placed on", test_metadata_host },
	CU_TEST_INFO_NULL,
};

static int cleanup(void)
{
	xmlCleanupParser();
	return 0;
}

static CU_SuiteInfo suites[] = {
	{ "domain", setup, cleanup, NULL, NULL, tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
