/*
 * Where an AP starts after INIT-SIPI-SIPI: real mode at vector << 12. The BSP copies
 * ap_trampoline..ap_trampoline_end to AP_TRAMPOLINE (below 1 MiB, page aligned); the code
 * switches to flat 32-bit protected mode with its own GDT and jumps to ap_start32 in the
 * image at 1 MiB, which gives each AP a stack by its APIC id and calls ap_main(id).
 */
#define AP_TRAMPOLINE 0x10000
#define MAX_CPUS 64
#define AP_STACK 4096
#define REL(x) ((x) - ap_trampoline)

	.text
	.code16
	.globl ap_trampoline, ap_trampoline_end
ap_trampoline:
	cli
	mov %cs, %ax
	mov %ax, %ds
	lgdtl REL(ap_gdt_desc)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $0x08, $(AP_TRAMPOLINE + REL(ap_pm32))

	.code32
ap_pm32:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov $ap_start32, %eax
	jmp *%eax

	.balign 8
ap_gdt:
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x08: flat 32-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: flat data */
ap_gdt_desc:
	.word ap_gdt_desc - ap_gdt - 1
	.long AP_TRAMPOLINE + REL(ap_gdt)
ap_trampoline_end:

ap_start32:
	mov 0xfee00020, %eax		/* local APIC ID register */
	shr $24, %eax
	cmp $MAX_CPUS, %eax
	jae 2f
	mov %eax, %ecx
	inc %ecx
	shl $12, %ecx
	lea ap_stacks(%ecx), %esp
	push %eax
	call ap_main
2:	cli
	hlt
	jmp 2b

	.bss
	.balign 16
ap_stacks:
	.skip MAX_CPUS * AP_STACK

	.section .note.GNU-stack, "", @progbits
