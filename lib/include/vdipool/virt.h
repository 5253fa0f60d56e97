/* vdipool/virt.h: the hypervisor side: one libvirt connection per host, domains in and out. */
#ifndef VDIPOOL_VIRT_H
#define VDIPOOL_VIRT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/accel.h"
#include "vdipool/common.h"
#include "vdipool/domain.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vp_virt vp_virt;

typedef enum {
	VP_DOM_SHUTOFF = 0,
	VP_DOM_RUNNING,
	VP_DOM_PAUSED,
	VP_DOM_OTHER
} vp_dom_state;

/* A domain as listed, with vdipool's metadata when it carries ours. */
typedef struct vp_virt_domain {
	char *name;
	char uuid[37];
	vp_dom_state state;
	bool has_meta;
	vp_domain_meta meta; /* valid when has_meta */
	bool saved;          /* shut off with a managed save image (parked): a start restores it */
	bool restored;       /* running since its saved state was restored (not booted) */
} vp_virt_domain;

/* What a host has and what others' domains already hold of it, for placement. */
typedef struct vp_virt_capacity {
	uint64_t memory_bytes;            /* the host's physical memory (virNodeGetInfo) */
	unsigned cpus;                    /* its active CPUs */
	uint64_t committed_memory_bytes;  /* the maximum memory of the domains counted */
	unsigned committed_vcpus;         /* their vCPUs */
	unsigned committed_domains;       /* how many were counted */
} vp_virt_capacity;

/* Connects to a libvirt URI ("qemu:///system"). The connection may be used
 * from several threads at once. */
VP_API int vp_virt_open(vp_virt **out, const char *uri);
VP_API void vp_virt_free(vp_virt *v);
VP_API const char *vp_virt_uri(const vp_virt *v);

/* Decides KVM or TCG for this host (vdipool/accel.h): TCG asks nothing;
 * otherwise libvirt must list KVM and a probe guest must start and keep
 * running under it (the outcome is cached per host, libvirt/QEMU version and
 * /dev/kvm state, so the probe runs once). Kept on the connection: the same
 * mode asks once. VP_EHOST when KVM was asked for and cannot be had. */
VP_API int vp_virt_accel(vp_virt *v, vp_accel_mode want, vp_accel *out);
/* Where the probe's outcome is cached; NULL: the default (/run/vdipool/accel),
 * "": no cache. */
VP_API void vp_virt_set_accel_cache_dir(vp_virt *v, const char *dir);
/* The probe guest: a domain XML (a clone of the pool's base, rendered from
 * its template) and a key naming what it boots, for the cache. The probe
 * boots it under KVM with its system disk read-only, no data disk and no
 * vdipool metadata, and watches it for a few seconds: nested KVM can start
 * a bare guest and still stop a real one in its boot. NULL: a bare guest. */
VP_API void vp_virt_set_accel_probe(vp_virt *v, const char *xml, const char *key);
/* Drops the cached outcome and the decision: the next vp_virt_accel probes. */
VP_API void vp_virt_accel_forget(vp_virt *v);

/* "kvm" or "qemu" (TCG): the decision made, or vp_virt_accel's in auto mode. */
VP_API const char *vp_virt_domain_type(vp_virt *v);

/* Every persistent or running domain on the host. *out is the caller's:
 * release with vp_virt_domains_free(). */
VP_API int vp_virt_list(vp_virt *v, vp_virt_domain **out, size_t *count);
VP_API void vp_virt_domains_free(vp_virt_domain *doms, size_t count);

/* One domain by name; VP_ENOENT when there is none. */
VP_API int vp_virt_lookup(vp_virt *v, const char *name, vp_virt_domain *out);
VP_API void vp_virt_domain_release(vp_virt_domain *d);

/* Replaces the domain's <vdipool:clone> element with `meta` in its persistent definition and,
 * while it runs, its live one (virDomainSetMetadata): a claim written so outlives the process
 * that wrote it and a restart of the domain. VP_ENOENT when there is no such domain. */
VP_API int vp_virt_set_meta(vp_virt *v, const char *name, const vp_domain_meta *meta);

/* The host's memory and CPUs, and what every domain on it (persistent or
 * running, running or not: a defined domain may start) commits, except the
 * domains whose vdipool metadata names exclude_pool (the pool being placed
 * counts its own clones itself); NULL counts them all. Domains without
 * vdipool metadata always count. */
VP_API int vp_virt_node_capacity(vp_virt *v, const char *exclude_pool, vp_virt_capacity *out);

/* Defines (or redefines) a domain. validate: check the XML against
 * libvirt's schema first (about 6 ms a domain: worth it once per shape of
 * XML, not for each of a thousand clones rendered from one template). */
VP_API int vp_virt_define(vp_virt *v, const char *xml, bool validate);

/* The file of every disk of every domain on the host (persistent config and
 * live), ours or not: what `gc` must never take; an RBD network disk as
 * "rbd:POOL/IMAGE" (its source name). *out is the caller's: free each
 * string, then the array. */
VP_API int vp_virt_disk_paths(vp_virt *v, char ***out, size_t *count);
/* Makes the cephx key of client.<id> usable by QEMU on this host without
 * the key appearing in any domain XML, command line or file of ours: a
 * libvirt secret (ephemeral='no' private='yes', usage type ceph, usage name
 * "vdipool client.<id> <fsid, or the conf path without one>") is looked up
 * by usage, defined when missing, and given the key (the keyring's base64
 * decoded) on every call, so calls are idempotent and follow a rotated key.
 * conf: the ceph.conf (NULL: /etc/ceph/ceph.conf), whose [global] mon host
 * gives the monitors (their v1 addresses; a host without port gets 6789).
 * id: the cephx user without "client." (NULL: "admin"). keyring: the file
 * holding [client.<id>] key = ... (NULL: the conf's keyring setting, else
 * /etc/ceph/ceph.client.<id>.keyring). Errors name the file and the reason,
 * never the key. *out is the caller's: vp_rbd_auth_release(). */
VP_API int vp_virt_rbd_auth(vp_virt *v, const char *conf, const char *id, const char *keyring,
			    vp_rbd_auth *out);

/* An IP address of a running domain's interface. */
typedef struct vp_virt_addr {
	char addr[64];            /* "192.168.122.57", "fd00::5" */
	unsigned prefix;          /* 24, 64 */
	bool ipv6;
	char mac[18];             /* the interface's MAC, "" when libvirt gave none */
	char ifname[32];          /* libvirt's or the guest agent's name of it, "" unknown */
	bool from_agent;          /* the guest agent reported it (else a DHCP lease) */
} vp_virt_addr;

/* LUKS-encrypted clone disks (delta.encrypt: luks): one libvirt secret per disk, private
 * (libvirt never hands its value out) and persistent, of usage type volume with the disk's
 * path, whose UUID is the UUID of the disk's LUKS header, so that the secret of a disk is
 * found from the disk alone. The key is never written anywhere by vdipool.
 * _set: defines the secret (uuid, usage `volume`, description naming `what`) and sets its
 * value; another secret of that volume (the disk it replaced) is removed first.
 * _exists: 1 when a secret of that UUID exists, 0 when not.
 * _remove: removes vdipool's secret of that volume; none is no error.
 * _sweep: removes vdipool's LUKS secrets whose disk no longer exists while its tier's deltas/
 * or data/ directory does (an unmounted tier keeps its secrets); *removed counts them. */
VP_API int vp_virt_luks_secret_set(vp_virt *v, const char *uuid, const char *volume, const char *what,
				   const unsigned char *key, size_t len);
VP_API int vp_virt_luks_secret_exists(vp_virt *v, const char *uuid);
VP_API int vp_virt_luks_secret_remove(vp_virt *v, const char *volume);
VP_API int vp_virt_luks_sweep(vp_virt *v, size_t *removed);

/* The addresses of a domain: the DHCP leases of the libvirt networks it is on
 * (VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE), else, when they name none, what
 * the QEMU guest agent reports (_SRC_AGENT; its errors are ignored: most
 * guests run none), each
 * address once, IPv4 before IPv6, loopback and link-local left out. A domain
 * that does not run has none (0, count 0). VP_ENOENT for no such domain.
 * *out is the caller's: free(). */
VP_API int vp_virt_addresses(vp_virt *v, const char *name, vp_virt_addr **out, size_t *count);

/* When the running domain's QEMU was started (seconds since the epoch), as the
 * system QEMU driver on this machine records it (the mtime of
 * /run/libvirt/qemu/NAME.pid); 0 when it cannot tell: not running, another URI
 * (a session daemon, a remote host). */
VP_API int vp_virt_started_at(vp_virt *v, const char *name, double *out);

/* When the DHCP server of libvirt network `network` last granted (or renewed) a lease to `mac`,
 * seconds since the epoch: its expiry time less the network's lease time. 0 when not known (no
 * such network or lease, leases that never expire). A domain's lease outlives its guest: a clone
 * started again is listed with its old address at once, before its guest has booted; a lease
 * granted before the domain's start (vp_virt_started_at) is such a leftover. */
VP_API int vp_virt_lease_granted(vp_virt *v, const char *network, const char *mac, double *out);

/* Starting a running domain is not an error. A start that fails because KVM
 * cannot run guests on the host is VP_EHOST, the reason in plain words, and
 * the cached probe is dropped. */
VP_API int vp_virt_start(vp_virt *v, const char *name);
/* Graceful (ACPI) shutdown, then a forced stop after timeout seconds; a
 * timeout of 0 stops at once. A stopped domain is not an error; a parked one
 * loses its managed save (stopped means: nothing to resume). */
VP_API int vp_virt_stop(vp_virt *v, const char *name, double timeout);
/* Parks a running domain: libvirt's managed save (virDomainManagedSave) writes its memory and
 * device state into libvirt's own save directory and stops it; the next start restores it. */
VP_API int vp_virt_park(vp_virt *v, const char *name);
/* Starts a parked domain from its managed save. libvirt deletes the image once the restore
 * succeeded, so each one is restored once. 0: restored and running. A restore that fails (the
 * image is corrupt) is VP_EIO with libvirt's words and the domain stays off; a domain that
 * booted instead of being restored (libvirt boots afresh when the image is gone) is stopped at
 * once and VP_ENOENT: its disk is past the state it was saved in, so neither is usable. */
VP_API int vp_virt_resume_parked(vp_virt *v, const char *name);
/* Removes a stopped domain's managed save image, if it has one (virDomainManagedSaveRemove). */
VP_API int vp_virt_discard_saved(vp_virt *v, const char *name);
/* Undefines a stopped domain (and its managed save / snapshots metadata);
 * a missing domain is not an error. */
VP_API int vp_virt_undefine(vp_virt *v, const char *name);

#ifdef __cplusplus
}
#endif
#endif
