/* plugin_c99.c: vdipool/plugin.h must compile alone as C99 -pedantic-errors (plugins use any flags). */
#include "vdipool/plugin.h"

static int c99_open(const vp_tier_config *cfg, void **tier)
{
	(void)cfg;
	*tier = 0;
	return 0;
}

/* Designated initialisers: the way plugins are meant to fill the table. */
static vp_plugin_ops c99_ops = {
	.name = "c99",
	.version = "1",
	.capabilities = VP_CAP_LINKED_CLONE | VP_CAP_SHARED,
	.open = c99_open,
};

VP_REGISTER_PLUGIN(c99_ops);
