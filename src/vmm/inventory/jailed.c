/* The jailer's side of the host's VM inventory: a jailed VMM sees only its jail, so the
 * jailer, still on the host, sizes the VM from the arguments it will exec, checks it
 * against the overcommit policy and leaves the record, as the VMM itself would
 * (docs/jail.md, "The host's VM inventory"). */
#include "vmm/vmm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/inroot.h"
#include "vmm/config.h"
#include "vmm/inventory/inventory.h"
#include "vmm/seccomp.h"

/* The options whose value is a file the VMM opens: inside the jail, so the jailer opens
 * them in the jail's root (a symlink there can't lead to the host's files). */
static bool names_a_file(const char *opt)
{
	return strcmp(opt, "--config-file") == 0 || strcmp(opt, "--seccomp-filter") == 0;
}

/* argv with `--overcommit X` and `--max-machine X` taken out and, after the command (at
 * cmd), `--counted-on-host --max-machine <what was counted>`: the check and the record
 * were made here, the jailed VMM can't reach the state directory (and would warn that it
 * can't, or make one in its jail), and it must not build a VM larger than what was
 * counted (a `vm api` whose machine comes later). */
static char **exec_args(int argc, char **argv, int cmd, const char *counted, vs_err_t *err)
{
	char **v = calloc((size_t)argc + 5, sizeof(*v));
	if (!v) {
		vs_err(err, ENOMEM, "jail: VMM arguments");
		return NULL;
	}
	int n = 0;
	bool after_dashes = false;
	for (int i = 0; i < argc; i++) {
		if (i > cmd && !after_dashes &&
		    (strcmp(argv[i], "--overcommit") == 0 ||
		     strcmp(argv[i], "--max-machine") == 0)) {
			i++; /* and its value */
			continue;
		}
		after_dashes = after_dashes || (i > cmd && strcmp(argv[i], "--") == 0);
		v[n++] = argv[i];
		if (i == cmd) {
			v[n++] = "--counted-on-host";
			v[n++] = "--max-machine";
			v[n++] = (char *)counted;
		}
	}
	return v;
}

int vmm_jail_admit(int argc, char **argv, int root_fd, const char *id, char ***exec_argv,
		   vs_err_t *err)
{
	*exec_argv = NULL;
	int cmd = 1;
	if (argc < 2 || strcmp(argv[0], "vm") != 0)
		return 0; /* not a VMM: nothing to count */
	if (strcmp(argv[1], "--state-dir") == 0) {
		if (argc < 4)
			return 0; /* the VMM will say what is wrong */
		inventory_set_dir(argv[2]);
		cmd = 3;
	}
	bool run = strcmp(argv[cmd], "run") == 0, api = strcmp(argv[cmd], "api") == 0;
	if (!run && !api)
		return 0; /* list, migrate-receive, ...: documented as not counted */
	/* the command's own arguments, files to open replaced by their fds' /proc paths */
	int n = argc - cmd;
	char **v = calloc((size_t)n + 1, sizeof(*v));
	char(*fdpath)[32] = calloc((size_t)n, sizeof(*fdpath));
	int *fds = calloc((size_t)n, sizeof(*fds));
	int nfds = 0, rc = -1;
	const char *config_file = NULL;
	struct vm_config c;
	vm_config_init(&c);
	if (!v || !fdpath || !fds) {
		vs_err(err, ENOMEM, "jail: VMM arguments");
		goto out;
	}
	bool after_dashes = false;
	for (int i = 0; i < n; i++) {
		const char *a = argv[cmd + i];
		v[i] = (char *)a;
		after_dashes = after_dashes || strcmp(a, "--") == 0;
		if (after_dashes || i == 0 || !names_a_file(argv[cmd + i - 1]))
			continue;
		int fd = root_fd < 0 ? (errno = ENOENT, -1)
				     : vs_openat2_in_root(root_fd, a, O_RDONLY, 0);
		if (fd < 0) {
			vs_err(err, errno, "%s %s in the jail's root", argv[cmd + i - 1], a);
			goto out;
		}
		fds[nfds++] = fd;
		snprintf(fdpath[i], sizeof(fdpath[i]), "/proc/self/fd/%d", fd);
		v[i] = fdpath[i];
		if (strcmp(argv[cmd + i - 1], "--config-file") == 0)
			config_file = v[i];
	}
	if (vmm_seccomp_setup(&n, v, err) < 0 || inventory_setup(&n, v, err) < 0) {
		vs_err_wrap(err, "jail: VMM arguments");
		goto out;
	}
	if (run) {
		bool help = false;
		if (vm_config_from_argv(&c, n, v, &help, err) != 0) {
			vs_err_wrap(err, "jail: VMM arguments");
			goto out;
		}
		if (help) {
			rc = 0; /* the VMM prints its help: no VM */
			goto out;
		}
	} else if (config_file) {
		if (vm_config_from_json_file(&c, config_file, err) < 0) {
			vs_err_wrap(err, "jail: VMM arguments");
			goto out;
		}
	} else if (inventory_max_machine()->set) {
		c.cpus = inventory_max_machine()->vcpus;
		c.memory = inventory_max_machine()->memory;
	}
	/* `vm api` without a config file is counted at its --max-machine, else the defaults
	 * (1 vCPU, 128 MiB); its VMM refuses a larger machine, since nothing on the host
	 * counts what an API client asks for after the exec */
	inventory_identify(id, NULL);
	if (inventory_admit(c.cpus, c.memory, err) < 0)
		goto out;
	static char counted[48]; /* the jailer execs once: it outlives the exec_argv */
	snprintf(counted, sizeof(counted), "%u,%llu", c.cpus, (unsigned long long)c.memory);
	*exec_argv = exec_args(argc, argv, cmd, counted, err);
	if (!*exec_argv) {
		inventory_leave();
		goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	vm_config_free(&c);
	free(fds);
	free(fdpath);
	free(v);
	return rc;
}

void vmm_jail_leave(void)
{
	inventory_leave();
}

int vmm_jail_moved(int proc_fd, pid_t pid, vs_err_t *err)
{
	return inventory_move(proc_fd, pid, err);
}
