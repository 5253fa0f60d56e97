/* itest_ssh.c: lib/ssh/ against a real sshd test host: host keys, exec, SFTP operations, push, resume, refusals. */
/*
 * The suite brings up one throw-away host with scripts/test-hosts-up.sh (its own run dir, port
 * and user prefix, so it never meets test_ssh_push.sh's hosts) and takes it down at the end.
 * Paths on the host are under /var/lib/vdipool, which is the host's own directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ssh/ssh_int.h"
#include "util/fs.h"
#include "util/run.h"
#include "vdipool/error.h"
#include "vp_test.h"

#define MiB (1024ull * 1024)
#define RROOT "/var/lib/vdipool/itest"

static char run[128], src[512], kh[256], id[256];
static int port = 22500, lock_fd = -1;
static bool up;

static int hosts(const char *script)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), "VP_TEST_HOSTS_DIR=%s VP_TEST_HOSTS_PORT=%d VP_TEST_HOSTS_USER=vpsshlib "
		 "bash %s/scripts/%s >%s.log 2>&1", run, port - 1, src, script, run);
	return system(cmd);
}

static int suite_init(void)
{
	const char *s = getenv("VP_SOURCE_DIR");

	if (getuid() != 0) {
		fprintf(stderr, "itest_ssh: needs root (users, namespaces); skipped\n");
		return 0;
	}
	lock_fd = open("/tmp/vp-itest.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0)
		return -1;
	snprintf(src, sizeof(src), "%s", s ? s : "..");
	snprintf(run, sizeof(run), "/var/tmp/vp-itest-sshlib-%d", (int)getpid());
	snprintf(kh, sizeof(kh), "%s/known_hosts", run);
	snprintf(id, sizeof(id), "%s/id_ed25519", run);
	if (hosts("test-hosts-up.sh 1") != 0) {
		fprintf(stderr, "itest_ssh: test-hosts-up.sh failed, see %s.log\n", run);
		hosts("test-hosts-down.sh");
		return -1;
	}
	up = true;
	return 0;
}

static int suite_clean(void)
{
	char log[160];

	if (up)
		hosts("test-hosts-down.sh");
	snprintf(log, sizeof(log), "%s.log", run);
	unlink(log);
	if (lock_fd >= 0)
		close(lock_fd);
	return 0;
}

static vp_ssh *conn(const char *known_hosts)
{
	vp_ssh_opts o = { .host = "127.0.0.1", .port = port, .user = "vpsshlib1", .identity = id,
			  .known_hosts = known_hosts ? known_hosts : kh, .timeout = 20 };
	vp_ssh *s = NULL;

	if (vp_ssh_connect(&s, &o) < 0)
		fprintf(stderr, "\n  connect: %s\n", vp_error_last()->message);
	return s;
}

#define NEED_HOST() do { if (!up) return; } while (0)

static void test_connect_and_keys(void)
{
	vp_run_result r = { 0 };
	char pub[256], bad_kh[300];
	vp_ssh *s;
	FILE *f;

	NEED_HOST();
	s = conn(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	snprintf(pub, sizeof(pub), "%s/host1/ssh_host_ed25519_key.pub", run);
	CU_ASSERT_EQUAL_FATAL(vp_run_ok((const char *[]){ "ssh-keygen", "-lf", pub, NULL }, NULL, &r), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.out.data, vp_ssh_fingerprint(s)));
	CU_ASSERT_EQUAL(strncmp(vp_ssh_fingerprint(s), "SHA256:", 7), 0);
	CU_ASSERT(strlen(vp_ssh_cipher(s)) > 0);
	CU_ASSERT_FALSE(vp_ssh_compressed(s));
	vp_run_result_release(&r);
	vp_ssh_free(s);

	/* A known_hosts file without this host: refused, fingerprint and file in the message. */
	snprintf(bad_kh, sizeof(bad_kh), "%s/empty_known_hosts", run);
	f = fopen(bad_kh, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
	{
		vp_ssh_opts o = { .host = "127.0.0.1", .port = port, .user = "vpsshlib1", .identity = id,
				  .known_hosts = bad_kh };
		int rc = vp_ssh_connect(&s, &o);

		CU_ASSERT_EQUAL(rc, VP_ECONFLICT);
		CU_ASSERT_PTR_NULL(s);
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "is not known"));
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, bad_kh));
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "SHA256:"));
		o.known_hosts = "/nonexistent/known_hosts";
		CU_ASSERT(vp_ssh_connect(&s, &o) < 0);
		CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "'/nonexistent/known_hosts'"));
		o.known_hosts = kh;
		o.compress = true;
		CU_ASSERT_EQUAL_FATAL(vp_ssh_connect(&s, &o), 0);
		CU_ASSERT_TRUE(vp_ssh_compressed(s)); /* the test hosts allow Compression */
		vp_ssh_free(s);
	}
}

static void test_exec(void)
{
	vp_ssh_exec_result r;
	const char *odd = "it's a $HOME `id` \"x\" \\ ; |";
	char *q = vp_ssh_quote(odd), *cmd = vp_strdup_printf("printf %%s %s", q);
	vp_ssh *s;
	double t0;

	NEED_HOST();
	s = conn(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_exec(s, "echo out; echo err >&2; exit 3", 0, &r), 0);
	VP_ASSERT_STR_EQ(r.out, "out\n");
	VP_ASSERT_STR_EQ(r.err, "err\n");
	CU_ASSERT_EQUAL(r.exit_status, 3);
	CU_ASSERT_STRING_EQUAL(r.exit_signal, "");
	vp_ssh_exec_result_release(&r);

	CU_ASSERT_EQUAL_FATAL(vp_ssh_exec(s, cmd, 0, &r), 0); /* quoting survives the shell */
	VP_ASSERT_STR_EQ(r.out, odd);
	vp_ssh_exec_result_release(&r);

	CU_ASSERT_EQUAL_FATAL(vp_ssh_exec(s, "head -c 3000000 /dev/zero; head -c 70000 /dev/zero >&2", 0, &r), 0);
	CU_ASSERT_EQUAL(r.out_len, 3000000);
	CU_ASSERT_EQUAL(r.err_len, 70000);
	vp_ssh_exec_result_release(&r);

	CU_ASSERT_EQUAL_FATAL(vp_ssh_exec(s, "kill -KILL $$", 0, &r), 0);
	CU_ASSERT_STRING_EQUAL(r.exit_signal, "KILL");
	vp_ssh_exec_result_release(&r);

	t0 = vp_now();
	CU_ASSERT(vp_ssh_exec(s, "sleep 30", 1.5, &r) < 0);
	CU_ASSERT(vp_now() - t0 < 5);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, "did not finish in time"));
	vp_ssh_free(s);
	free(q);
	free(cmd);
}

static void test_sftp_ops(void)
{
	vp_ssh_stat st;
	char **names = NULL;
	char *text = NULL;
	size_t n = 0, len = 0;
	vp_ssh *s;

	NEED_HOST();
	s = conn(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_mkdir_p(s, RROOT "/ops/a/b", 0755), 0);
	CU_ASSERT_EQUAL(vp_ssh_mkdir_p(s, RROOT "/ops/a/b", 0755), 0); /* again: fine */
	CU_ASSERT_EQUAL_FATAL(vp_ssh_stat_path(s, RROOT "/ops/a/b", &st), 0);
	CU_ASSERT_TRUE(S_ISDIR(st.mode));
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/ops/nothing", &st), VP_ENOENT);

	CU_ASSERT_EQUAL_FATAL(vp_ssh_write_file(s, RROOT "/ops/f1", "hello\n", 6, 0640), 0);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_read_file(s, RROOT "/ops/f1", 100, &text, &len), 0);
	CU_ASSERT_EQUAL(len, 6);
	VP_ASSERT_STR_EQ(text, "hello\n");
	free(text);
	CU_ASSERT(vp_ssh_read_file(s, RROOT "/ops/f1", 3, &text, &len) < 0); /* over max */
	CU_ASSERT_EQUAL(vp_ssh_write_file(s, RROOT "/ops/f2", "x", 1, 0644), 0);
	CU_ASSERT_EQUAL(vp_ssh_mkdir_p(s, RROOT "/ops/f2/sub", 0755), VP_ECONFLICT); /* a file */

	CU_ASSERT_EQUAL(vp_ssh_rename(s, RROOT "/ops/f1", RROOT "/ops/f2"), VP_EEXIST); /* never replaces */
	CU_ASSERT_EQUAL(vp_ssh_rename(s, RROOT "/ops/f1", RROOT "/ops/f3"), 0);
	CU_ASSERT_EQUAL(vp_ssh_chmod(s, RROOT "/ops/f3", 0444), 0);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_stat_path(s, RROOT "/ops/f3", &st), 0);
	CU_ASSERT_EQUAL(st.mode & 07777, 0444);
	CU_ASSERT_EQUAL(st.size, 6);

	CU_ASSERT_EQUAL_FATAL(vp_ssh_list_dir(s, RROOT "/ops", &names, &n), 0);
	CU_ASSERT_EQUAL(n, 3); /* a f2 f3 */
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	CU_ASSERT_EQUAL(vp_ssh_unlink(s, RROOT "/ops/none"), 0); /* missing: fine */
	CU_ASSERT_EQUAL(vp_ssh_rmdir_files(s, RROOT "/ops/a/b"), 0);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/ops/a/b", &st), VP_ENOENT);
	vp_ssh_free(s);
}

/* A local sparse file: 8 MiB with data at 0, 3 MiB and 7 MiB; its SHA-256 into hex. */
static void make_sparse(const char *path, unsigned char seed, char hex[65])
{
	unsigned char buf[MiB / 2], md[32];
	static const uint64_t at[] = { 0, 3 * MiB, 7 * MiB };
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned mdlen;

	CU_ASSERT_FATAL(fd >= 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 31 + seed);
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(pwrite(fd, buf, sizeof(buf), (off_t)at[i]), (ssize_t)sizeof(buf));
	CU_ASSERT_EQUAL(ftruncate(fd, 8 * MiB), 0);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	for (uint64_t off = 0; off < 8 * MiB; off += sizeof(buf)) {
		CU_ASSERT_EQUAL(pread(fd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
		EVP_DigestUpdate(ctx, buf, sizeof(buf));
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	EVP_MD_CTX_free(ctx);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	close(fd);
}

static void test_push(void)
{
	char local[200], sha[65], other[65];
	vp_ssh_push_opts o = { .sha256 = sha, .window = 256 * 1024, .checkpoint = MiB };
	vp_ssh_push_result res;
	vp_ssh_exec_result r;
	vp_ssh_stat st;
	vp_ssh *s;

	NEED_HOST();
	snprintf(local, sizeof(local), "%s/sparse.img", run);
	make_sparse(local, 7, sha);
	s = conn(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_mkdir_p(s, RROOT "/push", 0755), 0);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_push_file(s, local, RROOT "/push/a.img", &o, &res), 0);
	CU_ASSERT_EQUAL(res.size, 8 * MiB);
	CU_ASSERT_EQUAL(res.data, 3 * MiB / 2);
	CU_ASSERT_EQUAL(res.sent, 3 * MiB / 2);
	CU_ASSERT_EQUAL(res.resumed, 0);
	VP_ASSERT_STR_EQ(res.sha256, sha);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_stat_path(s, RROOT "/push/a.img", &st), 0);
	CU_ASSERT_EQUAL(st.mode & 07777, 0444);
	CU_ASSERT_EQUAL(st.size, 8 * MiB);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.a.img.part", &st), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.a.img.part.state", &st), VP_ENOENT);
	CU_ASSERT_EQUAL_FATAL(vp_ssh_exec(s, "stat -c %b*%B " RROOT "/push/a.img", 0, &r), 0);
	CU_ASSERT(strtoull(r.out, NULL, 10) * strtoull(strchr(r.out, '*') + 1, NULL, 10) <= 2 * MiB);
	vp_ssh_exec_result_release(&r);
	CU_ASSERT_EQUAL(vp_ssh_sha256(s, RROOT "/push/a.img", other), 0);
	VP_ASSERT_STR_EQ(other, sha);

	/* Never over an existing file; bad arguments refused. */
	CU_ASSERT_EQUAL(vp_ssh_push_file(s, local, RROOT "/push/a.img", &o, NULL), VP_EEXIST);
	CU_ASSERT_EQUAL(vp_ssh_push_file(s, local, "push/rel.img", &o, NULL), VP_EINVAL);
	o.sha256 = "abc";
	CU_ASSERT_EQUAL(vp_ssh_push_file(s, local, RROOT "/push/b.img", &o, NULL), VP_EINVAL);

	/* A wrong expected hash: refused with both hashes, nothing left behind. */
	memset(other, 'e', 64);
	other[64] = '\0';
	o.sha256 = other;
	CU_ASSERT_EQUAL(vp_ssh_push_file(s, local, RROOT "/push/b.img", &o, &res), VP_EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, sha));
	CU_ASSERT_PTR_NOT_NULL(strstr(vp_error_last()->message, other));
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/b.img", &st), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.b.img.part", &st), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.b.img.part.state", &st), VP_ENOENT);
	vp_ssh_free(s);
}

/* Cut after ~1.2 MB on the wire (VDIPOOL_TEST_SSH_CUT_AFTER, test builds only), then resume. */
static void test_resume(void)
{
	char local[200], sha[65];
	vp_ssh_push_opts o = { .sha256 = sha, .window = 128 * 1024, .checkpoint = 256 * 1024 };
	vp_ssh_push_result res;
	vp_ssh_stat st;
	vp_ssh *s;

	NEED_HOST();
	snprintf(local, sizeof(local), "%s/sparse2.img", run);
	make_sparse(local, 9, sha);
	setenv("VDIPOOL_TEST_SSH_CUT_AFTER", "1200000", 1);
	s = conn(NULL);
	unsetenv("VDIPOOL_TEST_SSH_CUT_AFTER");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT(vp_ssh_push_file(s, local, RROOT "/push/r.img", &o, &res) < 0);
	CU_ASSERT(res.sent < 3 * MiB / 2);
	vp_ssh_free(s);

	s = conn(NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.r.img.part.state", &st), 0);
	/* As a push killed while it replaced its record leaves it: the record only in
	 * STATE.new (between the unlink of STATE and the rename), STATE gone. */
	{
		char *text = NULL;

		CU_ASSERT_EQUAL_FATAL(vp_ssh_read_file(s, RROOT "/push/.r.img.part.state", 4096, &text, NULL), 0);
		CU_ASSERT_EQUAL(vp_ssh_write_file(s, RROOT "/push/.r.img.part.state.new", text, strlen(text),
						  0600), 0);
		CU_ASSERT_EQUAL(vp_ssh_unlink(s, RROOT "/push/.r.img.part.state"), 0);
		free(text);
	}
	CU_ASSERT_EQUAL_FATAL(vp_ssh_push_file(s, local, RROOT "/push/r.img", &o, &res), 0);
	CU_ASSERT(res.resumed >= 512 * 1024);
	CU_ASSERT_EQUAL(res.resumed + res.sent, res.data);
	VP_ASSERT_STR_EQ(res.sha256, sha);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.r.img.part.state", &st), VP_ENOENT);
	CU_ASSERT_EQUAL(vp_ssh_stat_path(s, RROOT "/push/.r.img.part.state.new", &st), VP_ENOENT);

	/* A record for another image is not trusted: a fresh push of other content starts at 0. */
	make_sparse(local, 11, sha);
	CU_ASSERT_EQUAL(vp_ssh_write_file(s, RROOT "/push/.q.img.part", "junk", 4, 0600), 0);
	{
		vp_push_state stt = { .size = 8 * MiB, .data = 3 * MiB / 2, .done = 8 * MiB };
		char *text;

		memset(stt.sha256, 'a', 64);
		text = vp_push_state_format(&stt);
		CU_ASSERT_EQUAL(vp_ssh_write_file(s, RROOT "/push/.q.img.part.state", text, strlen(text), 0600), 0);
		free(text);
	}
	CU_ASSERT_EQUAL_FATAL(vp_ssh_push_file(s, local, RROOT "/push/q.img", &o, &res), 0);
	CU_ASSERT_EQUAL(res.resumed, 0);
	CU_ASSERT_EQUAL(res.sent, res.data);
	vp_ssh_free(s);
}

static CU_TestInfo ssh_tests[] = {
	{ "connect, fingerprint, unknown key, compression", test_connect_and_keys },
	{ "exec: output, status, signal, quoting, timeout", test_exec },
	{ "sftp: mkdir -p, files, rename never replaces, chmod, list", test_sftp_ops },
	{ "push: sparse, read-only, checked; refusals", test_push },
	{ "push: cut and resumed (record only in STATE.new too); foreign record ignored", test_resume },
	CU_TEST_INFO_NULL,
};

static CU_SuiteInfo suites[] = {
	{ "ssh_host", suite_init, suite_clean, NULL, NULL, ssh_tests },
	CU_SUITE_INFO_NULL,
};

VP_TEST_MAIN(suites)
