/* generated: error.h must compile alone */
#include "vdipool/error.h"
#include "vdipool/error.h"
int vp_header_test_error(void);
int vp_header_test_error(void) { return 0; }
