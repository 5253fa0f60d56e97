/* store_builtin_dir.c: the dir plugin compiled into libvdipool, so a bare directory always works. */
/* Same source as plugins/dir/vdipool-dir.so; only the init symbol is renamed
 * and kept hidden, and the loader registers it after the search path. */
#define VP_PLUGIN_INIT_SYMBOL vp_builtin_dir_init
#define VP_PLUGIN_EXPORT
#include "../../plugins/dir/dir.c"
