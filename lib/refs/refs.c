/* refs.c: reads from libvirt what the store must keep: disks' whole backing chains and recorded bases. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/xpath.h>

#include "util/util.h"
#include "vdipool/domain.h"
#include "vdipool/error.h"
#include "vdipool/qcow2.h"
#include "vdipool/refs.h"

/* Every layer of the chain under `path`. A missing file backs nothing; any
 * other failure (unreadable, an unknown format) may hide a backing file. */
static int pin_chain(vp_store_pins *pins, const char *path, const char *owner)
{
	vp_qcow2_chain c;
	int rc = vp_qcow2_read_chain(&c, path), rc2 = 0;
	char why[1024];

	for (size_t i = 0; rc2 == 0 && i < c.depth; i++)
		rc2 = vp_store_pins_add(pins, c.layers[i].path, owner);
	if (rc2 == 0 && c.depth == 0)
		rc2 = vp_store_pins_add(pins, path, owner);
	if (rc2 == 0 && rc < 0 && rc != VP_ENOENT) {
		snprintf(why, sizeof(why), "domain '%s' has a disk whose backing chain cannot be read "
			 "(%s)", owner, vp_error_last()->message);
		rc2 = vp_store_pins_pin_all(pins, why);
	}
	vp_error_clear();
	vp_qcow2_chain_release(&c);
	return rc2;
}

static char *attr(xmlNodePtr n, const char *name)
{
	xmlChar *v = n ? xmlGetProp(n, BAD_CAST name) : NULL;
	char *s = v ? vp_strdup((const char *)v) : NULL;

	xmlFree(v);
	return s;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
			return c;
	return NULL;
}

/* An RBD image as the rbd plugin names it, without its options: "rbd:POOL/[NS/]IMAGE[@SNAP]". Its
 * parent (a clone's base snapshot) is not in the XML: the metadata's base pin and the plugin's
 * own count of clones keep that. */
static int pin_rbd(vp_store_pins *pins, xmlNodePtr src, const char *owner)
{
	VP_AUTOFREE char *name = attr(src, "name");
	VP_AUTOFREE char *snap = attr(child(src, "snapshot"), "name");
	VP_AUTOFREE char *loc = NULL;
	char why[512];

	if (!name || !*name) {
		snprintf(why, sizeof(why), "domain '%s' has an rbd disk without an image name", owner);
		return vp_store_pins_pin_all(pins, why);
	}
	if (!(loc = vp_strdup_printf("rbd:%s%s%s", name, snap && *snap ? "@" : "", snap && *snap ? snap : "")))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	return vp_store_pins_add(pins, loc, owner);
}

static int pin_disk(vp_store_pins *pins, xmlNodePtr disk, const char *owner)
{
	VP_AUTOFREE char *type = attr(disk, "type");
	VP_AUTOFREE char *file = NULL;
	xmlNodePtr src = child(disk, "source");
	char why[512];

	if (!src)
		return 0; /* an empty drive */
	if (type && !strcmp(type, "network")) {
		VP_AUTOFREE char *protocol = attr(src, "protocol");
		if (protocol && !strcmp(protocol, "rbd"))
			return pin_rbd(pins, src, owner);
	}
	if (type && !strcmp(type, "file"))
		file = attr(src, "file");
	else if (type && !strcmp(type, "block"))
		file = attr(src, "dev");
	if (file && *file)
		return pin_chain(pins, file, owner);
	if (type && (!strcmp(type, "file") || !strcmp(type, "block")))
		return 0; /* no path: nothing attached */
	snprintf(why, sizeof(why), "domain '%s' has a %s disk that vdipool cannot read", owner,
		 type ? type : "typeless");
	return vp_store_pins_pin_all(pins, why);
}

int vp_refs_pins_from_xml(vp_store_pins *pins, const char *xml, const char *owner)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr r = ctx ? xmlXPathEvalExpression(BAD_CAST "/domain/devices/disk", ctx) : NULL;
	int rc = 0;

	if (!r)
		rc = vp_error_set(VP_ERR_VIRT, VP_EINVAL, "cannot parse the definition of domain '%s'",
				  owner);
	for (int i = 0; rc == 0 && r->nodesetval && i < r->nodesetval->nodeNr; i++)
		rc = pin_disk(pins, r->nodesetval->nodeTab[i], owner);
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}

/* The images a vdipool domain records: its base and the version a rollback returns to. */
static int pin_meta(vp_store_pins *pins, virDomainPtr dom, const char *owner)
{
	char *md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VP_METADATA_NS, 0);
	vp_domain_meta m;
	int rc = 0;

	if (!md)
		return 0; /* not ours */
	if (vp_domain_meta_parse(&m, md, strlen(md)) == 0) {
		/* A detached clone needs no base: its disk's own chain (read from the
		 * domain's disks) still pins the base while a flatten is pending. */
		rc = m.detached ? 0 : vp_store_pins_add(pins, m.base_image, owner);
		if (rc == 0 && !m.detached)
			rc = vp_store_pins_add(pins, m.prev_image, owner);
		if (rc == 0)
			rc = vp_store_pins_add(pins, m.delta_path, owner);
		if (rc == 0)
			rc = vp_store_pins_add(pins, m.data_path, owner);
		vp_domain_meta_release(&m);
	}
	vp_error_clear();
	free(md);
	return rc;
}

static int virt_fail(const char *what, const char *subject)
{
	const char *msg = virGetLastErrorMessage();

	return vp_error_set(VP_ERR_VIRT, VP_EIO, "%s '%s': %s", what, subject,
			    msg ? msg : "unknown libvirt error");
}

static void quiet_libvirt(void *ud, virErrorPtr e)
{
	(void)ud;
	(void)e;
}

int vp_refs_libvirt_pins(void *ctx, vp_store_pins *pins)
{
	const char *uri = ctx ? ctx : "qemu:///system";
	virConnectPtr conn;
	virDomainPtr *doms = NULL;
	int nd, rc = 0;

	virSetErrorFunc(NULL, quiet_libvirt);
	if (!(conn = virConnectOpen(uri)))
		return virt_fail("cannot connect to libvirt at", uri);
	if ((nd = virConnectListAllDomains(conn, &doms, 0)) < 0)
		rc = virt_fail("cannot list the domains on", uri);
	for (int i = 0; rc == 0 && i < nd; i++) {
		const char *name = virDomainGetName(doms[i]);
		/* Both definitions: a running domain may use other disks than its config. */
		bool gone = false;

		for (int live = 0; rc == 0 && !gone && live < 2; live++) {
			char *xml = virDomainGetXMLDesc(doms[i], live ? 0 : VIR_DOMAIN_XML_INACTIVE);
			/* Undefined since the listing (a transient probe that ended, a domain
			 * removed meanwhile): it uses nothing any more. */
			if (!xml && virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
				gone = true;
			else
				rc = xml ? vp_refs_pins_from_xml(pins, xml, name)
					 : virt_fail("cannot read the definition of domain", name);
			free(xml);
		}
		if (rc == 0 && !gone)
			rc = pin_meta(pins, doms[i], name);
	}
	for (int i = 0; i < nd; i++)
		virDomainFree(doms[i]);
	free(doms);
	virConnectClose(conn);
	return rc;
}
