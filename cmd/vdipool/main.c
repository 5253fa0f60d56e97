/* placeholder, replaced by the command table */
#include <stdio.h>
#include "vdipool/version.h"
int main(void) { printf("vdipool %s\n", vp_version()); return 0; }
