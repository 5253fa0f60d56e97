/* rbd_auth.h: what vp_virt_rbd_auth reads from Ceph's files (ceph.conf, keyrings), apart from libvirt, for tests. */
#ifndef VP_VIRT_RBD_AUTH_H
#define VP_VIRT_RBD_AUTH_H

#include <stddef.h>

#include "vdipool/domain.h"

/* The ceph.conf settings vdipool needs for client.<id>, each taken from the
 * first of [client.<id>], [client], [global] that has it ("mon host",
 * "mon_host" and "mon-host" are one key). NULL: not set. */
typedef struct virt_ceph_conf {
	char *fsid;
	char *mon_host;
	char *keyring;  /* $cluster, $type, $id and $name expanded */
} virt_ceph_conf;

/* Parses a ceph.conf held in text. */
int virt_ceph_conf_parse(virt_ceph_conf *out, const char *text, const char *id);
/* Reads and parses the ceph.conf at path. */
int virt_ceph_conf_read(virt_ceph_conf *out, const char *path, const char *id);
void virt_ceph_conf_release(virt_ceph_conf *c);

/* The monitors of a mon host value ("1.2.3.4:6789", "[v2:1.2.3.4:3300,v1:1.2.3.4:6789]",
 * "a,b c", "[::1]:6789", "host") as libvirt's <host> takes them: the v1 address of an
 * address vector (its v2 one only on port 3300, which Ceph reads as v2 without a prefix),
 * port 6789 when none is given. conf names the file in errors. *out is the caller's
 * (virt_rbd_hosts_free). */
int virt_ceph_mon_hosts(vp_rbd_host **out, size_t *n, const char *value, const char *conf);
void virt_rbd_hosts_free(vp_rbd_host *hosts, size_t n);

/* The cephx key of client.<id> in the keyring at path, base64-decoded: *key is the
 * caller's, to be wiped and freed with virt_rbd_key_free. */
int virt_ceph_keyring_key(unsigned char **key, size_t *len, const char *path, const char *id);
void virt_rbd_key_free(unsigned char *key, size_t len);

#endif
