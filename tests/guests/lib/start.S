/*
 * PVH entry for the tiny guests. The VMM (or QEMU's PVH loader) enters pvh_start in 32-bit
 * protected mode with paging off, flat segments and EBX = the hvm_start_info address. The
 * guests stay in that mode: everything they touch is below 4 GiB, and every instruction of
 * kernel-mode code counts on hosts where it is interpreted.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4			/* namesz: "Xen\0" */
	.long 8			/* descsz: a 64-bit address, as Linux's vmlinux has it */
	.long 18		/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long pvh_start
	.long 0

	.text
	.code32
	.globl pvh_start
pvh_start:
	cli
	cld
	mov $boot_stack_top, %esp
	mov %ebx, start_info
	rdtsc
	mov %eax, entry_tsc
	mov %edx, entry_tsc + 4
	call guest_start
1:	hlt
	jmp 1b

	.data
	.globl start_info, entry_tsc
	.balign 8
entry_tsc:
	.quad 0
start_info:
	.long 0

	.bss
	.balign 16
	.skip 16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
