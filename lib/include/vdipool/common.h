/* vdipool/common.h: export macro and the error codes every libvdipool call returns. */
#ifndef VDIPOOL_COMMON_H
#define VDIPOOL_COMMON_H

#if defined(VP_BUILDING_LIBRARY) || defined(VP_BUILDING_PLUGIN)
#define VP_API __attribute__((visibility("default")))
#else
#define VP_API
#endif

#if defined(__GNUC__)
#define VP_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define VP_PRINTF(fmt, args)
#endif

/* vdipool's runtime state (the store and pool locks, the KVM probe cache): root-only (0700),
 * on tmpfs, gone at reboot. */
#define VP_RUNTIME_DIR "/run/vdipool"

/* Return codes: 0 is success, failures are negative. The message that says
 * why is kept per thread and read with vp_error_last(). */
enum vp_errcode {
	VP_OK = 0,
	VP_EGENERIC = -1, /* any failure without a more precise code */
	VP_EINVAL = -2,   /* invalid input: bad spec, bad argument, bad image */
	VP_ENOTSUP = -3,  /* not supported (yet) */
	VP_EIO = -4,      /* an I/O or OS error */
	VP_ENOMEM = -5,   /* out of memory */
	VP_ENOENT = -6,   /* the object does not exist */
	VP_EEXIST = -7,   /* the object exists already (with other content) */
	VP_EBUSY = -8,    /* in use: referenced, locked */
	VP_ECONFLICT = -9, /* an object we do not own stands in the way */
	VP_EHOST = -10    /* the host cannot do this for any clone (KVM unusable): trying others is pointless */
};

#endif
