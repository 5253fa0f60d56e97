/* plugin_c99.c: vdipool/plugin.h must compile alone as C99 -pedantic-errors (plugins use any flags). */
#include "vdipool/plugin.h"

static int c99_open(const vp_tier_config *cfg, void **tier)
{
	(void)cfg;
	*tier = 0;
	return 0;
}

static vp_plugin_ops c99_ops = {
	0, 0, "c99", "1", "header test", VP_CAP_LINKED_CLONE, 0, 0, c99_open,
};

VP_REGISTER_PLUGIN(c99_ops);
