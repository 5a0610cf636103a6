/* The jailer's side of the VM inventory (vmm_jail_admit): what it reads of the VMM's
 * arguments (size, config file in the jail's root, --overcommit, --state-dir), the record
 * it leaves, and the arguments it execs. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/inventory/inventory.h"
#include "vmm/vmm.h"

static char tmp[] = "/tmp/vessel-jail-admit-XXXXXX";
static char state[300], root[300];

static void setup(void)
{
	cr_assert(mkdtemp(tmp));
	snprintf(state, sizeof(state), "%s/vms", tmp);
	snprintf(root, sizeof(root), "%s/root", tmp);
	cr_assert_eq(mkdir(root, 0755), 0);
}

static void put(const char *dir, const char *name, const char *text)
{
	char p[400];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert(f, "%s", p);
	fputs(text, f);
	fclose(f);
}

/* This process's record as the jailer left it ("" when there is none). */
static const char *record(void)
{
	static char buf[512];
	char p[400];
	snprintf(p, sizeof(p), "%s/%d.json", state, (int)getpid());
	memset(buf, 0, sizeof(buf));
	FILE *f = fopen(p, "r");
	if (!f)
		return "";
	cr_assert(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	return buf;
}

static int argc_of(char **v)
{
	int n = 0;
	while (v[n])
		n++;
	return n;
}

static void teardown(void)
{
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(jail_admit, .init = setup, .fini = teardown);

Test(jail_admit, run_args_sized_recorded_and_counted_on_host)
{
	int root_fd = open(root, O_PATH | O_DIRECTORY);
	char *argv[] = {"vm",
			"--state-dir",
			state,
			"run",
			"--kernel",
			"/k.elf",
			"--cpus",
			"3",
			"--memory",
			"200M",
			"--overcommit",
			"cpu=100",
			"--no-seccomp",
			"--",
			"--overcommit",
			"x",
			NULL};
	char **exec = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(vmm_jail_admit(argc_of(argv), argv, root_fd, "vm-1", &exec, &err), 0, "%s",
		     err ? err->msg : "");
	const char *r = record();
	cr_assert(strstr(r, "\"id\":\"vm-1\"") && strstr(r, "\"vcpus\":3") &&
		      strstr(r, "\"memory\":209715200"),
		  "%s", r);
	/* the check was made here: the jailed VMM gets the size counted instead of the ratios,
	 * and the guest's words after `--` are left as they are */
	const char *want[] = {"vm",
			      "--state-dir",
			      state,
			      "run",
			      "--counted-on-host",
			      "--max-machine",
			      "3,209715200",
			      "--kernel",
			      "/k.elf",
			      "--cpus",
			      "3",
			      "--memory",
			      "200M",
			      "--no-seccomp",
			      "--",
			      "--overcommit",
			      "x",
			      NULL};
	for (int i = 0; want[i] || exec[i]; i++)
		cr_assert(want[i] && exec[i] && strcmp(want[i], exec[i]) == 0, "arg %d: %s vs %s",
			  i, exec[i] ? exec[i] : "(end)", want[i] ? want[i] : "(end)");
	free(exec);
	vmm_jail_leave();
	cr_assert_str_eq(record(), "", "the jail failed: its record goes");
	close(root_fd);
}

Test(jail_admit, config_file_read_inside_the_root)
{
	put(root, "vm.json",
	    "{\"boot-source\": {\"kernel_image_path\": \"/k.elf\"}, "
	    "\"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 96}}");
	/* a symlink that leads out of the root resolves inside it, as the VMM would see it */
	put(tmp, "host.json",
	    "{\"boot-source\": {\"kernel_image_path\": \"/k.elf\"}, "
	    "\"machine-config\": {\"vcpu_count\": 7, \"mem_size_mib\": 700}}");
	char link[400];
	snprintf(link, sizeof(link), "%s/escape.json", root);
	cr_assert_eq(symlink("../host.json", link), 0);
	int root_fd = open(root, O_PATH | O_DIRECTORY);
	char *argv[] = {"vm",	     "--state-dir",   state,	  "api", "--api-sock",
			"/api.sock", "--config-file", "/vm.json", NULL};
	char **exec = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(vmm_jail_admit(8, argv, root_fd, "api-1", &exec, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert(strstr(record(), "\"vcpus\":2") && strstr(record(), "\"memory\":100663296"), "%s",
		  record());
	cr_assert_str_eq(exec[5], "--max-machine");
	cr_assert_str_eq(exec[6], "2,100663296");
	cr_assert_str_eq(exec[9], "--config-file", "the jailed VMM opens its own path");
	cr_assert_str_eq(exec[10], "/vm.json");
	free(exec);
	vmm_jail_leave();

	/* `../host.json` from the root is the root's own /host.json: there is none */
	argv[7] = "/escape.json";
	cr_assert_eq(vmm_jail_admit(8, argv, root_fd, "api-1", &exec, &err), -1);
	cr_assert(strstr(err->msg, "--config-file /escape.json in the jail's root") &&
		      strstr(err->msg, "No such file"),
		  "%s", err->msg);
	vs_err_free(&err);
	cr_assert_str_eq(record(), "");

	/* no root yet: nothing there to read */
	argv[7] = "/vm.json";
	cr_assert_eq(vmm_jail_admit(8, argv, -1, "api-1", &exec, &err), -1);
	cr_assert(strstr(err->msg, "--config-file /vm.json"), "%s", err->msg);
	vs_err_free(&err);
	close(root_fd);
}

Test(jail_admit, refusal_and_what_is_not_a_vm)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	char n[16], ratio[32];
	snprintf(n, sizeof(n), "%ld", cpus + 1);
	snprintf(ratio, sizeof(ratio), "cpu=1");
	char *argv[] = {"vm", "--state-dir",  state, "run", "--kernel", "/k", "--cpus",
			n,    "--overcommit", ratio, NULL};
	char **exec = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(vmm_jail_admit(10, argv, -1, "big", &exec, &err), -1);
	cr_assert(strstr(err->msg, "overcommit: ") && strstr(err->msg, "more vCPUs would commit"),
		  "%s", err->msg);
	vs_err_free(&err);
	cr_assert_null(exec);
	cr_assert_str_eq(record(), "", "a refused VM leaves no record");
	/* a bad size is the VMM's own usage error, said before anything is made */
	argv[7] = "0";
	cr_assert_eq(vmm_jail_admit(10, argv, -1, "big", &exec, &err), -1);
	cr_assert(strstr(err->msg, "jail: VMM arguments") && strstr(err->msg, "--cpus"), "%s",
		  err->msg);
	vs_err_free(&err);
	/* not the VMM (a probe), or a command that runs no VM: nothing counted, args as given */
	char *probe[] = {"30", NULL};
	cr_assert_eq(vmm_jail_admit(1, probe, -1, "p", &exec, NULL), 0);
	cr_assert_null(exec);
	char *list[] = {"vm", "--state-dir", state, "list", NULL};
	cr_assert_eq(vmm_jail_admit(4, list, -1, "p", &exec, NULL), 0);
	cr_assert_null(exec);
	cr_assert_str_eq(record(), "");
}

Test(jail_admit, record_moves_to_the_forked_child)
{
	char *argv[] = {"vm", "--state-dir", state, "run", "--kernel", "/k", NULL};
	char **exec = NULL;
	cr_assert_eq(vmm_jail_admit(6, argv, -1, "forked", &exec, NULL), 0);
	free(exec);
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	int proc_fd = open("/proc", O_PATH | O_DIRECTORY);
	vs_err_t err = NULL;
	cr_assert_eq(vmm_jail_moved(proc_fd, child, &err), 0, "%s", err ? err->msg : "");
	cr_assert_str_eq(record(), "", "the jailer's own record is gone");
	char p[400], buf[512] = {0};
	snprintf(p, sizeof(p), "%s/%d.json", state, (int)child);
	FILE *f = fopen(p, "r");
	cr_assert(f, "the child's record");
	cr_assert(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	cr_assert(strstr(buf, "\"id\":\"forked\"") && !strstr(buf, "\"start_time\":0,"), "%s", buf);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	close(proc_fd);
}

/* `vm api` without a config file: counted at its --max-machine (else the defaults). */
Test(jail_admit, api_counted_at_its_max_machine)
{
	char *argv[] = {"vm",	"--state-dir", state, "api", "--max-machine",
			"4,1G", "--api-sock",  "/s",  NULL};
	char **exec = NULL;
	cr_assert_eq(vmm_jail_admit(8, argv, -1, "api-2", &exec, NULL), 0);
	cr_assert(strstr(record(), "\"vcpus\":4") && strstr(record(), "\"memory\":1073741824"),
		  "%s", record());
	cr_assert_str_eq(exec[6], "4,1073741824");
	cr_assert_str_eq(exec[7], "--api-sock", "the user's --max-machine is replaced");
	free(exec);
	vmm_jail_leave();
}

/* The jailed VMM's side: --max-machine (what the jailer counted) refuses a larger VM (an
 * API's machine-config given after the exec); --counted-on-host: no state directory is
 * looked for (one that could be made would be made in the jail). */
Test(jail_admit, jailed_vmm_refuses_more_than_was_counted)
{
	char jailed_dir[400];
	snprintf(jailed_dir, sizeof(jailed_dir), "%s/in-jail", tmp);
	inventory_set_dir(jailed_dir);
	int argc = 4;
	char *argv[] = {"api", "--counted-on-host", "--max-machine", "2,128M", NULL};
	cr_assert_eq(inventory_setup(&argc, argv, NULL), 0);
	cr_assert_eq(argc, 1);
	cr_assert_eq(inventory_admit(2, 128ULL << 20, NULL), 0);
	cr_assert_eq(inventory_admit(1, 64ULL << 20, NULL), 0);
	vs_err_t err = NULL;
	cr_assert_eq(inventory_admit(4, 128ULL << 20, &err), -1);
	cr_assert(strstr(err->msg, "overcommit: a VM of 4 vCPUs and 128 MiB is larger than "
				   "--max-machine (2 vCPUs, 128 MiB"),
		  "%s", err->msg);
	vs_err_free(&err);
	cr_assert_eq(inventory_admit(2, 256ULL << 20, NULL), -1);
	cr_assert_neq(access(jailed_dir, F_OK), 0, "no state directory was made");
	const char *bad[] = {"-1,5", "2", "0,1G", "2,", "2,1X", "x,1G"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct machine_max m;
		cr_assert_eq(machine_max_parse(bad[i], &m, &err), -1, "`%s` accepted", bad[i]);
		cr_assert(strstr(err->msg, "--max-machine"), "%s", err->msg);
		vs_err_free(&err);
	}
}
