/* accel_probe.c: proves KVM on a host by starting a tiny transient guest under it (libvirt listing
 * <domain type='kvm'> is not proof: /dev/kvm may be root-only, nested KVM may refuse vCPUs), and
 * keeps the outcome per host, libvirt version and /dev/kvm state in the runtime directory. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/fs.h"
#include "util/strmap.h"
#include "util/util.h"
#include "virt/virt_int.h"

#define ACCEL_CACHE_DIR VP_RUNTIME_DIR "/accel"
#define PROBE_WATCH_SEC 1.5      /* a bare guest that QEMU aborts (MSR assertion) is gone well before */
#define PROBE_BOOT_WATCH_SEC 5.0 /* the pool's own base: nested KVM's emulation failures come in its boot */

void vp_virt_set_accel_cache_dir(vp_virt *v, const char *dir)
{
	free(v->accel_cache_dir);
	v->accel_cache_dir = dir ? strdup(dir) : NULL;
	v->accel_decided = false;
}

void vp_virt_set_accel_probe(vp_virt *v, const char *xml, const char *key)
{
	free(v->probe_xml);
	free(v->probe_key);
	v->probe_xml = xml ? strdup(xml) : NULL;
	v->probe_key = key ? strdup(key) : NULL;
	v->accel_decided = false;
}

static const char *cache_dir(const vp_virt *v)
{
	return v->accel_cache_dir ? v->accel_cache_dir : ACCEL_CACHE_DIR;
}

/* "qemu:///system" and "qemu+unix:///system" name this machine; anything with a host does not. */
static bool uri_is_local(const char *uri)
{
	const char *p = strstr(uri, "://");

	return p && p[3] == '/';
}

/* What the probe's outcome depends on: the host, its libvirt and QEMU, and (for this machine)
 * /dev/kvm's owner, mode and change time, so a chmod or a module reload probes again. */
static char *cache_key(vp_virt *v)
{
	unsigned long lib = 0, hyp = 0;
	char *host = virConnectGetHostname(v->conn), *key;
	struct stat st;
	char kvm[96] = "remote";

	virConnectGetLibVersion(v->conn, &lib);
	virConnectGetVersion(v->conn, &hyp);
	if (uri_is_local(v->uri) && stat("/dev/kvm", &st) == 0)
		snprintf(kvm, sizeof(kvm), "%o:%u:%u:%lld.%09ld", (unsigned)st.st_mode, (unsigned)st.st_uid,
			 (unsigned)st.st_gid, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	else if (uri_is_local(v->uri))
		snprintf(kvm, sizeof(kvm), "absent");
	key = vp_strdup_printf("%s|%s|libvirt %lu|qemu %lu|/dev/kvm %s|probe %s", v->uri, host ? host : "?", lib,
			       hyp, kvm, v->probe_xml && v->probe_key ? v->probe_key : "bare");
	free(host);
	vp_error_clear();
	return key;
}

/* One file per libvirt URI (two hosts may differ: one has KVM, one has not; the key inside
 * repeats the URI, so even a hash collision cannot hand one host's outcome to another) and per
 * probe guest. */
char *virt_accel_cache_path(const vp_virt *v)
{
	return vp_strdup_printf("%s/%016llx-%016llx", cache_dir(v), (unsigned long long)vp_hash_str(v->uri),
				(unsigned long long)vp_hash_str(v->probe_xml && v->probe_key ? v->probe_key : "bare"));
}

/* The cached probe for this key: 1 found (ok and message filled), 0 none. */
static int cache_read(vp_virt *v, const char *key, bool *ok, char *msg, size_t len)
{
	char *path = virt_accel_cache_path(v), *data = NULL, *nl, *nl2;
	size_t n;
	int found = 0;

	if (!path || !*cache_dir(v) || vp_fs_read_all(path, 64 * 1024, &data, &n) < 0)
		goto out;
	/* line 1: the key; line 2: "kvm ok" or "kvm failed"; line 3: the failure */
	if (!(nl = strchr(data, '\n')) || (size_t)(nl - data) != strlen(key) || strncmp(data, key, strlen(key)))
		goto out;
	if (!(nl2 = strchr(nl + 1, '\n')))
		goto out;
	*nl2 = '\0';
	*ok = !strcmp(nl + 1, "kvm ok");
	if (!*ok && strcmp(nl + 1, "kvm failed"))
		goto out;
	snprintf(msg, len, "%s", nl2 + 1);
	if ((n = strlen(msg)) && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	found = 1;
out:
	vp_error_clear();
	free(path);
	free(data);
	return found;
}

/* Best effort: a cache that cannot be written costs a probe next time, nothing more. */
static void cache_write(vp_virt *v, const char *key, bool ok, const char *msg)
{
	char *path = NULL, *text = NULL;

	if (!*cache_dir(v) || vp_fs_mkdir_p(cache_dir(v), 0700) < 0 || !(path = virt_accel_cache_path(v)) ||
	    !(text = vp_strdup_printf("%s\n%s\n%s\n", key, ok ? "kvm ok" : "kvm failed", ok ? "" : msg)))
		goto out;
	vp_fs_write_atomic(path, text, strlen(text), 0600);
out:
	vp_error_clear();
	free(path);
	free(text);
}

static void cache_forget(vp_virt *v)
{
	char *path = *cache_dir(v) ? virt_accel_cache_path(v) : NULL;

	if (path)
		unlink(path);
	free(path);
}

/* What QEMU said in its log of the probe about why the guest stopped (its error lines, not the
 * register dump that follows a KVM internal error), joined by "; ". Removes the probe's logs. */
static void probe_log(vp_virt *v, const char *name, bool want, char *buf, size_t len)
{
	static const char *const needles[] = { "error", "Error", "failure", "Assertion", "failed", "denied" };
	char *path = vp_strdup_printf("/var/log/libvirt/qemu/%s.log", name), *data = NULL, *line, *save = NULL;
	size_t n = 0, pos = 0;

	buf[0] = '\0';
	if (want && path && uri_is_local(v->uri) && vp_fs_read_all(path, 1 << 20, &data, &n) == 0) {
		for (line = strtok_r(data, "\n", &save); line && pos + 1 < len; line = strtok_r(NULL, "\n", &save)) {
			bool hit = false;
			for (size_t i = 0; i < VP_ARRAY_SIZE(needles) && !hit; i++)
				hit = strstr(line, needles[i]) && !strstr(line, "terminating on signal");
			if (hit)
				pos += (size_t)snprintf(buf + pos, len - pos, "%s%s", pos ? "; " : "", line);
		}
	}
	vp_error_clear();
	if (path)
		unlink(path);
	free(path);
	free(data);
	/* A template's serial log, renamed per domain by vp_domain_render. */
	if ((path = vp_strdup_printf("/var/log/libvirt/qemu/%s-serial.log", name)))
		unlink(path);
	free(path);
}

/* The caller's probe guest made safe to boot from a base image: KVM forced, the name ours, no
 * vdipool metadata (it is no clone), the system disk read-only (the base is never written) and
 * no data disk. */
static char *probe_definition(const char *xml, const char *name)
{
	xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "probe.xml", NULL,
				      XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL, n, next, dev;
	xmlChar *mem = NULL;
	char *out = NULL;
	int size = 0;

	if (!root)
		goto out;
	xmlSetProp(root, BAD_CAST "type", BAD_CAST "kvm");
	for (n = root->children; n; n = next) {
		next = n->next;
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (!xmlStrcmp(n->name, BAD_CAST "name"))
			xmlNodeSetContent(n, BAD_CAST name);
		else if (!xmlStrcmp(n->name, BAD_CAST "metadata") || !xmlStrcmp(n->name, BAD_CAST "uuid")) {
			xmlUnlinkNode(n);
			xmlFreeNode(n);
		} else if (!xmlStrcmp(n->name, BAD_CAST "devices")) {
			for (dev = n->children; dev; dev = dev->next) {
				xmlNodePtr t;
				xmlChar *target = NULL;
				if (dev->type != XML_ELEMENT_NODE || xmlStrcmp(dev->name, BAD_CAST "disk"))
					continue;
				for (t = dev->children; t && !target; t = t->next)
					if (t->type == XML_ELEMENT_NODE && !xmlStrcmp(t->name, BAD_CAST "target"))
						target = xmlGetProp(t, BAD_CAST "dev");
				if (target && !xmlStrcmp(target, BAD_CAST "vda"))
					xmlNewChild(dev, NULL, BAD_CAST "readonly", NULL);
				else if (target && !xmlStrcmp(target, BAD_CAST "vdb"))
					xmlNodeSetName(dev, BAD_CAST "vdipool-drop");
				xmlFree(target);
			}
			for (dev = n->children; dev; dev = next) {
				next = dev->next;
				if (dev->type == XML_ELEMENT_NODE && !xmlStrcmp(dev->name, BAD_CAST "vdipool-drop")) {
					xmlUnlinkNode(dev);
					xmlFreeNode(dev);
				}
			}
			next = n->next;
		}
	}
	xmlDocDumpMemory(doc, &mem, &size);
	out = mem ? strdup((const char *)mem) : NULL;
out:
	xmlFree(mem);
	xmlFreeDoc(doc);
	return out;
}

/* Starts a transient guest under KVM, with the CPU model clones get under KVM, and watches it
 * for a moment. 1: it runs; 0: it does not (msg says why). */
/* A vdipool killed during a probe leaves its transient guest running (and holding memory) for
 * good: guests named vdipool-kvm-probe-PID whose vdipool is gone are stopped, which removes them. */
static void sweep_probes(vp_virt *v)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(v->conn, &doms, VIR_CONNECT_LIST_DOMAINS_TRANSIENT);

	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);
		char *end = NULL;
		long pid = name && !strncmp(name, "vdipool-kvm-probe-", 18) ? strtol(name + 18, &end, 10) : 0;
		char log[8];

		if (pid > 0 && end && !*end && pid != (long)getpid() && kill((pid_t)pid, 0) < 0 && errno == ESRCH) {
			virDomainDestroy(doms[i]);
			probe_log(v, name, false, log, sizeof(log));
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	vp_error_clear();
}

static int probe(vp_virt *v, bool bare, char *msg, size_t len)
{
	char name[64], *xml;
	virDomainPtr dom;
	double end;
	int ok = 1;

	sweep_probes(v);
	snprintf(name, sizeof(name), "vdipool-kvm-probe-%ld", (long)getpid());
	if (!bare)
		xml = probe_definition(v->probe_xml, name);
	else
		xml = vp_strdup_printf("<domain type='kvm'><name>%s</name><memory unit='MiB'>32</memory>"
				       "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type><boot dev='hd'/></os>"
				       "<cpu mode='host-model' check='none'/><features><acpi/><apic/></features>"
				       "<devices><memballoon model='none'/></devices></domain>",
				       name);
	if (!xml)
		return VP_ENOMEM;
	dom = virDomainCreateXML(v->conn, xml, VIR_DOMAIN_NONE);
	free(xml);
	if (!dom) {
		const char *m = virGetLastErrorMessage();
		char log[8];
		snprintf(msg, len, "%s", m ? m : "the probe guest did not start");
		probe_log(v, name, false, log, sizeof(log));
		return 0;
	}
	/* QEMU can abort on the first vCPU entry (nested KVM's MSR failure): the
	 * guest must still be running a moment after it started. */
	end = vp_now() + (bare ? PROBE_WATCH_SEC : PROBE_BOOT_WATCH_SEC);
	while (vp_now() < end) {
		int state = 0, reason = 0;
		if (virDomainGetState(dom, &state, &reason, 0) < 0 || state != VIR_DOMAIN_RUNNING) {
			ok = 0;
			break;
		}
		usleep(100 * 1000);
	}
	virDomainDestroy(dom);
	virDomainFree(dom);
	{
		char log[768];
		probe_log(v, name, !ok, log, sizeof(log));
		if (!ok)
			snprintf(msg, len, "the probe guest stopped while it started under KVM%s%s", *log ? ": " : "",
				 log);
	}
	vp_error_clear();
	return ok;
}

/* Why libvirt may list no KVM on this machine, in QEMU's words (vp_accel_explain knows them). */
static const char *local_kvm_hint(void)
{
	struct stat st;
	struct group *g;

	if (stat("/dev/kvm", &st) < 0)
		return "Could not access KVM kernel module: No such file or directory";
	/* QEMU runs as libvirt-qemu in group kvm (Debian's qemu.conf). */
	if ((st.st_mode & 06) == 06 || ((g = getgrgid(st.st_gid)) && !strcmp(g->gr_name, "kvm") && (st.st_mode & 060) == 060))
		return NULL;
	return "Could not access KVM kernel module: Permission denied";
}

static bool caps_list_kvm(vp_virt *v)
{
	char *caps = virConnectGetCapabilities(v->conn);
	bool kvm = caps && strstr(caps, "<domain type='kvm'");

	free(caps);
	vp_error_clear();
	return kvm;
}

int vp_virt_accel(vp_virt *v, vp_accel_mode want, vp_accel *out)
{
	vp_accel_probe pr = { 0 };
	char msg[1024] = "", *key = NULL;
	bool caps_kvm = false, cached = false;
	int rc;

	if (v->accel_decided && v->accel_mode == want) {
		*out = v->accel;
		return 0;
	}
	if (want != VP_ACCEL_TCG && !(caps_kvm = caps_list_kvm(v)) && uri_is_local(v->uri)) {
		/* libvirt re-checks /dev/kvm itself at times: say what it saw. */
		pr.message = local_kvm_hint();
	} else if (want != VP_ACCEL_TCG && caps_kvm) {
		if (!(key = cache_key(v)))
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		pr.ran = true;
		cached = cache_read(v, key, &pr.ok, msg, sizeof(msg));
		if (!cached) {
			rc = probe(v, !v->probe_xml, msg, sizeof(msg));
			/* The pool's own guest failed for a reason of its own (its disk cannot be
			 * opened, say), not KVM's: that would fail under TCG too. A bare guest decides. */
			if (rc == 0 && v->probe_xml && !vp_accel_host_failure(msg))
				rc = probe(v, true, msg, sizeof(msg));
			if (rc < 0) {
				free(key);
				return rc;
			}
			pr.ok = rc == 1;
			cache_write(v, key, pr.ok, msg);
		}
		pr.message = msg;
	}
	free(key);
	if ((rc = vp_accel_decide(out, want, v->uri, caps_kvm, &pr)) < 0)
		return rc;
	out->cached = cached;
	v->accel = *out;
	v->accel_mode = want;
	v->accel_decided = true;
	return 0;
}

void vp_virt_accel_forget(vp_virt *v)
{
	cache_forget(v);
	v->accel_decided = false;
}

const char *vp_virt_domain_type(vp_virt *v)
{
	vp_accel a;

	if (v->accel_decided)
		return v->accel.domain_type;
	if (vp_virt_accel(v, VP_ACCEL_AUTO, &a) < 0) {
		vp_error_clear();
		return "qemu";
	}
	return a.domain_type;
}

int virt_accel_start_failed(vp_virt *v, int rc)
{
	const char *msg = vp_error_last()->message;
	char why[512];

	if (!vp_accel_host_failure(msg))
		return rc;
	vp_accel_explain(strstr(msg, ": ") ? strstr(msg, ": ") + 2 : msg, why, sizeof(why));
	/* The cached probe said KVM works and a guest just proved otherwise: probe again next time. */
	vp_virt_accel_forget(v);
	return vp_error_set(VP_ERR_VIRT, VP_EHOST, "host '%s' cannot start guests under KVM: %s", v->uri, why);
}
