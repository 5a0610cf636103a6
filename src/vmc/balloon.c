/* update's memory limit on a running microVM: its RAM is fixed at boot (limit + overhead),
 * so a lower limit inflates the VM's balloon (the VMM's PATCH /balloon on its API socket)
 * by what the container may no longer use, and the host gets those pages back; a higher
 * one deflates it. The guest's cgroup enforces the limit itself; the balloon gives way to
 * a guest that runs out (deflate_on_oom), so it never takes what the guest's kernel and
 * agent need. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/json.h"
#include "oci/state.h"
#include "vmc/control.h"
#include "vmm/vmm.h"

int vmc_balloon_update(const struct container_state *st, json_t *resources, vs_err_t *err)
{
	json_t *limit_j = json_object_get(json_object_get(resources, "memory"), "limit");
	if (!json_is_integer(limit_j))
		return 0;
	json_int_t limit = json_integer_value(limit_j);
	char path[4200], sock[200];
	snprintf(path, sizeof(path), "%s/" VMC_VM_CONFIG, st->dir);
	json_t *cfg = vjson_load_file(path, 1u << 20, err);
	if (!cfg)
		return vs_err_wrap(err, "update: the microVM's config");
	json_int_t ram = json_integer_value(
	    json_object_get(json_object_get(cfg, "machine-config"), "mem_size_mib"));
	json_decref(cfg);
	json_int_t keep = limit > 0 ? ((limit + (1 << 20) - 1) >> 20) + VMC_MEM_OVERHEAD_MIB : ram;
	json_int_t amount = ram > keep ? ram - keep : 0;

	char dir[64];
	if (vmc_sockets_dir(st, dir) < 0)
		return vs_err(err, 0, "container `%s`: its record names no VMM sockets", st->id);
	snprintf(sock, sizeof(sock), "%s/" VMC_API_SOCKET, dir);
	char body[64], *answer = NULL;
	snprintf(body, sizeof(body), "{\"amount_mib\": %lld}", (long long)amount);
	int status = 0;
	if (vmm_api_call(sock, "PATCH", "/balloon", body, &status, &answer, err) < 0)
		return vs_err_wrap(err, "update: the balloon of container `%s`'s microVM", st->id);
	int rc = 0;
	if (status != 204)
		rc = vs_err(err, 0, "update: the balloon of container `%s`'s microVM: %d %s",
			    st->id, status, answer);
	free(answer);
	return rc;
}
