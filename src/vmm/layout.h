/* The guest-physical map every vessel microVM shares (see docs/vm.md).
 *
 * Low memory holds the boot structures the VMM writes; nothing here is touched
 * unless the chosen boot protocol needs it, so an unused page never costs RSS. */
#ifndef VESSEL_VMM_LAYOUT_H
#define VESSEL_VMM_LAYOUT_H

#define LAYOUT_GDT 0x500ULL	     /* boot GDT, 5 descriptors */
#define LAYOUT_PVH_INFO 0x6000ULL    /* hvm_start_info, modlist, memmap */
#define LAYOUT_BOOT_PARAMS 0x7000ULL /* Linux zero page (4 KiB) */
#define LAYOUT_BOOT_STACK 0x8ff0ULL
#define LAYOUT_PML4 0x9000ULL
#define LAYOUT_PDPT 0xa000ULL
#define LAYOUT_PD 0xb000ULL /* 4 pages: identity map of the first 4 GiB */
#define LAYOUT_CMDLINE 0x20000ULL
#define LAYOUT_CMDLINE_MAX 0x10000ULL
#define LAYOUT_LOWMEM_END 0x9fc00ULL /* RAM below the EBDA/ROM area */
#define LAYOUT_VMGENID 0xdf000ULL    /* the VM generation ID (a reserved page) */
#define LAYOUT_ACPI 0xe0000ULL	     /* RSDP first, so a scan finds it */
#define LAYOUT_ACPI_SIZE (LAYOUT_RESET_VECTOR - LAYOUT_ACPI)
#define LAYOUT_RESET_VECTOR 0xffff0ULL /* F000:FFF0, where a real-mode restart jumps */
#define LAYOUT_RESET_VECTOR_SIZE 16
#define LAYOUT_HIMEM 0x100000ULL /* kernels load at 1 MiB */

#define LAYOUT_MMIO_HOLE 0xc0000000ULL /* RAM above 3 GiB moves to 4 GiB */
#define LAYOUT_4G 0x100000000ULL
#define LAYOUT_VIRTIO_MMIO 0xd0000000ULL /* virtio-mmio windows (later work) */
#define LAYOUT_IOAPIC 0xfec00000ULL
#define LAYOUT_LAPIC 0xfee00000ULL
#define LAYOUT_IDENTITY_MAP 0xfffbc000ULL /* KVM's private pages (VT-x) */
#define LAYOUT_TSS 0xfffbd000ULL

/* GDT selectors (Linux's 64-bit boot protocol wants __BOOT_CS 0x10, __BOOT_DS 0x18) */
#define GDT_CODE32 0x08
#define GDT_CODE64 0x10
#define GDT_DATA 0x18
#define GDT_TSS 0x20

/* ACPI fixed hardware of the hardware-reduced FADT (SystemIO space) */
#define PM_SLEEP_CONTROL_PORT 0x600
#define PM_SLEEP_STATUS_PORT 0x601
#define PM_RESET_PORT 0x604
#define PM_RESET_VALUE 0x1
#define PM_SLP_TYP_S5 5

/* The Generic Event Device's interrupt (the VM generation ID's change notification):
 * above the virtio-mmio devices' pins 5..20 */
#define GED_GSI 23

#define COM1_PORT 0x3f8
#define COM1_IRQ 4

#endif
