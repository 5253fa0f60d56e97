/* generated: version.h must compile alone */
#include "vdipool/version.h"
#include "vdipool/version.h"
int vp_header_test_version(void);
int vp_header_test_version(void) { return 0; }
