/* The host's end of a VM-isolated process's terminal (src/vmc/term.c) over the console
 * socket code it shares with the runtime (src/base/pty.c), without a VM: the master that
 * reaches a listening socket is the pty's, of the size asked, its slave raw; a window
 * change on the master is seen once, as RESIZE's payload. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include "base/pty.h"
#include "vmc/proto.h"
#include "vmc/term.h"

static int listen_at(char *path, size_t n)
{
	char dir[] = "/tmp/vmc-term-XXXXXX";
	cr_assert(mkdtemp(dir));
	snprintf(path, n, "%s/console.sock", dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cr_assert_lt(strlen(path), sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	return fd;
}

Test(vmc_term, console_socket_gets_the_master)
{
	char path[128];
	int srv = listen_at(path, sizeof(path));
	vs_err_t err = NULL;
	int slave = vmc_term_console(path, 33, 111, &err);
	cr_assert_geq(slave, 3, "%s", err ? err->msg : "");
	int conn = accept(srv, NULL, NULL);
	cr_assert_geq(conn, 0);
	int master = vs_console_receive(conn, &err);
	cr_assert_geq(master, 0, "%s", err ? err->msg : "");

	struct winsize ws;
	cr_assert_eq(ioctl(master, TIOCGWINSZ, &ws), 0);
	cr_assert_eq(ws.ws_row, 33);
	cr_assert_eq(ws.ws_col, 111);
	struct termios t;
	cr_assert_eq(tcgetattr(slave, &t), 0);
	cr_assert_eq(t.c_lflag & (ECHO | ICANON | ISIG), 0, "the slave is raw");
	cr_assert_eq(t.c_oflag & OPOST, 0, "no output processing on the host");

	/* bytes both ways, untouched: \r stays \r, \n gets no \r */
	cr_assert_eq(write(master, "a\rb\x03", 4), 4);
	char buf[16];
	cr_assert_eq(read(slave, buf, sizeof(buf)), 4);
	cr_assert_eq(memcmp(buf, "a\rb\x03", 4), 0);
	cr_assert_eq(write(slave, "x\n", 2), 2);
	cr_assert_eq(read(master, buf, sizeof(buf)), 2);
	cr_assert_eq(memcmp(buf, "x\n", 2), 0);

	struct vmc_term_window w = {.fd = slave, .last = {33, 111, 0, 0}};
	uint8_t p[VMC_RESIZE_SIZE];
	cr_assert_not(vmc_term_resized(&w, p), "the size it started with is not a change");
	ws = (struct winsize){.ws_row = 40, .ws_col = 132};
	cr_assert_eq(ioctl(master, TIOCSWINSZ, &ws), 0);
	cr_assert(vmc_term_resized(&w, p));
	cr_assert_eq(p[0] | p[1] << 8, 40);
	cr_assert_eq(p[2] | p[3] << 8, 132);
	cr_assert_not(vmc_term_resized(&w, p), "seen once");
	struct vmc_term_window none = {.fd = -1};
	cr_assert_not(vmc_term_resized(&none, p));

	close(master);
	close(conn);
	close(slave);
	close(srv);
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

Test(vmc_term, nobody_listening)
{
	vs_err_t err = NULL;
	cr_assert_eq(vmc_term_console("/nonexistent/console.sock", 0, 0, &err), -1);
	cr_assert(err && strstr(err->msg, "/nonexistent/console.sock"), "%s", err ? err->msg : "");
	vs_err_free(&err);
}
