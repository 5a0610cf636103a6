/* `vessel vm list`: the VMs this host runs, with what they were promised and what they
 * hold (RSS from /proc, read now). */
#include "vmm/inventory/inventory.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] = "usage: vessel vm list [--format table|json]";

/* VmRSS of pid in bytes; 0 when it can't be read (the VMM just exited). */
static uint64_t rss(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return 0;
	unsigned long long kb = 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb << 10;
}

static void mib(char buf[32], uint64_t bytes, bool dash_for_zero)
{
	if (dash_for_zero && !bytes)
		snprintf(buf, 32, "-");
	else
		snprintf(buf, 32, "%llu MiB", (unsigned long long)(bytes >> 20));
}

static int print_json(const struct vm_record *v, size_t n, vs_err_t *err)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++) {
		json_t *o = json_pack("{s:i, s:s, s:I, s:I, s:I, s:I, s:s?}", "pid", (int)v[i].pid,
				      "id", v[i].id, "vcpus", (json_int_t)v[i].vcpus, "memory_mib",
				      (json_int_t)(v[i].memory >> 20), "balloon_mib",
				      (json_int_t)(v[i].balloon >> 20), "rss_mib",
				      (json_int_t)(rss(v[i].pid) >> 20), "api_sock", v[i].api_sock);
		if (!o || json_array_append_new(a, o) < 0) {
			json_decref(a);
			a = NULL;
		}
	}
	if (!a)
		return vs_err(err, ENOMEM, "vm list");
	json_dumpf(a, stdout, JSON_INDENT(2));
	fputc('\n', stdout);
	json_decref(a);
	return 0;
}

int inventory_list_main(int argc, char **argv, vs_err_t *err)
{
	bool json = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			printf("%s\n\nThe VMs this host runs (their records in %s).\n", usage,
			       inventory_dir() ? inventory_dir() : "no state directory");
			return 0;
		}
		if (strcmp(argv[i], "--format") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "json") == 0 || strcmp(argv[i + 1], "table") == 0)) {
			json = strcmp(argv[++i], "json") == 0;
			continue;
		}
		return vs_err(err, 0, "%s: `%s`", usage, argv[i]);
	}
	struct vm_record *v;
	size_t n;
	if (inventory_read(&v, &n, err) < 0)
		return -1;
	int rc = 0;
	if (json) {
		rc = print_json(v, n, err);
	} else {
		printf("%-16s %-8s %-5s %-10s %-10s %-10s %s\n", "ID", "PID", "VCPUS", "MEMORY",
		       "BALLOON", "RSS", "API");
		for (size_t i = 0; i < n; i++) {
			char m[32], b[32], r[32];
			mib(m, v[i].memory, false);
			mib(b, v[i].balloon, true);
			mib(r, rss(v[i].pid), false);
			printf("%-16s %-8d %-5u %-10s %-10s %-10s %s\n", v[i].id[0] ? v[i].id : "-",
			       (int)v[i].pid, v[i].vcpus, m, b, r,
			       v[i].api_sock ? v[i].api_sock : "-");
		}
	}
	inventory_free(v, n);
	return rc;
}
