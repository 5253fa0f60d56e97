/* accel.c: the KVM-or-TCG decision and QEMU's KVM failures in plain words; no I/O here (the probe
 * and its cache are in virt.c), so every failure seen in the field is a unit test. */
#include <stdio.h>
#include <string.h>

#include "vdipool/accel.h"
#include "vdipool/error.h"
#include "util/util.h"

/* A failure in QEMU's words, and what it means for every guest of the host. */
typedef struct known_failure {
	const char *needle;
	const char *reason;
} known_failure;

static const known_failure failures[] = {
	{ "Could not access KVM kernel module: Permission denied",
	  "/dev/kvm is not accessible to QEMU (permission denied: no udev rule gave group 'kvm' "
	  "read-write access; scripts/libvirt-up.sh applies the usual root:kvm 0660, or run "
	  "'chgrp kvm /dev/kvm && chmod 0660 /dev/kvm')" },
	{ "Could not access KVM kernel module: No such file or directory",
	  "this host has no /dev/kvm (the kvm module is not loaded, or the CPU offers no hardware "
	  "virtualisation to this machine)" },
	{ "failed to set MSR",
	  "KVM on this host cannot run a guest: the CPU refused a vCPU register (MSR), as nested "
	  "virtualisation often does" },
	{ "kvm_buf_set_msrs",
	  "KVM on this host cannot run a guest: the CPU refused a vCPU register (MSR), as nested "
	  "virtualisation often does" },
	{ "kvm_put_msrs",
	  "KVM on this host cannot run a guest: the CPU refused a vCPU register (MSR), as nested "
	  "virtualisation often does" },
	{ "failed to initialize kvm", "QEMU could not initialise KVM on this host" },
	{ "failed to initialize KVM", "QEMU could not initialise KVM on this host" },
	{ "KVM is not available", "libvirt reports that KVM is not available on this host" },
	{ "kvm_init_vcpu", "KVM on this host cannot create a vCPU" },
	{ "emulation failure",
	  "KVM on this host stopped the guest with an internal error (emulation failure) while it booted, "
	  "as nested virtualisation often does" },
	{ "KVM internal error",
	  "KVM on this host stopped the guest with an internal error while it booted, as nested "
	  "virtualisation often does" },
};

static const known_failure *find_failure(const char *msg)
{
	for (size_t i = 0; msg && i < VP_ARRAY_SIZE(failures); i++)
		if (strstr(msg, failures[i].needle))
			return &failures[i];
	return NULL;
}

/* The first line of a (possibly multi-line) libvirt message, without the noise around it. */
static void first_line(const char *msg, char *buf, size_t len)
{
	size_t n = 0;

	while (msg && (*msg == ' ' || *msg == '\n'))
		msg++;
	while (msg && msg[n] && msg[n] != '\n')
		n++;
	if (n >= len)
		n = len - 1;
	memcpy(buf, msg ? msg : "", n);
	buf[n] = '\0';
}

void vp_accel_explain(const char *qemu_message, char *buf, size_t len)
{
	const known_failure *f = find_failure(qemu_message);
	char line[256];

	first_line(qemu_message ? qemu_message : "", line, sizeof(line));
	if (f)
		snprintf(buf, len, "%s", f->reason);
	else
		snprintf(buf, len, "a probe guest did not start under KVM: %s", *line ? line : "no reason given");
}

bool vp_accel_host_failure(const char *libvirt_message)
{
	return find_failure(libvirt_message) != NULL;
}

int vp_accel_decide(vp_accel *out, vp_accel_mode want, const char *host, bool caps_kvm,
		    const vp_accel_probe *probe)
{
	char why[480];

	memset(out, 0, sizeof(*out));
	out->domain_type = "qemu";
	if (want == VP_ACCEL_TCG)
		return 0;
	if (caps_kvm && probe && probe->ran && probe->ok) {
		out->kvm = true;
		out->domain_type = "kvm";
		return 0;
	}
	if (!caps_kvm && probe && probe->message) {
		char detail[420];
		vp_accel_explain(probe->message, detail, sizeof(detail));
		snprintf(why, sizeof(why), "libvirt lists no KVM domain type: %s", detail);
	} else if (!caps_kvm)
		snprintf(why, sizeof(why), "libvirt lists no KVM domain type (no usable /dev/kvm, or the kvm "
					   "module is not loaded)");
	else if (!probe || !probe->ran)
		snprintf(why, sizeof(why), "KVM was not probed");
	else
		vp_accel_explain(probe->message, why, sizeof(why));
	if (want == VP_ACCEL_KVM)
		return vp_error_set(VP_ERR_VIRT, VP_EHOST,
				    "host '%s': domain.accel is 'kvm' but KVM cannot run a guest here: %s; use "
				    "'accel: auto' or 'tcg' to run under software emulation",
				    host, why);
	snprintf(out->reason, sizeof(out->reason), "host '%s': clones run under TCG (software emulation, "
		 "much slower than KVM): %s", host, why);
	return 0;
}
