/* config.c: reads the CLI's configuration file: `key = value` lines, '#' comments, known keys only. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"

typedef enum { K_PATH, K_PATHLIST, K_BOOL } key_kind;

static const struct {
	const char *key;
	key_kind kind;
	size_t off, size;
} keys[] = {
	{ "root", K_PATH, offsetof(cli_config, root), sizeof(((cli_config *)0)->root) },
	{ "plugin_path", K_PATHLIST, offsetof(cli_config, plugin_path), sizeof(((cli_config *)0)->plugin_path) },
	{ "template_path", K_PATHLIST, offsetof(cli_config, template_path),
	  sizeof(((cli_config *)0)->template_path) },
	{ "syslog", K_BOOL, offsetof(cli_config, syslog), 0 },
	{ "syslog_socket", K_PATH, offsetof(cli_config, syslog_socket), sizeof(((cli_config *)0)->syslog_socket) },
	{ "textfile_dir", K_PATH, offsetof(cli_config, textfile_dir), sizeof(((cli_config *)0)->textfile_dir) },
};

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Every element of a colon-separated list (or the one path) is absolute; "" is allowed. */
static bool absolute_paths(const char *v)
{
	for (const char *p = v; *p;) {
		if (*p != '/')
			return false;
		p = strchr(p, ':');
		if (!p)
			break;
		p++;
	}
	return true;
}

static int set_key(cli_config *out, const char *key, const char *val, char *why, size_t whylen)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char *dst = (char *)out + keys[i].off;

		if (strcmp(key, keys[i].key) != 0)
			continue;
		switch (keys[i].kind) {
		case K_BOOL:
			if (!strcmp(val, "on") || !strcmp(val, "true") || !strcmp(val, "yes"))
				*(int *)(void *)dst = 1;
			else if (!strcmp(val, "off") || !strcmp(val, "false") || !strcmp(val, "no"))
				*(int *)(void *)dst = 0;
			else
				return snprintf(why, whylen, "expected on or off, got '%s'", val), -1;
			return 0;
		case K_PATH:
		case K_PATHLIST:
			if (!absolute_paths(val))
				return snprintf(why, whylen, "expected %s, got '%s'",
						keys[i].kind == K_PATH ? "an absolute path"
								       : "absolute paths separated by ':'", val), -1;
			if (strlen(val) >= keys[i].size)
				return snprintf(why, whylen, "too long (at most %zu characters)", keys[i].size - 1),
				       -1;
			strcpy(dst, val);
			return 0;
		}
	}
	snprintf(why, whylen, "unknown key (expected one of: root, plugin_path, template_path, syslog, "
			      "syslog_socket, textfile_dir)");
	return -1;
}

int cli_config_load(cli_config *out, const char *file, bool must_exist, char *err, size_t errlen)
{
	char line[8192], why[256];
	FILE *f;
	unsigned n = 0;
	int rc = 0;

	*out = (cli_config){ .syslog = -1 };
	if (!(f = fopen(file, "re"))) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(err, errlen, "%s: cannot read the configuration file: %s", file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *s, *eq, *key, *val;

		n++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%u: line too long", file, n);
			rc = -1;
			break;
		}
		s = trim(line);
		if (!*s || *s == '#')
			continue;
		if (!(eq = strchr(s, '='))) {
			snprintf(err, errlen, "%s:%u: expected 'key = value', got '%s'", file, n, s);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = trim(s);
		val = trim(eq + 1);
		if (set_key(out, key, val, why, sizeof(why)) < 0) {
			snprintf(err, errlen, "%s:%u: %s: %s", file, n, key, why);
			rc = -1;
		}
	}
	if (rc == 0 && ferror(f)) {
		snprintf(err, errlen, "%s: cannot read the configuration file: %s", file, strerror(errno));
		rc = -1;
	}
	fclose(f);
	return rc;
}
