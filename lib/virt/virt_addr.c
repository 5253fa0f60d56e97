/* virt_addr.c: a running domain's IP addresses, from libvirt's DHCP leases, then the guest agent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/util.h"
#include "virt/virt_int.h"

/* Addresses nobody outside the guest can reach it at: loopback, IPv4 link-local, IPv6
 * link-local; also anything that is not a plain numeric address. */
static bool useful(int type, const char *addr)
{
	if (!addr || !*addr || strlen(addr) >= sizeof(((vp_virt_addr *)0)->addr))
		return false;
	if (type == VIR_IP_ADDR_TYPE_IPV4)
		return strspn(addr, "0123456789.") == strlen(addr) && strncmp(addr, "127.", 4) &&
		       strncmp(addr, "169.254.", 8) && strcmp(addr, "0.0.0.0");
	if (type == VIR_IP_ADDR_TYPE_IPV6)
		return strspn(addr, "0123456789abcdefABCDEF:.") == strlen(addr) && strcmp(addr, "::1") &&
		       strncasecmp(addr, "fe80:", 5) && strcmp(addr, "::");
	return false;
}

static bool known(const vp_virt_addr *list, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].addr, addr))
			return true;
	return false;
}

int virt_addrs_collect(vp_virt_addr **list, size_t *n, virDomainInterfacePtr *ifaces, size_t nif,
		       bool from_agent)
{
	for (size_t i = 0; i < nif; i++) {
		const virDomainInterface *ifc = ifaces[i];

		for (unsigned k = 0; ifc && k < ifc->naddrs; k++) {
			const virDomainIPAddress *a = &ifc->addrs[k];
			vp_virt_addr *grown, *e;

			if (!useful(a->type, a->addr) || known(*list, *n, a->addr))
				continue;
			if (!(grown = realloc(*list, (*n + 1) * sizeof(**list))))
				return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
			*list = grown;
			e = &grown[(*n)++];
			memset(e, 0, sizeof(*e));
			snprintf(e->addr, sizeof(e->addr), "%s", a->addr);
			snprintf(e->mac, sizeof(e->mac), "%s", ifc->hwaddr ? ifc->hwaddr : "");
			snprintf(e->ifname, sizeof(e->ifname), "%s", ifc->name ? ifc->name : "");
			e->prefix = a->prefix;
			e->ipv6 = a->type == VIR_IP_ADDR_TYPE_IPV6;
			e->from_agent = from_agent;
		}
	}
	return 0;
}

/* IPv4 before IPv6, each kept in the order its source gave it (a stable insertion sort). */
void virt_addrs_order(vp_virt_addr *list, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		vp_virt_addr x = list[i];
		size_t j = i;

		while (j > 0 && list[j - 1].ipv6 && !x.ipv6) {
			list[j] = list[j - 1];
			j--;
		}
		list[j] = x;
	}
}

static void free_ifaces(virDomainInterfacePtr *ifaces, int n)
{
	for (int i = 0; ifaces && i < n; i++)
		virDomainInterfaceFree(ifaces[i]);
	free(ifaces);
}

int vp_virt_addresses(vp_virt *v, const char *name, vp_virt_addr **out, size_t *count)
{
	virDomainPtr dom = virDomainLookupByName(v->conn, name);
	virDomainInterfacePtr *ifaces = NULL;
	vp_virt_addr *list = NULL;
	size_t n = 0;
	int nif, rc = 0;

	*out = NULL;
	*count = 0;
	if (!dom)
		return vp_error_set(VP_ERR_VIRT, virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? VP_ENOENT : VP_EIO,
				    "cannot find domain '%s': %s", name, virGetLastErrorMessage());
	if (virDomainIsActive(dom) != 1)
		goto out; /* a domain that does not run has no address */
	/* The lease first: it needs nothing in the guest. A domain on no libvirt network
	 * (network: none, a bridge) has no lease: not an error. */
	nif = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
	if (nif > 0)
		rc = virt_addrs_collect(&list, &n, ifaces, (size_t)nif, false);
	free_ifaces(ifaces, nif);
	ifaces = NULL;
	/* Then, when no lease names it (a bridge, a static address), the guest agent, whose errors
	 * (no agent, not connected, not running yet) mean only that it has nothing to say. Not
	 * asked otherwise: an agent channel whose agent does not answer costs libvirt's agent
	 * timeout per call, and status asks for every running clone. */
	if (rc == 0 && n == 0) {
		nif = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT, 0);
		if (nif > 0)
			rc = virt_addrs_collect(&list, &n, ifaces, (size_t)nif, true);
		free_ifaces(ifaces, nif);
		virResetLastError();
	}
	if (rc < 0) {
		free(list);
		goto out;
	}
	virt_addrs_order(list, n);
	*out = list;
	*count = n;
out:
	virDomainFree(dom);
	return rc;
}

int vp_virt_started_at(vp_virt *v, const char *name, double *out)
{
	VP_AUTOFREE char *path = NULL;
	virDomainPtr dom;
	struct stat st;
	int active;

	*out = 0;
	/* The QEMU driver of the system daemon on this machine writes NAME.pid there when it
	 * starts the domain's QEMU; other drivers and remote hosts cannot tell us. */
	if (strcmp(v->uri, "qemu:///system") != 0)
		return 0;
	if (!(dom = virDomainLookupByName(v->conn, name)))
		return vp_error_set(VP_ERR_VIRT, virGetLastErrorCode() == VIR_ERR_NO_DOMAIN ? VP_ENOENT : VP_EIO,
				    "cannot find domain '%s': %s", name, virGetLastErrorMessage());
	active = virDomainIsActive(dom);
	virDomainFree(dom);
	if (active != 1)
		return 0;
	if (!(path = vp_strdup_printf("/run/libvirt/qemu/%s.pid", name)))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	if (stat(path, &st) == 0)
		*out = (double)st.st_mtim.tv_sec + (double)st.st_mtim.tv_nsec / 1e9;
	return 0;
}

/* The lease time of a libvirt network's DHCP (its <lease expiry='N' unit='..'/>), in seconds;
 * dnsmasq's default, an hour, when it names none; 0 for leases that never expire. */
static long lease_seconds(virNetworkPtr net)
{
	char *xml = virNetworkGetXMLDesc(net, 0), *l;
	long secs = 3600;

	if (xml && (l = strstr(xml, "<lease expiry='"))) {
		char *unit = strstr(l, "unit='");
		char *end = strchr(l, '>');

		secs = strtol(l + 15, NULL, 10);
		if (unit && end && unit < end)
			secs *= !strncmp(unit + 6, "hours", 5) ? 3600 : !strncmp(unit + 6, "seconds", 7) ? 1 : 60;
		else
			secs *= 60; /* libvirt's default unit is minutes */
	}
	free(xml);
	return secs;
}

int vp_virt_lease_granted(vp_virt *v, const char *network, const char *mac, double *out)
{
	virNetworkPtr net;
	virNetworkDHCPLeasePtr *leases = NULL;
	long secs;
	int n;

	*out = 0;
	if (!network || !mac || !(net = virNetworkLookupByName(v->conn, network))) {
		virResetLastError();
		return 0;
	}
	secs = lease_seconds(net);
	n = virNetworkGetDHCPLeases(net, mac, &leases, 0);
	for (int i = 0; i < n; i++) {
		double g = (double)leases[i]->expirytime - (double)secs;

		if (secs > 0 && leases[i]->expirytime > 0 && g > *out)
			*out = g;
		virNetworkDHCPLeaseFree(leases[i]);
	}
	free(leases);
	virResetLastError();
	virNetworkFree(net);
	return 0;
}
