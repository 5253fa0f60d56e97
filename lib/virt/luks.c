/* luks.c: the libvirt secrets holding the keys of LUKS-encrypted clone disks (one per disk, private). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "vdipool/error.h"
#include "vdipool/virt.h"
#include "util/util.h"
#include "virt/virt_int.h"

#define LUKS_DESC_PREFIX "vdipool LUKS key of "

static int luks_error(const char *what, const char *subject)
{
	const char *msg = virGetLastErrorMessage();

	return vp_error_set(VP_ERR_VIRT, VP_EIO, "%s '%s': %s", what, subject,
			    msg ? msg : "unknown libvirt error");
}

/* A secret of usage type volume whose description says it is vdipool's. */
static bool ours(virSecretPtr sec)
{
	xmlDocPtr doc = virt_secret_doc(sec);
	xmlNodePtr root = doc ? xmlDocGetRootElement(doc) : NULL;
	bool yes = false;

	for (xmlNodePtr c = root ? root->children : NULL; c; c = c->next) {
		xmlChar *t;
		if (c->type != XML_ELEMENT_NODE || xmlStrcmp(c->name, BAD_CAST "description"))
			continue;
		t = xmlNodeGetContent(c);
		yes = t && !strncmp((const char *)t, LUKS_DESC_PREFIX, strlen(LUKS_DESC_PREFIX));
		xmlFree(t);
	}
	xmlFreeDoc(doc);
	return yes && virSecretGetUsageType(sec) == VIR_SECRET_USAGE_TYPE_VOLUME;
}

int vp_virt_luks_secret_set(vp_virt *v, const char *uuid, const char *volume, const char *what,
			    const unsigned char *key, size_t len)
{
	virSecretPtr sec = virSecretLookupByUsage(v->conn, VIR_SECRET_USAGE_TYPE_VOLUME, volume);
	char have[VIR_UUID_STRING_BUFLEN], *desc = NULL, *xml = NULL;
	int rc = 0;

	if (!sec && virGetLastErrorCode() != VIR_ERR_NO_SECRET)
		return luks_error("cannot look up the libvirt secret of", volume);
	/* One secret per disk: the previous disk's (a rebase, a reset) goes, whatever it was. */
	if (sec && virSecretGetUUIDString(sec, have) == 0 && strcmp(have, uuid) && virSecretUndefine(sec) < 0)
		rc = luks_error("cannot remove the old libvirt secret of", volume);
	if (sec)
		virSecretFree(sec);
	if (rc < 0)
		return rc;
	desc = vp_strdup_printf(LUKS_DESC_PREFIX "%s", what);
	xml = desc ? virt_secret_xml("volume", "volume", volume, desc, uuid) : NULL;
	free(desc);
	if (!xml)
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	sec = virSecretDefineXML(v->conn, xml, 0);
	free(xml);
	if (!sec)
		return luks_error("cannot define the libvirt secret of", volume);
	if (virSecretSetValue(sec, key, len, 0) < 0) {
		rc = luks_error("cannot set the libvirt secret of", volume);
		virSecretUndefine(sec);
	}
	virSecretFree(sec);
	return rc;
}

int vp_virt_luks_secret_exists(vp_virt *v, const char *uuid)
{
	virSecretPtr sec = virSecretLookupByUUIDString(v->conn, uuid);

	if (sec) {
		virSecretFree(sec);
		return 1;
	}
	if (virGetLastErrorCode() == VIR_ERR_NO_SECRET)
		return 0;
	return luks_error("cannot look up libvirt secret", uuid);
}

int vp_virt_luks_secret_remove(vp_virt *v, const char *volume)
{
	virSecretPtr sec = virSecretLookupByUsage(v->conn, VIR_SECRET_USAGE_TYPE_VOLUME, volume);
	int rc = 0;

	if (!sec)
		return virGetLastErrorCode() == VIR_ERR_NO_SECRET
			       ? 0 : luks_error("cannot look up the libvirt secret of", volume);
	if (ours(sec) && virSecretUndefine(sec) < 0 && virGetLastErrorCode() != VIR_ERR_NO_SECRET)
		rc = luks_error("cannot remove the libvirt secret of", volume);
	virSecretFree(sec);
	return rc;
}

/* The disk is gone, and not merely out of reach: its tier's deltas/ or data/ directory (two
 * levels up) is there. A tier that is not mounted at the moment keeps its disks' secrets. */
static bool disk_gone(const char *vol)
{
	char up[4096];
	char *slash;

	if (!vol || vol[0] != '/' || access(vol, F_OK) == 0 || errno != ENOENT ||
	    strlen(vol) >= sizeof(up))
		return false;
	strcpy(up, vol);
	for (int i = 0; i < 2; i++) {
		if (!(slash = strrchr(up, '/')) || slash == up)
			return false;
		*slash = '\0';
	}
	return access(up, F_OK) == 0;
}

int vp_virt_luks_sweep(vp_virt *v, size_t *removed)
{
	virSecretPtr *list = NULL;
	int n = virConnectListAllSecrets(v->conn, &list, VIR_CONNECT_LIST_SECRETS_EPHEMERAL |
						      VIR_CONNECT_LIST_SECRETS_NO_EPHEMERAL);
	int rc = 0;

	*removed = 0;
	if (n < 0)
		return luks_error("cannot list the libvirt secrets of", vp_virt_uri(v));
	for (int i = 0; i < n; i++) {
		const char *vol = virSecretGetUsageID(list[i]);
		/* Removed by hand, or a crash between a disk's removal and its secret's. */
		if (rc == 0 && disk_gone(vol) && ours(list[i])) {
			if (virSecretUndefine(list[i]) < 0)
				rc = luks_error("cannot remove the libvirt secret of", vol);
			else
				(*removed)++;
		}
		virSecretFree(list[i]);
	}
	free(list);
	return rc;
}
