/* The microVM's cgroup on the host: the container's linux.cgroupsPath holds the VMM and
 * its virtiofsds (Kata's sandbox_cgroup_only), so what a shim or podman reads of the
 * task's pid (containerd's OOM watch, `ctr task metrics`, `podman stats`) is the
 * microVM's, and the container's CPU quota holds the vCPU threads. */
#ifndef VESSEL_VMC_HOSTCG_H
#define VESSEL_VMC_HOSTCG_H

#include <jansson.h>

#include "base/error.h"
#include "base/globals.h"
#include "oci/state.h"

struct cgroup;

/* What the host's cgroup holds beyond guest RAM: the VMM's own memory and the
 * virtiofsds' (bench/vm-containers.sh measures them). */
#define VMC_HOSTCG_OVERHEAD_MIB 64

/* Plans the cgroup of config's linux.cgroupsPath (--systemd-cgroup's slice:prefix:name
 * too), records it in st (saved before anything is made, so a delete after a crash finds
 * it), makes it and writes the limits: memory the VM's size (mem_mib) plus the overhead,
 * when the container has a memory limit (the guest enforces the container's own), and
 * the container's cpu shares, quota, period and cpuset as they are. *out is NULL when a
 * rootless runtime may not make one (said once on stderr), as for host containers. */
int vmc_hostcg_make(const struct vs_globals *g, json_t *config, unsigned long mem_mib,
		    struct container_state *st, struct cgroup **out, vs_err_t *err);

/* `update`: the CPU part of resources (shares, quota, period, cpuset) to the host's
 * cgroup too, once the guest took it; memory stays the VM's size, fixed at boot. */
int vmc_hostcg_update(struct container_state *st, json_t *resources, vs_err_t *err);

#endif
