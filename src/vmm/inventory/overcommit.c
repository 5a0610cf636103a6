/* The overcommit policy: how much of the host the running VMs may promise their guests. */
#include "vmm/inventory/inventory.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void overcommit_defaults(struct overcommit *o)
{
	/* OpenStack Nova's cpu_allocation_ratio and ram_allocation_ratio defaults */
	*o = (struct overcommit){.cpu = 16.0, .mem = 1.5};
}

static int parse_ratio(const char *key, const char *s, double *out, vs_err_t *err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	/* a ratio past 1000 is a typo, not a policy; 0 would refuse every VM */
	if (end == s || *end || errno || !isfinite(v) || v <= 0 || v > 1000)
		return vs_err(err, 0, "--overcommit %s=`%s`: a ratio above 0 and at most 1000", key,
			      s);
	*out = v;
	return 0;
}

int overcommit_parse(const char *spec, struct overcommit *o, vs_err_t *err)
{
	if (strcmp(spec, "off") == 0) {
		o->off = true;
		return 0;
	}
	char *copy = strdup(spec);
	if (!copy)
		return vs_err(err, ENOMEM, "--overcommit");
	int rc = 0;
	char *save = NULL;
	bool any = false;
	for (char *tok = strtok_r(copy, ",", &save); tok && rc == 0;
	     tok = strtok_r(NULL, ",", &save)) {
		any = true;
		if (strncmp(tok, "cpu=", 4) == 0)
			rc = parse_ratio("cpu", tok + 4, &o->cpu, err);
		else if (strncmp(tok, "mem=", 4) == 0)
			rc = parse_ratio("mem", tok + 4, &o->mem, err);
		else
			rc = vs_err(err, 0, "--overcommit `%s`: cpu=RATIO,mem=RATIO or off", tok);
	}
	free(copy);
	if (rc == 0 && !any)
		rc = vs_err(err, 0, "--overcommit ``: cpu=RATIO,mem=RATIO or off");
	if (rc == 0)
		o->off = false;
	return rc;
}

/* "512 MiB", "1.5 GiB": errors meant for a person. */
static const char *size(char buf[32], uint64_t bytes)
{
	if (bytes >= (1ULL << 30))
		snprintf(buf, 32, "%.1f GiB", (double)bytes / (1ULL << 30));
	else
		snprintf(buf, 32, "%llu MiB", (unsigned long long)(bytes >> 20));
	return buf;
}

int overcommit_check(const struct overcommit *o, const struct host_capacity *host,
		     const struct vm_record *running, size_t n, unsigned vcpus, uint64_t memory,
		     vs_err_t *err)
{
	if (o->off)
		return 0;
	uint64_t cpus = 0, mem = 0;
	for (size_t i = 0; i < n; i++) {
		cpus += running[i].vcpus;
		mem += running[i].memory;
	}
	/* floor: a limit of 2.9 vCPUs allows 2 */
	uint64_t cpu_limit = (uint64_t)floor((double)host->cpus * o->cpu);
	uint64_t mem_limit = (uint64_t)floor((double)host->memory * o->mem);
	if (cpus + vcpus > cpu_limit)
		return vs_err(err, 0,
			      "overcommit: %u more vCPU%s would commit %llu on this host's %u CPUs, "
			      "past the limit of %llu (cpu=%g); %zu VM%s running commit %llu, %llu "
			      "free (vessel vm list shows them; --overcommit sets the ratios)",
			      vcpus, vcpus == 1 ? "" : "s", (unsigned long long)(cpus + vcpus), host->cpus,
			      (unsigned long long)cpu_limit, o->cpu, n, n == 1 ? "" : "s",
			      (unsigned long long)cpus,
			      (unsigned long long)(cpus < cpu_limit ? cpu_limit - cpus : 0));
	if (mem + memory > mem_limit) {
		char a[32], b[32], c[32], d[32], e[32];
		return vs_err(err, 0,
			      "overcommit: %s more guest memory would commit %s on this host's %s "
			      "of RAM, past the limit of %s (mem=%g); %zu VM%s running commit %s, "
			      "%s free (vessel vm list shows them; --overcommit sets the ratios)",
			      size(a, memory), size(b, mem + memory), size(c, host->memory),
			      size(d, mem_limit), o->mem, n, n == 1 ? "" : "s", size(e, mem),
			      size((char[32]){0}, mem < mem_limit ? mem_limit - mem : 0));
	}
	return 0;
}

int machine_max_parse(const char *spec, struct machine_max *m, vs_err_t *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(spec, &end, 10);
	uint64_t mem;
	if (end == spec || *end != ',' || errno || v == 0 || v > 1u << 20 || spec[0] == '-' ||
	    vs_parse_size(end + 1, &mem) < 0 || mem == 0)
		return vs_err(err, 0, "--max-machine `%s`: VCPUS,SIZE (e.g. 2,512M)", spec);
	*m = (struct machine_max){.set = true, .vcpus = (unsigned)v, .memory = mem};
	return 0;
}

int machine_max_check(const struct machine_max *m, unsigned vcpus, uint64_t memory, vs_err_t *err)
{
	if (!m->set || (vcpus <= m->vcpus && memory <= m->memory))
		return 0;
	char a[32], b[32];
	return vs_err(err, 0,
		      "overcommit: a VM of %u vCPU%s and %s is larger than --max-machine (%u "
		      "vCPUs, %s: what a jailed VMM was counted at, docs/jail.md)",
		      vcpus, vcpus == 1 ? "" : "s", size(a, memory), m->vcpus, size(b, m->memory));
}
