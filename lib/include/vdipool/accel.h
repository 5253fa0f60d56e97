/* vdipool/accel.h: which accelerator a host's clones run under (KVM or QEMU's TCG), decided by a
 * probe guest that must really start under KVM, cached per host, libvirt and /dev/kvm state. */
#ifndef VDIPOOL_ACCEL_H
#define VDIPOOL_ACCEL_H

#include <stdbool.h>
#include <stddef.h>

#include "vdipool/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What the spec asks for (domain.accel). */
typedef enum vp_accel_mode {
	VP_ACCEL_AUTO = 0, /* KVM where a probe guest starts under it, else TCG with a warning */
	VP_ACCEL_KVM,      /* KVM, or an error saying why it cannot be had */
	VP_ACCEL_TCG       /* software emulation, always */
} vp_accel_mode;

/* The outcome of a probe guest started under KVM. */
typedef struct vp_accel_probe {
	bool ran;            /* false: no probe (libvirt lists no KVM, or TCG was asked for) */
	bool ok;             /* the guest started and kept running */
	const char *message; /* libvirt's or QEMU's words when !ok; without a probe, what is
			      * known of /dev/kvm, in QEMU's words (or NULL) */
} vp_accel_probe;

typedef struct vp_accel {
	bool kvm;                /* clones run under KVM */
	const char *domain_type; /* "kvm" or "qemu" (libvirt's name for TCG) */
	bool cached;             /* taken from the cache, no probe this time */
	char reason[1024];       /* auto chose TCG: why, in one sentence; "" otherwise */
} vp_accel;

/* The decision, without I/O: from what was asked, whether libvirt lists a
 * KVM domain type on `host`, and the probe. VP_ENOTSUP with the reason when
 * KVM was asked for and cannot be had. */
VP_API int vp_accel_decide(vp_accel *out, vp_accel_mode want, const char *host, bool caps_kvm,
			   const vp_accel_probe *probe);

/* A start or probe failure in QEMU's words, turned into the reason and what
 * to do about it ("/dev/kvm is root-only ..."). Always writes buf. */
VP_API void vp_accel_explain(const char *qemu_message, char *buf, size_t len);

/* True when a domain start failed for a reason that holds for every guest
 * on the host (KVM unusable), so trying the other clones is pointless. */
VP_API bool vp_accel_host_failure(const char *libvirt_message);

#ifdef __cplusplus
}
#endif
#endif
