/* virt.c: libvirt calls behind vp_virt_*, with libvirt's errors turned into ours (text kept). */
#include <pthread.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/util.h"
#include "virt/virt_int.h"

/* libvirt prints every error to stderr by default; we report them ourselves. */
static void silent(void *ud, virErrorPtr err)
{
	(void)ud;
	(void)err;
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libvirt(void)
{
	virInitialize();
	virSetErrorFunc(NULL, silent);
}

static int virt_error(const char *what, const char *subject)
{
	const char *msg = virGetLastErrorMessage();
	int code = virGetLastErrorCode();
	int rc = code == VIR_ERR_NO_DOMAIN ? VP_ENOENT : code == VIR_ERR_OPERATION_INVALID ? VP_EBUSY : VP_EIO;

	return vp_error_set(VP_ERR_VIRT, rc, "%s '%s': %s", what, subject, msg ? msg : "unknown libvirt error");
}

int vp_virt_open(vp_virt **out, const char *uri)
{
	vp_virt *v;

	pthread_once(&init_once, init_libvirt);
	*out = NULL;
	v = calloc(1, sizeof(*v));
	if (!v || !(v->uri = strdup(uri))) {
		free(v);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	v->conn = virConnectOpen(uri);
	if (!v->conn) {
		const char *msg = virGetLastErrorMessage();
		int rc = vp_error_set(VP_ERR_VIRT, VP_EIO,
				      "cannot connect to libvirt at '%s': %s (is libvirtd running? "
				      "scripts/libvirt-up.sh starts it)", uri, msg ? msg : "unknown error");
		free(v->uri);
		free(v);
		return rc;
	}
	*out = v;
	return 0;
}

void vp_virt_free(vp_virt *v)
{
	if (!v)
		return;
	if (v->conn)
		virConnectClose(v->conn);
	free(v->uri);
	free(v->accel_cache_dir);
	free(v->probe_xml);
	free(v->probe_key);
	free(v);
}

const char *vp_virt_uri(const vp_virt *v)
{
	return v->uri;
}


static vp_dom_state map_state(int s)
{
	switch (s) {
	case VIR_DOMAIN_RUNNING:
	case VIR_DOMAIN_BLOCKED:
		return VP_DOM_RUNNING;
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_PMSUSPENDED:
		return VP_DOM_PAUSED;
	case VIR_DOMAIN_SHUTOFF:
	case VIR_DOMAIN_CRASHED:
		return VP_DOM_SHUTOFF;
	default:
		return VP_DOM_OTHER;
	}
}

static int fill_domain(virDomainPtr dom, vp_virt_domain *d)
{
	int state = 0, reason = 0;
	char *md;

	memset(d, 0, sizeof(*d));
	d->name = strdup(virDomainGetName(dom));
	if (!d->name)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	virDomainGetUUIDString(dom, d->uuid);
	if (virDomainGetState(dom, &state, &reason, 0) == 0)
		d->state = map_state(state);
	else
		d->state = VP_DOM_OTHER;
	if (d->state == VP_DOM_SHUTOFF)
		d->saved = virDomainHasManagedSaveImage(dom, 0) == 1;
	else if (d->state == VP_DOM_RUNNING)
		d->restored = state == VIR_DOMAIN_RUNNING && reason == VIR_DOMAIN_RUNNING_RESTORED;
	/* The defined state counts, not the running one: a running clone takes a
	 * redefinition at its next start, and until then its live metadata is the
	 * old one (the planner would update it again and again). */
	md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VP_METADATA_NS,
				  virDomainIsPersistent(dom) == 1 ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	if (md) {
		/* Metadata that is not ours in shape is treated as no metadata. */
		d->has_meta = vp_domain_meta_parse(&d->meta, md, strlen(md)) == 0;
		free(md);
	}
	vp_error_clear();
	return 0;
}

int vp_virt_list(vp_virt *v, vp_virt_domain **out, size_t *count)
{
	virDomainPtr *doms = NULL;
	vp_virt_domain *list;
	int n, rc = 0;

	*out = NULL;
	*count = 0;
	n = virConnectListAllDomains(v->conn, &doms, 0);
	if (n < 0)
		return virt_error("cannot list domains on", v->uri);
	list = calloc((size_t)n + 1, sizeof(*list));
	if (!list)
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		if (rc == 0)
			rc = fill_domain(doms[i], &list[*count]);
		if (rc == 0)
			(*count)++;
		virDomainFree(doms[i]);
	}
	free(doms);
	if (rc < 0) {
		vp_virt_domains_free(list, *count);
		*count = 0;
		return rc;
	}
	*out = list;
	return 0;
}

void vp_virt_domain_release(vp_virt_domain *d)
{
	free(d->name);
	if (d->has_meta)
		vp_domain_meta_release(&d->meta);
	memset(d, 0, sizeof(*d));
}

void vp_virt_domains_free(vp_virt_domain *doms, size_t count)
{
	if (!doms)
		return;
	for (size_t i = 0; i < count; i++)
		vp_virt_domain_release(&doms[i]);
	free(doms);
}

int vp_virt_lookup(vp_virt *v, const char *name, vp_virt_domain *out)
{
	virDomainPtr dom = virDomainLookupByName(v->conn, name);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!dom)
		return virt_error("cannot find domain", name);
	rc = fill_domain(dom, out);
	virDomainFree(dom);
	return rc;
}

int vp_virt_set_meta(vp_virt *v, const char *name, const vp_domain_meta *meta)
{
	virDomainPtr dom = virDomainLookupByName(v->conn, name);
	unsigned flags = VIR_DOMAIN_AFFECT_CONFIG;
	char *xml = NULL;
	int rc;

	if (!dom)
		return virt_error("cannot find domain", name);
	if (virDomainIsActive(dom) == 1)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	if ((rc = virt_meta_format_bare(&xml, meta)) == 0 &&
	    virDomainSetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, xml, VP_METADATA_PREFIX, VP_METADATA_NS,
				 flags) < 0)
		rc = virt_error("cannot write the vdipool metadata of domain", name);
	free(xml);
	virDomainFree(dom);
	return rc;
}

/* Whether the domain's vdipool metadata names this pool (the defined state, as fill_domain). */
static bool of_pool(virDomainPtr dom, const char *pool)
{
	char *md = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, VP_METADATA_NS,
					virDomainIsPersistent(dom) == 1 ? VIR_DOMAIN_AFFECT_CONFIG : 0);
	vp_domain_meta m;
	bool ours = false;

	if (md && vp_domain_meta_parse(&m, md, strlen(md)) == 0) {
		ours = !strcmp(m.pool, pool);
		vp_domain_meta_release(&m);
	}
	free(md);
	vp_error_clear();
	return ours;
}

int vp_virt_node_capacity(vp_virt *v, const char *exclude_pool, vp_virt_capacity *out)
{
	virDomainPtr *doms = NULL;
	virNodeInfo node;
	int n, rc = 0;

	memset(out, 0, sizeof(*out));
	if (virNodeGetInfo(v->conn, &node) < 0)
		return virt_error("cannot read the node info of", v->uri);
	out->memory_bytes = (uint64_t)node.memory * 1024;
	out->cpus = node.cpus;
	n = virConnectListAllDomains(v->conn, &doms, 0);
	if (n < 0)
		return virt_error("cannot list domains on", v->uri);
	for (int i = 0; i < n; i++) {
		virDomainInfo info;

		if (rc == 0 && !(exclude_pool && of_pool(doms[i], exclude_pool))) {
			/* A domain undefined since the listing is gone: nothing to count. */
			if (virDomainGetInfo(doms[i], &info) == 0) {
				out->committed_memory_bytes += (uint64_t)info.maxMem * 1024;
				out->committed_vcpus += info.nrVirtCpu;
				out->committed_domains++;
			} else if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN) {
				rc = virt_error("cannot read the size of domain", virDomainGetName(doms[i]));
			}
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int vp_virt_define(vp_virt *v, const char *xml, bool validate)
{
	virDomainPtr dom = virDomainDefineXMLFlags(v->conn, xml, validate ? VIR_DOMAIN_DEFINE_VALIDATE : 0);

	if (!dom)
		return virt_error("cannot define domain on", v->uri);
	virDomainFree(dom);
	return 0;
}

static int with_domain(vp_virt *v, const char *name, virDomainPtr *dom)
{
	*dom = virDomainLookupByName(v->conn, name);
	if (!*dom)
		return virt_error("cannot find domain", name);
	return 0;
}

int vp_virt_start(vp_virt *v, const char *name)
{
	virDomainPtr dom;
	int rc = with_domain(v, name, &dom);

	if (rc < 0)
		return rc;
	if (virDomainIsActive(dom) != 1 && virDomainCreate(dom) < 0) {
		rc = virt_error("cannot start domain", name);
		rc = virt_accel_start_failed(v, rc);
	}
	virDomainFree(dom);
	return rc;
}

static bool wait_inactive(virDomainPtr dom, double timeout)
{
	double end = vp_now() + timeout;

	while (vp_now() < end) {
		if (virDomainIsActive(dom) == 0)
			return true;
		usleep(100 * 1000);
	}
	return virDomainIsActive(dom) == 0;
}

/* Removes a stopped domain's managed save. libvirt remembers that a domain has one from when it
 * was saved (or libvirtd started), so an image deleted behind its back is still "there" and its
 * removal fails on the missing file; the domain, undefined (nothing to unlink) and defined again
 * from its own definition (same UUID, metadata, disks), forgets it. */
static int forget_saved(virDomainPtr dom, const char *name)
{
	virErrorPtr e;
	virDomainPtr again;
	char *xml;
	int rc = 0;

	if (virDomainManagedSaveRemove(dom, 0) == 0)
		return 0;
	e = virGetLastError();
	if (!e || e->code != VIR_ERR_SYSTEM_ERROR || e->int1 != ENOENT)
		return virt_error("cannot discard the managed save of domain", name);
	if (!(xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE)))
		return virt_error("cannot read the definition of domain", name);
	if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_KEEP_NVRAM) < 0)
		rc = virt_error("cannot forget the lost managed save of domain", name);
	else if (!(again = virDomainDefineXML(virDomainGetConnect(dom), xml)))
		rc = virt_error("cannot define again (after forgetting its lost managed save) domain", name);
	else
		virDomainFree(again);
	free(xml);
	return rc;
}

int vp_virt_stop(vp_virt *v, const char *name, double timeout)
{
	virDomainPtr dom;
	int rc = with_domain(v, name, &dom);

	if (rc < 0)
		return rc;
	if (virDomainIsActive(dom) == 1) {
		if (timeout > 0 && virDomainShutdown(dom) == 0 && wait_inactive(dom, timeout))
			goto out;
		if (virDomainDestroy(dom) < 0 && virDomainIsActive(dom) == 1)
			rc = virt_error("cannot stop domain", name);
	} else if (virDomainHasManagedSaveImage(dom, 0) == 1) {
		rc = forget_saved(dom, name);
	}
out:
	virDomainFree(dom);
	return rc;
}

int vp_virt_park(vp_virt *v, const char *name)
{
	virDomainPtr dom;
	int rc = with_domain(v, name, &dom);

	if (rc < 0)
		return rc;
	if (virDomainManagedSave(dom, 0) < 0)
		rc = virt_error("cannot save (park) domain", name);
	virDomainFree(dom);
	return rc;
}

int vp_virt_discard_saved(vp_virt *v, const char *name)
{
	virDomainPtr dom;
	int rc = with_domain(v, name, &dom);

	if (rc < 0)
		return rc;
	if (virDomainIsActive(dom) != 1 && virDomainHasManagedSaveImage(dom, 0) == 1)
		rc = forget_saved(dom, name);
	virDomainFree(dom);
	return rc;
}

int vp_virt_resume_parked(vp_virt *v, const char *name)
{
	virDomainPtr dom;
	int rc = with_domain(v, name, &dom), state = 0, reason = 0;

	if (rc < 0)
		return rc;
	if (virDomainCreate(dom) < 0) {
		rc = virt_error("cannot restore the saved state of domain", name);
		if (rc != VP_EHOST)
			rc = VP_EIO;
	} else if (virDomainGetState(dom, &state, &reason, 0) < 0) {
		rc = virt_error("cannot read the state of domain", name);
	} else if (state != VIR_DOMAIN_RUNNING || reason != VIR_DOMAIN_RUNNING_RESTORED) {
		/* No image to restore: libvirt booted it from its disk, which is past the saved state. */
		virDomainDestroy(dom);
		rc = vp_error_set(VP_ERR_VIRT, VP_ENOENT, "domain '%s' had no saved state left to restore "
				  "(libvirt booted it afresh; stopped)", name);
	}
	virDomainFree(dom);
	return rc;
}

int vp_virt_undefine(vp_virt *v, const char *name)
{
	virDomainPtr dom = virDomainLookupByName(v->conn, name);
	int rc = 0;

	if (!dom) {
		vp_error_clear();
		return 0;
	}
	if (virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
				   VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
				   VIR_DOMAIN_UNDEFINE_NVRAM) < 0)
		rc = virt_error("cannot undefine domain", name);
	virDomainFree(dom);
	return rc;
}

/* What a disk's <source> names: its file, or "rbd:POOL/IMAGE" for an RBD network disk. */
static char *source_of(xmlNodePtr src)
{
	xmlChar *file = xmlGetProp(src, BAD_CAST "file"), *name;
	char *out;

	if (file) {
		out = vp_strdup((const char *)file);
		xmlFree(file);
		return out;
	}
	name = xmlGetProp(src, BAD_CAST "name");
	out = vp_strdup_printf("rbd:%s", name ? (const char *)name : "");
	xmlFree(name);
	return out;
}

/* Appends the disk sources of one domain XML to *list. */
static int collect_disks(const char *xml, char ***list, size_t *n, size_t *cap)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlXPathContextPtr ctx = doc ? xmlXPathNewContext(doc) : NULL;
	xmlXPathObjectPtr r = ctx ? xmlXPathEvalExpression(BAD_CAST "/domain/devices/disk/source[@file] | "
							   "/domain/devices/disk[@type='network']/"
							   "source[@protocol='rbd'][@name]", ctx)
				  : NULL;
	int rc = 0;

	for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr && rc == 0; i++) {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 64;
			char **nl = realloc(*list, nc * sizeof(*nl));
			if (!nl) {
				rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
				break;
			}
			*list = nl;
			*cap = nc;
		}
		if (!((*list)[*n] = source_of(r->nodesetval->nodeTab[i])))
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		else
			(*n)++;
	}
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return rc;
}

int vp_virt_disk_paths(vp_virt *v, char ***out, size_t *count)
{
	virDomainPtr *doms = NULL;
	char **list = NULL;
	size_t n = 0, cap = 0;
	int nd, rc = 0;

	*out = NULL;
	*count = 0;
	nd = virConnectListAllDomains(v->conn, &doms, 0);
	if (nd < 0)
		return virt_error("cannot list domains on", v->uri);
	for (int i = 0; i < nd; i++) {
		/* Both definitions: a running domain may use other disks than its config. */
		for (int live = 0; live < 2 && rc == 0; live++) {
			char *xml = virDomainGetXMLDesc(doms[i], live ? 0 : VIR_DOMAIN_XML_INACTIVE);
			if (!xml) {
				/* Undefined since the listing: it uses no disk any more. */
				if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN)
					break;
				rc = virt_error("cannot read the definition of domain", virDomainGetName(doms[i]));
				break;
			}
			rc = collect_disks(xml, &list, &n, &cap);
			free(xml);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	if (rc < 0) {
		for (size_t i = 0; i < n; i++)
			free(list[i]);
		free(list);
		return rc;
	}
	*out = list;
	*count = n;
	return 0;
}
