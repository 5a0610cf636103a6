/* Resets the machine through the FADT's RESET_REG and RESET_VALUE, read from the table. */
#include "acpi.h"
#include "guest.h"

void guest_main(void)
{
	const uint8_t *fadt = (const uint8_t *)acpi_table("FACP");

	if (!fadt || ((const struct acpi_header *)fadt)->length <= FADT_RESET_VALUE)
		guest_fail("no FADT with a reset register");
	const struct acpi_gas *reg = (const void *)(fadt + FADT_RESET_REG);

	gprintf("RESET: FADT reset register space=%u addr=0x%llx value=0x%02x\n", reg->space_id,
		reg->address, fadt[FADT_RESET_VALUE]);
	acpi_reset();
	/* QEMU acts on the request from its main loop, not at once */
	tsc_delay(STOP_WAIT_TICKS);
	guest_fail("the FADT reset register did not reset the machine");
}
