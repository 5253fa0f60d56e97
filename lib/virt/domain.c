/* domain.c: clone domain XML from templates (libxml2 trees, never string surgery) + our metadata. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include "vdipool/domain.h"
#include "virt/virt_int.h"
#include "vdipool/error.h"
#include "util/util.h"

void vp_uuid_format(const unsigned char u[16], char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static void digest(const char *in, size_t n, unsigned char md[EVP_MAX_MD_SIZE])
{
	unsigned int mdlen = 0;

	EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL);
}

static void format_mac(char mac[18], const unsigned char b[6])
{
	snprintf(mac, 18, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
}

void vp_domain_identity(const char *pool, const char *name, unsigned char uuid[16], char mac[18])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char in[256];
	int n = snprintf(in, sizeof(in), "vdipool:%s/%s", pool, name);

	digest(in, (size_t)n < sizeof(in) ? (size_t)n : sizeof(in) - 1, md);
	memcpy(uuid, md, 16);
	uuid[6] = (uuid[6] & 0x0f) | 0x50; /* RFC 4122 name-based (SHA) */
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	vp_domain_mac(pool, name, 0, mac);
}

void vp_domain_mac(const char *pool, const char *name, unsigned attempt, char mac[18])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char in[256];
	int n = snprintf(in, sizeof(in), "vdipool-mac:%s/%s#%u", pool, name, attempt);

	digest(in, (size_t)n < sizeof(in) ? (size_t)n : sizeof(in) - 1, md);
	md[0] = (md[0] & 0xfc) | 0x02; /* locally administered, unicast */
	format_mac(mac, md);
}

void vp_domain_mac_legacy(const char *pool, const char *name, char mac[18])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char in[256];
	int n = snprintf(in, sizeof(in), "vdipool:%s/%s", pool, name);

	digest(in, (size_t)n < sizeof(in) ? (size_t)n : sizeof(in) - 1, md);
	snprintf(mac, 18, "52:54:00:%02x:%02x:%02x", md[16], md[17], md[18]);
}

static xmlNodePtr child(xmlNodePtr parent, const char *name)
{
	for (xmlNodePtr c = parent->children; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !xmlStrcmp(c->name, BAD_CAST name))
			return c;
	return NULL;
}

/* Sets <name>text</name> under parent, creating it when absent. */
static xmlNodePtr set_text_child(xmlNodePtr parent, const char *name, const char *text)
{
	xmlNodePtr n = child(parent, name);

	if (!n)
		return xmlNewTextChild(parent, NULL, BAD_CAST name, BAD_CAST text);
	xmlNodeSetContent(n, NULL);
	xmlNodeAddContent(n, BAD_CAST text);
	return n;
}

static void unlink_free(xmlNodePtr n)
{
	xmlUnlinkNode(n);
	xmlFreeNode(n);
}

/* Removes the children of devices that vdipool owns: disks on vda/vdb, interfaces. */
static int clear_owned_devices(xmlNodePtr devices, const char *tpl)
{
	xmlNodePtr c = devices->children, next;

	for (; c; c = next) {
		next = c->next;
		if (c->type != XML_ELEMENT_NODE)
			continue;
		if (!xmlStrcmp(c->name, BAD_CAST "interface")) {
			unlink_free(c);
		} else if (!xmlStrcmp(c->name, BAD_CAST "disk")) {
			xmlNodePtr t = child(c, "target");
			xmlChar *dev = t ? xmlGetProp(t, BAD_CAST "dev") : NULL;
			bool ours = dev && (!xmlStrcmp(dev, BAD_CAST "vda") || !xmlStrcmp(dev, BAD_CAST "vdb"));
			xmlFree(dev);
			if (ours)
				return vp_error_set(VP_ERR_INVALID, VP_EINVAL,
						    "template '%s': a disk on vda or vdb is vdipool's to define "
						    "(the clone's delta and data disk); use another target", tpl);
		}
	}
	return 0;
}

static xmlNodePtr new_disk(xmlNodePtr devices, const char *type, const char *format)
{
	xmlNodePtr disk = xmlNewChild(devices, NULL, BAD_CAST "disk", NULL);
	xmlNodePtr n;

	xmlNewProp(disk, BAD_CAST "type", BAD_CAST type);
	xmlNewProp(disk, BAD_CAST "device", BAD_CAST "disk");
	n = xmlNewChild(disk, NULL, BAD_CAST "driver", NULL);
	xmlNewProp(n, BAD_CAST "name", BAD_CAST "qemu");
	xmlNewProp(n, BAD_CAST "type", BAD_CAST format);
	if (!strcmp(type, "network"))
		xmlNewProp(n, BAD_CAST "cache", BAD_CAST "writeback");
	xmlNewProp(n, BAD_CAST "discard", BAD_CAST "unmap");
	return disk;
}

static void add_target(xmlNodePtr disk, const char *dev)
{
	xmlNodePtr n = xmlNewChild(disk, NULL, BAD_CAST "target", NULL);

	xmlNewProp(n, BAD_CAST "dev", BAD_CAST dev);
	xmlNewProp(n, BAD_CAST "bus", BAD_CAST "virtio");
}

/* An rbd: location, "rbd:POOL/[NS/]IMAGE[@SNAP][:id=..:conf=..:keyring=..]", in parts
 * pointing into buf (the caller's); ns, snap and id NULL when absent. */
struct rbd_loc {
	char *buf, *pool, *ns, *image, *snap, *id;
};

static int rbd_loc_parse(struct rbd_loc *l, const char *loc, const char *dev)
{
	char *opts, *slash;

	memset(l, 0, sizeof(*l));
	if (!(l->buf = vp_strdup(loc + 4)))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if ((opts = strchr(l->buf, ':')))
		*opts++ = '\0';
	for (char *o = opts, *next; o; o = next) {
		if ((next = strchr(o, ':')))
			*next++ = '\0';
		if (!strncmp(o, "id=", 3))
			l->id = o + 3;
	}
	if ((l->snap = strchr(l->buf, '@')))
		*l->snap++ = '\0';
	l->pool = l->buf;
	if ((slash = strchr(l->buf, '/'))) {
		*slash = '\0';
		l->image = slash + 1;
		if ((slash = strchr(l->image, '/'))) {
			*slash = '\0';
			l->ns = l->image;
			l->image = slash + 1;
		}
	}
	if (!*l->pool || !l->image || !*l->image || strchr(l->image, '/') || (l->snap && !*l->snap) ||
	    (l->id && !*l->id)) {
		free(l->buf);
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "disk %s: invalid RBD location '%s' (want "
				    "rbd:POOL/IMAGE[@SNAP][:id=USER...])", dev, loc);
	}
	return 0;
}

/* A network disk on RBD: QEMU reaches the monitors and authenticates as the cephx user with
 * the key of a libvirt secret; no key and no Ceph file in the XML. */
static int add_rbd_disk(xmlNodePtr devices, const char *loc, const vp_rbd_auth *auth, const char *dev)
{
	struct rbd_loc l;
	xmlNodePtr disk, src, n;
	char *name, port[16];
	int rc;

	if ((rc = rbd_loc_parse(&l, loc, dev)) < 0)
		return rc;
	if (l.ns)
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "disk %s 'rbd:%s/%s/%s': RBD namespaces cannot "
				  "be used (libvirt 9.0 hands QEMU '%s/%s' as the image name, in no "
				  "namespace); use a tier without namespace", dev, l.pool, l.ns, l.image,
				  l.ns, l.image);
	else if (!auth || !auth->user || !auth->nhosts || (!*auth->secret_uuid && !auth->secret_usage))
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "disk %s 'rbd:%s/%s': an RBD disk needs the "
				  "cephx user, its libvirt secret and the monitors (vp_virt_rbd_auth) %s",
				  dev, l.pool, l.image, auth ? "and they are incomplete" : "and none were given");
	else if (l.id && strcmp(l.id, auth->user))
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "disk %s 'rbd:%s/%s' is for client.%s, but the "
				  "cephx auth given is client.%s", dev, l.pool, l.image, l.id, auth->user);
	if (rc < 0 || !(name = vp_strdup_printf("%s/%s", l.pool, l.image))) {
		free(l.buf);
		return rc < 0 ? rc : vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	disk = new_disk(devices, "network", "raw");
	src = xmlNewChild(disk, NULL, BAD_CAST "source", NULL);
	xmlNewProp(src, BAD_CAST "protocol", BAD_CAST "rbd");
	xmlNewProp(src, BAD_CAST "name", BAD_CAST name);
	for (size_t i = 0; i < auth->nhosts; i++) {
		n = xmlNewChild(src, NULL, BAD_CAST "host", NULL);
		xmlNewProp(n, BAD_CAST "name", BAD_CAST auth->hosts[i].name);
		snprintf(port, sizeof(port), "%u", auth->hosts[i].port);
		xmlNewProp(n, BAD_CAST "port", BAD_CAST port);
	}
	if (l.snap) {
		n = xmlNewChild(src, NULL, BAD_CAST "snapshot", NULL);
		xmlNewProp(n, BAD_CAST "name", BAD_CAST l.snap);
	}
	n = xmlNewChild(disk, NULL, BAD_CAST "auth", NULL);
	xmlNewProp(n, BAD_CAST "username", BAD_CAST auth->user);
	n = xmlNewChild(n, NULL, BAD_CAST "secret", NULL);
	xmlNewProp(n, BAD_CAST "type", BAD_CAST "ceph");
	if (*auth->secret_uuid)
		xmlNewProp(n, BAD_CAST "uuid", BAD_CAST auth->secret_uuid);
	else
		xmlNewProp(n, BAD_CAST "usage", BAD_CAST auth->secret_usage);
	add_target(disk, dev);
	if (l.snap) /* a snapshot cannot be written */
		xmlNewChild(disk, NULL, BAD_CAST "readonly", NULL);
	free(name);
	free(l.buf);
	return 0;
}

static int add_disk(xmlNodePtr devices, const char *path, const char *format, const char *dev,
		    const vp_rbd_auth *rbd, const char *luks_secret)
{
	xmlNodePtr disk, n;

	if (!strncmp(path, "rbd:", 4))
		return luks_secret ? vp_error_set(VP_ERR_INVALID, VP_EINVAL, "disk %s: LUKS is for qcow2 "
						  "files, not '%s'", dev, path)
				   : add_rbd_disk(devices, path, rbd, dev);
	disk = new_disk(devices, "file", format ? format : "qcow2");
	n = xmlNewChild(disk, NULL, BAD_CAST "source", NULL);
	xmlNewProp(n, BAD_CAST "file", BAD_CAST path);
	if (luks_secret) {
		/* QEMU gets the key from libvirt (the secret's value, never in this XML). */
		xmlNodePtr e = xmlNewChild(n, NULL, BAD_CAST "encryption", NULL);
		xmlNewProp(e, BAD_CAST "format", BAD_CAST "luks");
		e = xmlNewChild(e, NULL, BAD_CAST "secret", NULL);
		xmlNewProp(e, BAD_CAST "type", BAD_CAST "passphrase");
		xmlNewProp(e, BAD_CAST "uuid", BAD_CAST luks_secret);
	}
	add_target(disk, dev);
	return 0;
}

static void add_interface(xmlNodePtr devices, const char *network, const char *mac)
{
	xmlNodePtr iface = xmlNewChild(devices, NULL, BAD_CAST "interface", NULL);
	xmlNodePtr n;

	xmlNewProp(iface, BAD_CAST "type", BAD_CAST "network");
	n = xmlNewChild(iface, NULL, BAD_CAST "mac", NULL);
	xmlNewProp(n, BAD_CAST "address", BAD_CAST mac);
	n = xmlNewChild(iface, NULL, BAD_CAST "source", NULL);
	xmlNewProp(n, BAD_CAST "network", BAD_CAST network);
	n = xmlNewChild(iface, NULL, BAD_CAST "model", NULL);
	xmlNewProp(n, BAD_CAST "type", BAD_CAST "virtio");
}

static void set_attr_if(xmlNodePtr n, const char *name, const char *val)
{
	if (val)
		xmlNewProp(n, BAD_CAST name, BAD_CAST val);
}

/* bare: without the namespace, as virDomainSetMetadata takes it (libvirt puts the element in the
 * namespace it is given, and refuses an element that declares its own prefix). */
static xmlNodePtr build_meta_ns(const vp_domain_meta *m, bool bare)
{
	xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "clone");
	xmlNsPtr ns = bare ? NULL : xmlNewNs(root, BAD_CAST VP_METADATA_NS, BAD_CAST VP_METADATA_PREFIX);
	xmlNodePtr n;
	char idx[16];

	if (ns)
		xmlSetNs(root, ns);
	snprintf(idx, sizeof(idx), "%u", m->index);
	xmlNewProp(root, BAD_CAST "pool", BAD_CAST m->pool);
	xmlNewProp(root, BAD_CAST "index", BAD_CAST idx);
	if (m->host && *m->host)
		xmlNewProp(root, BAD_CAST "host", BAD_CAST m->host);
	n = xmlNewChild(root, ns, BAD_CAST "base", NULL);
	set_attr_if(n, "name", m->base_name);
	set_attr_if(n, "version", m->base_version);
	set_attr_if(n, "image", m->base_image);
	set_attr_if(n, "previous", m->prev_version);
	set_attr_if(n, "previous-image", m->prev_image);
	n = xmlNewChild(root, ns, BAD_CAST "delta", NULL);
	set_attr_if(n, "path", m->delta_path);
	set_attr_if(n, "tier", m->tier);
	if (m->detached)
		xmlNewProp(n, BAD_CAST "detached", BAD_CAST "yes");
	if (m->data_path) {
		n = xmlNewChild(root, ns, BAD_CAST "data", NULL);
		set_attr_if(n, "path", m->data_path);
	}
	xmlNewTextChild(root, ns, BAD_CAST "spec-hash", BAD_CAST(m->spec_hash ? m->spec_hash : ""));
	if (m->mac) {
		n = xmlNewChild(root, ns, BAD_CAST "identity", NULL);
		set_attr_if(n, "mac", m->mac);
	}
	if (m->claimed_by) {
		char t[24];

		n = xmlNewChild(root, ns, BAD_CAST "claim", NULL);
		xmlNewProp(n, BAD_CAST "by", BAD_CAST m->claimed_by);
		snprintf(t, sizeof(t), "%lld", (long long)m->claimed_at);
		xmlNewProp(n, BAD_CAST "at", BAD_CAST t);
		snprintf(t, sizeof(t), "%lld", (long long)m->claimed_until);
		xmlNewProp(n, BAD_CAST "until", BAD_CAST t);
		set_attr_if(n, "spec", m->claimed_spec);
	}
	return root;
}

static xmlNodePtr build_meta(const vp_domain_meta *m)
{
	return build_meta_ns(m, false);
}

static int set_metadata(xmlNodePtr dom, const vp_domain_meta *m)
{
	xmlNodePtr md = child(dom, "metadata"), c, next;

	if (!md)
		md = xmlNewChild(dom, NULL, BAD_CAST "metadata", NULL);
	for (c = md->children; c; c = next) {
		next = c->next;
		if (c->type == XML_ELEMENT_NODE && c->ns && !xmlStrcmp(c->ns->href, BAD_CAST VP_METADATA_NS))
			unlink_free(c);
	}
	xmlAddChild(md, build_meta(m));
	return 0;
}

/* Each serial log gets the clone's own file, in the directory the template names. */
static void name_serial_logs(xmlNodePtr devices, const char *name)
{
	for (xmlNodePtr c = devices->children; c; c = c->next) {
		xmlNodePtr log;
		xmlChar *file;
		const char *slash;
		char *path;

		if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST "serial") ||
		    !(log = child(c, "log")))
			continue;
		file = xmlGetProp(log, BAD_CAST "file");
		slash = file ? strrchr((const char *)file, '/') : NULL;
		path = slash ? vp_strdup_printf("%.*s/%s-serial.log", (int)(slash - (const char *)file),
						(const char *)file, name)
			     : vp_strdup_printf("/var/log/libvirt/qemu/%s-serial.log", name);
		if (path)
			xmlSetProp(log, BAD_CAST "file", BAD_CAST path);
		free(path);
		xmlFree(file);
	}
}

/* The guest can read its clone name from SMBIOS (/sys/class/dmi/id/product_serial). */
static void set_smbios_serial(xmlNodePtr dom, const char *name)
{
	xmlNodePtr si = child(dom, "sysinfo"), sys, e, next;

	if (!si)
		return;
	if (!(sys = child(si, "system")))
		sys = xmlNewChild(si, NULL, BAD_CAST "system", NULL);
	for (e = sys->children; e; e = next) {
		xmlChar *n = NULL;
		next = e->next;
		if (e->type == XML_ELEMENT_NODE && (n = xmlGetProp(e, BAD_CAST "name")) &&
		    !xmlStrcmp(n, BAD_CAST "serial"))
			unlink_free(e);
		xmlFree(n);
	}
	e = xmlNewTextChild(sys, NULL, BAD_CAST "entry", BAD_CAST name);
	xmlNewProp(e, BAD_CAST "name", BAD_CAST "serial");
}

static int apply_params(xmlNodePtr dom, const vp_domain_params *p, const char *tpl)
{
	char uuid[37], buf[32];
	xmlNodePtr devices, mem, cur;
	int rc;

	if (p->domain_type) {
		xmlSetProp(dom, BAD_CAST "type", BAD_CAST p->domain_type);
		/* The CPU follows the accelerator. TCG cannot model the host CPU:
		 * QEMU's default model (qemu64) is the one TCG runs everywhere. KVM
		 * gets the template's choice, or host-model when it has none. */
		if (!strcmp(p->domain_type, "qemu") && (cur = child(dom, "cpu")))
			unlink_free(cur);
		else if (!strcmp(p->domain_type, "kvm") && !child(dom, "cpu")) {
			cur = xmlNewChild(dom, NULL, BAD_CAST "cpu", NULL);
			xmlNewProp(cur, BAD_CAST "mode", BAD_CAST "host-model");
			xmlNewProp(cur, BAD_CAST "check", BAD_CAST "none");
		}
	}
	set_text_child(dom, "name", p->name);
	vp_uuid_format(p->uuid, uuid);
	set_text_child(dom, "uuid", uuid);
	snprintf(buf, sizeof(buf), "%" PRIu64, p->memory_bytes / 1024);
	mem = set_text_child(dom, "memory", buf);
	xmlSetProp(mem, BAD_CAST "unit", BAD_CAST "KiB");
	if ((cur = child(dom, "currentMemory")))
		unlink_free(cur);
	snprintf(buf, sizeof(buf), "%u", p->vcpus ? p->vcpus : 1);
	set_text_child(dom, "vcpu", buf);
	devices = child(dom, "devices");
	if (!devices)
		devices = xmlNewChild(dom, NULL, BAD_CAST "devices", NULL);
	if (clear_owned_devices(devices, tpl) < 0)
		return VP_EINVAL;
	name_serial_logs(devices, p->name);
	set_smbios_serial(dom, p->name);
	if ((rc = add_disk(devices, p->meta.delta_path, p->delta_format, "vda", p->rbd, p->delta_secret)) < 0 ||
	    (p->meta.data_path &&
	     (rc = add_disk(devices, p->meta.data_path, p->data_format, "vdb", p->rbd, p->data_secret)) < 0))
		return rc;
	if (p->network && *p->network && strcmp(p->network, "none") != 0)
		add_interface(devices, p->network, p->mac);
	return set_metadata(dom, &p->meta);
}

int vp_domain_render(char **xml_out, const char *tpl, const vp_domain_params *p)
{
	xmlDocPtr doc;
	xmlNodePtr root;
	xmlChar *mem = NULL;
	int size = 0, rc;

	*xml_out = NULL;
	if (!p->name || !p->meta.pool || !p->meta.delta_path)
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "domain needs a name, a pool and a delta path");
	doc = xmlReadFile(tpl, NULL, XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
					     XML_PARSE_NOWARNING);
	if (!doc) {
		const xmlError *e = xmlGetLastError();
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "template '%s': not well-formed XML%s%s", tpl,
				    e && e->message ? ": " : "", e && e->message ? e->message : "");
	}
	root = xmlDocGetRootElement(doc);
	if (!root || xmlStrcmp(root->name, BAD_CAST "domain")) {
		xmlFreeDoc(doc);
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "template '%s': root element must be <domain>", tpl);
	}
	rc = apply_params(root, p, tpl);
	if (rc == 0) {
		xmlDocDumpFormatMemory(doc, &mem, &size, 1);
		if (!mem)
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	if (rc == 0) {
		*xml_out = vp_strdup((const char *)mem);
		rc = *xml_out ? 0 : VP_ENOMEM;
	}
	xmlFree(mem);
	xmlFreeDoc(doc);
	return rc;
}

static int meta_format(char **xml_out, const vp_domain_meta *meta, bool bare)
{
	xmlBufferPtr buf = xmlBufferCreate();
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr root = build_meta_ns(meta, bare);
	int rc = 0;

	xmlDocSetRootElement(doc, root);
	if (!buf || xmlNodeDump(buf, doc, root, 0, 0) < 0)
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	else
		*xml_out = vp_strdup((const char *)xmlBufferContent(buf));
	if (rc == 0 && !*xml_out)
		rc = VP_ENOMEM;
	xmlBufferFree(buf);
	xmlFreeDoc(doc);
	return rc;
}

int vp_domain_meta_format(char **xml_out, const vp_domain_meta *meta)
{
	return meta_format(xml_out, meta, false);
}

int virt_meta_format_bare(char **xml_out, const vp_domain_meta *meta)
{
	return meta_format(xml_out, meta, true);
}

static char *prop_dup(xmlNodePtr n, const char *name)
{
	xmlChar *v = n ? xmlGetProp(n, BAD_CAST name) : NULL;
	char *s = v ? strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

int vp_domain_meta_parse(vp_domain_meta *m, const char *xml, size_t len)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	char *idx;
	xmlChar *hash;

	memset(m, 0, sizeof(*m));
	if (len > INT32_MAX)
		return vp_error_set(VP_ERR_VIRT, VP_EINVAL, "vdipool metadata is too large");
	doc = xmlReadMemory(xml, (int)len, "metadata.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	root = doc ? xmlDocGetRootElement(doc) : NULL;
	/* virDomainGetMetadata hands the element back without its namespace
	 * (the caller asked by namespace); a foreign namespace is not ours. */
	if (!root || xmlStrcmp(root->name, BAD_CAST "clone") ||
	    (root->ns && xmlStrcmp(root->ns->href, BAD_CAST VP_METADATA_NS))) {
		xmlFreeDoc(doc);
		return vp_error_set(VP_ERR_VIRT, VP_EINVAL, "not a vdipool metadata element");
	}
	m->pool = prop_dup(root, "pool");
	idx = prop_dup(root, "index");
	m->index = idx ? (unsigned)strtoul(idx, NULL, 10) : 0;
	free(idx);
	/* Placement reads it for every clone: never NULL, "" for clones defined before hosts. */
	m->host = prop_dup(root, "host");
	if (!m->host)
		m->host = strdup("");
	n = child(root, "base");
	m->base_name = prop_dup(n, "name");
	m->base_version = prop_dup(n, "version");
	m->base_image = prop_dup(n, "image");
	m->prev_version = prop_dup(n, "previous");
	m->prev_image = prop_dup(n, "previous-image");
	m->delta_path = prop_dup(child(root, "delta"), "path");
	m->tier = prop_dup(child(root, "delta"), "tier");
	{
		char *det = prop_dup(child(root, "delta"), "detached");
		m->detached = det && !strcmp(det, "yes");
		free(det);
	}
	m->mac = prop_dup(child(root, "identity"), "mac");
	m->data_path = prop_dup(child(root, "data"), "path");
	if ((n = child(root, "claim"))) {
		char *at = prop_dup(n, "at"), *until = prop_dup(n, "until");

		/* A claim without a holder is no claim; "" is a holder (claim --for ''). */
		m->claimed_by = prop_dup(n, "by");
		m->claimed_spec = prop_dup(n, "spec");
		m->claimed_at = at ? strtoll(at, NULL, 10) : 0;
		m->claimed_until = until ? strtoll(until, NULL, 10) : 0;
		free(at);
		free(until);
	}
	n = child(root, "spec-hash");
	hash = n ? xmlNodeGetContent(n) : NULL;
	m->spec_hash = hash ? strdup((const char *)hash) : NULL;
	xmlFree(hash);
	xmlFreeDoc(doc);
	if (!m->pool) {
		vp_domain_meta_release(m);
		return vp_error_set(VP_ERR_VIRT, VP_EINVAL, "vdipool metadata without a pool");
	}
	if (!m->host) {
		vp_domain_meta_release(m);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	return 0;
}

void vp_rbd_auth_release(vp_rbd_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; a->hosts && i < a->nhosts; i++)
		free(a->hosts[i].name);
	free(a->hosts);
	free(a->user);
	free(a->secret_usage);
	memset(a, 0, sizeof(*a));
}

void vp_domain_meta_release(vp_domain_meta *m)
{
	free(m->pool);
	free(m->base_name);
	free(m->base_version);
	free(m->base_image);
	free(m->prev_version);
	free(m->prev_image);
	free(m->delta_path);
	free(m->data_path);
	free(m->spec_hash);
	free(m->mac);
	free(m->tier);
	free(m->host);
	free(m->claimed_by);
	free(m->claimed_spec);
	memset(m, 0, sizeof(*m));
}
