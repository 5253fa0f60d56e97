/* generated: common.h must compile alone */
#include "vdipool/common.h"
#include "vdipool/common.h"
int vp_header_test_common(void);
int vp_header_test_common(void) { return 0; }
