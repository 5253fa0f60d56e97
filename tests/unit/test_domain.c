/* test_domain.c: domain XML rendering from the real templates (file and RBD disks), identity, metadata round trip, cephx files, RBD pins. */
#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/refs.h"
#include "virt/rbd_auth.h"
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

/* LUKS disks: the secret's UUID in the disk's <source>, never a key. */
static void test_render_luks(void)
{
	vp_domain_params p = params();
	char *xml = NULL;

	p.delta_secret = "11111111-2222-4333-8444-555555555555";
	p.data_secret = "66666666-7777-4888-8999-000000000000";
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vda']/source/encryption/@format)", "luks");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vda']/source/encryption/secret/@type)",
		     "passphrase");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vda']/source/encryption/secret/@uuid)",
		     "11111111-2222-4333-8444-555555555555");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vdb']/source/encryption/secret/@uuid)",
		     "66666666-7777-4888-8999-000000000000");
	free(xml);
	p.data_secret = NULL;
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(count(/domain/devices/disk[target/@dev='vdb']/source/encryption))", "0");
	free(xml);
	/* LUKS is for qcow2 files: an rbd: disk with a secret is refused. */
	p.meta.delta_path = "rbd:vdi/delta.ci.ci-007";
	p.delta_secret = "11111111-2222-4333-8444-555555555555";
	CU_ASSERT_EQUAL(vp_domain_render(&xml, tpl_server, &p), VP_EINVAL);
	CU_ASSERT_PTR_NULL(xml);
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
	CU_ASSERT_PTR_NULL(m.claimed_by); /* not claimed */
	vp_domain_meta_release(&m);
	free(xml);
	/* A claim survives the round trip (it is what `claim` writes with virDomainSetMetadata). */
	p.meta.claimed_by = "ci-job-42";
	p.meta.claimed_at = 1795420800;
	p.meta.claimed_until = 1795424400;
	p.meta.claimed_spec = "/etc/vdipool/ci.yaml";
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_format(&xml, &p.meta), 0);
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, xml, strlen(xml)), 0);
	VP_ASSERT_STR_EQ(m.claimed_by, "ci-job-42");
	CU_ASSERT_EQUAL(m.claimed_at, 1795420800);
	CU_ASSERT_EQUAL(m.claimed_until, 1795424400);
	VP_ASSERT_STR_EQ(m.claimed_spec, "/etc/vdipool/ci.yaml");
	VP_ASSERT_STR_EQ(m.pool, "ci");
	CU_ASSERT_FALSE(m.detached);
	vp_domain_meta_release(&m);
	free(xml);
	/* `vdipool detach` marks the clone; the mark survives the round trip. */
	p.meta.detached = true;
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_format(&xml, &p.meta), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(xml, "detached=\"yes\""));
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, xml, strlen(xml)), 0);
	CU_ASSERT_TRUE(m.detached);
	VP_ASSERT_STR_EQ(m.delta_path, "/d/deltas/ci/ci-007.qcow2");
	vp_domain_meta_release(&m);
	free(xml);
	CU_ASSERT_EQUAL_FATAL(vp_domain_meta_parse(&m, "<clone pool='p' index='3'><claim by='' until='0'/></clone>", 58), 0);
	VP_ASSERT_STR_EQ(m.claimed_by, "");
	CU_ASSERT_EQUAL(m.claimed_until, 0);
	vp_domain_meta_release(&m);
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

/* ---- RBD disks ----------------------------------------------------------------------------- */

#define RBD_OPTS ":id=vdipool:conf=/etc/ceph/vp.conf:keyring=/etc/ceph/vp.keyring"
#define RBD_UUID "3d5a5fe8-af8a-4739-b90f-ac54f21e1711"

static vp_rbd_host rbd_hosts[] = { { (char *)"10.0.0.1", 6789 }, { (char *)"mon2.example", 3341 } };
static const vp_rbd_auth rbd_auth = { .user = (char *)"vdipool", .secret_uuid = RBD_UUID,
				      .secret_usage = (char *)"vdipool client.vdipool f00", .hosts = rbd_hosts,
				      .nhosts = 2 };

static vp_domain_params rbd_params(void)
{
	vp_domain_params p = params();

	p.meta.delta_path = "rbd:vdipool/delta.ci.ci-007" RBD_OPTS;
	p.meta.data_path = "rbd:vdipool/data.ci.ci-007" RBD_OPTS;
	p.rbd = &rbd_auth;
	return p;
}

#define VDA "/domain/devices/disk[target/@dev='vda']"

static void test_render_rbd_disks(void)
{
	vp_domain_params p = rbd_params();
	char *xml = NULL;

	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(" VDA "/@type)", "network");
	ASSERT_XPATH(xml, "string(" VDA "/@device)", "disk");
	/* raw whatever the params say (qcow2): an RBD clone is a raw image */
	ASSERT_XPATH(xml, "string(" VDA "/driver/@name)", "qemu");
	ASSERT_XPATH(xml, "string(" VDA "/driver/@type)", "raw");
	ASSERT_XPATH(xml, "string(" VDA "/driver/@cache)", "writeback");
	ASSERT_XPATH(xml, "string(" VDA "/driver/@discard)", "unmap");
	ASSERT_XPATH(xml, "string(" VDA "/source/@protocol)", "rbd");
	ASSERT_XPATH(xml, "string(" VDA "/source/@name)", "vdipool/delta.ci.ci-007");
	ASSERT_XPATH(xml, "string(count(" VDA "/source/@file))", "0");
	ASSERT_XPATH(xml, "string(count(" VDA "/source/host))", "2");
	ASSERT_XPATH(xml, "string(" VDA "/source/host[1]/@name)", "10.0.0.1");
	ASSERT_XPATH(xml, "string(" VDA "/source/host[1]/@port)", "6789");
	ASSERT_XPATH(xml, "string(" VDA "/source/host[2]/@name)", "mon2.example");
	ASSERT_XPATH(xml, "string(" VDA "/source/host[2]/@port)", "3341");
	ASSERT_XPATH(xml, "string(" VDA "/auth/@username)", "vdipool");
	ASSERT_XPATH(xml, "string(" VDA "/auth/secret/@type)", "ceph");
	ASSERT_XPATH(xml, "string(" VDA "/auth/secret/@uuid)", RBD_UUID);
	ASSERT_XPATH(xml, "string(" VDA "/target/@bus)", "virtio");
	ASSERT_XPATH(xml, "string(count(" VDA "/readonly))", "0");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vdb']/source/@name)", "vdipool/data.ci.ci-007");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vdb']/auth/secret/@uuid)", RBD_UUID);
	/* the metadata keeps the plugin's locations as they are */
	ASSERT_XPATH(xml, "string(/domain/metadata/vp:clone/vp:delta/@path)", p.meta.delta_path);
	/* no Ceph file reaches QEMU: monitors and secret are all it gets */
	ASSERT_XPATH(xml, "string(count(/domain/devices//@*[contains(., 'keyring') or contains(., 'vp.conf')]))", "0");
	ASSERT_XPATH(xml, "string(count(/domain/metadata//@*[contains(., 'keyring')]))", "2"); /* delta, data */
	free(xml);

	/* a mixed clone: file delta, RBD data disk */
	p.meta.delta_path = "/d/deltas/ci/ci-007.qcow2";
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(" VDA "/@type)", "file");
	ASSERT_XPATH(xml, "string(" VDA "/driver/@type)", "qcow2");
	ASSERT_XPATH(xml, "string(count(" VDA "/driver/@cache))", "0");
	ASSERT_XPATH(xml, "string(/domain/devices/disk[target/@dev='vdb']/@type)", "network");
	free(xml);

	/* a snapshot (a base, as the probe guest boots it) is read-only; a secret by usage */
	vp_rbd_auth by_usage = rbd_auth;
	by_usage.secret_uuid[0] = '\0';
	p.rbd = &by_usage;
	p.meta.delta_path = "rbd:vdipool/base.tiny.1@vdipool";
	p.meta.data_path = NULL;
	CU_ASSERT_EQUAL_FATAL(vp_domain_render(&xml, tpl_server, &p), 0);
	ASSERT_XPATH(xml, "string(" VDA "/source/@name)", "vdipool/base.tiny.1");
	ASSERT_XPATH(xml, "string(" VDA "/source/snapshot/@name)", "vdipool");
	ASSERT_XPATH(xml, "string(count(" VDA "/readonly))", "1");
	ASSERT_XPATH(xml, "string(" VDA "/auth/secret/@usage)", "vdipool client.vdipool f00");
	ASSERT_XPATH(xml, "string(count(" VDA "/auth/secret/@uuid))", "0");
	free(xml);
}

static void expect_render_error(vp_domain_params *p, const char *needle)
{
	char *xml = NULL;

	CU_ASSERT_EQUAL(vp_domain_render(&xml, tpl_server, p), VP_EINVAL);
	CU_ASSERT_PTR_NULL(xml);
	if (!strstr(vp_error_last()->message, needle))
		fprintf(stderr, "\n  error '%s' lacks '%s'\n", vp_error_last()->message, needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, needle));
	free(xml);
}

static void test_render_rbd_refused(void)
{
	vp_domain_params p = rbd_params();
	vp_rbd_auth other = rbd_auth, none = rbd_auth;

	p.rbd = NULL;
	expect_render_error(&p, "disk vda 'rbd:vdipool/delta.ci.ci-007': an RBD disk needs the cephx user");
	none.nhosts = 0;
	p.rbd = &none;
	expect_render_error(&p, "they are incomplete");
	p.rbd = &rbd_auth;
	p.meta.delta_path = "rbd:vdipool/ns1/delta.ci.ci-007" RBD_OPTS;
	expect_render_error(&p, "disk vda 'rbd:vdipool/ns1/delta.ci.ci-007': RBD namespaces cannot be used");
	other.user = (char *)"admin";
	p.rbd = &other;
	p.meta.delta_path = "rbd:vdipool/delta.ci.ci-007" RBD_OPTS;
	expect_render_error(&p, "is for client.vdipool, but the cephx auth given is client.admin");
	p.rbd = &rbd_auth;
	for (size_t i = 0; i < 4; i++) {
		static const char *const bad[] = { "rbd:vdipool", "rbd:/img", "rbd:p/img@", "rbd:p/a/b/c" };
		p.meta.delta_path = (char *)bad[i];
		expect_render_error(&p, "invalid RBD location");
	}
	/* the data disk too */
	p.meta.delta_path = "/d/deltas/ci/ci-007.qcow2";
	p.rbd = NULL;
	expect_render_error(&p, "disk vdb 'rbd:vdipool/data.ci.ci-007'");
}

/* ---- ceph.conf and keyrings ---------------------------------------------------------------- */

static void test_ceph_conf(void)
{
	virt_ceph_conf c;

	CU_ASSERT_EQUAL_FATAL(virt_ceph_conf_parse(&c,
		"# a comment\n[global]\n  fsid = 5e7c-f00\n\tmon host = [v2:127.0.0.1:3340,v1:127.0.0.1:3341] ; x\n"
		"keyring = /r/$name.keyring\n[mon.a]\nmon host = 9.9.9.9\n[client]\nlog file = /dev/null\n", "vdipool"), 0);
	VP_ASSERT_STR_EQ(c.fsid, "5e7c-f00");
	VP_ASSERT_STR_EQ(c.mon_host, "[v2:127.0.0.1:3340,v1:127.0.0.1:3341]");
	VP_ASSERT_STR_EQ(c.keyring, "/r/client.vdipool.keyring");
	virt_ceph_conf_release(&c);
	/* mon_host and mon-host are mon host; [client.<id>] over [client] over [global]; quotes go */
	CU_ASSERT_EQUAL_FATAL(virt_ceph_conf_parse(&c,
		"[client.vdipool]\nkeyring = \"/k/${cluster}.${type}.$id\"\n[global]\nmon_host = 10.0.0.1,10.0.0.2\n"
		"keyring = /g\n[client]\nkeyring = /c\n[client.other]\nkeyring = /o\n", "vdipool"), 0);
	VP_ASSERT_STR_EQ(c.mon_host, "10.0.0.1,10.0.0.2");
	VP_ASSERT_STR_EQ(c.keyring, "/k/ceph.client.vdipool");
	CU_ASSERT_PTR_NULL(c.fsid);
	virt_ceph_conf_release(&c);
	CU_ASSERT_EQUAL_FATAL(virt_ceph_conf_parse(&c, "[global]\r\nmon-host = h1\r\n[client]\r\nkeyring=/c\r\n", "x"), 0);
	VP_ASSERT_STR_EQ(c.mon_host, "h1");
	VP_ASSERT_STR_EQ(c.keyring, "/c");
	virt_ceph_conf_release(&c);
	/* none: left to the caller to say */
	CU_ASSERT_EQUAL_FATAL(virt_ceph_conf_parse(&c, "[osd]\nmon host = 1.2.3.4\n", "x"), 0);
	CU_ASSERT_PTR_NULL(c.mon_host);
	virt_ceph_conf_release(&c);
	CU_ASSERT_EQUAL(virt_ceph_conf_read(&c, "/nonexistent/ceph.conf", "x"), VP_ENOENT);
	VP_ASSERT_STR_EQ(vp_error_last()->message, "cannot read ceph conf '/nonexistent/ceph.conf': No such file or directory");
}

static void test_ceph_mon_hosts(void)
{
	static const struct {
		const char *value;
		const char *want; /* "host port;..." */
	} ok[] = {
		{ "127.0.0.1:6789", "127.0.0.1 6789;" },
		{ "127.0.0.1", "127.0.0.1 6789;" },
		{ "[v2:127.0.0.1:3300,v1:127.0.0.1:6789]", "127.0.0.1 6789;" },
		{ "[v2:127.0.0.1:3340,v1:127.0.0.1:3341]", "127.0.0.1 3341;" },
		{ "[v1:127.0.0.1:3341,v2:127.0.0.1:3340]", "127.0.0.1 3341;" },
		{ "[v2:10.0.0.1:3300/0,v1:10.0.0.1:6789/0],[v2:10.0.0.2:3300/0,v1:10.0.0.2:6789/0]",
		  "10.0.0.1 6789;10.0.0.2 6789;" },
		{ "[v2:10.0.0.1:3300,v1:10.0.0.1:6789] [v2:10.0.0.2:3300,v1:10.0.0.2:6789]",
		  "10.0.0.1 6789;10.0.0.2 6789;" },
		{ "10.0.0.1, 10.0.0.2:6790 mon3.example.org", "10.0.0.1 6789;10.0.0.2 6790;mon3.example.org 6789;" },
		{ "v1:10.0.0.1", "10.0.0.1 6789;" },
		{ "v2:10.0.0.1", "10.0.0.1 3300;" },
		{ "[v2:10.0.0.1:3300]", "10.0.0.1 3300;" },
		{ "[::1]:6789", "::1 6789;" },
		{ "[v2:[::1]:3300,v1:[::1]:6789]", "::1 6789;" },
		{ "fe80::1", "fe80::1 6789;" },
	};
	static const struct {
		const char *value;
		const char *why;
	} bad[] = {
		{ "[v2:10.0.0.1:3310]", "no v1 address" },
		{ "v2:10.0.0.1:3310", "libvirt can name on port 3300 only" },
		{ "10.0.0.1:99999", "the port is not a number" },
		{ "10.0.0.1:x", "the port is not a number" },
		{ "10.0.0.1:", "no port after ':'" },
		{ "[::1", "unbalanced brackets" },
		{ " , ", "mon host names no monitor" },
		{ ":6789", "no host" },
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		vp_rbd_host *h = NULL;
		size_t n = 0;
		char got[256] = "";
		if (virt_ceph_mon_hosts(&h, &n, ok[i].value, "c.conf") < 0)
			snprintf(got, sizeof(got), "error: %s", vp_error_last()->message);
		for (size_t j = 0; j < n; j++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s %u;", h[j].name, h[j].port);
		if (strcmp(got, ok[i].want))
			fprintf(stderr, "\n  mon host '%s'", ok[i].value);
		VP_ASSERT_STR_EQ(got, ok[i].want);
		virt_rbd_hosts_free(h, n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vp_rbd_host *h = NULL;
		size_t n = 0;
		CU_ASSERT_EQUAL(virt_ceph_mon_hosts(&h, &n, bad[i].value, "c.conf"), VP_EINVAL);
		CU_ASSERT_PTR_NULL(h);
		if (!strstr(vp_error_last()->message, bad[i].why) || !strstr(vp_error_last()->message, "'c.conf'"))
			fprintf(stderr, "\n  mon host '%s': error '%s' lacks '%s'\n", bad[i].value,
				vp_error_last()->message, bad[i].why);
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, bad[i].why));
	}
}

/* 28 bytes: a cephx key (type 1, created, 16 secret bytes "ABCDEFGHIJKLMNOP"). */
#define KEY_B64 "AQAAAABfAAAAABAAQUJDREVGR0hJSktMTU5PUA=="
static const unsigned char key_raw[28] = { 1, 0, 0, 0, 0, 0x5f, 0, 0, 0, 0, 16, 0, 'A', 'B', 'C', 'D',
					   'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P' };

static void write_file0600(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0600);
}

static void assert_no_key_in_error(void)
{
	CU_ASSERT_PTR_NULL(strstr(vp_error_last()->message, KEY_B64));
	CU_ASSERT_PTR_NULL(strstr(vp_error_last()->message, "ABCDEFGHIJKLMNOP"));
}

static void test_ceph_keyring(void)
{
	char dir[64] = "/tmp/vp-test-keyring-XXXXXX", path[128], want[256];
	unsigned char *key = NULL;
	size_t len = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ceph.client.vdipool.keyring", dir);
	write_file0600(path, "[client.admin]\n\tkey = AQBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n"
			     "[client.vdipool]\n\tkey = " KEY_B64 "\n\tcaps mon = \"profile rbd\"\n"
			     "\tcaps osd = \"profile rbd pool=rbd\"\n");
	CU_ASSERT_EQUAL_FATAL(virt_ceph_keyring_key(&key, &len, path, "vdipool"), 0);
	CU_ASSERT_EQUAL(len, sizeof(key_raw));
	CU_ASSERT(len == sizeof(key_raw) && !memcmp(key, key_raw, len));
	virt_rbd_key_free(key, len);

	/* no such client: the file and the client named, no key */
	CU_ASSERT_EQUAL(virt_ceph_keyring_key(&key, &len, path, "vdipoo"), VP_ENOENT);
	CU_ASSERT_PTR_NULL(key);
	snprintf(want, sizeof(want), "keyring '%s' has no key for client.vdipoo", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	assert_no_key_in_error();

	/* a section without a key, a key that is not base64 */
	write_file0600(path, "[client.vdipool]\n\tcaps mon = \"profile rbd\"\n[client.bad]\nkey = " KEY_B64 "x\n");
	CU_ASSERT_EQUAL(virt_ceph_keyring_key(&key, &len, path, "vdipool"), VP_ENOENT);
	CU_ASSERT_EQUAL(virt_ceph_keyring_key(&key, &len, path, "bad"), VP_EINVAL);
	snprintf(want, sizeof(want), "keyring '%s': the key of client.bad is not base64", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	assert_no_key_in_error();

	/* unreadable: missing, a directory */
	unlink(path);
	CU_ASSERT_EQUAL(virt_ceph_keyring_key(&key, &len, path, "vdipool"), VP_ENOENT);
	snprintf(want, sizeof(want), "cannot read keyring '%s': No such file or directory", path);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	CU_ASSERT_EQUAL(virt_ceph_keyring_key(&key, &len, dir, "vdipool"), VP_EINVAL);
	snprintf(want, sizeof(want), "cannot read keyring '%s': not a regular file", dir);
	VP_ASSERT_STR_EQ(vp_error_last()->message, want);
	CU_ASSERT_PTR_NULL(key);
	rmdir(dir);
}

/* ---- what an RBD disk pins in the store ---------------------------------------------------- */

static void test_refs_pins_rbd(void)
{
	vp_store_pins *pins = NULL;
	char owners[64];

	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_pins_from_xml(pins,
		"<domain><devices><disk type='network' device='disk'><driver name='qemu' type='raw'/>"
		"<source protocol='rbd' name='vdipool/delta.ci.ci-007'><host name='10.0.0.1' port='6789'/></source>"
		"<auth username='vdipool'><secret type='ceph' uuid='" RBD_UUID "'/></auth>"
		"<target dev='vda' bus='virtio'/></disk>"
		"<disk type='network' device='disk'><source protocol='rbd' name='vdipool/base.tiny.1'>"
		"<snapshot name='vdipool'/></source><target dev='vdc'/><readonly/></disk>"
		"</devices></domain>", "ci-007"), 0);
	CU_ASSERT_PTR_NULL(vp_store_pins_all(pins));
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "rbd:vdipool/delta.ci.ci-007", owners, sizeof(owners)), 1);
	VP_ASSERT_STR_EQ(owners, "ci-007");
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "rbd:vdipool/base.tiny.1@vdipool", owners, sizeof(owners)), 1);
	CU_ASSERT_EQUAL(vp_store_pins_owners(pins, "rbd:vdipool/base.tiny.1", owners, sizeof(owners)), 0);
	vp_store_pins_free(pins);

	/* an RBD disk without a name, or another network protocol: everything */
	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_pins_from_xml(pins, "<domain><devices><disk type='network'><source "
					      "protocol='rbd'/></disk></devices></domain>", "x"), 0);
	CU_ASSERT_PTR_NOT_NULL(vp_store_pins_all(pins));
	vp_store_pins_free(pins);
	CU_ASSERT_EQUAL_FATAL(vp_store_pins_new(&pins), 0);
	CU_ASSERT_EQUAL(vp_refs_pins_from_xml(pins, "<domain><devices><disk type='network'><source "
					      "protocol='iscsi' name='iqn.x/1'/></disk></devices></domain>", "x"), 0);
	CU_ASSERT_PTR_NOT_NULL(vp_store_pins_all(pins));
	vp_store_pins_free(pins);
}

static CU_TestInfo tests[] = {
	{ "identity is stable and distinct", test_identity_is_stable_and_distinct },
	{ "10,000 desks: no shared MAC or UUID", test_ten_thousand_desks_distinct },
	{ "render the server template", test_render_server },
	{ "render the desktop template without network or data", test_render_desktop_without_network_or_data },
	{ "render LUKS disks with their libvirt secrets", test_render_luks },
	{ "bad templates are refused", test_bad_templates },
	{ "metadata round trip", test_metadata_round_trip },
	{ "metadata: the host a clone was placed on", test_metadata_host },
	{ "render RBD disks as network disks with cephx", test_render_rbd_disks },
	{ "RBD disks refused: no auth, a namespace, another user, bad locations", test_render_rbd_refused },
	{ "ceph.conf: sections, key spellings, metavariables", test_ceph_conf },
	{ "ceph.conf: mon host forms", test_ceph_mon_hosts },
	{ "keyring: key found, missing client, not base64, unreadable", test_ceph_keyring },
	{ "refs: an RBD network disk pins its image", test_refs_pins_rbd },
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
