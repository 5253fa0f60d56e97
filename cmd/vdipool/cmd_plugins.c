/* cmd_plugins.c: `vdipool plugins`: list storage plugins, API versions and capabilities. */
#include <stdio.h>

#include "cli.h"
#include "vdipool/plugin.h"

const char cmd_plugins_help[] =
	"usage: vdipool plugins [-o json]\n"
	"\n"
	"List the storage plugins found ($VDIPOOL_PLUGIN_PATH, then the install\n"
	"directory, then the built-in dir backend) with their API version, version\n"
	"and capabilities. Files that could not be loaded are listed with the reason.\n"
	"\n"
	"Example:\n"
	"  vdipool plugins -o json\n";

static void print_json(const vp_plugin *const *list, size_t n)
{
	vp_buf j = VP_BUF_INIT;
	char caps[128];

	vp_buf_putc(&j, '[');
	for (size_t i = 0; i < n; i++) {
		const vp_plugin *p = list[i];
		vp_buf_printf(&j, "%s{\"name\":", i ? ",\n " : "");
		vp_buf_json_str(&j, vp_plugin_name(p));
		vp_buf_puts(&j, ",\"file\":");
		vp_buf_json_str(&j, vp_plugin_file(p));
		vp_buf_printf(&j, ",\"api_version\":%d,\"version\":", vp_plugin_api_version(p));
		vp_buf_json_str(&j, vp_plugin_version(p));
		vp_buf_puts(&j, ",\"capabilities\":");
		vp_buf_json_str(&j, vp_plugin_caps_str(vp_plugin_capabilities(p), caps, sizeof(caps)));
		vp_buf_puts(&j, ",\"error\":");
		if (vp_plugin_load_error(p))
			vp_buf_json_str(&j, vp_plugin_load_error(p));
		else
			vp_buf_puts(&j, "null");
		vp_buf_putc(&j, '}');
	}
	vp_buf_puts(&j, "]\n");
	fputs(vp_buf_cstr(&j), stdout);
	vp_buf_release(&j);
}

static void print_table(const vp_plugin *const *list, size_t n)
{
	char caps[128];

	printf("%-10s %-4s %-8s %-46s %s\n", "NAME", "API", "VERSION", "CAPABILITIES", "FILE");
	for (size_t i = 0; i < n; i++) {
		const vp_plugin *p = list[i];
		if (vp_plugin_load_error(p)) {
			printf("%-10s %-4s %-8s %-46s %s\n", vp_plugin_name(p), "-", "-", "(not loaded)",
			       vp_plugin_file(p));
			continue;
		}
		printf("%-10s %-4d %-8s %-46s %s\n", vp_plugin_name(p), vp_plugin_api_version(p),
		       vp_plugin_version(p),
		       vp_plugin_caps_str(vp_plugin_capabilities(p), caps, sizeof(caps)), vp_plugin_file(p));
	}
}

int cmd_plugins(cli *c, int argc, char **argv)
{
	const vp_plugin *const *list = NULL;
	size_t n = 0;
	int idx, rc;

	CLI_PARSE(idx, c, argc, argv, NULL, NULL, NULL, NULL);
	if (idx < argc)
		return cli_usage_error(c, "unexpected argument '%s'", argv[idx]);
	rc = vp_plugin_list_all(&list, &n);
	if (rc < 0)
		return cli_fail(c, rc);
	if (c->output == CLI_OUT_JSON)
		print_json(list, n);
	else
		print_table(list, n);
	/* Why a file was refused goes to stderr, so the table stays a table. */
	for (size_t i = 0; i < n && c->output == CLI_OUT_TABLE; i++)
		if (vp_plugin_load_error(list[i]))
			fprintf(stderr, "vdipool plugins: %s\n", vp_plugin_load_error(list[i]));
	cli_debug(c, "search path: %s\n", vp_plugin_search_path());
	return VP_EXIT_OK;
}
