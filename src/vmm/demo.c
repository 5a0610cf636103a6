#include "vmm/demo.h"

/* from demo_blob.S (generated, or demo_none.S when tests/guests has no demo) */
extern const uint8_t vessel_demo_elf_start[], vessel_demo_elf_end[];

size_t vmm_demo_image(const uint8_t **image)
{
	*image = vessel_demo_elf_start;
	return (size_t)(vessel_demo_elf_end - vessel_demo_elf_start);
}
