/* vdipool/version.h: the library's version, at build time and at run time. */
#ifndef VDIPOOL_VERSION_H
#define VDIPOOL_VERSION_H

#include "vdipool/common.h"

#define VP_VERSION_MAJOR 0
#define VP_VERSION_MINOR 1
#define VP_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library actually loaded ("0.1.0"); static storage. */
VP_API const char *vp_version(void);

#ifdef __cplusplus
}
#endif
#endif
