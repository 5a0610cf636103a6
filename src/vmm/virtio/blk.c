/* Placeholder until the virtio-blk device lands (the blk engineer replaces this file). */
#include "vmm/virtio/blk.h"

int virtio_blk_add(struct vm *vm, const char *spec, vs_err_t *err)
{
	(void)vm;
	return vs_err(err, 0, "--disk %s: virtio-blk is not built yet", spec);
}
