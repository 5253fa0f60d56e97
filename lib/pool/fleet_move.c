/* fleet_move.c: moving clones between hosts (`vdipool rebalance`), and finishing a move an
 * interruption cut. A move keeps the clone's identity (its UUID and MAC come from the pool and
 * its name, so the new host defines the same ones) and its persistent data disk, which is
 * copied to the new host and checked by SHA-256 there before the clone is made; the old copy
 * goes only after the clone runs on the new host. The system delta is made fresh on the new
 * host, as a rebase would. The placement record says "NAME INDEX NEWHOST from=OLDHOST" while a
 * move is in progress, so the next apply copies the data disk before it makes the clone. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool/fleet_int.h"
#include "util/fs.h"

#define CHUNK (4u << 20)

static int nomem(void)
{
	return vp_error_set(VP_ERR_NOMEM, VP_ENOMEM, "out of memory");
}

/* SHA-256 of a local file, lowercase hex. */
static int sha256_file(const char *path, char hex[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned dlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	char *buf = malloc(CHUNK);
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t got;

	if (fd < 0)
		rc = vp_error_set_os(errno, "cannot open '%s'", path);
	else if (!md || !buf || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
		rc = nomem();
	while (rc == 0 && (got = read(fd, buf, CHUNK)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = vp_error_set_os(errno, "cannot read '%s'", path);
		else if (!EVP_DigestUpdate(md, buf, (size_t)got))
			rc = vp_error_set(VP_ERR_STORE, VP_EIO, "sha256 of '%s' failed", path);
	}
	if (rc == 0 && (!EVP_DigestFinal_ex(md, digest, &dlen) || dlen != 32))
		rc = vp_error_set(VP_ERR_STORE, VP_EIO, "sha256 of '%s' failed", path);
	for (unsigned i = 0; rc == 0 && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	if (fd >= 0)
		close(fd);
	free(buf);
	EVP_MD_CTX_free(md);
	return rc;
}

static bool all_zero(const char *b, size_t n)
{
	return n == 0 || (b[0] == 0 && !memcmp(b, b + 1, n - 1));
}

/* Copies remote `path` to the new local file `local` (0600), leaving zero blocks as holes. */
static int download(vp_ssh *s, const char *path, const char *local)
{
	vp_ssh_file *rf = NULL;
	uint64_t size = 0;
	char *buf = malloc(CHUNK);
	int fd = -1, rc;

	if (!buf)
		return nomem();
	if ((rc = vp_ssh_file_open(s, path, &rf, &size)) < 0)
		goto out;
	if ((fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		rc = vp_error_set_os(errno, "cannot create '%s'", local);
		goto out;
	}
	for (uint64_t off = 0; off < size && rc == 0; off += CHUNK) {
		size_t n = size - off < CHUNK ? (size_t)(size - off) : CHUNK;

		if ((rc = vp_ssh_file_pread(rf, buf, n, off)) == 0 && !all_zero(buf, n))
			rc = vp_fs_pwrite_all(fd, buf, n, off, local);
	}
	if (rc == 0 && (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0))
		rc = vp_error_set_os(errno, "cannot write '%s'", local);
out:
	if (rf)
		vp_ssh_file_close(rf);
	if (fd >= 0)
		close(fd);
	if (rc < 0 && fd >= 0)
		unlink(local);
	free(buf);
	return rc;
}

/* The data disk's file name on a host: the dir layout, the same everywhere. */
static char *data_path(const vp_fleet *f, const char *clone, const char *tmp)
{
	const vp_spec_tier *t = f->spec->data_disk.tier ? f->spec->data_disk.tier : f->spec->storage.deltas;

	return tmp ? vp_strdup_printf("%s/data/%s/.%s.qcow2.tmp.%ld.%s", t->path, f->spec->pool, clone,
				      (long)getpid(), tmp)
		   : vp_strdup_printf("%s/data/%s/%s.qcow2", t->path, f->spec->pool, clone);
}

/* Uploads local file `local` as the clone's data disk on remote host `to`: a temporary
 * name, the hash checked there, then the rename. */
static int upload(vp_fleet *f, size_t to, const char *clone, const char *local, const char *sha)
{
	VP_AUTOFREE char *tmp = data_path(f, clone, "move");
	VP_AUTOFREE char *dst = data_path(f, clone, NULL);
	VP_AUTOFREE char *dir = NULL;
	char there[65];
	vp_ssh *s = NULL;
	int rc;

	if (!tmp || !dst || !(dir = vp_strdup(dst)))
		return nomem();
	*strrchr(dir, '/') = '\0';
	if ((rc = fleet_ssh_connect(f, to, &s)) < 0 || (rc = vp_ssh_mkdir_p(s, dir, 0700)) < 0 ||
	    (rc = vp_ssh_upload_sparse(s, local, tmp, 0600, 0)) < 0 || (rc = vp_ssh_sha256(s, tmp, there)) < 0)
		goto out;
	if (strcmp(there, sha)) {
		vp_ssh_unlink(s, tmp);
		rc = vp_error_set(VP_ERR_SSH, VP_EIO, "clone '%s': its data disk arrived damaged on host "
				  "'%s' (sha256 %.16s..., sent %.16s...); nothing was changed", clone,
				  f->hosts[to].name, there, sha);
		goto out;
	}
	rc = vp_ssh_rename(s, tmp, dst);
out:
	vp_ssh_free(s);
	return rc;
}

/* Copies the clone's data disk from host `from` to host `to`, checked end to end. Both local:
 * one store, nothing to copy. */
static int copy_data(vp_fleet *f, const fleet_clone *c, bool *same_store)
{
	const vp_fleet_host *src = &f->hosts[c->from], *dst = &f->hosts[c->host];
	vp_pool *sp = src->pool, *dp = dst->pool;
	vp_image_info si, di;
	char sha[65], there[65], local[4096] = "";
	vp_ssh *s = NULL;
	int rc;

	*same_store = !src->remote && !dst->remote;
	if (*same_store)
		return 0;
	rc = dp->data.ops->delta_stat(dp->data.handle, VP_DISK_DATA, f->spec->pool, c->name, &di);
	if (rc == 0)
		return 0; /* arrived in full before (published by rename) */
	vp_error_clear();
	if ((rc = sp->data.ops->delta_stat(sp->data.handle, VP_DISK_DATA, f->spec->pool, c->name, &si)) < 0) {
		vp_error_prefix("clone '%s' moves from host '%s': its data disk", c->name, src->name);
		return rc;
	}
	if (!src->remote) {
		snprintf(local, sizeof(local), "%s", si.location);
	} else {
		int fd;

		/* Through this machine: hosts need no keys to one another. */
		snprintf(local, sizeof(local), "/var/tmp/vdipool-move-%s-XXXXXX", c->name);
		if ((fd = mkstemp(local)) < 0)
			return vp_error_set_os(errno, "cannot create a temporary file in /var/tmp");
		close(fd);
		unlink(local);
		if ((rc = fleet_ssh_connect(f, c->from, &s)) < 0 || (rc = download(s, si.location, local)) < 0 ||
		    (rc = vp_ssh_sha256(s, si.location, there)) < 0)
			goto out;
	}
	if ((rc = sha256_file(local, sha)) < 0)
		goto out;
	if (src->remote && strcmp(sha, there)) {
		rc = vp_error_set(VP_ERR_SSH, VP_EIO, "clone '%s': its data disk from host '%s' arrived "
				  "damaged; nothing was changed", c->name, src->name);
		goto out;
	}
	if (dst->remote) {
		rc = upload(f, c->host, c->name, local, sha);
	} else {
		VP_AUTOFREE char *dstp = data_path(f, c->name, NULL);
		VP_AUTOFREE char *dir = dstp ? vp_strdup(dstp) : NULL;

		if (!dstp || !dir) {
			rc = nomem();
			goto out;
		}
		*strrchr(dir, '/') = '\0';
		/* Into place on this machine: the temporary file is ours, on the same filesystem or not. */
		if ((rc = vp_fs_mkdir_p(dir, 0700)) == 0 && rename(local, dstp) < 0) {
			if (errno != EXDEV)
				rc = vp_error_set_os(errno, "cannot move '%s' to '%s'", local, dstp);
			else
				rc = vp_error_set(VP_ERR_STORE, VP_ENOTSUP, "'%s' and '%s' are on different "
						  "filesystems; set TMPDIR on the store's", local, dstp);
		}
		if (rc == 0) {
			local[0] = '\0';
			rc = vp_fs_fsync_parent(dstp);
		}
	}
out:
	if (src->remote && local[0])
		unlink(local);
	vp_ssh_free(s);
	if (rc < 0)
		vp_error_prefix("moving clone '%s' from host '%s' to host '%s'", c->name, src->name, dst->name);
	return rc;
}

/* Takes the clone out of its host's plan: it cannot be made there yet. */
static void hold_clone(vp_fleet_host *h, const char *name, const char *why)
{
	for (size_t k = 0; h->plan && k < h->plan->count; k++) {
		vp_plan_item *it = &h->plan->items[k];

		if (strcmp(it->name, name))
			continue;
		it->steps = 0;
		it->wave = 0;
		it->change = VP_CHANGE_NONE;
		it->reason = why;
	}
}

int fleet_finish_moves(vp_fleet *f)
{
	for (size_t i = 0; i < f->nclones; i++) {
		fleet_clone *c = &f->clones[i];
		bool same;
		int rc;

		if (c->from < 0 || c->host < 0)
			continue;
		if (c->from == c->host) {
			c->from = -1; /* the move was undone: the clone is where it was */
			continue;
		}
		if (!f->spec->data_disk.size)
			continue;
		if (!f->hosts[c->host].reachable)
			continue;
		if (!f->hosts[c->from].reachable) {
			/* Its data is on a host we cannot reach: never make it empty elsewhere. */
			hold_clone(&f->hosts[c->host], c->name, "waits for its data disk on an unreachable host");
			continue;
		}
		if ((rc = copy_data(f, c, &same)) < 0) {
			fleet_host_error(&f->hosts[c->host], NULL);
			hold_clone(&f->hosts[c->host], c->name, "its data disk could not be copied");
			continue;
		}
		/* The plan was made before the copy: the clone's data disk is there now. */
		for (size_t k = 0; f->hosts[c->host].plan && k < f->hosts[c->host].plan->count; k++) {
			vp_plan_item *it = &f->hosts[c->host].plan->items[k];

			if (!strcmp(it->name, c->name) && (it->steps & VP_STEP_CREATE_DATA)) {
				it->steps &= ~(unsigned)VP_STEP_CREATE_DATA;
				it->keeps_data = true;
			}
		}
	}
	return 0;
}

int fleet_moves_after(vp_fleet *f)
{
	bool changed = false;

	for (size_t i = 0; i < f->nclones; i++) {
		fleet_clone *c = &f->clones[i];
		vp_fleet_host *dst, *src;
		vp_virt_domain d;
		int rc;

		if (c->from < 0 || c->host < 0 || c->from == c->host)
			continue;
		dst = &f->hosts[c->host];
		src = &f->hosts[c->from];
		if (!dst->reachable || !src->reachable || dst->error[0] || src->error[0])
			continue;
		/* Only once the clone is defined on its new host does the old data disk go. */
		if (vp_virt_lookup(dst->pool->virt, c->name, &d) < 0) {
			vp_error_clear();
			continue;
		}
		vp_virt_domain_release(&d);
		if (f->spec->data_disk.size && (src->remote || dst->remote)) {
			rc = src->pool->data.ops->delta_remove(src->pool->data.handle, VP_DISK_DATA,
								f->spec->pool, c->name);
			if (rc < 0 && rc != VP_ENOENT) {
				fleet_host_error(src, "cannot remove the old data disk of a moved clone");
				continue;
			}
		}
		c->from = -1;
		changed = true;
	}
	return changed ? fleet_write_record(f, false) : 0;
}

/* ---- rebalance ------------------------------------------------------------------- */

int vp_fleet_rebalance_plan(vp_fleet *f, size_t max_moves)
{
	vp_placement_input in = { vp_fleet_policy(f), f->n, f->phosts, f->npclones, f->pclones };

	vp_placement_moves_free(f->moves);
	f->moves = NULL;
	if (vp_fleet_has_changes(f) || vp_fleet_unplaced_count(f))
		return vp_error_set(VP_ERR_PLAN, VP_ECONFLICT,
				    "pool '%s' does not match its spec yet: run 'vdipool apply' first (a "
				    "rebalance moves clones that exist)", f->spec->pool);
	return vp_placement_rebalance(&f->moves, &in, max_moves);
}

size_t vp_fleet_move_count(const vp_fleet *f)
{
	return f->moves ? f->moves->count : 0;
}

const vp_placement_move *vp_fleet_move_at(const vp_fleet *f, size_t i)
{
	return f->moves && i < f->moves->count ? &f->moves->moves[i] : NULL;
}

size_t vp_fleet_moves_pending(const vp_fleet *f)
{
	return f->moves ? f->moves->pending : 0;
}

/* Plans and applies host i as its clones now stand. */
static int apply_host(vp_fleet *f, size_t i, const vp_apply_opts *opts, vp_exec_result *acc)
{
	vp_fleet_host *h = &f->hosts[i];
	vp_exec_result r;
	int rc;

	vp_plan_free(h->plan);
	h->plan = NULL;
	if ((rc = fleet_refresh_host(f, i)) < 0 || (rc = vp_pool_plan(h->pool, -1, &h->plan)) < 0) {
		fleet_host_error(h, NULL);
		return rc;
	}
	rc = vp_pool_apply(h->pool, h->plan, opts, &r);
	acc->done += r.done;
	acc->failed += r.failed;
	if (!acc->first_error[0])
		snprintf(acc->first_error, sizeof(acc->first_error), "%s", r.first_error);
	if (rc == 0 && r.failed)
		rc = vp_error_set(VP_ERR_EXEC, VP_EIO, "%s", r.first_error);
	if (rc < 0)
		fleet_host_error(h, NULL);
	return rc;
}

int vp_fleet_rebalance(vp_fleet *f, const vp_apply_opts *opts, vp_fleet_result *res)
{
	size_t budget = fleet_budget(f), total = vp_fleet_move_count(f);
	bool *touched = calloc(f->n + 1, sizeof(bool));
	int rc = 0;

	memset(res, 0, sizeof(*res));
	if (!touched)
		return nomem();
	for (size_t w = 0; w < total && rc == 0; w += budget) {
		size_t end = w + budget < total ? w + budget : total;

		/* 1. On record first: a cut anywhere after this is finished by the next apply. */
		for (size_t k = w; k < end; k++) {
			const vp_placement_move *m = &f->moves->moves[k];
			fleet_clone *c = fleet_clone_get(f, m->clone);

			c->from = (long)m->from;
			c->host = (long)m->to;
		}
		if ((rc = fleet_write_record(f, false)) < 0)
			break;
		/* 2. The old hosts stop and undefine the clones (their data disks stay). */
		memset(touched, 0, f->n * sizeof(bool));
		for (size_t k = w; k < end; k++)
			touched[f->moves->moves[k].from] = true;
		for (size_t i = 0; i < f->n && rc == 0; i++)
			if (touched[i])
				rc = apply_host(f, i, opts, &res->exec);
		if (rc < 0)
			break;
		/* 3. The new hosts: the base, the data disks, then the clones. */
		memset(touched, 0, f->n * sizeof(bool));
		for (size_t k = w; k < end; k++)
			touched[f->moves->moves[k].to] = true;
		for (size_t i = 0; i < f->n && rc == 0; i++) {
			if (!touched[i])
				continue;
			if ((rc = fleet_refresh_host(f, i)) < 0)
				break;
			if (f->hosts[i].remote && !f->hosts[i].base_present && (rc = fleet_push_base(f, i)) < 0)
				break;
		}
		for (size_t k = w; k < end && rc == 0; k++) {
			fleet_clone *c = fleet_clone_get(f, f->moves->moves[k].clone);
			bool same;

			if (f->spec->data_disk.size && (rc = copy_data(f, c, &same)) < 0)
				fleet_host_error(&f->hosts[c->host], NULL);
		}
		for (size_t i = 0; i < f->n && rc == 0; i++)
			if (touched[i])
				rc = apply_host(f, i, opts, &res->exec);
		/* 4. The old data disks go once the clones are defined on their new hosts. */
		if (rc == 0)
			rc = fleet_moves_after(f);
	}
	for (size_t i = 0; i < f->n; i++)
		res->hosts_failed += f->hosts[i].error[0] != '\0';
	free(touched);
	if (rc < 0 && !vp_error_last()->message[0])
		vp_error_set(VP_ERR_EXEC, rc, "rebalance of pool '%s' stopped", f->spec->pool);
	return rc;
}
