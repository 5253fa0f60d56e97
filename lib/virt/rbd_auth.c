/* rbd_auth.c: cephx for QEMU's rbd disks: monitors from ceph.conf, the key from a keyring, kept in a private libvirt secret. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/util.h"
#include "virt/rbd_auth.h"
#include "virt/virt_int.h"

#define CEPH_V1_PORT 6789u
#define CEPH_V2_PORT 3300u
#define KEYRING_MAX (1u << 20)

/* ---- ini files (ceph.conf, keyrings) ------------------------------------------------------ */

typedef int (*ini_fn)(void *ud, const char *section, const char *key, const char *value);

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Ceph reads "mon host", "mon_host" and "mon-host" as one key. */
static void normalise_key(char *k)
{
	char *w = k;

	for (const char *r = k; *r; r++) {
		bool sep = *r == ' ' || *r == '\t' || *r == '_' || *r == '-';
		if (!sep)
			*w++ = *r;
		else if (w > k && w[-1] != '_')
			*w++ = '_';
	}
	while (w > k && w[-1] == '_')
		w--;
	*w = '\0';
}

/* A value ends at a comment (# or ;) outside quotes; surrounding quotes go. */
static char *clean_value(char *v)
{
	bool quoted = false;
	size_t n;

	for (char *p = v; *p; p++) {
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && (*p == '#' || *p == ';')) {
			*p = '\0';
			break;
		}
	}
	v = trim(v);
	n = strlen(v);
	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = '\0';
		v++;
	}
	return v;
}

/* Walks the "key = value" lines of an ini text (modified in place) with their section. */
static int ini_walk(char *text, ini_fn fn, void *ud)
{
	char *section = "", *line = text, *next;
	int rc = 0;

	for (; line && rc == 0; line = next) {
		char *eq, *s;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		s = trim(line);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']');
			if (end) {
				*end = '\0';
				section = trim(s + 1);
			}
			continue;
		}
		if (!(eq = strchr(s, '=')))
			continue;
		*eq = '\0';
		s = trim(s);
		normalise_key(s);
		rc = fn(ud, section, s, clean_value(eq + 1));
	}
	return rc;
}

/* A whole small file, NUL-terminated; *len its size (for wiping a keyring). */
static int read_file(const char *path, const char *what, char **out, size_t *len)
{
	struct stat st;
	size_t n = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return vp_error_set_os(errno, "cannot read %s '%s'", what, path);
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return vp_error_set_os(e, "cannot read %s '%s'", what, path);
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEYRING_MAX) {
		close(fd);
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "cannot read %s '%s': %s", what, path,
				    S_ISREG(st.st_mode) ? "larger than 1 MiB" : "not a regular file");
	}
	if (!(buf = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	while (n < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + n, (size_t)st.st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : 0;
			OPENSSL_cleanse(buf, n);
			free(buf);
			close(fd);
			return e ? vp_error_set_os(e, "cannot read %s '%s'", what, path)
				 : vp_error_set(VP_ERR_OS, VP_EIO, "cannot read %s '%s': it shrank while read",
						what, path);
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* ---- ceph.conf ------------------------------------------------------------------------------ */

struct conf_walk {
	virt_ceph_conf *out;
	const char *id;
	int rank[3]; /* of the section each value came from: fsid, mon host, keyring */
};

/* [client.<id>] over [client] over [global]; 0: a section that does not apply. */
static int section_rank(const char *section, const char *id)
{
	if (!strcmp(section, "global"))
		return 1;
	if (!strcmp(section, "client"))
		return 2;
	if (!strncmp(section, "client.", 7) && !strcmp(section + 7, id))
		return 3;
	return 0;
}

static int conf_value(void *ud, const char *section, const char *key, const char *value)
{
	struct conf_walk *w = ud;
	static const char *const keys[] = { "fsid", "mon_host", "keyring" };
	char **slots[] = { &w->out->fsid, &w->out->mon_host, &w->out->keyring };
	int rank = section_rank(section, w->id);

	for (size_t i = 0; rank && i < 3; i++) {
		char *dup;
		if (strcmp(key, keys[i]) || rank < w->rank[i])
			continue;
		if (!(dup = vp_strdup(value)))
			return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		free(*slots[i]);
		*slots[i] = dup;
		w->rank[i] = rank;
	}
	return 0;
}

/* Ceph's metavariables in a keyring path: $cluster, $type, $id, $name (or ${...}). */
static char *expand_meta(const char *value, const char *id)
{
	vp_buf b = VP_BUF_INIT;
	int rc = 0;

	for (const char *p = value; *p && rc == 0;) {
		static const char *const names[] = { "cluster", "type", "name", "id" };
		size_t i, n = 0;
		bool brace = p[0] == '$' && p[1] == '{';
		for (i = 0; p[0] == '$' && i < 4; i++) {
			n = strlen(names[i]);
			if (!strncmp(p + 1 + brace, names[i], n) && (!brace || p[2 + n] == '}'))
				break;
		}
		if (p[0] != '$' || i == 4) {
			rc = vp_buf_putc(&b, *p++);
			continue;
		}
		rc = i == 0 ? vp_buf_puts(&b, "ceph")
		   : i == 1 ? vp_buf_puts(&b, "client")
		   : i == 2 ? vp_buf_printf(&b, "client.%s", id)
			    : vp_buf_puts(&b, id);
		p += 1 + n + 2 * brace;
	}
	if (rc < 0 || !b.len) {
		vp_buf_release(&b);
		return rc < 0 ? NULL : vp_strdup("");
	}
	return vp_buf_detach(&b);
}

int virt_ceph_conf_parse(virt_ceph_conf *out, const char *text, const char *id)
{
	struct conf_walk w = { .out = out, .id = id };
	char *copy = vp_strdup(text);
	int rc;

	memset(out, 0, sizeof(*out));
	if (!copy)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	rc = ini_walk(copy, conf_value, &w);
	free(copy);
	if (rc == 0 && out->keyring) {
		char *k = expand_meta(out->keyring, id);
		free(out->keyring);
		out->keyring = k;
		if (!k)
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	if (rc < 0)
		virt_ceph_conf_release(out);
	return rc;
}

int virt_ceph_conf_read(virt_ceph_conf *out, const char *path, const char *id)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = read_file(path, "ceph conf", &text, &len)) < 0)
		return rc;
	rc = virt_ceph_conf_parse(out, text, id);
	free(text);
	return rc;
}

void virt_ceph_conf_release(virt_ceph_conf *c)
{
	free(c->fsid);
	free(c->mon_host);
	free(c->keyring);
	memset(c, 0, sizeof(*c));
}

/* ---- mon host ------------------------------------------------------------------------------- */

struct hosts {
	vp_rbd_host *v;
	size_t n;
	const char *conf;
};

static int add_host(struct hosts *h, const char *name, size_t len, unsigned port)
{
	vp_rbd_host *nv = realloc(h->v, (h->n + 1) * sizeof(*nv));

	if (!nv)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	h->v = nv;
	if (!(nv[h->n].name = strndup(name, len)))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	nv[h->n++].port = port;
	return 0;
}

static int bad_mon(const struct hosts *h, const char *s, size_t len, const char *why)
{
	return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "ceph conf '%s': monitor address '%.*s': %s",
			    h->conf, (int)len, s, why);
}

/* "v1:", "v2:", "any:" (an address of either kind) or none. */
static int addr_type(const char *s, size_t len, size_t *skip)
{
	*skip = 0;
	if (len > 3 && (!strncmp(s, "v1:", 3) || !strncmp(s, "v2:", 3))) {
		*skip = 3;
		return s[1] - '0';
	}
	if (len > 4 && !strncmp(s, "any:", 4))
		*skip = 4;
	return 0;
}

/* Host and port (0: none) of "HOST", "HOST:PORT", "[V6]", "[V6]:PORT" or a bare IPv6
 * address, a "/NONCE" suffix ignored. */
static int split_addr(const struct hosts *h, const char *s, size_t len, const char **host,
		      size_t *hlen, unsigned *port)
{
	const char *end = s + len, *colon, *p;
	unsigned long v = 0;

	for (p = s; p < end && *p != '/'; p++)
		;
	end = p;
	*port = 0;
	if (s < end && *s == '[') {
		const char *rb = memchr(s, ']', (size_t)(end - s));
		if (!rb || rb == s + 1)
			return bad_mon(h, s, len, "unbalanced brackets");
		*host = s + 1;
		*hlen = (size_t)(rb - s - 1);
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
		if (!colon && rb + 1 != end)
			return bad_mon(h, s, len, "text after the address");
	} else {
		size_t colons = 0;
		colon = NULL;
		for (p = s; p < end; p++)
			if (*p == ':') {
				colons++;
				colon = p;
			}
		if (colons > 1)
			colon = NULL; /* a bare IPv6 address */
		*host = s;
		*hlen = (size_t)((colon ? colon : end) - s);
	}
	if (!*hlen)
		return bad_mon(h, s, len, "no host");
	if (colon) {
		if (colon + 1 == end)
			return bad_mon(h, s, len, "no port after ':'");
		for (p = colon + 1; p < end; p++) {
			if (*p < '0' || *p > '9' || (v = v * 10 + (unsigned long)(*p - '0')) > 65535)
				return bad_mon(h, s, len, "the port is not a number from 1 to 65535");
		}
		if (!v)
			return bad_mon(h, s, len, "the port is not a number from 1 to 65535");
		*port = (unsigned)v;
	}
	return 0;
}

/* One monitor: an address vector "[v2:A,v1:B]" or one address, typed or not. libvirt hands QEMU
 * host and port without a type, which Ceph reads as v2 on port 3300 and as v1 on any other. */
static int parse_mon(struct hosts *h, const char *s, size_t len)
{
	const char *host = NULL, *v2 = NULL;
	size_t hlen = 0, v2len = 0, skip;
	unsigned port, v2port = 0;
	int type, rc;

	if (len > 1 && s[0] == '[' && s[len - 1] == ']' && addr_type(s + 1, len - 2, &skip) + (int)skip) {
		/* A vector: its v1 entry, else a v2 one on 3300. Entries split at commas outside []. */
		const char *p = s + 1, *end = s + len - 1;
		while (p < end) {
			const char *e = p;
			int depth = 0;
			for (; e < end && (depth || *e != ','); e++)
				depth += *e == '[' ? 1 : *e == ']' ? -1 : 0;
			type = addr_type(p, (size_t)(e - p), &skip);
			if ((rc = split_addr(h, p + skip, (size_t)(e - p) - skip, &host, &hlen, &port)) < 0)
				return rc;
			if (type != 2)
				return add_host(h, host, hlen, port ? port : CEPH_V1_PORT);
			if (!v2) {
				v2 = host;
				v2len = hlen;
				v2port = port ? port : CEPH_V2_PORT;
			}
			p = e < end ? e + 1 : e;
		}
		if (v2 && v2port == CEPH_V2_PORT)
			return add_host(h, v2, v2len, v2port);
		return bad_mon(h, s, len, v2 ? "no v1 address, and libvirt can name a v2 one on port "
					       "3300 only" : "an empty address vector");
	}
	type = addr_type(s, len, &skip);
	if ((rc = split_addr(h, s + skip, len - skip, &host, &hlen, &port)) < 0)
		return rc;
	if (type == 2 && port && port != CEPH_V2_PORT)
		return bad_mon(h, s, len, "a v2 address, which libvirt can name on port 3300 only");
	return add_host(h, host, hlen, port ? port : type == 2 ? CEPH_V2_PORT : CEPH_V1_PORT);
}

int virt_ceph_mon_hosts(vp_rbd_host **out, size_t *n, const char *value, const char *conf)
{
	struct hosts h = { .conf = conf };
	const char *p = value;
	int rc = 0;

	*out = NULL;
	*n = 0;
	while (rc == 0 && *p) {
		const char *e = p;
		int depth = 0;
		if (*p == ',' || *p == ' ' || *p == '\t' || *p == ';') {
			p++;
			continue;
		}
		for (; *e && (depth || !(*e == ',' || *e == ' ' || *e == '\t' || *e == ';')); e++)
			depth += *e == '[' ? 1 : *e == ']' ? -1 : 0;
		rc = parse_mon(&h, p, (size_t)(e - p));
		p = e;
	}
	if (rc == 0 && !h.n)
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "ceph conf '%s': mon host names no monitor",
				  conf);
	if (rc < 0) {
		virt_rbd_hosts_free(h.v, h.n);
		return rc;
	}
	*out = h.v;
	*n = h.n;
	return 0;
}

void virt_rbd_hosts_free(vp_rbd_host *hosts, size_t n)
{
	for (size_t i = 0; hosts && i < n; i++)
		free(hosts[i].name);
	free(hosts);
}

/* ---- keyring -------------------------------------------------------------------------------- */

struct key_walk {
	const char *id;
	char *key; /* points into the text */
};

static int keyring_value(void *ud, const char *section, const char *key, const char *value)
{
	struct key_walk *w = ud;

	if (!strncmp(section, "client.", 7) && !strcmp(section + 7, w->id) && !strcmp(key, "key"))
		w->key = (char *)value;
	return 0;
}

int virt_ceph_keyring_key(unsigned char **key, size_t *len, const char *path, const char *id)
{
	struct key_walk w = { .id = id };
	char *text = NULL;
	size_t tlen = 0, klen;
	unsigned char *raw = NULL;
	int rc, n = -1;

	*key = NULL;
	*len = 0;
	if ((rc = read_file(path, "keyring", &text, &tlen)) < 0)
		return rc;
	ini_walk(text, keyring_value, &w);
	klen = w.key ? strlen(w.key) : 0;
	if (!klen) {
		rc = vp_error_set(VP_ERR_INVALID, VP_ENOENT, "keyring '%s' has no key for client.%s", path, id);
	} else if (klen % 4 || !(raw = malloc(klen / 4 * 3 + 1)) ||
		   (n = EVP_DecodeBlock(raw, (const unsigned char *)w.key, (int)klen)) <= 0) {
		rc = raw || klen % 4 ? vp_error_set(VP_ERR_INVALID, VP_EINVAL, "keyring '%s': the key of "
						     "client.%s is not base64", path, id)
				     : vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	} else {
		/* EVP_DecodeBlock counts the padding as bytes. */
		n -= (w.key[klen - 1] == '=') + (w.key[klen - 2] == '=');
		*key = raw;
		*len = (size_t)n;
		raw = NULL;
	}
	if (raw)
		virt_rbd_key_free(raw, klen / 4 * 3);
	OPENSSL_cleanse(text, tlen);
	free(text);
	return rc;
}

void virt_rbd_key_free(unsigned char *key, size_t len)
{
	if (key)
		OPENSSL_cleanse(key, len);
	free(key);
}

/* ---- the libvirt secret --------------------------------------------------------------------- */

static int secret_error(const char *what, const char *usage)
{
	const char *msg = virGetLastErrorMessage();

	return vp_error_set(VP_ERR_VIRT, VP_EIO, "%s '%s': %s", what, usage,
			    msg ? msg : "unknown libvirt error");
}

/* <secret ephemeral='no' private='yes'> with one usage (<usage type='T'><ELEM>NAME</ELEM>), with
 * the UUID given (NULL: libvirt picks one). Shared with the LUKS secrets (luks.c). */
char *virt_secret_xml(const char *type, const char *elem, const char *usage, const char *desc,
		      const char *uuid)
{
	xmlDocPtr doc = xmlNewDoc(BAD_CAST "1.0");
	xmlNodePtr root = xmlNewNode(NULL, BAD_CAST "secret"), u;
	xmlChar *mem = NULL;
	char *out;
	int size = 0;

	xmlDocSetRootElement(doc, root);
	xmlNewProp(root, BAD_CAST "ephemeral", BAD_CAST "no");
	xmlNewProp(root, BAD_CAST "private", BAD_CAST "yes");
	if (uuid)
		xmlNewTextChild(root, NULL, BAD_CAST "uuid", BAD_CAST uuid);
	xmlNewTextChild(root, NULL, BAD_CAST "description", BAD_CAST(desc ? desc : ""));
	u = xmlNewChild(root, NULL, BAD_CAST "usage", NULL);
	xmlNewProp(u, BAD_CAST "type", BAD_CAST type);
	xmlNewTextChild(u, NULL, BAD_CAST elem, BAD_CAST usage);
	xmlDocDumpMemory(doc, &mem, &size);
	out = mem ? vp_strdup((const char *)mem) : NULL;
	xmlFree(mem);
	xmlFreeDoc(doc);
	return out;
}

static char *secret_xml(const char *usage, const char *id, const char *uuid)
{
	char *desc = vp_strdup_printf("cephx key of client.%s for vdipool's rbd disks", id);
	char *out = desc ? virt_secret_xml("ceph", "name", usage, desc, uuid) : NULL;

	free(desc);
	return out;
}

xmlDocPtr virt_secret_doc(virSecretPtr sec)
{
	char *xml = virSecretGetXMLDesc(sec, 0);
	xmlDocPtr doc = xml ? xmlReadMemory(xml, (int)strlen(xml), "secret.xml", NULL,
					    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)
			    : NULL;

	free(xml);
	return doc;
}

/* Whether a secret is kept on disk and never handed out (someone may have defined it otherwise). */
static bool private_persistent(virSecretPtr sec)
{
	xmlDocPtr doc = virt_secret_doc(sec);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	xmlChar *priv = root ? xmlGetProp(root, BAD_CAST "private") : NULL;
	xmlChar *eph = root ? xmlGetProp(root, BAD_CAST "ephemeral") : NULL;
	bool ok = priv && !xmlStrcmp(priv, BAD_CAST "yes") && (!eph || !xmlStrcmp(eph, BAD_CAST "no"));

	xmlFree(priv);
	xmlFree(eph);
	xmlFreeDoc(doc);
	return ok;
}

/* The secret of this usage: found, made private if it is not, or defined. */
static int secret_get(vp_virt *v, const char *usage, const char *id, virSecretPtr *out)
{
	virSecretPtr sec = virSecretLookupByUsage(v->conn, VIR_SECRET_USAGE_TYPE_CEPH, usage);
	char uuid[VIR_UUID_STRING_BUFLEN], *xml = NULL;

	*out = NULL;
	if (!sec && virGetLastErrorCode() != VIR_ERR_NO_SECRET)
		return secret_error("cannot look up the libvirt secret", usage);
	if (sec && private_persistent(sec)) {
		*out = sec;
		return 0;
	}
	if (sec && virSecretGetUUIDString(sec, uuid) < 0) {
		virSecretFree(sec);
		return secret_error("cannot read the UUID of libvirt secret", usage);
	}
	if (!(xml = secret_xml(usage, id, sec ? uuid : NULL))) {
		virSecretFree(sec);
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	virSecretFree(sec);
	sec = virSecretDefineXML(v->conn, xml, 0);
	free(xml);
	/* Another vdipool may have defined it since the lookup. */
	if (!sec && !(sec = virSecretLookupByUsage(v->conn, VIR_SECRET_USAGE_TYPE_CEPH, usage)))
		return secret_error("cannot define the libvirt secret", usage);
	*out = sec;
	return 0;
}

/* The keyring to read: the caller's, the first existing one the conf names, or Ceph's default. */
static char *pick_keyring(const char *keyring, const virt_ceph_conf *c, const char *id)
{
	char *list, *tok, *save = NULL, *first = NULL, *found = NULL;

	if (keyring)
		return vp_strdup(keyring);
	if (!c->keyring || !*c->keyring)
		return vp_strdup_printf("/etc/ceph/ceph.client.%s.keyring", id);
	if (!(list = vp_strdup(c->keyring)))
		return NULL;
	for (tok = strtok_r(list, ", \t;", &save); tok && !found; tok = strtok_r(NULL, ", \t;", &save)) {
		if (!first)
			first = tok;
		if (access(tok, F_OK) == 0)
			found = tok;
	}
	found = vp_strdup(found ? found : first ? first : c->keyring);
	free(list);
	return found;
}

/* A cephx id ("vdipool", "rgw.host1"), not the entity name ("client.vdipool"). */
static bool id_valid(const char *id)
{
	if (!*id || !strncmp(id, "client.", 7))
		return false;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '.' || *p == '-' || *p == '_'))
			return false;
	return true;
}

int vp_virt_rbd_auth(vp_virt *v, const char *conf, const char *id, const char *keyring, vp_rbd_auth *out)
{
	virt_ceph_conf c;
	unsigned char *key = NULL;
	size_t keylen = 0;
	char *kr = NULL, *usage = NULL, abs[PATH_MAX];
	virSecretPtr sec = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	conf = conf ? conf : "/etc/ceph/ceph.conf";
	id = id ? id : "admin";
	if (!id_valid(id))
		return vp_error_set(VP_ERR_INVALID, VP_EINVAL, "invalid cephx user '%s' (letters, digits, "
				    ".-_; without 'client.')", id);
	if ((rc = virt_ceph_conf_read(&c, conf, id)) < 0)
		goto out;
	if (!c.mon_host || !*c.mon_host) {
		rc = vp_error_set(VP_ERR_INVALID, VP_EINVAL, "ceph conf '%s' has no mon host (mon_host "
				  "in [global])", conf);
		goto out;
	}
	if ((rc = virt_ceph_mon_hosts(&out->hosts, &out->nhosts, c.mon_host, conf)) < 0)
		goto out;
	if (!(kr = pick_keyring(keyring, &c, id))) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = virt_ceph_keyring_key(&key, &keylen, kr, id)) < 0)
		goto out;
	/* One secret per user and cluster: the fsid names the cluster, else the conf does. */
	usage = vp_strdup_printf("vdipool client.%s %s", id,
				 c.fsid && *c.fsid ? c.fsid : realpath(conf, abs) ? abs : conf);
	out->user = vp_strdup(id);
	if (!usage || !out->user) {
		rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = secret_get(v, usage, id, &sec)) < 0)
		goto out;
	/* Set every time: the value cannot be read back (private), and a key may be rotated. */
	if (virSecretSetValue(sec, key, keylen, 0) < 0) {
		rc = secret_error("cannot set the value of libvirt secret", usage);
		goto out;
	}
	if (virSecretGetUUIDString(sec, out->secret_uuid) < 0) {
		rc = secret_error("cannot read the UUID of libvirt secret", usage);
		goto out;
	}
	out->secret_usage = usage;
	usage = NULL;
out:
	if (sec)
		virSecretFree(sec);
	virt_rbd_key_free(key, keylen);
	virt_ceph_conf_release(&c);
	free(kr);
	free(usage);
	if (rc < 0)
		vp_rbd_auth_release(out);
	return rc;
}
