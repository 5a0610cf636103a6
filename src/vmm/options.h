/* `vessel vm run` options: parsing and validation (pure, unit-tested). */
#ifndef VESSEL_VMM_OPTIONS_H
#define VESSEL_VMM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

#define VM_DEFAULT_MEMORY (128ULL << 20)
#define VM_CPUS_CEILING 4096 /* sanity bound before KVM's own limit is known */
#define VM_MAX_VIRTIO 16     /* virtio devices of one VM (--disk, --net, --rng together) */

struct vm_options {
	const char *kernel, *initrd, *cmdline;
	unsigned cpus;
	uint64_t memory;
	bool demo, help, hugepages;
	bool rng, no_virtio_cmdline;
	const char *disks[VM_MAX_VIRTIO]; /* --disk SPEC, in order; each device parses its own */
	const char *nets[VM_MAX_VIRTIO];  /* --net SPEC */
	unsigned ndisks, nnets;
	char **command; /* words after `--`, for init's argv */
	int ncommand;
};

/* argv[0] is "run". Returns 0, or -1 with err for a usage error (exit status 2). */
int vm_options_parse(int argc, char **argv, struct vm_options *o, vs_err_t *err);

int vm_parse_cpus(const char *s, unsigned *out, vs_err_t *err);
int vm_parse_memory(const char *s, uint64_t *out, vs_err_t *err);

/* How many virtio devices the options ask for. */
static inline unsigned vm_options_nvirtio(const struct vm_options *o)
{
	return o->ndisks + o->nnets + (o->rng ? 1 : 0);
}

/* base, then " -- " and the words (if any). Caller frees. */
/* base, then " -- " and the words (quoted when they hold spaces). NULL with errno EINVAL
 * for a word holding a double quote, which Linux cannot take. */
char *vm_build_cmdline(const char *base, char **words, int n);

extern const char vm_run_help[];

#endif
