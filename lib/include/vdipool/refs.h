/* vdipool/refs.h: the libvirt host's pins for the store (what domains need, whole backing chains). */
#ifndef VDIPOOL_REFS_H
#define VDIPOOL_REFS_H

#include "vdipool/common.h"
#include "vdipool/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A vp_store_pins_fn: ctx is the libvirt URI (const char *, e.g.
 * "qemu:///system"). Fails (nothing may be removed) when libvirt cannot be
 * reached or a domain's definition cannot be read. */
VP_API int vp_refs_libvirt_pins(void *ctx, vp_store_pins *pins);

/* Adds the pins of one domain definition (XML) owned by `owner`: each
 * disk's backing chain, or everything for a disk vdipool cannot read.
 * Exposed for tests. */
VP_API int vp_refs_pins_from_xml(vp_store_pins *pins, const char *xml, const char *owner);

#ifdef __cplusplus
}
#endif
#endif
