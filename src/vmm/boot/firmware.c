#include "vmm/boot/firmware.h"

#include <string.h>

#include "vmm/layout.h"

/*
 * Linux on x86 with a hardware-reduced FADT and no EFI restarts through EFI (which it
 * then finds absent) and then the BIOS: machine_real_restart drops to real mode and
 * jumps to F000:FFF0 (arch/x86/kernel/reboot.c, reboot_init and efi_reboot_required).
 * It never tries the FADT reset register first, so a machine with nothing at the reset
 * vector hangs there forever. Real-mode code at the vector does what the BIOS would:
 * reset, through the ACPI reset register and, should that be ignored, the i8042.
 */
int firmware_write_reset_vector(struct guest_mem *m, vs_err_t *err)
{
	/* clang-format off */
	const uint8_t stub[] = {
		0xb0, PM_RESET_VALUE,				/* mov al, value */
		0xba, PM_RESET_PORT & 0xff, PM_RESET_PORT >> 8,	/* mov dx, port */
		0xee,						/* out dx, al */
		0xb0, 0xfe,					/* mov al, 0xfe */
		0xe6, 0x64,					/* out 0x64, al */
		0xfa,						/* cli */
		0xf4,						/* hlt */
		0xeb, 0xfd,					/* jmp hlt */
	};
	/* clang-format on */
	_Static_assert(sizeof(stub) <= LAYOUT_RESET_VECTOR_SIZE, "the reset stub fits");
	uint8_t *dst = guest_mem_ptr(m, LAYOUT_RESET_VECTOR, sizeof(stub));
	if (!dst)
		return vs_err(err, 0, "no guest RAM at the reset vector");
	memcpy(dst, stub, sizeof(stub));
	return 0;
}
