#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "base/error.h"
#include "base/json.h"
#include "base/util.h"

Test(error, carries_errno_and_context)
{
	vs_err_t err = NULL;
	cr_assert_eq(vs_err(&err, ENOENT, "open `%s`", "/x"), -1);
	vs_err_wrap(&err, "config.json");
	cr_assert_str_eq(err->msg, "config.json: open `/x`: No such file or directory");
	cr_assert_eq(err->errnum, ENOENT);
	vs_err_free(&err);
	cr_assert_null(err);
}

Test(error, first_cause_is_kept)
{
	vs_err_t err = NULL;
	vs_err(&err, 0, "first");
	vs_err(&err, 0, "second");
	cr_assert_str_eq(err->msg, "first");
	vs_err_free(&err);
}

Test(size, parses_suffixes)
{
	uint64_t v;
	cr_assert_eq(vs_parse_size("512M", &v), 0);
	cr_assert_eq(v, 512ull << 20);
	cr_assert_eq(vs_parse_size("2GiB", &v), 0);
	cr_assert_eq(v, 2ull << 30);
	cr_assert_eq(vs_parse_size("4096", &v), 0);
	cr_assert_eq(v, 4096);
	cr_assert_eq(vs_parse_size("-1", &v), -1);
	cr_assert_eq(vs_parse_size("12Q", &v), -1);
	cr_assert_eq(vs_parse_size("", &v), -1);
	cr_assert_eq(vs_parse_size("99999999999999999999G", &v), -1);
	cr_assert_eq(vs_parse_size("17179869184G", &v), -1);
}

Test(json, strv_names_the_field)
{
	json_t *j = json_loads("{\"args\": [1]}", 0, NULL);
	char **v = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(vjson_strv(j, "process", "args", true, &v, NULL, &err), -1);
	cr_assert_str_eq(err->msg, "process.args: must be a non-empty array of strings");
	vs_err_free(&err);
	json_decref(j);
}

Test(json, absent_and_null_are_unset)
{
	json_t *j = json_loads("{\"a\": null}", 0, NULL);
	const char *s = "keep";
	vs_err_t err = NULL;
	cr_assert_eq(vjson_string(j, "", "a", &s, &err), 0);
	cr_assert_eq(vjson_string(j, "", "b", &s, &err), 0);
	cr_assert_str_eq(s, "keep");
	json_decref(j);
}

Test(json, range_is_enforced)
{
	json_t *j = json_loads("{\"n\": 70000}", 0, NULL);
	int64_t v;
	vs_err_t err = NULL;
	cr_assert_eq(vjson_int_range(j, "x", "n", 0, 65535, &v, &err), -1);
	cr_assert_str_eq(err->msg, "x.n: must be an integer from 0 to 65535");
	vs_err_free(&err);
	json_decref(j);
}

/* usock: a listening socket appears at its path only once it accepts */

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/usock.h"

static int connect_to(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	closedir(d);
	return n;
}

Test(usock, listens_leaving_only_its_path)
{
	char dir[] = "/tmp/usockXXXXXX", path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	vs_err_t err = NULL;
	int fd = vs_unix_listen(path, SOCK_CLOEXEC, 4, false, &err);
	cr_assert_geq(fd, 0, "%s", err ? err->msg : "");
	cr_assert_eq(entries(dir), 1, "the private name is gone");
	int c = connect_to(path);
	cr_assert_geq(c, 0, "connect: %s", strerror(errno));
	close(c);

	/* a live socket at the path is never replaced, stale or not asked */
	int again = vs_unix_listen(path, SOCK_CLOEXEC, 4, true, &err);
	cr_assert_eq(again, -1);
	cr_assert_eq(err->errnum, EADDRINUSE, "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(entries(dir), 1);
	c = connect_to(path);
	cr_assert_geq(c, 0, "the first listener still answers: %s", strerror(errno));
	close(c);

	/* once it is gone its file is a leftover: refused unless replace_stale */
	close(fd);
	cr_assert_eq(vs_unix_listen(path, SOCK_CLOEXEC, 4, false, &err), -1);
	cr_assert_eq(err->errnum, EADDRINUSE, "%s", err->msg);
	vs_err_free(&err);
	fd = vs_unix_listen(path, SOCK_CLOEXEC, 4, true, &err);
	cr_assert_geq(fd, 0, "%s", err ? err->msg : "");
	c = connect_to(path);
	cr_assert_geq(c, 0);
	close(c);
	close(fd);
	unlink(path);
	rmdir(dir);
}

Test(usock, refuses_a_path_too_long)
{
	char path[200];
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = 0;
	vs_err_t err = NULL;
	cr_assert_eq(vs_unix_listen(path, 0, 1, false, &err), -1);
	cr_assert_eq(err->errnum, ENAMETOOLONG, "%s", err->msg);
	vs_err_free(&err);
}

#define ROUNDS 2000

/* Round i's socket is dir/i.sock; the client takes each in turn, and its listener goes
 * only once the client is done with it (done > i), so a refusal can only be a socket
 * that was not listening yet when its file appeared. */
struct watcher {
	const char *dir;
	atomic_int done, refused;
};

/* What a client does: wait for the file, then connect at once. */
static void *watch(void *arg)
{
	struct watcher *w = arg;
	for (int i = 0; i < ROUNDS; i++) {
		char path[64];
		snprintf(path, sizeof(path), "%s/%d.sock", w->dir, i);
		struct stat st;
		while (stat(path, &st) < 0)
			;
		int c = connect_to(path);
		if (c >= 0)
			close(c);
		else
			atomic_fetch_add(&w->refused, 1);
		atomic_store(&w->done, i + 1);
	}
	return NULL;
}

Test(usock, a_client_that_sees_the_file_is_never_refused, .timeout = 60)
{
	char dir[] = "/tmp/usockXXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct watcher w = {.dir = dir};
	pthread_t t;
	pthread_create(&t, NULL, watch, &w);
	for (int i = 0; i < ROUNDS; i++) {
		char path[64];
		snprintf(path, sizeof(path), "%s/%d.sock", dir, i);
		vs_err_t err = NULL;
		int fd = vs_unix_listen(path, SOCK_CLOEXEC, 4, false, &err);
		cr_assert_geq(fd, 0, "%s", err ? err->msg : "");
		while (atomic_load(&w.done) <= i)
			sched_yield();
		close(fd);
		unlink(path);
	}
	pthread_join(t, NULL);
	cr_assert_eq(atomic_load(&w.refused), 0, "%d of %d connects refused",
		     atomic_load(&w.refused), ROUNDS);
	rmdir(dir);
}

#include <fcntl.h>
#include <sys/mount.h>

/* Sends one byte with n copies of /dev/null attached (n may be 0). */
static void send_fds(int sock, int n)
{
	int null = open("/dev/null", O_RDONLY);
	cr_assert_geq(null, 0);
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(3 * sizeof(int))];
	} c;
	memset(&c, 0, sizeof(c));
	struct iovec iov = {.iov_base = "x", .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (n) {
		m.msg_control = c.buf;
		m.msg_controllen = CMSG_SPACE((size_t)n * sizeof(int));
		struct cmsghdr *h = CMSG_FIRSTHDR(&m);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
		for (int i = 0; i < n; i++)
			memcpy(CMSG_DATA(h) + (size_t)i * sizeof(int), &null, sizeof(int));
	}
	cr_assert_eq(sendmsg(sock, &m, 0), 1);
	close(null);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

Test(recv_fd, takes_one_fd_and_refuses_more)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	char b;
	int fd;

	send_fds(sv[0], 1);
	cr_assert_eq(vs_recv_fd(sv[1], &b, 1, &fd), 1);
	cr_assert(fd >= 0 && b == 'x');
	cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "a received fd must not leak into an exec");
	close(fd);

	send_fds(sv[0], 0);
	cr_assert_eq(vs_recv_fd(sv[1], &b, 1, &fd), 1);
	cr_assert_eq(fd, -1);

	int before = open_fds();
	send_fds(sv[0], 3);
	cr_assert_eq(vs_recv_fd(sv[1], &b, 1, &fd), -1);
	cr_assert_eq(errno, EPROTO);
	cr_assert_eq(fd, -1);
	cr_assert_eq(open_fds(), before, "every fd of a refused message is closed");

	close(sv[0]);
	cr_assert_eq(vs_recv_fd(sv[1], &b, 1, &fd), 0);
	cr_assert_eq(fd, -1);
	close(sv[1]);
}

Test(remove_tree, stays_on_its_file_system_and_never_follows_a_link)
{
	/* a mount namespace of the test's own: the tmpfs below is nobody else's */
	cr_assert_eq(unshare(CLONE_NEWNS), 0, "unshare: %s", strerror(errno));
	cr_assert_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	char top[] = "/tmp/vessel-rmtree-XXXXXX", *p = NULL;
	cr_assert_not_null(mkdtemp(top));
	const char *made[] = {"t", "t/a", "t/a/b", "t/m", "outside"};
	for (size_t i = 0; i < ARRAY_SIZE(made); i++) {
		cr_assert_neq(asprintf(&p, "%s/%s", top, made[i]), -1);
		cr_assert_eq(mkdir(p, 0755), 0, "%s: %s", p, strerror(errno));
		free(p);
	}
	vs_err_t err = NULL;
	cr_assert_neq(asprintf(&p, "%s/outside/keep", top), -1);
	cr_assert_eq(vs_write_file(p, "x", 1, &err), 0);
	free(p);
	cr_assert_neq(asprintf(&p, "%s/t/a/b/file", top), -1);
	cr_assert_eq(vs_write_file(p, "x", 1, &err), 0);
	free(p);
	cr_assert_neq(asprintf(&p, "%s/t/a/link", top), -1);
	cr_assert_eq(symlink("../../outside", p), 0);
	free(p);
	char mnt[64], inside[80], tree[48], keep[64];
	snprintf(mnt, sizeof(mnt), "%s/t/m", top);
	snprintf(inside, sizeof(inside), "%s/t/m/data", top);
	snprintf(tree, sizeof(tree), "%s/t", top);
	snprintf(keep, sizeof(keep), "%s/outside/keep", top);
	cr_assert_eq(mount("tmpfs", mnt, "tmpfs", 0, NULL), 0, "%s", strerror(errno));
	cr_assert_eq(vs_write_file(inside, "x", 1, &err), 0);

	/* what is mounted under the tree is not emptied through, and is named */
	cr_assert_eq(vs_remove_tree(AT_FDCWD, tree, &err), -1);
	cr_assert_not_null(err);
	cr_assert_eq(err->errnum, EBUSY);
	cr_assert(strstr(err->msg, "`m`"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(access(inside, F_OK), 0, "a file on the mounted tmpfs was removed");

	cr_assert_eq(umount(mnt), 0);
	cr_assert_eq(vs_remove_tree(AT_FDCWD, tree, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(access(tree, F_OK), -1);
	cr_assert_eq(access(keep, F_OK), 0, "a symlink's target outside the tree was removed");
	cr_assert_eq(vs_remove_tree(AT_FDCWD, tree, &err), 0, "an absent tree is no error");
	cr_assert_eq(vs_remove_tree(AT_FDCWD, top, &err), 0);
}
