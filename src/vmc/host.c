/* The host side of a VM-isolated container: the process podman sees as the container
 * is a VMM (vmm_main, in a child of create) with virtiofsd serving the bundle's rootfs
 * and a relay thread speaking the agent protocol with the guest: the container's stdio,
 * its creation, its exit status (the VMM process exits with it). start and kill reach the
 * agent through the VMM's vsock socket (CONNECT to the control port). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "base/log.h"
#include "base/usock.h"
#include "base/proc.h"
#include "base/signals.h"
#include "base/util.h"
#include "oci/lifecycle.h"
#include "sandbox/sandbox.h"
#include "oci/state.h"
#include "vmc/control.h"
#include "vmc/hostcg.h"
#include "vmc/initrd.h"
#include "vmc/mounts.h"
#include "vmc/net.h"
#include "vmc/proto.h"
#include "vmc/term.h"
#include "vmc/vmc.h"
#include "vmm/vmm.h"

#define VMC_MEM_DEFAULT_MIB 256
/* The guest's kernel skips what the agent never uses, as Kata's and Firecracker's
 * defaults do: PCI (the devices are virtio-mmio), the i8042's mouse port and PnP probe,
 * three of the four legacy UARTs, the TSC's watchdog and timer check, the crypto
 * self-tests. 0.5 s less per boot (9%) in the emulated KVM host (docs/vm-containers.md). */
#define VMC_CMDLINE                                                                                \
	"console=ttyS0 panic=-1 quiet rdinit=/vessel pci=off i8042.noaux i8042.nomux "             \
	"i8042.nopnp i8042.dumbkbd 8250.nr_uarts=1 tsc=reliable no_timer_check "                   \
	"cryptomgr.notests"
#define VMC_GUEST_CID 3
/* Unix socket paths are short (107 bytes, the VMM wants 96 for its vsock socket) and
 * state directories and container ids are not (podman's ids are 64 characters): the
 * sockets live in a short directory of their own, which the state directory links to. */
#define VMC_SOCKET_ROOT "/run/vessel-vmc"
#define VMC_SOCKETS_LINK "sockets"
/* the container's network namespace, for delete to clean (vmc/net.c) */
#define VMC_NETNS_LINK "netns"

static bool annotated_vm(json_t *annotations)
{
	const char *v = json_string_value(json_object_get(annotations, VMC_ANNOTATION));
	return v && strcmp(v, "vm") == 0;
}

bool vmc_wanted(const struct vs_globals *g, const char *bundle)
{
	if (g->isolation_vm)
		return true;
	char path[4096];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	json_t *c = json_load_file(path, 0, NULL);
	bool vm = c && annotated_vm(json_object_get(c, "annotations"));
	json_decref(c);
	return vm;
}

bool vmc_is_vm(const struct container_state *st)
{
	return annotated_vm(st->annotations);
}

int vmc_unsupported(const struct container_state *st, const char *cmd, vs_err_t *err)
{
	return vs_err(err, 0,
		      "%s: container `%s` runs in a microVM, and %s is not supported for "
		      "VM-isolated containers yet",
		      cmd, st->id, cmd);
}

/* ---- the guest's view of the bundle */

/* The config.json the agent gets: the rootfs is the virtio-fs share mounted at
 * <bundle>/rootfs, bind mounts come from where the agent puts their shares and files
 * (mounts.h), host namespace paths and hooks mean nothing in the guest, and the guest's
 * runtime must not ask for a VM again. */
static char *guest_config(json_t *config, const char *id, const char *bundle,
			  struct vmc_binds *binds, const struct vmc_host_net *net, vs_err_t *err)
{
	json_t *c = json_deep_copy(config);
	if (!c) {
		vs_err(err, ENOMEM, "guest config.json");
		return NULL;
	}
	json_t *root = json_object_get(c, "root");
	if (json_is_object(root))
		json_object_set_new(root, "path", json_string("rootfs"));
	json_object_del(json_object_get(c, "annotations"), VMC_ANNOTATION);
	json_object_del(c, "hooks");
	if (vmc_binds_plan(c, bundle, binds, err) < 0) {
		json_decref(c);
		return NULL;
	}
	json_t *ns = json_object_get(json_object_get(c, "linux"), "namespaces");
	size_t i;
	json_t *n;
	json_array_foreach(ns, i, n) json_object_del(n, "path");
	json_t *msg = json_pack("{s:s, s:o, s:i, s:i}", "id", id, "config", c, "shares",
				(int)binds->n_shares, "files", (int)binds->n_files);
	/* the guest's runtime makes the container a new network namespace (the path went
	 * above); the agent moves the guest's interfaces into it (vmc/guest_net.c) */
	if (msg && net->netns_fd >= 0)
		json_object_set_new(msg, "net", vmc_net_to_json(&net->net));
	char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
	json_decref(msg);
	if (!text) {
		vmc_binds_release(binds);
		vs_err(err, ENOMEM, "guest config.json");
	}
	return text;
}

/* memory.limit + overhead, and vCPUs for the CPU quota (at least 1) */
static void vm_size(json_t *config, unsigned long *mem_mib, unsigned *cpus)
{
	json_t *res = json_object_get(json_object_get(config, "linux"), "resources");
	json_int_t limit =
	    json_integer_value(json_object_get(json_object_get(res, "memory"), "limit"));
	*mem_mib = VMC_MEM_DEFAULT_MIB;
	if (limit > 0)
		*mem_mib = (unsigned long)((limit + (1 << 20) - 1) >> 20) + VMC_MEM_OVERHEAD_MIB;
	json_t *cpu = json_object_get(res, "cpu");
	json_int_t quota = json_integer_value(json_object_get(cpu, "quota"));
	json_int_t period = json_integer_value(json_object_get(cpu, "period"));
	if (period <= 0)
		period = 100000;
	*cpus = 1;
	if (quota > 0) {
		long n = (long)((quota + period - 1) / period);
		long online = sysconf(_SC_NPROCESSORS_ONLN);
		*cpus = (unsigned)(n > online && online > 0 ? online : n);
	}
}

/* ---- the VMM process */

struct relay {
	int listen_fd, ready_fd;
	int in, out, errfd; /* the container's stdio on the host */
	int conn;
	const char *config_msg;
	const struct vmc_host_net *net;
	const struct vmc_binds *binds; /* their files follow CONFIG */
	int status;		       /* the container's, or -1 */
	struct vmc_term_window window; /* the container's terminal, if it has one */
};

static void ready_error(struct relay *r, const char *msg, size_t len)
{
	if (r->ready_fd < 0)
		return;
	char buf[1024];
	size_t n = 0;
	buf[n++] = 'E';
	/* the guest's text is untrusted: printable ASCII only */
	for (size_t i = 0; i < len && n < sizeof(buf) - 1; i++)
		buf[n++] = msg[i] >= 0x20 && msg[i] < 0x7f ? msg[i] : '?';
	ssize_t w = write(r->ready_fd, buf, n);
	(void)w;
	close(r->ready_fd);
	r->ready_fd = -1;
}

static int relay_frame(struct relay *r, const struct vmc_frame *f, vs_err_t *err)
{
	switch (f->type) {
	case VMC_CREATED:
		if (r->ready_fd >= 0) {
			ssize_t w = write(r->ready_fd, "C", 1);
			(void)w;
			close(r->ready_fd);
			r->ready_fd = -1;
		}
		return 0;
	case VMC_ERROR:
		if (r->ready_fd >= 0)
			ready_error(r, (const char *)f->payload, f->len);
		else
			dprintf(r->errfd, "vessel: the guest agent: %.*s\n", (int)f->len,
				(const char *)f->payload);
		return 0;
	case VMC_STDOUT:
	case VMC_STDERR: {
		vs_err_t e = NULL;
		/* a reader that went away loses the output, not the container */
		vs_write_all(f->type == VMC_STDOUT ? r->out : r->errfd, f->payload, f->len, &e);
		vs_err_free(&e);
		return 0;
	}
	case VMC_EXIT:
		r->status = (int)(vmc_frame_u32(f) & 0xff);
		return 0;
	default:
		return vs_err(err, 0,
			      "agent protocol: the guest sent %s, which only the host "
			      "sends",
			      vmc_type_name(f->type));
	}
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	cleanup_err vs_err_t err = NULL;
	struct vmc_reader rd = {0};
	r->conn = accept4(r->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	/* the guest runs, so the VMM made its taps: join them to the interfaces */
	if (r->conn < 0 || (r->net->netns_fd >= 0 && vmc_net_connect(r->net, &err) < 0) ||
	    vmc_send(r->conn, VMC_CONFIG, r->config_msg, (uint32_t)strlen(r->config_msg), &err) < 0)
		goto out;
	if (vmc_binds_send(r->conn, r->binds, &err) < 0)
		goto out;
	bool in_open = true;
	int timeout = r->window.fd >= 0 ? VMC_TERM_WATCH_MS : -1;
	for (;;) {
		struct pollfd p[2] = {{.fd = r->conn, .events = POLLIN},
				      {.fd = in_open ? r->in : -1, .events = POLLIN}};
		if (!vmc_reader_ready(&rd) && poll(p, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		uint8_t size[VMC_RESIZE_SIZE];
		if (vmc_term_resized(&r->window, size) &&
		    vmc_send(r->conn, VMC_RESIZE, size, sizeof(size), &err) < 0)
			break;
		if (p[1].revents) {
			char buf[65536];
			ssize_t n = read(r->in, buf, sizeof(buf));
			if (n <= 0)
				in_open = false;
			if (vmc_send(r->conn, VMC_STDIN, buf, n > 0 ? (uint32_t)n : 0, &err) < 0)
				break;
		}
		if (p[0].revents || vmc_reader_ready(&rd)) {
			struct vmc_frame f;
			int rc = vmc_read_frame(r->conn, &rd, &f, &err);
			if (rc <= 0 || relay_frame(r, &f, &err) < 0)
				break;
		}
	}
out:
	if (err) {
		if (r->ready_fd >= 0)
			ready_error(r, err->msg, strlen(err->msg));
		else
			dprintf(r->errfd, "vessel: %s\n", err->msg);
	}
	vmc_reader_free(&rd);
	return NULL;
}

struct vmm_args {
	const struct vs_globals *g;
	const char *dir, *rootfs, *config_msg;
	const struct vmc_host_net *net;
	const struct vmc_binds *binds;
	char sockets[64];
	int listen_fd, ready_fd;
	int state_fd; /* create's locked state directory: never held by the VMM */
	/* a terminal: the host pty's slave (its master went to the console socket), or 0
	 * for the caller's own (run); -1 without */
	int tty;
	unsigned short rows, cols; /* process.consoleSize, which both ptys start with */
	unsigned long mem_mib;
	unsigned cpus;
	bool detach;
};

static void redirect(int fd, const char *path, int flags)
{
	int f = open(path, flags | O_CLOEXEC, 0600);
	if (f >= 0) {
		dup2(f, fd);
		close(f);
	}
}

/* The VM as a Firecracker config file (the API serves it, vmc_update's balloon amount
 * changes it): the default kernel, the initramfs with the agent as init, RAM shared with
 * the virtiofsds (the rootfs, then each bind share, bind_fs's "tag=T,socket=S"), the
 * vsock the host reaches the agent through, a tap per interface, and a balloon that
 * starts empty and gives pages back to a guest that runs out. */
static int write_vm_config(const struct vmm_args *a, const char *const *bind_fs, const char *path,
			   vs_err_t *err)
{
	char *images = vmm_default_image_dir();
	char kernel[4200], initrd[4200], uds[4300], sock[4300];
	snprintf(kernel, sizeof(kernel), "%s/vmlinuz", images ? images : ".");
	free(images);
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", a->dir);
	snprintf(uds, sizeof(uds), "%s/vsock.sock", a->sockets);
	snprintf(sock, sizeof(sock), "%s/fs.sock", a->sockets);
	json_t *fs = json_array(), *nets = json_array();
	json_array_append_new(fs, json_pack("{s:s, s:s}", "tag", "rootfs", "socket", sock));
	for (size_t i = 0; i < a->binds->n_shares; i++) {
		const char *t = bind_fs[i] + strlen("tag="), *c = strstr(t, ",socket=");
		json_array_append_new(fs, json_pack("{s:s%, s:s}", "tag", t, (size_t)(c - t),
						    "socket", c + strlen(",socket=")));
	}
	for (size_t i = 0; a->net->netns_fd >= 0 && i < a->net->net.nifaces; i++) {
		char tap[IFNAMSIZ], mac[18], id[32];
		const uint8_t *m = a->net->net.ifaces[i].mac;
		vmc_net_tap_name(i, tap);
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3],
			 m[4], m[5]);
		snprintf(id, sizeof(id), "eth%zu", i);
		json_array_append_new(nets, json_pack("{s:s, s:s, s:s}", "iface_id", id,
						      "host_dev_name", tap, "guest_mac", mac));
	}
	json_t *doc = json_pack(
	    "{s:{s:s, s:s, s:s}, s:{s:I, s:I, s:b}, s:{s:I, s:s}, s:o, s:o, s:{s:i, s:b}}",
	    "boot-source", "kernel_image_path", kernel, "initrd_path", initrd, "boot_args",
	    VMC_CMDLINE " -- agent", "machine-config", "vcpu_count", (json_int_t)a->cpus,
	    "mem_size_mib", (json_int_t)a->mem_mib, "mem_shared", 1, "vsock", "guest_cid",
	    (json_int_t)VMC_GUEST_CID, "uds_path", uds, "fs", fs, "network-interfaces", nets,
	    "balloon", "amount_mib", 0, "deflate_on_oom", 1);
	if (!doc)
		return vs_err(err, ENOMEM, "the microVM's config");
	int rc = json_dump_file(doc, path, JSON_COMPACT) == 0
		     ? 0
		     : vs_err(err, errno, "write the microVM's config `%s`", path);
	json_decref(doc);
	return rc;
}

/* The container's process as podman sees it. Never returns. */
static void vmm_process(const struct vmm_args *a)
{
	/* the directory's lock belongs to whoever loads the record next, not to us */
	close(a->state_fd);
	if (a->detach)
		setsid();
	struct relay r = {.listen_fd = a->listen_fd,
			  .ready_fd = a->ready_fd,
			  .config_msg = a->config_msg,
			  .net = a->net,
			  .binds = a->binds,
			  .status = -1,
			  .conn = -1,
			  .window = {.fd = -1}};
	/* a pty's slave is the container's stdin and stdout; the guest sends no stderr then */
	int in = a->tty > 0 ? a->tty : 0, out = a->tty > 0 ? a->tty : 1;
	r.in = fcntl(in, F_DUPFD_CLOEXEC, 3);
	r.out = fcntl(out, F_DUPFD_CLOEXEC, 3);
	r.errfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	if (a->tty > 0)
		close(a->tty);
	if (a->tty >= 0 && isatty(r.in)) {
		r.window.fd = r.in;
		r.window.last.ws_row = a->rows;
		r.window.last.ws_col = a->cols;
	}
	/* the serial console is the VMM's stdio: the guest's console goes to a log */
	char path[4200];
	redirect(0, "/dev/null", O_RDONLY);
	snprintf(path, sizeof(path), "%s/console.log", a->dir);
	redirect(1, path, O_WRONLY | O_CREAT | O_APPEND);
	snprintf(path, sizeof(path), "%s/fs.sock", a->sockets);
	pid_t fsd = vmc_virtiofsd_start(a->dir, path, a->rootfs, false);
	if (fsd < 0 || vmc_wait_socket(path, fsd) < 0) {
		const char *m = access(VMC_VIRTIOFSD, X_OK) == 0
				    ? "virtiofsd did not start (see virtiofsd.log)"
				    : "virtiofsd is missing: " VMC_VIRTIOFSD
				      " (Debian's qemu-system-common)";
		ready_error(&r, m, strlen(m));
		_exit(1);
	}
	char *bind_fs[VMC_MAX_SHARES] = {0};
	cleanup_err vs_err_t err = NULL;
	if (vmc_binds_start(a->binds, a->dir, a->sockets, bind_fs, &err) < 0) {
		ready_error(&r, err->msg, strlen(err->msg));
		_exit(1);
	}
	/* the virtiofsds stay in vessel's network namespace; the VMM (its taps) and the relay
	 * (which joins them to the interfaces) go into the container's */
	cleanup_err vs_err_t nerr = NULL;
	if (a->net->netns_fd >= 0 && vmc_net_enter(a->net, &nerr) < 0) {
		ready_error(&r, nerr->msg, strlen(nerr->msg));
		_exit(1);
	}
	pthread_t t;
	if (pthread_create(&t, NULL, relay_main, &r) != 0) {
		ready_error(&r, "relay thread", 12);
		_exit(1);
	}
	char cfg[4200], api[4200];
	snprintf(cfg, sizeof(cfg), "%s/" VMC_VM_CONFIG, a->dir);
	snprintf(api, sizeof(api), "%s/" VMC_API_SOCKET, a->sockets);
	if (write_vm_config(a, (const char *const *)bind_fs, cfg, &err) < 0) {
		ready_error(&r, err->msg, strlen(err->msg));
		_exit(1);
	}
	/* the API serves update's balloon (vmc_update); the VM boots from the file at once */
	char *argv[] = {"vm", "api", "--api-sock", api, "--config-file", cfg, NULL};
	int argc = 6;
	int rc = vmm_main(a->g, argc, argv, &err);
	if (rc < 0) {
		dprintf(r.errfd, "vessel: %s\n", err->msg);
		rc = 1;
	}
	/* the relay may still be writing the container's last output */
	if (r.conn >= 0)
		pthread_join(t, NULL);
	_exit(r.status >= 0 ? r.status : rc);
}

/* ---- create, start, kill, run */

static void rfc3339_now(char *buf, size_t n)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, n, "%s.%09ldZ", base, ts.tv_nsec);
}

static int make_sockets_dir(struct container_state *st, char out[64], vs_err_t *err)
{
	if (mkdir(VMC_SOCKET_ROOT, 0700) < 0 && errno != EEXIST)
		return vs_err(err, errno, "mkdir " VMC_SOCKET_ROOT);
	snprintf(out, 64, "%s/XXXXXX", VMC_SOCKET_ROOT);
	if (!mkdtemp(out))
		return vs_err(err, errno, "mkdtemp in " VMC_SOCKET_ROOT);
	if (symlinkat(out, st->dir_fd, VMC_SOCKETS_LINK) < 0) {
		int e = errno;
		rmdir(out);
		return vs_err(err, e, "link the sockets of `%s`", st->id);
	}
	return 0;
}

int vmc_sockets_dir(const struct container_state *st, char out[static 64])
{
	char link[64];
	ssize_t n = readlinkat(st->dir_fd, VMC_SOCKETS_LINK, link, sizeof(link) - 1);
	if (n <= 0)
		return -1;
	link[n] = '\0';
	/* the record's directory is ours, but only our own kind of directory is removed */
	if (strncmp(link, VMC_SOCKET_ROOT "/", sizeof(VMC_SOCKET_ROOT)) != 0 || strstr(link, ".."))
		return -1;
	memcpy(out, link, (size_t)n + 1);
	return 0;
}

void vmc_cleanup(const struct container_state *st)
{
	char d[64], p[160], ns[4096];
	ssize_t n = readlinkat(st->dir_fd, VMC_NETNS_LINK, ns, sizeof(ns) - 1);
	if (n > 0) {
		ns[n] = '\0';
		vmc_net_teardown(ns);
	}
	if (vmc_sockets_dir(st, d) < 0)
		return;
	static const char *const names[] = {"vsock.sock", "fs.sock", "vsock.sock_1024",
					    VMC_API_SOCKET};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", d, names[i]);
		unlink(p);
	}
	vmc_binds_cleanup(d);
	rmdir(d);
}

static int record(const struct vs_globals *g, const struct vmc_create_opts *o, json_t *config,
		  const char *rootfs, struct container_state *st, vs_err_t *err)
{
	memset(st, 0, sizeof(*st));
	st->dir_fd = -1;
	char created[64];
	rfc3339_now(created, sizeof(created));
	json_t *ann = json_object_get(config, "annotations");
	st->annotations = json_is_object(ann) ? json_deep_copy(ann) : json_object();
	json_object_set_new(st->annotations, VMC_ANNOTATION, json_string("vm"));
	st->phase = PHASE_CREATING;
	st->runtime_pid = getpid();
	st->runtime_start_time = proc_start_time(getpid());
	st->bundle = strdup(o->bundle);
	st->rootfs = strdup(rootfs);
	st->created = strdup(created);
	st->owner = getuid();
	if (!st->annotations || !st->bundle || !st->rootfs || !st->created)
		return vs_err(err, ENOMEM, "container `%s`", o->id);
	return state_create(g, o->id, st, err);
}

/* process.terminal as runc has it: the master of a pty of ours to the console socket, or
 * for run without one our own terminal; create without one is refused. */
static int terminal(json_t *config, const struct vmc_create_opts *o, struct vmm_args *a,
		    vs_err_t *err)
{
	json_t *process = json_object_get(config, "process");
	if (!json_is_true(json_object_get(process, "terminal")))
		return 0;
	json_t *size = json_object_get(process, "consoleSize");
	json_int_t h = json_integer_value(json_object_get(size, "height"));
	json_int_t w = json_integer_value(json_object_get(size, "width"));
	/* the guest's runtime checks the size; here it only starts the host's window */
	a->rows = h > 0 && h <= 0xffff ? (unsigned short)h : 0;
	a->cols = w > 0 && w <= 0xffff ? (unsigned short)w : 0;
	if (o->console_socket) {
		a->tty = vmc_term_console(o->console_socket, a->rows, a->cols, err);
		return a->tty < 0 ? vs_err_wrap(err, "create container `%s`", o->id) : 0;
	}
	if (o->detach)
		return vs_err(err, 0,
			      "create container `%s`: process.terminal is true: "
			      "--console-socket is needed to receive the pty",
			      o->id);
	a->tty = 0;
	return 0;
}

static int do_create(const struct vs_globals *g, const struct vmc_create_opts *o,
		     struct container_state *st, pid_t *pid, vs_err_t *err)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/config.json", o->bundle);
	json_error_t je;
	json_t *config = json_load_file(path, 0, &je);
	if (!config)
		return vs_err(err, 0, "%s: %s", path, je.text);
	const char *rp =
	    json_string_value(json_object_get(json_object_get(config, "root"), "path"));
	char rootfs[4096];
	if (!rp)
		rp = "rootfs";
	if (rp[0] == '/')
		snprintf(rootfs, sizeof(rootfs), "%s", rp);
	else
		snprintf(rootfs, sizeof(rootfs), "%s/%s", o->bundle, rp);
	struct vmc_host_net net;
	struct vmc_binds binds = {0};
	char *msg = NULL;
	if (vmc_net_probe(config, &net, err) == 0)
		msg = guest_config(config, o->id, o->bundle, &binds, &net, err);
	struct vmm_args a = {.g = g,
			     .rootfs = rootfs,
			     .config_msg = msg,
			     .net = &net,
			     .binds = &binds,
			     .detach = o->detach,
			     .tty = -1};
	vm_size(config, &a.mem_mib, &a.cpus);
	int ret = -1, ready[2] = {-1, -1};
	struct cgroup *cg = NULL;
	if (!msg || terminal(config, o, &a, err) < 0 || record(g, o, config, rootfs, st, err) < 0 ||
	    vmc_hostcg_make(g, config, a.mem_mib, st, &cg, err) < 0)
		goto out;
	if (net.netns_fd >= 0 && symlinkat(net.netns_path, st->dir_fd, VMC_NETNS_LINK) < 0) {
		vs_err(err, errno, "record the network namespace of `%s`", o->id);
		goto out;
	}
	a.dir = st->dir;
	a.state_fd = st->dir_fd;
	if (mknodat(st->dir_fd, STATE_EXEC_FIFO, S_IFIFO | 0600, 0) < 0) {
		vs_err(err, errno, "create the exec fifo of `%s`", o->id);
		goto out;
	}
	char *images = vmm_default_image_dir();
	char base[4200], initrd[4200];
	snprintf(base, sizeof(base), "%s/initrd.img", images ? images : ".");
	snprintf(initrd, sizeof(initrd), "%s/initrd.img", st->dir);
	free(images);
	char *agent = vmc_agent_path();
	int rc = agent ? vmc_initrd_write(base, agent, initrd, err)
		       : vs_err(err, errno, "the agent's path");
	free(agent);
	if (rc < 0)
		goto out;
	if (make_sockets_dir(st, a.sockets, err) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/vsock.sock_%d", a.sockets, VMC_PORT_MAIN);
	a.listen_fd = vs_unix_listen(path, SOCK_CLOEXEC, 4, false, err);
	if (a.listen_fd < 0 || pipe2(ready, O_CLOEXEC) < 0) {
		if (a.listen_fd >= 0)
			vs_err(err, errno, "pipe");
		goto out;
	}
	a.ready_fd = ready[1];
	*pid = fork();
	if (*pid < 0) {
		vs_err(err, errno, "fork the VMM of `%s`", o->id);
		goto out;
	}
	if (*pid == 0) {
		close(ready[0]);
		/* before the virtiofsds and the vCPU threads: they are born in it */
		vs_err_t cerr = NULL;
		if (cg && cgroup_enter_self(cg, false, &cerr) < 0) {
			dprintf(a.ready_fd, "E%s", cerr->msg);
			_exit(1);
		}
		vmm_process(&a);
	}
	close(a.listen_fd);
	if (a.tty > 0)
		close(a.tty);
	a.tty = -1;
	close(ready[1]);
	ready[1] = -1;
	char buf[1024];
	ssize_t n;
	do
		n = read(ready[0], buf, sizeof(buf) - 1);
	while (n < 0 && errno == EINTR);
	if (n == 1 && buf[0] == 'C') {
		ret = 0;
	} else if (n > 1 && buf[0] == 'E') {
		buf[n] = '\0';
		vs_err(err, 0, "create container `%s` in a microVM: %s", o->id, buf + 1);
	} else {
		vs_err(err, 0,
		       "create container `%s`: its microVM stopped before the container "
		       "was created (the guest's console: %s/console.log)",
		       o->id, st->dir);
	}
	if (ret < 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		goto out;
	}
	st->pid = *pid;
	st->start_time = proc_start_time(*pid);
	st->phase = PHASE_CREATED;
	if (state_save(st, err) < 0)
		ret = -1;
	if (ret == 0 && o->pid_file) {
		char p[32];
		int len = snprintf(p, sizeof(p), "%d", *pid);
		ret = vs_write_file(o->pid_file, p, (size_t)len, err);
	}
out:
	if (a.tty > 0)
		close(a.tty);
	if (ready[0] >= 0)
		close(ready[0]);
	if (ready[1] >= 0)
		close(ready[1]);
	if (ret < 0 && st->dir_fd >= 0) {
		vmc_cleanup(st);
		vs_err_t rerr = NULL;
		if (cg)
			cgroup_destroy(cg, &rerr);
		vs_err_free(&rerr);
		state_remove(st, &rerr);
		vs_err_free(&rerr);
	}
	cgroup_free(cg);
	if (msg)
		vmc_binds_release(&binds);
	free(msg);
	vmc_net_release(&net);
	json_decref(config);
	return ret;
}

int vmc_create(const struct vs_globals *g, const struct vmc_create_opts *o, pid_t *pid,
	       vs_err_t *err)
{
	/* a config refused before the record is made (a bind mount the guest can't get)
	 * leaves st as it is here */
	struct container_state st;
	memset(&st, 0, sizeof(st));
	st.dir_fd = -1;
	int rc = do_create(g, o, &st, pid, err);
	state_release(&st);
	return rc;
}

int vmc_control_open(const struct container_state *st, vs_err_t *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char d[64];
	if (vmc_sockets_dir(st, d) < 0)
		return vs_err(err, 0, "container `%s`: its record names no VMM sockets", st->id);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vsock.sock", d);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		vs_err(err, errno, "container `%s`: connect to its VMM at `%s`", st->id,
		       sa.sun_path);
		goto fail;
	}
	struct timeval tv = {30, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char line[64];
	int n = snprintf(line, sizeof(line), "CONNECT %d\n", VMC_PORT_CONTROL);
	if (vs_write_all(fd, line, (size_t)n, err) < 0)
		goto fail;
	/* byte by byte: what follows the line is the agent's */
	size_t got = 0;
	while (got < sizeof(line) - 1) {
		ssize_t r = read(fd, line + got, 1);
		if (r <= 0) {
			vs_err(err, r < 0 ? errno : 0,
			       "container `%s`: the agent did not accept "
			       "a control connection",
			       st->id);
			goto fail;
		}
		if (line[got++] == '\n')
			break;
	}
	line[got] = '\0';
	if (strncmp(line, "OK ", 3) != 0) {
		vs_err(err, 0, "container `%s`: the VMM answered CONNECT with something else",
		       st->id);
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return -1;
}

int vmc_control_answer(int fd, struct vmc_reader *rd, uint8_t type, vs_err_t *err)
{
	struct vmc_frame f;
	int rc = vmc_read_frame(fd, rd, &f, err);
	if (rc == 0)
		return vs_err(err, 0, "the agent closed the connection without an answer");
	if (rc < 0)
		return -1;
	if (f.type == VMC_ERROR) {
		char msg[1024];
		size_t m = 0;
		/* the guest's text is untrusted: printable ASCII only */
		for (size_t i = 0; i < f.len && m < sizeof(msg) - 1; i++)
			msg[m++] =
			    f.payload[i] >= 0x20 && f.payload[i] < 0x7f ? (char)f.payload[i] : '?';
		msg[m] = '\0';
		return vs_err(err, 0, "%s", msg);
	}
	if (f.type != VMC_OK)
		return vs_err(err, 0, "agent protocol: %s in answer to %s", vmc_type_name(f.type),
			      vmc_type_name(type));
	return 0;
}

/* One request, one answer (START, KILL). */
static int control(const struct container_state *st, uint8_t type, uint32_t arg, vs_err_t *err)
{
	int fd = vmc_control_open(st, err);
	if (fd < 0)
		return -1;
	struct vmc_reader rd = {0};
	int ret = (type == VMC_KILL ? vmc_send_u32(fd, type, arg, err)
				    : vmc_send(fd, type, NULL, 0, err));
	if (ret == 0)
		ret = vmc_control_answer(fd, &rd, type, err);
	vmc_reader_free(&rd);
	close(fd);
	if (ret < 0)
		return vs_err_wrap(err, "container `%s` (in its microVM)", st->id);
	return 0;
}

int vmc_start(const struct container_state *st, vs_err_t *err)
{
	if (control(st, VMC_START, 0, err) < 0)
		return vs_err_wrap(err, "cannot start container `%s`", st->id);
	unlinkat(st->dir_fd, STATE_EXEC_FIFO, 0);
	return 0;
}

int vmc_kill(const struct container_state *st, int sig, vs_err_t *err)
{
	if (state_status(st) == STATUS_STOPPED)
		return vs_err(err, 0, "cannot kill container `%s`: container not running", st->id);
	return control(st, VMC_KILL, (uint32_t)sig, err);
}

/* process.terminal in the bundle's config.json */
static bool config_terminal(const char *bundle)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/config.json", bundle);
	json_t *c = json_load_file(path, 0, NULL);
	bool t = json_is_true(json_object_get(json_object_get(c, "process"), "terminal"));
	json_decref(c);
	return t;
}

int vmc_run(const struct vs_globals *g, const struct vmc_create_opts *o, bool keep, vs_err_t *err)
{
	pid_t pid;
	if (vmc_create(g, o, &pid, err) < 0)
		return -1;
	/* the guest's terminal is ours (the VMM relays our stdio): raw, so every key reaches
	 * the guest's line discipline, which echoes and signals */
	struct vmc_term_saved saved = {.fd = -1};
	if (!o->console_socket && config_terminal(o->bundle))
		vmc_term_raw(0, &saved);
	struct container_state st;
	memset(&st, 0, sizeof(st));
	st.dir_fd = -1;
	if (state_load(g, o->id, false, &st, err) < 0 || vmc_start(&st, err) < 0) {
		vmc_term_restore(&saved);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		if (st.dir_fd >= 0) {
			vmc_cleanup(&st);
			vs_err_t e = NULL;
			lifecycle_destroy(&st, &e); /* the host cgroup too */
			vs_err_free(&e);
		}
		state_release(&st);
		return -1;
	}
	/* run's signals are the container's (runc forwards them): to the agent, as kill does.
	 * Blocked only now: the VMM, forked already, keeps its own handling. */
	sigset_t fwd, old;
	vs_forwarded_signals(&fwd);
	sigaddset(&fwd, SIGCHLD);
	sigprocmask(SIG_BLOCK, &fwd, &old);
	int ws = 0;
	while (waitpid(pid, &ws, WNOHANG) != pid) {
		struct timespec tick = {0, 200000000};
		int sig = sigtimedwait(&fwd, NULL, &tick);
		if (sig <= 0 || sig == SIGCHLD)
			continue;
		vs_err_t kerr = NULL;
		if (vmc_kill(&st, sig, &kerr) < 0) {
			vs_warn("%s", kerr->msg);
			vs_err_free(&kerr);
		}
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	vmc_term_restore(&saved);
	int status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	if (!keep) {
		vmc_cleanup(&st);
		vs_err_t derr = NULL;
		if (state_lock(&st, &derr) < 0 || lifecycle_destroy(&st, &derr) < 0) {
			vs_warn("%s", derr->msg);
			vs_err_free(&derr);
		}
	}
	state_release(&st);
	return status;
}
