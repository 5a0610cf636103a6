#include "vmm/vmm.h"

int vmm_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	(void)g;
	(void)argc;
	(void)argv;
	return vs_err(err, 0, "vm: not implemented yet");
}
