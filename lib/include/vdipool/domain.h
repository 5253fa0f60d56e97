/* vdipool/domain.h: libvirt domain XML for a clone, rendered from a template with libxml2, and
 * vdipool's metadata element (namespace urn:vdipool:1) read back from a domain. */
#ifndef VDIPOOL_DOMAIN_H
#define VDIPOOL_DOMAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VP_METADATA_NS "urn:vdipool:1"
#define VP_METADATA_PREFIX "vdipool"

/* What vdipool records in each domain it owns. Strings are owned by the
 * struct when it comes from vp_domain_meta_parse() (release with
 * vp_domain_meta_release()); borrowed when the caller fills it for rendering. */
typedef struct vp_domain_meta {
	char *pool;
	unsigned index;
	char *base_name;
	char *base_version;
	char *base_image;     /* path (or backend locator) of the base image */
	char *prev_version;   /* base version before the last rebase; NULL if none */
	char *prev_image;     /* that version's image (what a rollback needs); NULL if none */
	char *delta_path;
	char *data_path;      /* NULL: no data disk */
	char *spec_hash;
	char *mac;            /* the MAC the planner gave the clone (kept for life); NULL: not
			       * recorded (clones defined before: vp_domain_mac_legacy) */
	char *tier;           /* path of the tier holding its delta; NULL: not recorded */
	char *host;           /* the spec host (hosts[i].name) the clone was placed on; parsed:
			       * "" when not recorded (clones defined before); rendering: NULL or
			       * "" records none */
	/* A claim (`vdipool claim`): who holds the clone, since and until when (seconds since the
	 * epoch, UTC). claimed_by NULL: not claimed. Written into the running and the persistent
	 * definition (vp_virt_set_meta), so it outlives the vdipool that wrote it; a redefine
	 * from the spec (apply, reset) renders no claim: a reset clone is free again. */
	char *claimed_by;
	int64_t claimed_at;
	int64_t claimed_until;  /* 0: no expiry */
	char *claimed_spec;     /* the spec file the claim was made with (absolute); NULL: unknown */
	/* `vdipool detach`: the clone's disk is (being made) standalone; it no longer pins its
	 * base, and apply leaves its disk and definition alone (<delta detached='yes'/>). */
	bool detached;
} vp_domain_meta;

/* One Ceph monitor as libvirt's <host> takes it: a name or address and its msgr1 (v1) port. */
typedef struct vp_rbd_host {
	char *name;
	unsigned port;
} vp_rbd_host;

/* How QEMU reaches a Ceph cluster for rbd: disks, from vp_virt_rbd_auth(): the cephx user, the
 * libvirt secret that holds its key (never the key itself) and the monitors. Strings are owned by
 * the struct; release with vp_rbd_auth_release(). */
typedef struct vp_rbd_auth {
	char *user;            /* cephx user without "client." ("vdipool") */
	char secret_uuid[37];  /* the libvirt secret (usage type ceph) holding its key */
	char *secret_usage;    /* that secret's usage name: "vdipool client.<user> <fsid or conf>" */
	vp_rbd_host *hosts;
	size_t nhosts;
} vp_rbd_auth;

VP_API void vp_rbd_auth_release(vp_rbd_auth *auth);

typedef struct vp_domain_params {
	const char *name;
	unsigned char uuid[16];
	char mac[18];            /* "xx:xx:xx:xx:xx:xx", locally administered unicast */
	const char *domain_type; /* "kvm" or "qemu" (TCG); NULL: keep the template's */
	const char *network;     /* libvirt network name; NULL or "none": no interface */
	uint64_t memory_bytes;
	unsigned vcpus;
	const char *delta_format; /* "qcow2" */
	const char *data_format;  /* "qcow2" */
	vp_domain_meta meta;      /* borrowed strings; gives the disk paths too */
	const vp_rbd_auth *rbd;   /* borrowed; needed by disks whose path is an rbd: location
				   * (rendered as network disks, always raw); NULL: none */
	/* LUKS-encrypted qcow2 disks: the UUID of the libvirt secret (usage volume) holding the
	 * disk's passphrase, rendered as <encryption format='luks'> in its <source>; NULL: the
	 * disk is not encrypted. */
	const char *delta_secret;
	const char *data_secret;
} vp_domain_params;

/* Stable identity of a clone: UUID and MAC derived from (pool, name), so a
 * clone that is redefined, repaired or rebased keeps both. The MAC is
 * vp_domain_mac(pool, name, 0, mac). */
VP_API void vp_domain_identity(const char *pool, const char *name, unsigned char uuid[16], char mac[18]);

/* The MAC of (pool, name) at attempt n = 0, 1, ...: 46 bits of a SHA-256, in
 * the locally administered unicast space (first octet x2, x6, xA or xE). The
 * planner takes the first attempt no other clone on the host has. */
VP_API void vp_domain_mac(const char *pool, const char *name, unsigned attempt, char mac[18]);

/* The MAC clones got before MACs were recorded in metadata: 52:54:00 and 24
 * bits of the hash (it collides within thousands of clones). Such clones keep
 * it until it collides. */
VP_API void vp_domain_mac_legacy(const char *pool, const char *name, char mac[18]);

/* Renders the domain XML from the template file. Elements vdipool owns
 * (name, uuid, memory, vcpu, the vda/vdb disks, the interface, the metadata
 * element) are set or replaced; everything else in the template is kept.
 * A disk path "rbd:POOL/IMAGE[@SNAP][:id=..:conf=..:keyring=..]" (the rbd
 * plugin's locations) becomes a raw network disk that authenticates with
 * p->rbd (VP_EINVAL without it, or for a location with an RBD namespace,
 * which libvirt 9.0 cannot pass to QEMU). *xml_out is the caller's (free()). */
VP_API int vp_domain_render(char **xml_out, const char *template_path, const vp_domain_params *p);

/* Parses the <vdipool:clone> element (as virDomainGetMetadata returns it). */
VP_API int vp_domain_meta_parse(vp_domain_meta *out, const char *xml, size_t len);
VP_API void vp_domain_meta_release(vp_domain_meta *meta);

/* The <vdipool:clone> element alone (with its namespace declared), for a domain's <metadata>. */
VP_API int vp_domain_meta_format(char **xml_out, const vp_domain_meta *meta);

/* Formats a UUID as 36 characters plus NUL. */
VP_API void vp_uuid_format(const unsigned char uuid[16], char out[37]);

#ifdef __cplusplus
}
#endif
#endif
