/* pins.c: reads from libvirt what gc and base rm must leave alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pins.h"
#include "vdipool/virt.h"

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static int add_image(cli_pins *p, const char *image, const char *owner)
{
	if (!image || !*image)
		return 0;
	p->images[p->nimages] = vp_strdup(image);
	p->owners[p->nimages] = vp_strdup(owner);
	if (!p->images[p->nimages] || !p->owners[p->nimages]) {
		free(p->images[p->nimages]);
		free(p->owners[p->nimages]);
		return VP_ENOMEM;
	}
	p->nimages++;
	return 0;
}

int cli_pins_load(cli *c, const char *uri, cli_pins *out)
{
	vp_virt_domain *doms = NULL;
	size_t ndoms = 0;
	vp_virt *v = NULL;
	int rc = vp_virt_open(&v, uri);

	memset(out, 0, sizeof(*out));
	if (rc == 0)
		rc = vp_virt_disk_paths(v, &out->disks, &out->ndisks);
	if (rc == 0)
		rc = vp_virt_list(v, &doms, &ndoms);
	if (rc == 0) {
		out->images = calloc(2 * ndoms + 1, sizeof(*out->images));
		out->owners = calloc(2 * ndoms + 1, sizeof(*out->owners));
		if (!out->images || !out->owners)
			rc = vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
	}
	for (size_t i = 0; rc == 0 && i < ndoms; i++) {
		if (!doms[i].has_meta)
			continue;
		rc = add_image(out, doms[i].meta.base_image, doms[i].name);
		if (rc == 0)
			rc = add_image(out, doms[i].meta.prev_image, doms[i].name);
	}
	if (rc < 0) {
		cli_info(c, "vdipool %s: libvirt not consulted: %s\n", c->cmd->name, vp_error_last()->message);
		cli_pins_release(out);
	}
	vp_virt_domains_free(doms, ndoms);
	vp_virt_free(v);
	return rc;
}

void cli_pins_release(cli_pins *p)
{
	free_strings(p->disks, p->ndisks);
	free_strings(p->images, p->nimages);
	free_strings(p->owners, p->nimages);
	memset(p, 0, sizeof(*p));
}

size_t cli_pins_owners(const cli_pins *p, const char *image, char *buf, size_t len)
{
	size_t n = 0, used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->nimages; i++) {
		if (strcmp(p->images[i], image))
			continue;
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s%s", n ? ", " : "", p->owners[i]);
		n++;
	}
	return n;
}
