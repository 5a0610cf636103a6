/* No demo guest in this build: an empty image (see src/vmm/meson.build). */
	.section .rodata
	.globl vessel_demo_elf_start
	.globl vessel_demo_elf_end
vessel_demo_elf_start:
vessel_demo_elf_end:
	.section .note.GNU-stack,"",@progbits
