/* The VM inventory: the overcommit policy's arithmetic, and records that outlive (or
 * don't outlive) their VMMs. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/proc.h"
#include "vmm/inventory/inventory.h"

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)

static const struct host_capacity host = {.cpus = 2, .memory = 4 * GiB};

Test(overcommit, parse)
{
	struct overcommit o;
	overcommit_defaults(&o);
	cr_assert(!o.off && o.cpu == 16.0 && o.mem == 1.5);
	cr_assert_eq(overcommit_parse("cpu=4", &o, NULL), 0);
	cr_assert(o.cpu == 4.0 && o.mem == 1.5, "an unnamed ratio keeps its value");
	cr_assert_eq(overcommit_parse("mem=0.5,cpu=2.5", &o, NULL), 0);
	cr_assert(o.cpu == 2.5 && o.mem == 0.5);
	cr_assert_eq(overcommit_parse("off", &o, NULL), 0);
	cr_assert(o.off);
	cr_assert_eq(overcommit_parse("cpu=3", &o, NULL), 0);
	cr_assert(!o.off, "naming a ratio turns the check back on");
	const char *bad[] = {"", "cpu=", "cpu=0", "cpu=-1", "mem=nan", "mem=inf", "cpu=1e9",
			     "cpu=2x", "disk=2", ",", "cpu=2,,mem"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		vs_err_t err = NULL;
		cr_assert_eq(overcommit_parse(bad[i], &o, &err), -1, "`%s` accepted", bad[i]);
		cr_assert(err && strstr(err->msg, "--overcommit"), "`%s`", bad[i]);
		vs_err_free(&err);
	}
}

Test(overcommit, cpu_limit_counts_running_vms_and_floors)
{
	struct overcommit o = {.cpu = 1.5, .mem = 1.5};
	struct vm_record run[] = {{.vcpus = 1, .memory = 128 * MiB},
				  {.vcpus = 1, .memory = 128 * MiB}};
	/* 2 CPUs x 1.5 = 3 vCPUs: one more fits, two more don't */
	cr_assert_eq(overcommit_check(&o, &host, run, 2, 1, 128 * MiB, NULL), 0);
	vs_err_t err = NULL;
	cr_assert_eq(overcommit_check(&o, &host, run, 2, 2, 128 * MiB, &err), -1);
	cr_assert(strstr(err->msg, "would commit 4 on this host's 2 CPUs, past the limit of 3"),
		  "%s", err->msg);
	cr_assert(strstr(err->msg, "2 VMs running commit 2, 1 free"), "%s", err->msg);
	vs_err_free(&err);
	o.cpu = 1.4; /* 2.8: floored to 2 */
	cr_assert_eq(overcommit_check(&o, &host, run, 2, 1, MiB, NULL), -1);
	cr_assert_eq(overcommit_check(&o, &host, NULL, 0, 2, MiB, NULL), 0);
}

Test(overcommit, memory_limit)
{
	struct overcommit o = {.cpu = 16, .mem = 1.0};
	struct vm_record run[] = {{.vcpus = 1, .memory = 3 * GiB}};
	cr_assert_eq(overcommit_check(&o, &host, run, 1, 1, GiB, NULL), 0, "exactly the limit");
	vs_err_t err = NULL;
	cr_assert_eq(overcommit_check(&o, &host, run, 1, 1, GiB + MiB, &err), -1);
	cr_assert(strstr(err->msg, "past the limit of 4.0 GiB (mem=1)"), "%s", err->msg);
	cr_assert(strstr(err->msg, "1 VM running commit 3.0 GiB, 1.0 GiB free"), "%s", err->msg);
	vs_err_free(&err);
	o.off = true;
	cr_assert_eq(overcommit_check(&o, &host, run, 1, 64, 64 * GiB, NULL), 0);
}

static char dir[] = "/tmp/vessel-inventory-XXXXXX";

static void write_record(pid_t pid, uint64_t start, unsigned vcpus)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%d.json", dir, (int)pid);
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fprintf(f,
		"{\"pid\": %d, \"start_time\": %llu, \"id\": \"other\", \"vcpus\": %u, "
		"\"memory\": %llu, \"balloon\": 0, \"api_sock\": \"/x.sock\"}",
		(int)pid, (unsigned long long)start, vcpus, 256 * MiB);
	fclose(f);
}

static bool exists(pid_t pid)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%d.json", dir, (int)pid);
	return access(path, F_OK) == 0;
}

Test(inventory, records_of_live_vmms_count_and_dead_ones_go)
{
	cr_assert(mkdtemp(dir));
	inventory_set_dir(dir);
	int argc = 3;
	char *argv[] = {"run", "--overcommit", "cpu=2", NULL};
	cr_assert_eq(inventory_setup(&argc, argv, NULL), 0);
	cr_assert_eq(argc, 1);
	cr_assert_str_eq(argv[0], "run");

	/* a live VMM (a child that sleeps) and a dead one (a child reaped) */
	pid_t live = fork();
	if (live == 0) {
		pause();
		_exit(0);
	}
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	cr_assert_eq(waitpid(dead, NULL, 0), dead);
	usleep(10000);
	write_record(live, proc_start_time(live), 3);
	write_record(dead, 12345, 1);
	/* the same pid started at another time is another process */
	write_record(getppid(), proc_start_time(getppid()) + 1, 1);
	char junk[256];
	snprintf(junk, sizeof(junk), "%s/junk.json", dir);
	FILE *f = fopen(junk, "w");
	fputs("{\"pid\": \"x\"}", f);
	fclose(f);

	struct vm_record *v;
	size_t n;
	cr_assert_eq(inventory_read(&v, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].pid, live);
	cr_assert_eq(v[0].vcpus, 3);
	cr_assert_str_eq(v[0].id, "other");
	cr_assert_str_eq(v[0].api_sock, "/x.sock");
	inventory_free(v, n);
	cr_assert(!exists(dead) && !exists(getppid()), "stale records are removed");
	cr_assert(exists(live));
	cr_assert_eq(access(junk, F_OK), 0, "what isn't a record is left alone");

	/* cpu=2 on this host: the live one's 3 vCPUs leave room for 2*cpus - 3 */
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	vs_err_t err = NULL;
	cr_assert_eq(inventory_admit((unsigned)(2 * cpus - 3 + 1), 64 * MiB, &err), -1);
	cr_assert(strstr(err->msg, "overcommit:"), "%s", err->msg);
	vs_err_free(&err);
	cr_assert(!exists(getpid()), "a refused VM leaves no record");

	inventory_identify("mine", "/api.sock");
	cr_assert_eq(inventory_admit(1, 64 * MiB, NULL), 0);
	cr_assert(exists(getpid()));
	inventory_set_balloon(32 * MiB);
	/* what another VMM reads of us */
	char path[256];
	snprintf(path, sizeof(path), "%s/%d.json", dir, (int)getpid());
	f = fopen(path, "r");
	char buf[512] = {0};
	cr_assert(fread(buf, 1, sizeof(buf) - 1, f) > 0);
	fclose(f);
	cr_assert(strstr(buf, "\"id\":\"mine\"") && strstr(buf, "\"balloon\":33554432") &&
		      strstr(buf, "\"api_sock\":\"/api.sock\""),
		  "%s", buf);
	inventory_leave();
	cr_assert(!exists(getpid()));

	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	cr_assert_eq(inventory_read(&v, &n, NULL), 0);
	cr_assert_eq(n, 0);
	inventory_free(v, n);
	unlink(junk);
	snprintf(path, sizeof(path), "%s/.lock", dir);
	unlink(path);
	cr_assert_eq(rmdir(dir), 0, "nothing else was left in the directory");
}
