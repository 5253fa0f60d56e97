/* config.h: the CLI's configuration file (/etc/vdipool/vdipool.conf): simple `key = value` lines. */
#ifndef VP_CLI_CONFIG_H
#define VP_CLI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_config {
	char root[4096];          /* "" when not set */
	char plugin_path[4096];
	char template_path[4096];
	int syslog;               /* -1 not set, 0 off, 1 on */
	char syslog_socket[108];  /* sizeof(sun_path) */
	char textfile_dir[4096];
} cli_config;

/* Reads FILE into *out (keys not in the file keep their "not set" values). A missing file is
 * fine unless must_exist. On an error writes "FILE:LINE: KEY: what" (or "FILE: why") to err and
 * returns -1. */
int cli_config_load(cli_config *out, const char *file, bool must_exist, char *err, size_t errlen);

#endif
