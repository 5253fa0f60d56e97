/* fs.h: durable file helpers: temp names, fsync of files and directories, atomic replace. */
#ifndef VP_UTIL_FS_H
#define VP_UTIL_FS_H

#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* mkdir -p with the given mode for created directories. */
int vp_fs_mkdir_p(const char *path, mode_t mode);

/* fsync the directory that holds `path` (so a rename in it is durable). */
int vp_fs_fsync_parent(const char *path);
int vp_fs_fsync_dir(const char *dir);

/* A temporary name beside `path`: "<dir>/.<base>.tmp.<pid>.<n>"; caller frees. */
char *vp_fs_tmpname(const char *path);

/* Writes data to path atomically: temp file, fsync, rename, fsync directory. */
int vp_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Removes the temporaries vp_fs_write_atomic left for `path` when its writer was killed
 * (".NAME.tmp.PID.N" beside it whose PID is gone); best effort, no error. */
void vp_fs_sweep_tmp(const char *path);

/* Reads a whole file (up to max bytes) into a NUL-terminated buffer. */
int vp_fs_read_all(const char *path, size_t max, char **out, size_t *len);

/* Write all of buf at offset, retrying short writes; records an OS error naming `what`. */
int vp_fs_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what);
int vp_fs_pread_all(int fd, void *buf, size_t len, uint64_t off, const char *what);

/* 1 if path exists, 0 if not (lstat). */
int vp_fs_exists(const char *path);

/* Removes a directory tree (no symlink following). */
int vp_fs_rm_rf(const char *path);

/* Bytes actually allocated on disk (st_blocks * 512). */
int vp_fs_disk_usage(const char *path, uint64_t *out);

/* Reads the allocated ranges of a file (SEEK_DATA/SEEK_HOLE; the whole file where the file
 * system cannot tell) into the page cache: posix_fadvise(WILLNEED) on each range so the kernel
 * queues them all, then a pass of reads that waits until they are in. Holes are never read.
 * *bytes (optional): bytes of data warmed. For a base image before many clones boot from it. */
int vp_fs_warm(const char *path, uint64_t *bytes);

#endif
