/* `vessel agent`: the init of a VM-isolated container's microVM. It mounts what a
 * runtime needs, connects to the host (vsock CID 2, VMC_PORT_MAIN), gets the container's
 * id and config.json, mounts the rootfs the host shares over virtio-fs, and creates the
 * container with vessel's own runtime (oci_cmd_create: namespaces, mounts, cgroups,
 * capabilities, seccomp from the same config.json). Then it relays the container's stdio,
 * answers START, KILL and EXEC on VMC_PORT_CONTROL (oci_cmd_start, oci_cmd_kill,
 * oci_cmd_exec; an exec's connection then takes KILL for its process), and when the
 * container exits sends its status and powers the VM off. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include <jansson.h>

#include "base/pty.h"
#include "base/usock.h"
#include "base/util.h"
#include "oci/oci.h"
#include "vmc/agent_ops.h"
#include "vmc/exec_msg.h"
#include "vmc/guest_net.h"
#include "vmc/mounts.h"
#include "vmc/proto.h"
#include "vmc/vmc.h"

#define BUNDLE "/run/vessel-bundle"
#define PID_FILE "/run/vessel-container.pid"
#define CONSOLE_SOCKET "/run/vessel-console.sock"

/* the main connection: an exec's handler (a fork) closes its copy */
static int main_conn = -1;

static void say(const char *fmt, const char *arg)
{
	/* the console: the host keeps it in the container's state directory */
	dprintf(2, "vessel-agent: ");
	dprintf(2, fmt, arg);
	dprintf(2, "\n");
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	_exit(1);
}

static int mount_basics(vs_err_t *err)
{
	static const struct {
		const char *src, *dst, *type;
	} m[] = {
	    {"proc", "/proc", "proc"},	      {"sysfs", "/sys", "sysfs"},
	    {"devtmpfs", "/dev", "devtmpfs"}, {"cgroup2", "/sys/fs/cgroup", "cgroup2"},
	    {"tmpfs", "/run", "tmpfs"},	      {"devpts", "/dev/pts", "devpts"},
	};
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		mkdir(m[i].dst, 0755);
		if (mount(m[i].src, m[i].dst, m[i].type, MS_NOSUID, NULL) < 0 && errno != EBUSY)
			return vs_err(err, errno, "mount %s on %s", m[i].type, m[i].dst);
	}
	return 0;
}

/* the default image lists its modules (virtio-mmio, vsock, virtiofs) in /etc/modules */
static void load_modules(void)
{
	FILE *f = fopen("/etc/modules", "re");
	char line[256];
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!*line)
			continue;
		pid_t pid = fork();
		if (pid == 0) {
			execl("/bin/modprobe", "modprobe", line, (char *)NULL);
			_exit(127);
		}
		int ws;
		if (pid > 0)
			waitpid(pid, &ws, 0);
	}
	if (f)
		fclose(f);
}

static int vsock_connect(unsigned port, vs_err_t *err)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = port};
	/* the transport may still be probing */
	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		struct timespec d = {0, 50000000};
		nanosleep(&d, NULL);
	}
	return vs_err(err, errno, "connect to the host (vsock CID 2 port %u)", port);
}

static int vsock_listen(unsigned port, vs_err_t *err)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 8) < 0)
		return vs_err(err, errno, "listen on vsock port %u", port);
	return fd;
}

/* CONFIG's "net": the interfaces the container's network namespace gets */
static json_t *guest_net;
/* config.json's process.terminal: the container's stdio is a pty in the guest */
static bool guest_terminal;

/* The CONFIG frame: the bundle written where the guest's runtime reads it, and the bind
 * mounts' shares and files (their FILE frames follow on conn) where its config names them. */
static int setup_bundle(const struct vmc_frame *f, int conn, struct vmc_reader *rd, char **id,
			vs_err_t *err)
{
	json_error_t je;
	json_t *msg = json_loadb((const char *)f->payload, f->len, 0, &je);
	const char *s = json_string_value(json_object_get(msg, "id"));
	json_t *config = json_object_get(msg, "config");
	int ret = -1;
	if (!s || !json_is_object(config)) {
		vs_err(err, 0, "CONFIG: not {\"id\": ..., \"config\": {...}}");
		goto out;
	}
	*id = strdup(s);
	guest_terminal =
	    json_is_true(json_object_get(json_object_get(config, "process"), "terminal"));
	mkdir(BUNDLE, 0755);
	mkdir(BUNDLE "/rootfs", 0755);
	if (mount("rootfs", BUNDLE "/rootfs", "virtiofs", 0, NULL) < 0) {
		vs_err(err, errno, "mount the shared rootfs (virtiofs) on " BUNDLE "/rootfs");
		goto out;
	}
	/* the container's network on the host, for after create (vmc/guest_net.c) */
	guest_net = json_incref(json_object_get(msg, "net"));
	if (vmc_binds_guest(msg, conn, rd, err) < 0)
		goto out;
	if (json_dump_file(config, BUNDLE "/config.json", 0) < 0) {
		vs_err(err, errno, "write " BUNDLE "/config.json");
		goto out;
	}
	ret = 0;
out:
	json_decref(msg);
	return ret;
}

static const struct vs_globals guest_globals = {.root = "/run/vessel"};

/* Runs one of the runtime's commands in the agent; its error goes to the host. */
static int runtime(int argc, char **argv, oci_command_fn fn, vs_err_t *err)
{
	optind = 0;
	return fn(&guest_globals, argc, argv, err);
}

int vmc_agent_runtime(int argc, char **argv, oci_command_fn fn, vs_err_t *err)
{
	return runtime(argc, argv, fn, err);
}

/* The runtime's command with pipes as its 0, 1, 2, which the process it starts (the
 * container's init, an exec'd process) inherits; the agent's own stdio is put back
 * after. host[] gets the ends the agent relays: the process's stdin, stdout, stderr. */
static int runtime_piped(int argc, char **argv, oci_command_fn fn, int host[3], vs_err_t *err)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		int *all[] = {in, out, errp};
		for (int i = 0; i < 3; i++)
			for (int j = 0; j < 2; j++)
				if (all[i][j] >= 0)
					close(all[i][j]);
		return vs_err(err, e, "the process's stdio: pipe");
	}
	int saved[3];
	for (int i = 0; i < 3; i++)
		saved[i] = fcntl(i, F_DUPFD_CLOEXEC, 3);
	dup2(in[0], 0);
	dup2(out[1], 1);
	dup2(errp[1], 2);
	int rc = runtime(argc, argv, fn, err);
	for (int i = 0; i < 3; i++) {
		dup2(saved[i], i);
		close(saved[i]);
	}
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	host[0] = in[1];
	host[1] = out[0];
	host[2] = errp[0];
	return rc;
}

/* The pty master the guest's runtime sent to the console socket listen_fd: it connects
 * before the process exists and sends before the command returns, so it waits there. */
static int receive_master(int listen_fd, vs_err_t *err)
{
	struct pollfd p = {.fd = listen_fd, .events = POLLIN};
	int r = poll(&p, 1, 10000);
	if (r <= 0)
		return vs_err(err, r < 0 ? errno : ETIMEDOUT,
			      "the process's terminal: the runtime never connected to the "
			      "console socket");
	cleanup_close int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return vs_err(err, errno, "the process's terminal: accept on the console socket");
	int m = vs_console_receive(c, err);
	return m < 0 ? vs_err_wrap(err, "the process's terminal") : m;
}

/* runtime_piped for a process with a terminal: the runtime's command line names the
 * console socket listen_fd listens on, and the pty master that arrives there is the
 * process's stdin and stdout in host[] (the pipes carry nothing: the process's stdio is
 * the pty's other end). *tty is the master, for the window size. */
static int runtime_tty(int argc, char **argv, oci_command_fn fn, int listen_fd, int host[3],
		       int *tty, vs_err_t *err)
{
	if (runtime_piped(argc, argv, fn, host, err) < 0)
		return -1;
	int m = receive_master(listen_fd, err);
	for (int i = 0; i < 3; i++) {
		close(host[i]);
		host[i] = -1;
	}
	if (m < 0)
		return -1;
	host[0] = fcntl(m, F_DUPFD_CLOEXEC, 3);
	if (host[0] < 0) {
		close(m);
		return vs_err(err, errno, "the process's terminal: dup");
	}
	host[1] = m;
	*tty = m;
	return 0;
}

static void answer(int fd, int rc, vs_err_t *err)
{
	vs_err_t e = NULL;
	if (rc < 0)
		vmc_send(fd, VMC_ERROR, (*err)->msg, (uint32_t)strlen((*err)->msg), &e);
	else
		vmc_send(fd, VMC_OK, NULL, 0, &e);
	vs_err_free(&e);
	vs_err_free(err);
}

static int serve(int conn, enum vmc_stream stream, struct vmc_reader *rd, int ctl, const char *id,
		 pid_t pid, const int host[3], int tty, vs_err_t *err);
static pid_t read_pid_file(const char *path);

/* An EXEC, in a fork of the agent so the container's relay goes on: the guest's own
 * `vessel exec --detach` (src/oci's exec: the container's namespaces, cgroup, seccomp)
 * with pipes as the process's stdio, then OK and the process's stdio and exit status on
 * this connection, as the main one carries the container's. Subreaper: the process is
 * ours to wait for whatever the runtime's forks do. */
static void exec_request(int fd, int listen_fd, const char *id, const struct vmc_frame *f)
{
	vs_err_t err = NULL;
	pid_t h = fork();
	if (h < 0) {
		vs_err(&err, errno, "exec: fork the agent's handler");
		answer(fd, -1, &err);
	}
	if (h != 0)
		return;
	close(listen_fd);
	close(main_conn);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* a process that closes its stdin must not kill us (PID 1 is immune, we are not);
	 * blocked, not ignored: the runtime clears the mask before the process's execve */
	sigset_t pipe_sig;
	sigemptyset(&pipe_sig);
	sigaddset(&pipe_sig, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pipe_sig, NULL);
	char pid_file[64], process_file[64], console[64];
	snprintf(pid_file, sizeof(pid_file), "/run/vessel-exec-%d.pid", (int)getpid());
	snprintf(process_file, sizeof(process_file), "/run/vessel-exec-%d.json", (int)getpid());
	snprintf(console, sizeof(console), "/run/vessel-exec-%d.sock", (int)getpid());
	struct vmc_exec_msg m;
	int argc, host[3], tty = -1, console_fd = -1;
	char **argv = NULL;
	if (vmc_exec_msg_parse(f->payload, f->len, &m, &err) < 0)
		goto fail;
	if (m.process && vs_write_file(process_file, m.process, strlen(m.process), &err) < 0)
		goto fail;
	if (m.terminal && (console_fd = vs_unix_listen(console, SOCK_CLOEXEC, 1, false, &err)) < 0)
		goto fail;
	if (!(argv = vmc_exec_argv(&m, id, pid_file, process_file, console, &argc, &err)))
		goto fail;
	int rc = m.terminal ? runtime_tty(argc, argv, oci_cmd_exec, console_fd, host, &tty, &err)
			    : runtime_piped(argc, argv, oci_cmd_exec, host, &err);
	if (console_fd >= 0) {
		close(console_fd);
		unlink(console);
	}
	unlink(process_file);
	pid_t pid = rc < 0 ? -1 : read_pid_file(pid_file);
	unlink(pid_file);
	if (rc < 0)
		goto fail;
	if (pid <= 0) {
		vs_err(&err, 0, "exec: the runtime wrote no pid");
		goto fail;
	}
	/* the request's timeout is over: the process may run for days */
	struct timeval none = {0, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	struct vmc_reader rd = {0};
	if (vmc_send(fd, VMC_OK, NULL, 0, &err) < 0 ||
	    serve(fd, VMC_STREAM_EXEC, &rd, -1, id, pid, host, tty, &err) < 0)
		say("exec: %s", err ? err->msg : "failed");
	_exit(0);
fail:
	answer(fd, -1, &err);
	_exit(1);
}

static void control(int listen_fd, const char *id)
{
	int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	struct timeval tv = {10, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct vmc_reader rd = {0};
	struct vmc_frame f;
	vs_err_t err = NULL;
	int rc = vmc_read_frame(fd, &rd, &f, &err);
	if (rc > 0 && f.type == VMC_START) {
		char *argv[] = {"start", (char *)id, NULL};
		answer(fd, runtime(2, argv, oci_cmd_start, &err), &err);
	} else if (rc > 0 && f.type == VMC_KILL) {
		char sig[16];
		snprintf(sig, sizeof(sig), "%u", vmc_frame_u32(&f));
		char *argv[] = {"kill", (char *)id, sig, NULL};
		answer(fd, runtime(3, argv, oci_cmd_kill, &err), &err);
	} else if (rc > 0 && f.type == VMC_EXEC) {
		exec_request(fd, listen_fd, id, &f);
	} else if (rc > 0 && f.type == VMC_OCI) {
		vmc_agent_oci(fd, id, &f);
	} else {
		if (rc > 0)
			vs_err(&err, 0, "agent protocol: %s on the control port",
			       vmc_type_name(f.type));
		else if (rc == 0)
			vs_err(&err, 0, "agent protocol: an empty control request");
		answer(fd, -1, &err);
	}
	vmc_reader_free(&rd);
	close(fd);
}

static pid_t read_pid_file(const char *path)
{
	char *s = NULL;
	size_t n;
	vs_err_t e = NULL;
	if (vs_read_file(path, 64, &s, &n, &e) < 0) {
		vs_err_free(&e);
		return -1;
	}
	pid_t pid = (pid_t)atoi(s);
	free(s);
	return pid;
}

static pid_t read_pid(void)
{
	return read_pid_file(PID_FILE);
}

static int forward(int conn, int fd, uint8_t type, vs_err_t *err)
{
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof(buf));
	/* a pty's master shares its non-blocking stdin's file description */
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 1;
	/* EIO from a pty's master: the process's side is closed */
	if (n <= 0)
		return 0;
	return vmc_send(conn, type, buf, (uint32_t)n, err) < 0 ? -1 : 1;
}

/* Bytes for the process's stdin that its pipe did not take yet. While some wait, no more
 * frames are read from the host (its sender waits), and the process's output is still
 * relayed: a process that writes before it reads all its input (cat) can't deadlock us. */
struct stdin_backlog {
	uint8_t *buf;
	size_t len, off;
	bool close_after; /* the host's EOF came behind them */
};

static void stdin_close(int *in, struct stdin_backlog *b)
{
	if (*in >= 0)
		close(*in);
	*in = -1;
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

/* in is non-blocking; a reader that went away (EPIPE: SIGPIPE is blocked) drops the rest */
static void stdin_flush(int *in, struct stdin_backlog *b)
{
	while (b->off < b->len) {
		ssize_t n = write(*in, b->buf + b->off, b->len - b->off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			stdin_close(in, b);
			return;
		}
		b->off += (size_t)n;
	}
	bool eof = b->close_after;
	free(b->buf);
	memset(b, 0, sizeof(*b));
	if (eof)
		stdin_close(in, b);
}

static void stdin_feed(int *in, struct stdin_backlog *b, const uint8_t *p, size_t len)
{
	if (*in < 0)
		return;
	if (len == 0) {
		b->close_after = true;
		stdin_flush(in, b);
		return;
	}
	b->buf = malloc(len);
	if (!b->buf) {
		stdin_close(in, b);
		return;
	}
	memcpy(b->buf, p, len);
	b->len = len;
	b->off = 0;
	stdin_flush(in, b);
}

/* Until process pid exits and its output is drained: stdin in, stdout/err out (host[]:
 * the process's stdin, stdout, stderr, -1 for none), control requests answered (ctl: -1
 * for none), the window size of its terminal (tty: the pty's master, or -1) set,
 * children reaped (we are PID 1, or an exec's handler, its subreaper). The container's
 * init on the main connection, an exec'd process on its control connection (stream),
 * which also brings the signals its host relay got; rd holds what was read of conn
 * already. */
static int serve(int conn, enum vmc_stream stream, struct vmc_reader *rd, int ctl, const char *id,
		 pid_t pid, const int host[3], int tty, vs_err_t *err)
{
	int in = host[0], out = host[1], errp = host[2];
	struct stdin_backlog backlog = {0};
	int status = -1;
	int ret = -1;
	if (in >= 0)
		fcntl(in, F_SETFL, fcntl(in, F_GETFL) | O_NONBLOCK);
	for (;;) {
		bool waiting = backlog.len > backlog.off;
		bool buffered = !waiting && vmc_reader_ready(rd);
		struct pollfd p[5] = {{.fd = waiting ? -1 : conn, .events = POLLIN},
				      {.fd = ctl, .events = POLLIN},
				      {.fd = out, .events = POLLIN},
				      {.fd = errp, .events = POLLIN},
				      {.fd = waiting ? in : -1, .events = POLLOUT}};
		/* after the exit, what the process wrote is still drained, briefly */
		int timeout = buffered ? 0 : status >= 0 ? 200 : 100;
		int r = poll(p, 5, timeout);
		if (r < 0 && errno != EINTR) {
			vs_err(err, errno, "poll");
			break;
		}
		if (p[2].revents && forward(conn, out, VMC_STDOUT, err) <= 0) {
			if (*err)
				break;
			out = -1;
		}
		if (p[3].revents && forward(conn, errp, VMC_STDERR, err) <= 0) {
			if (*err)
				break;
			errp = -1;
		}
		if (p[4].revents)
			stdin_flush(&in, &backlog);
		if (p[1].revents)
			control(ctl, id);
		if (p[0].revents || buffered) {
			struct vmc_frame f;
			int rc = vmc_read_frame(conn, rd, &f, err);
			if (rc <= 0) {
				if (rc == 0)
					vs_err(err, 0, "the host closed the connection");
				break;
			}
			if (vmc_agent_accepts(stream, f.type, tty >= 0, err) < 0)
				break;
			if (f.type == VMC_RESIZE) {
				struct winsize ws = {0};
				vmc_frame_resize(&f, &ws.ws_row, &ws.ws_col);
				/* the kernel sends the process's group SIGWINCH */
				ioctl(tty, TIOCSWINSZ, &ws);
				continue;
			}
			if (f.type == VMC_KILL) {
				int sig;
				if (vmc_frame_signal(&f, &sig, err) < 0)
					break;
				/* the process, not its group, as runc's exec relays a signal; pid
				 * is the runtime's child made ours (subreaper), whose pid can't be
				 * reused before we reap it: once we have, the signal came too late
				 * and goes nowhere */
				if (status < 0)
					kill(pid, sig);
				continue;
			}
			stdin_feed(&in, &backlog, f.payload, f.len);
		}
		int ws;
		pid_t w;
		while ((w = waitpid(-1, &ws, WNOHANG)) > 0)
			if (w == pid)
				status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
		/* idle: a poll that waited and saw nothing */
		bool idle = r == 0 && timeout > 0;
		if (status >= 0 && ((out < 0 && errp < 0) || idle)) {
			ret = vmc_send_u32(conn, VMC_EXIT, (uint32_t)status, err);
			break;
		}
	}
	stdin_close(&in, &backlog);
	if (out >= 0)
		close(out);
	if (errp >= 0)
		close(errp);
	vmc_reader_free(rd);
	return ret;
}

int vmc_agent_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g;
	(void)argc;
	(void)argv;
	if (getpid() != 1)
		return vs_err(err, 0,
			      "agent: the guest side of a VM-isolated container runs as "
			      "a microVM's init only");
	/* the kernel gave us the console when the archive had one; else open it */
	int con = open("/dev/console", O_RDWR | O_CLOEXEC);
	if (mount_basics(err) < 0)
		goto fatal;
	if (con < 0 && (con = open("/dev/console", O_RDWR | O_CLOEXEC)) >= 0) {
		dup2(con, 0);
		dup2(con, 1);
		dup2(con, 2);
	}
	load_modules();
	int conn = vsock_connect(VMC_PORT_MAIN, err);
	if (conn < 0)
		goto fatal;
	main_conn = conn;
	int ctl = vsock_listen(VMC_PORT_CONTROL, err);
	struct vmc_reader rd = {0};
	struct vmc_frame f;
	char *id = NULL;
	int rc = ctl < 0 ? -1 : vmc_read_frame(conn, &rd, &f, err);
	if (rc == 0)
		vs_err(err, 0, "the host closed the connection before CONFIG");
	if (rc > 0 && f.type != VMC_CONFIG)
		rc = vs_err(err, 0, "agent protocol: %s before CONFIG", vmc_type_name(f.type));
	if (rc <= 0 || setup_bundle(&f, conn, &rd, &id, err) < 0)
		goto tell_host;
	/* pivot_root can't leave the initramfs (rootfs has no parent mount): runc's answer
	 * for a ramdisk, a moved mount and chroot */
	char *cargv[] = {"create",     "--bundle", BUNDLE, "--pid-file", PID_FILE,
			 "--no-pivot", id,	   NULL,   NULL,	 NULL};
	/* the container's stdio: pipes whose other ends we relay, or a pty's master */
	int host[3] = {-1, -1, -1}, tty = -1;
	if (guest_terminal) {
		int console_fd = vs_unix_listen(CONSOLE_SOCKET, SOCK_CLOEXEC, 1, false, err);
		if (console_fd < 0)
			goto tell_host;
		cargv[6] = "--console-socket";
		cargv[7] = CONSOLE_SOCKET;
		cargv[8] = id;
		rc = runtime_tty(9, cargv, oci_cmd_create, console_fd, host, &tty, err);
		close(console_fd);
		unlink(CONSOLE_SOCKET);
	} else {
		rc = runtime_piped(7, cargv, oci_cmd_create, host, err);
	}
	if (rc < 0 || (guest_net && vmc_guest_net_setup(guest_net, read_pid(), err) < 0))
		goto tell_host;
	if (vmc_send(conn, VMC_CREATED, NULL, 0, err) < 0 ||
	    serve(conn, VMC_STREAM_MAIN, &rd, ctl, id, read_pid(), host, tty, err) < 0)
		goto fatal;
	shutdown(conn, SHUT_WR);
	power_off();
tell_host : {
	vs_err_t e = NULL;
	vmc_send(conn, VMC_ERROR, (*err)->msg, (uint32_t)strlen((*err)->msg), &e);
	vs_err_free(&e);
}
fatal:
	say("%s", *err ? (*err)->msg : "failed");
	power_off();
	return -1;
}
