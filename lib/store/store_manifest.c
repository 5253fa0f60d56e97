/* store_manifest.c: the base manifest (key=value lines) and reading `qemu-img info` JSON. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#include "store.h"

/*
 * Manifest format, version 1: UTF-8 text, one "key=value" per line, the value
 * running to the end of the line (no quoting; values never hold newlines).
 * The first line is "vdipool-manifest=1". Unknown keys are ignored so that
 * newer vdipools can add fields; missing required keys are an error.
 */

char *vp_store_manifest_format(const vp_base_info *i)
{
	vp_buf b = VP_BUF_INIT;

	vp_buf_printf(&b, "vdipool-manifest=1\nname=%s\nversion=%s\nsha256=%s\nformat=%s\n",
		      i->name, i->version, i->sha256, i->format);
	vp_buf_printf(&b, "virtual_size=%" PRIu64 "\nsource=%s\nsource_format=%s\nimported=%s\n",
		      i->virtual_size, i->source, i->source_format, i->imported);
	vp_buf_printf(&b, "disk_bytes=%" PRIu64 "\nimage_size=%" PRIu64 "\nimage_mtime=%" PRId64 ".%09ld\n",
		      i->disk_bytes, i->image_size, i->image_mtime_sec, i->image_mtime_nsec);
	if (i->parent[0])
		vp_buf_printf(&b, "parent=%s\n", i->parent);
	if (i->compression[0])
		vp_buf_printf(&b, "compression=%s\n", i->compression);
	if (b.oom) {
		vp_buf_release(&b);
		vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
		return NULL;
	}
	return vp_buf_detach(&b);
}

static int set_str(char *dst, size_t len, const char *v, const char *what, const char *key)
{
	if (strlen(v) >= len)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: '%s' is too long", what, key);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_u64(uint64_t *dst, const char *v, const char *what, const char *key)
{
	char *end;

	errno = 0;
	*dst = strtoull(v, &end, 10);
	if (errno || end == v || *end || v[0] == '-')
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: '%s' is not a number: '%s'", what, key, v);
	return 0;
}

static int set_mtime(vp_base_info *i, const char *v, const char *what)
{
	char *end;
	long long sec;
	long nsec = 0;

	errno = 0;
	sec = strtoll(v, &end, 10);
	if (!errno && *end == '.')
		nsec = strtol(end + 1, &end, 10);
	if (errno || end == v || *end || nsec < 0 || nsec > 999999999)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: bad image_mtime '%s'", what, v);
	i->image_mtime_sec = sec;
	i->image_mtime_nsec = nsec;
	return 0;
}

static int set_field(vp_base_info *i, const char *k, const char *v, const char *what, unsigned *seen)
{
#define STR(key, field, bit) if (!strcmp(k, key)) return *seen |= bit, set_str(i->field, sizeof(i->field), v, what, k)
#define U64(key, field, bit) if (!strcmp(k, key)) return *seen |= bit, set_u64(&i->field, v, what, k)
	STR("name", name, 1u);
	STR("version", version, 2u);
	STR("sha256", sha256, 4u);
	STR("format", format, 8u);
	U64("virtual_size", virtual_size, 16u);
	STR("source", source, 0u);
	STR("source_format", source_format, 0u);
	STR("imported", imported, 32u);
	U64("disk_bytes", disk_bytes, 0u);
	U64("image_size", image_size, 64u);
	STR("parent", parent, 0u);
	STR("compression", compression, 0u);
	if (!strcmp(k, "image_mtime"))
		return set_mtime(i, v, what);
	return 0; /* unknown keys: written by a newer vdipool */
#undef STR
#undef U64
}

int vp_store_manifest_parse(vp_base_info *i, const char *text, const char *what)
{
	static const char *const required[] = { "name", "version", "sha256", "format",
						"virtual_size", "imported", "image_size" };
	unsigned seen = 0;
	const char *line = text;

	if (strncmp(text, "vdipool-manifest=1\n", 19))
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: not a vdipool manifest (version 1)", what);
	while (*line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		VP_AUTOFREE char *copy = vp_strdup_printf("%.*s", (int)len, line);
		char *eq;
		int rc;

		if (!copy)
			return VP_ENOMEM;
		eq = strchr(copy, '=');
		if (!eq)
			return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: malformed line '%s'", what, copy);
		*eq = '\0';
		if ((rc = set_field(i, copy, eq + 1, what, &seen)) < 0)
			return rc;
		line += len + (nl ? 1 : 0);
	}
	for (size_t k = 0; k < VP_ARRAY_SIZE(required); k++)
		if (!(seen & (1u << k)))
			return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: missing '%s'", what, required[k]);
	if (strlen(i->sha256) != 64)
		return vp_error_set(VP_ERR_STORE, VP_EINVAL, "%s: bad sha256 '%s'", what, i->sha256);
	return 0;
}

/* ---- qemu-img info --output=json ---------------------------------------------- */

static void probe_set(vp_probe *p, const char *key, const char *val)
{
	if (!strcmp(key, "format"))
		snprintf(p->format, sizeof(p->format), "%s", val);
	else if (!strcmp(key, "virtual-size"))
		p->virtual_size = strtoull(val, NULL, 10);
	else if (!strcmp(key, "actual-size"))
		p->actual_size = strtoull(val, NULL, 10);
	else if (!strcmp(key, "backing-filename") || !strcmp(key, "full-backing-filename"))
		snprintf(p->backing, sizeof(p->backing), "%s", val);
}

/* JSON is YAML's flow style, so libyaml reads it. Only the top-level
 * scalars matter; nested objects (format-specific, children) are skipped. */
int vp_store_parse_info_json(vp_probe *p, const char *json, const char *what)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	char key[64] = "";
	int depth = 0, want_key = 1, rc = 0, done = 0;

	memset(p, 0, sizeof(*p));
	if (!yaml_parser_initialize(&parser))
		return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)json, strlen(json));
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			rc = vp_error_set(VP_ERR_COMMAND, VP_EIO, "cannot parse 'qemu-img info' output for '%s': %s",
					  what, parser.problem ? parser.problem : "syntax error");
			break;
		}
		switch (ev.type) {
		case YAML_MAPPING_START_EVENT:
		case YAML_SEQUENCE_START_EVENT:
			if (depth == 1)
				want_key = 1; /* the nested value replaces the pending key's value */
			depth++;
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			depth--;
			break;
		case YAML_SCALAR_EVENT:
			if (depth != 1)
				break;
			if (want_key)
				snprintf(key, sizeof(key), "%s", (const char *)ev.data.scalar.value);
			else
				probe_set(p, key, (const char *)ev.data.scalar.value);
			want_key = !want_key;
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&parser);
	if (rc == 0 && !p->format[0])
		rc = vp_error_set(VP_ERR_COMMAND, VP_EIO, "'qemu-img info' did not say the format of '%s'", what);
	return rc;
}
