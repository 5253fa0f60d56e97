/* ssh_int.h: lib/ssh/ internals shared by its files and reached by the unit tests. */
#ifndef VP_SSH_INT_H
#define VP_SSH_INT_H

#include <libssh2.h>
#include <libssh2_sftp.h>
#include <stdint.h>

#include "vdipool/ssh.h"
#include "util/util.h"

struct vp_ssh {
	int sock;
	LIBSSH2_SESSION *session;
	LIBSSH2_SFTP *sftp;
	char label[320];
	char fingerprint[64];
	double timeout;
	uint64_t wire_sent, wire_recv;
#ifdef VP_TEST_HOOKS
	uint64_t cut_after; /* VDIPOOL_TEST_SSH_CUT_AFTER: drop the connection after this many bytes */
#endif
};

/* Records libssh2's last error on s's session as ours: "<what>: <libssh2 text>". */
int vp_ssh_fail(vp_ssh *s, int code, const char *fmt, ...) VP_PRINTF(3, 4);
/* The SFTP channel, opened on first use. */
LIBSSH2_SFTP *vp_ssh_sftp(vp_ssh *s);
/* Records the SFTP status of the last failure: "<what>: <status text>"; returns the code
 * (VP_ENOENT for a missing file). */
int vp_ssh_sftp_fail(vp_ssh *s, const char *fmt, ...) VP_PRINTF(2, 3);

/* "SHA256:" + unpadded base64 of the SHA-256 of a host key blob (OpenSSH's form). */
int vp_ssh_fingerprint_format(const unsigned char *key, size_t len, char *out, size_t outlen);

/* ---- extents and resume bookkeeping (push.c) ------------------------------------- */

typedef struct vp_extent {
	uint64_t off, len;
} vp_extent;

typedef struct vp_extents {
	vp_extent *v;
	size_t n, cap;
	uint64_t size;  /* file size */
	uint64_t data;  /* sum of the lengths */
} vp_extents;

/* The allocated extents of fd (SEEK_DATA/SEEK_HOLE), in order, merged when adjacent. */
int vp_extents_read(vp_extents *out, int fd, const char *what);
int vp_extents_add(vp_extents *e, uint64_t off, uint64_t len);
void vp_extents_release(vp_extents *e);
/* Data bytes of e that lie below `done` (already delivered by an earlier push). */
uint64_t vp_extents_data_below(const vp_extents *e, uint64_t done);

/* The resume record kept beside the partial file. `done`: every extent byte below
 * this file offset is on the host, acknowledged and flushed. */
typedef struct vp_push_state {
	char sha256[65];
	uint64_t size;
	uint64_t data;
	uint64_t done;
} vp_push_state;

char *vp_push_state_format(const vp_push_state *st);
/* 0, or VP_EINVAL when text is not a record of this format. */
int vp_push_state_parse(vp_push_state *st, const char *text);
/* Where a push of (sha256, e) resumes given a record read from the host (NULL: none):
 * the record's done offset when it describes the same file, else 0. */
uint64_t vp_push_resume_offset(const vp_push_state *st, const char *sha256, const vp_extents *e);

/* Parses "HEX  NAME" (sha256sum output) into out; VP_EINVAL when malformed. */
int vp_ssh_parse_sha256sum(const char *text, char out[65]);

#endif
