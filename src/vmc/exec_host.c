/* `vessel-vm exec`: the host side. The request goes to the agent on a control connection
 * (EXEC: the options, the command or process.json); the guest's own exec runs it in the
 * container; then the same connection carries the process's stdin, stdout, stderr and
 * exit status, and the signals we get for it (KILL), as runc's exec forwards them. With
 * --detach a child of ours keeps relaying and exits with the process's status: that child's
 * pid is the one --pid-file names, so a subreaper such as podman's conmon waits for the
 * process through it. A terminal is the guest's pty, relayed to a pty of ours whose master
 * goes to --console-socket, or to our own stdio (term.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "base/json.h"
#include "base/signals.h"
#include "base/util.h"
#include "oci/state.h"
#include "oci/waitloop.h"
#include "vmc/control.h"
#include "vmc/exec_msg.h"
#include "vmc/term.h"
#include "vmc/vmc.h"

static void guest_text(const struct vmc_frame *f)
{
	char msg[1024];
	size_t m = 0;
	/* the guest's text is untrusted: printable ASCII only */
	for (size_t i = 0; i < f->len && m < sizeof(msg) - 1; i++)
		msg[m++] =
		    f->payload[i] >= 0x20 && f->payload[i] < 0x7f ? (char)f->payload[i] : '?';
	msg[m] = '\0';
	dprintf(2, "vessel: the guest agent: %s\n", msg);
}

/* Our side of the process's stdio, its terminal's window if it has one, and the signals
 * we forward. */
struct exec_io {
	int conn;
	int in, out, errfd;
	struct vmc_term_window window;
	int sig; /* a signalfd of vs_forwarded_signals, which are blocked */
};

/* A signal we got, as KILL for the process: 0, or -1 when the connection is gone. */
static int forward_signal(struct exec_io *io, vs_err_t *err)
{
	struct signalfd_siginfo si;
	ssize_t n = read(io->sig, &si, sizeof(si));
	if (n != (ssize_t)sizeof(si))
		return 0;
	return vmc_send_u32(io->conn, VMC_KILL, si.ssi_signo, err);
}

/* Our stdin to the process, the window's changes and our signals, on a thread of its own:
 * the agent stops reading while the process's pipe is full, and our output must still come
 * back meanwhile. The only writer to the connection, so a KILL never lands inside another
 * frame (it waits behind the stdin already sent). io is the thread's, freed here. */
static void *pump_stdin(void *arg)
{
	struct exec_io *io = arg;
	vs_err_t e = NULL;
	char buf[65536];
	bool in_open = true;
	int timeout = io->window.fd >= 0 ? VMC_TERM_WATCH_MS : -1;
	for (;;) {
		struct pollfd p[2] = {{.fd = in_open ? io->in : -1, .events = POLLIN},
				      {.fd = io->sig, .events = POLLIN}};
		if (poll(p, 2, timeout) < 0 && errno != EINTR)
			break;
		uint8_t size[VMC_RESIZE_SIZE];
		if (vmc_term_resized(&io->window, size) &&
		    vmc_send(io->conn, VMC_RESIZE, size, sizeof(size), &e) < 0)
			break;
		if (p[1].revents && forward_signal(io, &e) < 0)
			break;
		if (!p[0].revents)
			continue;
		ssize_t n = read(io->in, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (vmc_send(io->conn, VMC_STDIN, buf, n > 0 ? (uint32_t)n : 0, &e) < 0)
			break;
		/* a terminal's window and our signals still matter after the input ended */
		if (n <= 0)
			in_open = false;
	}
	vs_err_free(&e);
	free(io);
	return NULL;
}

/* Until EXIT: the process's output to ours. Its status, or -1 with err. */
static int relay(struct exec_io *io, struct vmc_reader *rd, vs_err_t *err)
{
	/* a reader of our output that went away loses the output, not the relay */
	signal(SIGPIPE, SIG_IGN);
	/* what vmc_exec blocked: those that came while the process was being started are
	 * pending, and go first */
	sigset_t fwd;
	vs_forwarded_signals(&fwd);
	io->sig = signalfd(-1, &fwd, SFD_CLOEXEC);
	if (io->sig < 0)
		return vs_err(err, errno, "exec: a signalfd to forward signals");
	/* the thread's own copy, and the signalfd never closed: it waits for signals until we
	 * exit, after our caller's io is gone */
	struct exec_io *mine = malloc(sizeof(*mine));
	if (!mine)
		return vs_err(err, ENOMEM, "exec: a thread for stdin");
	*mine = *io;
	pthread_t t;
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	int rc = pthread_create(&t, &a, pump_stdin, mine);
	pthread_attr_destroy(&a);
	if (rc != 0) {
		free(mine);
		return vs_err(err, rc, "exec: a thread for stdin");
	}
	for (;;) {
		struct vmc_frame f;
		rc = vmc_read_frame(io->conn, rd, &f, err);
		if (rc == 0)
			return vs_err(err, 0,
				      "exec: the agent closed the connection before the "
				      "process's exit status (did the microVM stop?)");
		if (rc < 0)
			return -1;
		vs_err_t e = NULL;
		switch (f.type) {
		case VMC_STDOUT:
		case VMC_STDERR:
			vs_write_all(f.type == VMC_STDOUT ? io->out : io->errfd, f.payload, f.len,
				     &e);
			vs_err_free(&e);
			break;
		case VMC_ERROR:
			guest_text(&f);
			break;
		case VMC_EXIT:
			return (int)(vmc_frame_u32(&f) & 0xff);
		default:
			return vs_err(err, 0, "agent protocol: the guest sent %s during an exec",
				      vmc_type_name(f.type));
		}
	}
}

static int request(const struct container_state *st, const struct vmc_exec_opts *o, json_t *process,
		   bool terminal, int *fd, struct vmc_reader *rd, vs_err_t *err)
{
	size_t len;
	char *msg = vmc_exec_msg_build(o->options, o->process_file ? NULL : o->command, process,
				       terminal, &len, err);
	if (!msg)
		return -1;
	if (len > VMC_MAX_PAYLOAD) {
		free(msg);
		return vs_err(err, 0, "exec: the request is %zu bytes (at most %u)", len,
			      VMC_MAX_PAYLOAD);
	}
	*fd = vmc_control_open(st, err);
	int rc = *fd < 0 ? -1 : vmc_send(*fd, VMC_EXEC, msg, (uint32_t)len, err);
	free(msg);
	if (rc == 0)
		rc = vmc_control_answer(*fd, rd, VMC_EXEC, err);
	if (rc < 0)
		return -1;
	/* started: from now on the process may take as long as it likes */
	struct timeval none = {0, 0};
	setsockopt(*fd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none));
	return 0;
}

/* process.json, an object, with "terminal" true when -t asks for one */
static json_t *load_process(const struct vmc_exec_opts *o, vs_err_t *err)
{
	json_t *process = vjson_load_file(o->process_file, 1 << 20, err);
	if (!process)
		return NULL;
	if (!json_is_object(process)) {
		json_decref(process);
		return vs_err(err, 0, "%s: not a JSON object", o->process_file), NULL;
	}
	if (o->tty && json_object_set_new(process, "terminal", json_true()) < 0) {
		json_decref(process);
		return vs_err(err, ENOMEM, "%s", o->process_file), NULL;
	}
	return process;
}

/* Our end of the process's terminal: a pty of ours (the master to the console socket,
 * of process.consoleSize), or our own stdio, raw unless detached. */
static int terminal_io(const struct vmc_exec_opts *o, json_t *process, struct exec_io *io,
		       struct vmc_term_saved *saved, vs_err_t *err)
{
	if (!o->console_socket) {
		if (o->detach)
			return vs_err(err, 0,
				      "exec: a terminal with --detach needs --console-socket");
		vmc_term_raw(0, saved);
		io->window.fd = isatty(0) ? 0 : -1;
		return 0;
	}
	json_t *size = json_object_get(process, "consoleSize");
	json_int_t h = json_integer_value(json_object_get(size, "height"));
	json_int_t w = json_integer_value(json_object_get(size, "width"));
	unsigned short rows = h > 0 && h <= 0xffff ? (unsigned short)h : 0;
	unsigned short cols = w > 0 && w <= 0xffff ? (unsigned short)w : 0;
	int slave = vmc_term_console(o->console_socket, rows, cols, err);
	if (slave < 0)
		return -1;
	io->in = io->out = io->errfd = slave;
	io->window = (struct vmc_term_window){.fd = slave, .last = {rows, cols, 0, 0}};
	return 0;
}

int vmc_exec(const struct container_state *st, const struct vmc_exec_opts *o, vs_err_t *err)
{
	/* From the start, as run's: a signal that comes before the process runs waits for the
	 * relay to forward it rather than kill us, and leave the process running in the guest.
	 * Never unblocked: one that comes after the process's EXIT must not turn its status
	 * into ours. */
	sigset_t fwd;
	vs_forwarded_signals(&fwd);
	sigprocmask(SIG_BLOCK, &fwd, NULL);
	enum container_status status = state_status(st);
	if (status != STATUS_RUNNING && status != STATUS_CREATED)
		return vs_err(err, 0, "cannot exec in container `%s`: container not running",
			      st->id);
	if (!o->process_file && (!o->command || !o->command[0]))
		return vs_err(err, 0, "exec: a command is needed after the container id");
	json_t *process = o->process_file ? load_process(o, err) : NULL;
	if (o->process_file && !process)
		return -1;
	bool terminal = o->tty || json_is_true(json_object_get(process, "terminal"));
	struct exec_io io = {
	    .conn = -1, .in = 0, .out = 1, .errfd = 2, .window = {.fd = -1}, .sig = -1};
	struct vmc_term_saved saved = {.fd = -1};
	struct vmc_reader rd = {0};
	int ret = -1;
	if (terminal && terminal_io(o, process, &io, &saved, err) < 0)
		goto out;
	if (request(st, o, process, terminal, &io.conn, &rd, err) < 0) {
		vs_err_wrap(err, "cannot exec in container `%s` (in its microVM)", st->id);
		goto out;
	}
	if (o->detach) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid < 0) {
			vs_err(err, errno, "exec: fork the relay");
			goto out;
		}
		if (pid == 0) {
			vs_err_t e = NULL;
			int rc = relay(&io, &rd, &e);
			if (rc < 0)
				dprintf(2, "vessel: %s\n", e->msg);
			_exit(rc < 0 ? 255 : rc);
		}
		if (o->pid_file && waitloop_write_pid_file(o->pid_file, pid, err) < 0) {
			kill(pid, SIGKILL);
			goto out;
		}
		ret = 0;
		goto out;
	}
	if (o->pid_file) {
		/* runc names the process; ours is in the guest, the relay (us) stands for it */
		if (waitloop_write_pid_file(o->pid_file, getpid(), err) < 0)
			goto out;
	}
	ret = relay(&io, &rd, err);
out:
	vmc_term_restore(&saved);
	if (io.in > 2)
		close(io.in);
	json_decref(process);
	vmc_reader_free(&rd);
	if (io.conn >= 0)
		close(io.conn);
	return ret;
}
