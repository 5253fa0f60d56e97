/* virt_int.h: the libvirt connection handle, shared by virt.c (domains) and accel_probe.c. */
#ifndef VP_VIRT_INT_H
#define VP_VIRT_INT_H

#include <stdbool.h>

#include <libvirt/libvirt.h>
#include <libxml/tree.h>

#include "vdipool/accel.h"
#include "vdipool/virt.h"

struct vp_virt {
	virConnectPtr conn;
	char *uri;
	char *accel_cache_dir;  /* NULL: the default; "" : no cache */
	char *probe_xml;        /* the caller's probe guest (a clone of the pool's base); NULL: a bare one */
	char *probe_key;        /* what that guest is, for the cache */
	bool accel_decided;
	vp_accel_mode accel_mode;
	vp_accel accel;
};

/* A domain start failed with rc (error recorded): when KVM is why, the cached
 * probe is dropped (the next run probes again) and VP_EHOST is returned with
 * the reason in plain words; otherwise rc. */
int virt_accel_start_failed(vp_virt *v, int rc);

/* The <clone> element without its namespace, as virDomainSetMetadata takes it (domain.c). */
int virt_meta_format_bare(char **xml_out, const vp_domain_meta *meta);

/* <secret ephemeral='no' private='yes'> XML with one usage (<usage type='TYPE'><ELEM>USAGE</ELEM>)
 * and the given UUID (NULL: libvirt's choice) (rbd_auth.c). NULL: out of memory. */
char *virt_secret_xml(const char *type, const char *elem, const char *usage, const char *desc,
		      const char *uuid);

/* A secret's XML description, parsed (rbd_auth.c); NULL when libvirt or libxml2 failed. */
xmlDocPtr virt_secret_doc(virSecretPtr sec);

/* The file that caches the KVM probe's outcome for this connection's URI and probe guest. */
char *virt_accel_cache_path(const vp_virt *v);

/* virt_addr.c, without I/O: appends libvirt's interface addresses to *list (growing it),
 * skipping loopback, link-local, malformed and already listed ones. */
int virt_addrs_collect(vp_virt_addr **list, size_t *n, virDomainInterfacePtr *ifaces, size_t nif,
		       bool from_agent);
/* IPv4 before IPv6, otherwise in the order given. */
void virt_addrs_order(vp_virt_addr *list, size_t n);

#endif
