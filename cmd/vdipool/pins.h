/* pins.h: what a libvirt host still needs from the store: disks in use and base images that
 * vdipool domains record (as their base, or as the version a rollback returns to). */
#ifndef VP_PINS_H
#define VP_PINS_H

#include "cli.h"

typedef struct cli_pins {
	char **disks;       /* every domain's disk files, ours or not */
	size_t ndisks;
	char **images;      /* base images recorded by vdipool domains */
	char **owners;      /* the domain recording images[i] */
	size_t nimages;
} cli_pins;

/* Reads the host's pins. On failure (libvirt unreachable) says on stderr that
 * the caller falls back to the store's own checks, and returns the error. */
int cli_pins_load(cli *c, const char *uri, cli_pins *out);
void cli_pins_release(cli_pins *p);

/* The domains that pin `image`, comma-separated into buf; how many. */
size_t cli_pins_owners(const cli_pins *p, const char *image, char *buf, size_t len);

#endif
