/* cmd_version.c: `vdipool version`: versions of vdipool and the libraries it runs on. */
#include <libvirt/libvirt.h>
#include <libssh2.h>
#include <libxml/xmlversion.h>
#include <openssl/crypto.h>
#include <yaml.h>
#include <zlib.h>

#include "cli.h"
#include "vdipool/version.h"

const char cmd_version_help[] =
	"usage: vdipool version [-o json]\n"
	"\n"
	"Print the version of vdipool and of the libraries it is linked with.\n"
	"\n"
	"Example:\n"
	"  vdipool version -o json\n";

int cmd_version(cli *c, int argc, char **argv)
{
	unsigned long lv = 0;
	char libvirt_ver[32];
	int idx;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[idx]);
	virGetVersion(&lv, NULL, NULL);
	snprintf(libvirt_ver, sizeof(libvirt_ver), "%lu.%lu.%lu", lv / 1000000, lv / 1000 % 1000, lv % 1000);
	if (c->output == CLI_OUT_JSON) {
		printf("{\"vdipool\":\"%s\",\"libvirt\":\"%s\",\"libyaml\":\"%s\",\"libssh2\":\"%s\","
		       "\"zlib\":\"%s\",\"openssl\":\"%s\",\"libxml2\":\"%s\"}\n",
		       vp_version(), libvirt_ver, yaml_get_version_string(), libssh2_version(0),
		       zlibVersion(), OpenSSL_version(OPENSSL_VERSION_STRING), LIBXML_DOTTED_VERSION);
	} else {
		printf("vdipool %s\n", vp_version());
		printf("  libvirt %s, libyaml %s, libssh2 %s, zlib %s, OpenSSL %s, libxml2 %s\n",
		       libvirt_ver, yaml_get_version_string(), libssh2_version(0), zlibVersion(),
		       OpenSSL_version(OPENSSL_VERSION_STRING), LIBXML_DOTTED_VERSION);
	}
	return VP_EXIT_OK;
}
