/* A VM config file (Firecracker's schema, user input; the API's bodies later take the same
 * objects). Checks, besides crashes, UB and leaks: an accepted file gives a config the
 * builder can take (a kernel, 1 to VM_CPUS_CEILING vCPUs, every device with a config, at
 * most VM_MAX_VIRTIO virtio devices); a refused one says why on one line. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/virtio/blk_spec.h"
#include "vmm/virtio/net_spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!root)
		return 0;
	struct vm_config c;
	vm_config_init(&c);
	vs_err_t err = NULL;
	if (vm_config_from_json(&c, root, &err) == 0) {
		if (!c.kernel || !c.cmdline || c.cpus < 1 || c.cpus > VM_CPUS_CEILING)
			__builtin_trap();
		unsigned nvirtio = 0;
		for (unsigned i = 0; i < c.ndevices; i++) {
			const struct vm_config_device *d = &c.devices[i];
			nvirtio += d->kind->virtio;
			if (!d->origin || (d->kind->config_size && !d->config))
				__builtin_trap();
			if (!strcmp(d->kind->name, "drive") &&
			    !*((const struct blk_spec *)d->config)->path)
				__builtin_trap();
			if (!strcmp(d->kind->name, "network-interface") &&
			    !*((const struct net_spec *)d->config)->tap)
				__builtin_trap();
		}
		if (nvirtio > VM_MAX_VIRTIO)
			__builtin_trap();
	} else if (!err || !err->msg || strchr(err->msg, '\n')) {
		__builtin_trap();
	}
	vs_err_free(&err);
	vm_config_free(&c);
	json_decref(root);
	return 0;
}
