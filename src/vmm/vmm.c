#include "vmm/vmm.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/builder.h"
#include "vmm/config.h"
#include "vmm/controller.h"
#include "vmm/device.h"
#include "vmm/exit_status.h"
#include "vmm/inventory/inventory.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/seccomp.h"

static const char vm_help[] =
    "usage: vessel vm [--state-dir DIR] COMMAND\n"
    "\n"
    "--state-dir: where the VMs this host runs keep their records (default\n"
    "/run/vessel-vm, or $XDG_RUNTIME_DIR/vessel-vm when not root)\n"
    "\n"
    "commands:\n"
    "  run        boot a microVM (vessel vm run --help)\n"
    "             (run and api also take --no-seccomp and --seccomp-filter FILE:\n"
    "             docs/jail.md, --overcommit cpu=16,mem=1.5|off and --max-machine\n"
    "             VCPUS,SIZE: docs/vm.md)\n"
    "  api        serve Firecracker's API on a Unix socket: vessel vm api --api-sock PATH\n"
    "             [--config-file vm.json] [--id ID] (docs/api.md)\n"
    "  list       the VMs this host runs: vCPUs, memory, balloon, RSS [--format json]\n"
    "  migrate-receive  wait for a migrating VM and run it: vessel vm migrate-receive\n"
    "             --listen unix:PATH|tcp:ADDR:PORT [--api-sock PATH] [--cpus N]\n"
    "             [--memory SIZE] [--net-override IFACE=TAP]... (docs/migration.md)\n"
    "  migrate-send  move a running VM there: vessel vm migrate-send --api-sock SRC_SOCK\n"
    "             --to URL [--downtime-ms N] [--timeout-s N] [--on-timeout cancel|force]\n"
    "             [--local]  (--local: hand the RAM's memfd to a receiver on this host)\n"
    "  snapshot-merge  write a Diff snapshot's memory file over its base: vessel vm\n"
    "             snapshot-merge BASE DIFF (docs/snapshots.md)\n"
    "  dump-acpi  write the ACPI tables a VM would get: vessel vm dump-acpi "
    "[--cpus N] [--rng] [--disk SPEC]... [--net SPEC]... DIR\n";

static int usage_error(vs_err_t *err)
{
	vs_report(*err);
	return VM_EXIT_USAGE;
}

static int cmd_dump_acpi(int argc, char **argv, vs_err_t *err)
{
	unsigned cpus = 1, nvirtio = 0;
	const struct device_kind *seen[16] = {0}; /* switches count once */
	const char *dir = NULL;
	for (int i = 1; i < argc; i++) {
		const struct device_kind *k = device_kind_by_flag(argv[i]);
		if (strcmp(argv[i], "--cpus") == 0 && i + 1 < argc) {
			if (vm_parse_cpus(argv[++i], &cpus, err) < 0)
				return usage_error(err);
		} else if (k && k->virtio && k->cli_value && i + 1 < argc) {
			i++; /* the layout depends on how many devices, not on their specs */
			nvirtio++;
		} else if (k && k->virtio && !k->cli_value) {
			/* a switch's optional spec (--rng bw=4K) is no DIR */
			if (k->cli_spec_follows && i + 1 < argc && k->cli_spec_follows(argv[i + 1]))
				i++;
			size_t j = 0;
			while (j < 16 && seen[j] && seen[j] != k)
				j++;
			if (j < 16 && !seen[j]) {
				seen[j] = k;
				nvirtio++;
			}
		} else if (!dir && argv[i][0] != '-') {
			dir = argv[i];
		} else {
			vs_err(err, 0,
			       "usage: vessel vm dump-acpi [--cpus N] [--rng] [--disk SPEC]... "
			       "[--net SPEC]... DIR");
			return usage_error(err);
		}
	}
	if (!dir) {
		vs_err(err, 0, "usage: vessel vm dump-acpi [--cpus N] DIR");
		return usage_error(err);
	}
	return vm_dump_acpi(cpus, nvirtio, dir, err) < 0 ? -1 : 0;
}

/* Destroying a VM costs KVM 15-40 ms here (the PIT's kthread, irqchip, SRCU grace
 * periods), all after the guest's fate is known. A child that holds the last
 * references to the VM and vCPU fds pays it while we exit with the status. Our
 * stdio goes to /dev/null first, so the child never holds the caller's pipes open.
 * Sanitizer builds skip this: their leak report needs stderr, and speed is moot. */
static void release_detached(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return;
#endif
	fflush(NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	for (int fd = 0; fd <= 2; fd++)
		dup2(null, fd);
	close(null);
	if (fork() == 0)
		_exit(0); /* the child's exit closes the KVM fds */
}

/* `vm run`: arguments -> config -> builder -> controller. Returns the VM's exit status,
 * or -1 with err (vessel error, status 1). */
static int cmd_run(int argc, char **argv, vs_err_t *err)
{
	if (vmm_seccomp_setup(&argc, argv, err) < 0 || inventory_setup(&argc, argv, err) < 0)
		return usage_error(err);
	struct vm_config c;
	vm_config_init(&c);
	bool help;
	int status = vm_config_from_argv(&c, argc, argv, &help, err);
	if (status == VM_EXIT_USAGE) {
		vm_config_free(&c);
		return usage_error(err);
	}
	if (status) {
		vm_config_free(&c);
		return -1;
	}
	if (help) {
		vm_config_free(&c);
		fputs(vm_run_help, stdout);
		return 0;
	}
	if (controller_claim_signals(err) < 0) {
		vm_config_free(&c);
		return -1;
	}
	struct vm *vm = vm_build(&c, err);
	vm_config_free(&c);
	if (!vm)
		return -1;
	status = controller_run(vm, err);
	if (status >= 0)
		release_detached();
	vm_free(vm);
	return status;
}

static const char api_usage[] =
    "usage: vessel vm api --api-sock PATH [--config-file vm.json] [--id ID]";

/* `vm api`: Firecracker's API on a Unix socket; the controller runs it. */
static int cmd_api(int argc, char **argv, vs_err_t *err)
{
	struct controller_api o = {0};
	if (vmm_seccomp_setup(&argc, argv, err) < 0 || inventory_setup(&argc, argv, err) < 0)
		return usage_error(err);
	for (int i = 1; i < argc; i++) {
		const char **dst = NULL;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s\n", api_usage);
			return 0;
		}
		if (strcmp(argv[i], "--api-sock") == 0)
			dst = &o.sock;
		else if (strcmp(argv[i], "--config-file") == 0)
			dst = &o.config_file;
		else if (strcmp(argv[i], "--id") == 0)
			dst = &o.id;
		if (!dst || i + 1 >= argc) {
			vs_err(err, 0, "%s: `%s`%s", api_usage, argv[i],
			       dst ? " needs a value" : " is not an option of vm api");
			return usage_error(err);
		}
		*dst = argv[++i];
	}
	if (!o.sock) {
		vs_err(err, 0, "%s: --api-sock is required", api_usage);
		return usage_error(err);
	}
	if (o.id && (!*o.id || strlen(o.id) > 64 ||
		     strspn(o.id, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "0123456789-_") != strlen(o.id))) {
		vs_err(err, 0, "--id `%s`: 1 to 64 letters, digits, `-` or `_`", o.id);
		return usage_error(err);
	}
	inventory_identify(o.id, o.sock);
	return controller_serve(&o, err);
}

/* `vm snapshot-merge BASE DIFF`: a Diff snapshot's memory file written over its base, which
 * then is the later snapshot's full memory file (load it with the Diff's state file). */
static int cmd_snapshot_merge(int argc, char **argv, vs_err_t *err)
{
	if (argc != 3) {
		vs_err(err, 0, "usage: vessel vm snapshot-merge BASE_MEM_FILE DIFF_MEM_FILE");
		return usage_error(err);
	}
	if (snapshot_merge_memory(argv[1], argv[2], err) < 0)
		return VM_EXIT_ERROR;
	return 0;
}

#define MIGRATE_RECEIVE_USAGE                                                                      \
	"usage: vessel vm migrate-receive --listen unix:PATH|tcp:ADDR:PORT [--api-sock PATH] "     \
	"[--cpus N] [--memory SIZE] [--net-override IFACE=TAP]..."
#define MAX_NET_OVERRIDES 16

/* `vm migrate-receive`: one VM comes in (migration/receive.c) and runs here, with the API
 * on --api-sock or, without, as `vm run` does (console on stdio). */
static int cmd_migrate_receive(int argc, char **argv, vs_err_t *err)
{
	if (vmm_seccomp_setup(&argc, argv, err) < 0)
		return usage_error(err);
	struct mig_net_override net[MAX_NET_OVERRIDES];
	struct mig_recv_opts o = {.net = net};
	struct controller_api api = {0};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("%s\n", MIGRATE_RECEIVE_USAGE);
			return 0;
		}
		if (!v) {
			vs_err(err, 0, "%s: `%s` needs a value", MIGRATE_RECEIVE_USAGE, a);
			return usage_error(err);
		}
		i++;
		if (strcmp(a, "--listen") == 0) {
			o.url = v;
		} else if (strcmp(a, "--api-sock") == 0) {
			api.sock = v;
		} else if (strcmp(a, "--cpus") == 0) {
			if (vm_parse_cpus(v, &o.expect_cpus, err) < 0)
				return usage_error(err);
		} else if (strcmp(a, "--memory") == 0) {
			if (vm_parse_memory(v, &o.expect_memory, err) < 0)
				return usage_error(err);
		} else if (strcmp(a, "--net-override") == 0 && strchr(v, '=') && v[0] != '=' &&
			   o.nnet < MAX_NET_OVERRIDES) {
			char *eq = strchr(v, '=');
			*eq = '\0';
			net[o.nnet++] = (struct mig_net_override){v, eq + 1};
		} else {
			vs_err(err, 0, "%s: `%s %s` is not an option of vm migrate-receive",
			       MIGRATE_RECEIVE_USAGE, a, v);
			return usage_error(err);
		}
	}
	if (!o.url) {
		vs_err(err, 0, "%s: --listen is required", MIGRATE_RECEIVE_USAGE);
		return usage_error(err);
	}
	struct vm *vm = NULL;
	json_t *doc = NULL;
	if (migration_receive(&o, &vm, &doc, err) < 0)
		return -1;
	int status;
	if (api.sock) {
		api.vm = vm;
		api.doc = doc;
		status = controller_serve(&api, err); /* it frees the VM */
	} else {
		devices_resume(vm);
		status = controller_run(vm, err);
		vm_free(vm);
	}
	json_decref(doc);
	return status;
}

#define MIGRATE_SEND_USAGE                                                                         \
	"usage: vessel vm migrate-send --api-sock SRC_SOCK --to unix:PATH|tcp:ADDR:PORT "          \
	"[--downtime-ms N] [--timeout-s N] [--on-timeout cancel|force] [--local]"

static int uint_arg(const char *flag, const char *v, unsigned max, json_int_t *out, vs_err_t *err)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);
	if (!*v || *end || n > max)
		return vs_err(err, 0, "%s `%s`: a number from 0 to %u", flag, v, max);
	*out = (json_int_t)n;
	return 0;
}

/* `vm migrate-send`: PUT /migrate on the source's API, then GET /migrate until it ends. */
static int cmd_migrate_send(int argc, char **argv, vs_err_t *err)
{
	const char *sock = NULL, *to = NULL, *on_timeout = "cancel";
	json_int_t downtime = 300, timeout = 60;
	bool local = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			printf("%s\n", MIGRATE_SEND_USAGE);
			return 0;
		}
		if (strcmp(a, "--local") == 0) {
			local = true;
			continue;
		}
		if (!v) {
			vs_err(err, 0, "%s: `%s` needs a value", MIGRATE_SEND_USAGE, a);
			return usage_error(err);
		}
		i++;
		int rc = 0;
		if (strcmp(a, "--api-sock") == 0)
			sock = v;
		else if (strcmp(a, "--to") == 0)
			to = v;
		else if (strcmp(a, "--on-timeout") == 0)
			on_timeout = v;
		else if (strcmp(a, "--downtime-ms") == 0)
			rc = uint_arg(a, v, 600000, &downtime, err);
		else if (strcmp(a, "--timeout-s") == 0)
			rc = uint_arg(a, v, 86400, &timeout, err);
		else
			rc = vs_err(err, 0, "%s: `%s` is not an option of vm migrate-send",
				    MIGRATE_SEND_USAGE, a);
		if (rc < 0)
			return usage_error(err);
	}
	if (!sock || !to) {
		vs_err(err, 0, "%s: --api-sock and --to are required", MIGRATE_SEND_USAGE);
		return usage_error(err);
	}
	json_t *body =
	    json_pack("{s:s, s:I, s:I, s:s, s:b}", "destination_url", to, "downtime_ms", downtime,
		      "timeout_s", timeout, "on_timeout", on_timeout, "local", local);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!text)
		return vs_err(err, 0, "migrate-send: the request");
	int status = 0;
	char *answer = NULL;
	int rc = vmm_api_call(sock, "PUT", "/migrate", text, &status, &answer, err);
	free(text);
	if (rc < 0)
		return -1;
	if (status != 204) {
		vs_err(err, 0, "PUT /migrate: %d %s", status, answer);
		free(answer);
		return -1;
	}
	free(answer);
	for (;;) {
		struct timespec ts = {.tv_nsec = 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (vmm_api_call(sock, "GET", "/migrate", NULL, &status, &answer, err) < 0)
			return vs_err_wrap(err, "the source went away before saying how the "
						"migration ended");
		json_t *st = json_loads(answer, 0, NULL);
		free(answer);
		const char *state = json_string_value(json_object_get(st, "state"));
		if (state && strcmp(state, "active") != 0) {
			int out = 0;
			if (strcmp(state, "completed") == 0) {
				printf(
				    "migrated to %s: %lld rounds, %.1f MiB sent, downtime %.1f ms, "
				    "total %.1f ms\n",
				    to,
				    (long long)json_integer_value(json_object_get(st, "rounds")),
				    (double)json_integer_value(json_object_get(st, "bytes_sent")) /
					(1 << 20),
				    json_real_value(json_object_get(st, "downtime_ms")),
				    json_real_value(json_object_get(st, "total_ms")));
			} else {
				const char *e = json_string_value(json_object_get(st, "error"));
				out = vs_err(err, 0, "migration to %s %s: %s", to, state,
					     e ? e : "no reason given");
			}
			json_decref(st);
			return out;
		}
		json_decref(st);
	}
}

/* The `vm` commands. */
static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, vs_err_t *err);
} commands[] = {
    {"run", cmd_run},
    {"api", cmd_api},
    {"dump-acpi", cmd_dump_acpi},
    {"snapshot-merge", cmd_snapshot_merge},
    {"list", inventory_list_main},
    {"migrate-receive", cmd_migrate_receive},
    {"migrate-send", cmd_migrate_send},
};

int vmm_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g; /* --debug reaches us through the log level */
	if (argc < 2) {
		fputs(vm_help, stderr);
		return VM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--state-dir") == 0) {
		if (argc < 4) {
			vs_err(err, 0, "usage: vessel vm --state-dir DIR COMMAND ...");
			return usage_error(err);
		}
		inventory_set_dir(argv[2]);
		argc -= 2;
		argv += 2;
	}
	/* the VM inventory's default directory depends on who we are: found now, before any
	 * seccomp filter (geteuid is in no thread's list) */
	(void)inventory_dir();
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(vm_help, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(cmd, commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1, err);
	vs_err(err, 0, "vm: unknown command `%s` (see vessel vm --help)", cmd);
	return usage_error(err);
}
