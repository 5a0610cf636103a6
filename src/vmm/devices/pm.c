#include "vmm/devices/pm.h"

#include "vmm/layout.h"

#define SLP_EN (1u << 5)
#define SLP_TYP_SHIFT 2
#define SLP_TYP_MASK 0x7u

void pm_sleep_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	const struct machine_ctl *ctl = opaque;
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0; /* no wake status ever pending */
		return;
	}
	if (offset != 0 || len != 1)
		return; /* the status register and odd widths: nothing to do */
	unsigned typ = (data[0] >> SLP_TYP_SHIFT) & SLP_TYP_MASK;
	if ((data[0] & SLP_EN) && typ == PM_SLP_TYP_S5)
		machine_stop(ctl, VM_EXIT_POWEROFF, "ACPI poweroff (S5)");
}

void pm_reset_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	const struct machine_ctl *ctl = opaque;
	(void)offset;
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			data[i] = 0;
		return;
	}
	if (len == 1 && data[0] == PM_RESET_VALUE)
		machine_stop(ctl, VM_EXIT_RESET, "ACPI reset register");
}
