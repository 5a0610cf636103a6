/* The VM on the real /dev/kvm: interrupt routing as the MADT describes it, and the
 * ioeventfd/irqfd plumbing virtio devices will use. Runs a few guest instructions. */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/boot/cpu.h"
#include "vmm/bus.h"
#include "vmm/layout.h"
#include "vmm/seccomp.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static struct vm vm;
static int kvm_fd = -1;

static void setup(void)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_open_kvm(&kvm_fd, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vm_create(&vm, kvm_fd, 1, 16ULL << 20, 0, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vcpu_create(&vm, 0, &err), 0, "%s", err ? err->msg : "");
}

static void teardown(void)
{
	vm_destroy(&vm);
	close(kvm_fd);
}

static uint32_t ioapic_irr(void)
{
	struct kvm_irqchip chip = {.chip_id = KVM_IRQCHIP_IOAPIC};
	cr_assert_eq(ioctl(vm.vm_fd, KVM_GET_IRQCHIP, &chip), 0);
	return chip.chip.ioapic.irr;
}

Test(kvm, pit_irq0_arrives_on_ioapic_pin2, .init = setup, .fini = teardown)
{
	/* the MADT says ISA IRQ0 -> GSI 2; KVM's own default would be pin 0 */
	vm_irq_line(&vm, 0, 1);
	cr_assert_eq(ioapic_irr() & 0x5, 0x4, "IRR 0x%x", ioapic_irr());
	vm_irq_line(&vm, 0, 0);
	cr_assert_eq(ioapic_irr() & 0x5, 0);
	vm_irq_line(&vm, COM1_IRQ, 1);
	cr_assert_eq(ioapic_irr(), 1u << COM1_IRQ);
	vm_irq_line(&vm, COM1_IRQ, 0);
}

Test(kvm, msi_routes_and_irqfds, .init = setup, .fini = teardown)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_route_msi(&vm, 24, 0xfee00000, 0x30, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vm_route_msi(&vm, 24, 0xfee00000, 0x31, &err), -1);
	cr_assert(strstr(err->msg, "already routed"));
	vs_err_free(&err);
	cr_assert_eq(vm_route_msi(&vm, 5, 0xfee00000, 0x31, &err), -1, "IOAPIC pins are not MSI");
	vs_err_free(&err);
	/* the IOAPIC routes survive a new table */
	vm_irq_line(&vm, 0, 1);
	cr_assert_eq(ioapic_irr() & 0x4, 0x4);
	vm_irq_line(&vm, 0, 0);

	int a = eventfd(0, EFD_CLOEXEC), b = eventfd(0, EFD_CLOEXEC);
	cr_assert_eq(vm_irqfd(&vm, a, 5, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vm_irqfd(&vm, b, 24, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(vm_irqfd(&vm, a, 6, &err), -1, "one eventfd, one GSI");
	vs_err_free(&err);
	uint64_t one = 1;
	cr_assert_eq(write(a, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert_eq(vm_irqfd_remove(&vm, a, 5, &err), 0);
	cr_assert_eq(vm_irqfd_remove(&vm, b, 24, &err), 0);
	close(a);
	close(b);
}

Test(kvm, ioeventfd_takes_a_guest_write_without_an_exit, .init = setup, .fini = teardown)
{
	vs_err_t err = NULL;
	/* 32-bit PVH code: two MMIO writes, then the ACPI poweroff port */
	static const uint8_t code[] = {
	    0xc7, 0x05, 0x00, 0x00, 0x00, 0xd0, 0x01, 0x00, 0x00, 0x00, /* mov [0xd0000000], 1 */
	    0xc7, 0x05, 0x00, 0x10, 0x00, 0xd0, 0x02, 0x00, 0x00, 0x00, /* mov [0xd0001000], 2 */
	    0x66, 0xba, 0x00, 0x06,					/* mov dx, 0x600 */
	    0xb0, 0x34,							/* mov al, 0x34 */
	    0xee,							/* out dx, al */
	    0xf4,							/* hlt */
	};
	memcpy(vm.mem.host + LAYOUT_HIMEM, code, sizeof(code));
	cr_assert_eq(cpu_enter_pvh(vm.vcpus[0].fd, &vm.mem, LAYOUT_HIMEM, LAYOUT_PVH_INFO, &err),
		     0);
	int doorbell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct vm_doorbell bell = {
	    .addr = LAYOUT_VIRTIO_MMIO, .len = 4, .mmio = true, .fd = doorbell};
	cr_assert_eq(vm_doorbell(&vm, &bell, &err), 0, "%s", err ? err->msg : "");

	struct kvm_run *run = vm.vcpus[0].run;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_RUN, 0), 0);
	cr_assert_eq(run->exit_reason, KVM_EXIT_MMIO, "exit %s", vcpu_exit_name(run->exit_reason));
	cr_assert_eq(run->mmio.phys_addr, LAYOUT_VIRTIO_MMIO + 0x1000,
		     "the doorbell write did not exit");
	cr_assert(run->mmio.is_write);
	cr_assert_eq(run->mmio.len, 4);
	uint64_t kicks = 0;
	cr_assert_eq(read(doorbell, &kicks, sizeof(kicks)), (ssize_t)sizeof(kicks));
	cr_assert_eq(kicks, 1);

	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_RUN, 0), 0);
	cr_assert_eq(run->exit_reason, KVM_EXIT_IO);
	cr_assert_eq(run->io.port, PM_SLEEP_CONTROL_PORT);
	cr_assert_eq(run->io.direction, KVM_EXIT_IO_OUT);
	cr_assert_eq(vm_doorbell_remove(&vm, &bell, &err), 0);
	close(doorbell);
}

Test(kvm, stop_is_first_come_and_wakes_the_loop, .init = setup, .fini = teardown)
{
	cr_assert_not(vm_stopping(&vm));
	vm_stop(&vm, VM_EXIT_RESET, "test");
	vm_stop(&vm, VM_EXIT_POWEROFF, "later");
	cr_assert(vm_stopping(&vm));
	cr_assert_eq(atomic_load(&vm.status), VM_EXIT_RESET);
	uint64_t n;
	cr_assert_eq(read(vm.stop_fd, &n, sizeof(n)), (ssize_t)sizeof(n));
	cr_assert_eq(vm.vcpus[0].run->immediate_exit, 1, "the vCPU was kicked");
}

/* A port whose read answers 0x5a and asks for a pause from inside the exit, as a pause
 * that comes while the vCPU handles it. */
#define PAUSE_PORT 0x510
static int in_port_read;

static void pause_port(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	(void)offset;
	struct vm *v = opaque;
	if (is_write)
		return;
	memset(data, 0x5a, len);
	atomic_store(&v->park_req, true);
	uint64_t one = 1;
	ssize_t w = write(in_port_read, &one, sizeof(one));
	(void)w;
}

Test(kvm, a_paused_vcpu_has_finished_its_port_read, .init = setup, .fini = teardown)
{
	vs_err_t err = NULL;
	char arg0[] = "test", off[] = "--no-seccomp";
	char *argv[] = {arg0, off, NULL};
	int argc = 2;
	cr_assert_eq(vmm_seccomp_setup(&argc, argv, &err), 0);
	cr_assert_eq(vcpu_signals_init(&err), 0);
	/* 32-bit PVH code: read the port into AL, then what must not run before the pause */
	static const uint8_t code[] = {
	    0x31, 0xc0,		    /* xor eax, eax */
	    0x66, 0xba, 0x10, 0x05, /* mov dx, 0x510 */
	    0xec,		    /* in al, dx */
	    0x40,		    /* inc eax */
	    0xf4,		    /* hlt */
	};
	memcpy(vm.mem.host + LAYOUT_HIMEM, code, sizeof(code));
	cr_assert_eq(cpu_enter_pvh(vm.vcpus[0].fd, &vm.mem, LAYOUT_HIMEM, LAYOUT_PVH_INFO, &err),
		     0);
	in_port_read = eventfd(0, EFD_CLOEXEC);
	cr_assert_eq(bus_add(&vm.pio, PAUSE_PORT, 1, "pause-port", pause_port, &vm, &err), 0);
	cr_assert_eq(vcpu_start(&vm.vcpus[0], &err), 0, "%s", err ? err->msg : "");
	uint64_t n;
	cr_assert_eq(read(in_port_read, &n, sizeof(n)), (ssize_t)sizeof(n));
	cr_assert_eq(vcpus_pause(&vm, &err), 0, "%s", err ? err->msg : "");

	/* KVM finishes an IN (AL, RIP) only in the next KVM_RUN: a vCPU that parked without
	 * one would be saved mid-instruction, and a snapshot's guest would read the port again */
	struct kvm_regs r;
	cr_assert_eq(ioctl(vm.vcpus[0].fd, KVM_GET_REGS, &r), 0);
	cr_assert_eq(r.rip, LAYOUT_HIMEM + 7, "rip 0x%llx: the IN is not finished, or more ran",
		     (unsigned long long)r.rip);
	cr_assert_eq(r.rax & 0xff, 0x5a, "rax 0x%llx", (unsigned long long)r.rax);

	vm_stop(&vm, VM_EXIT_POWEROFF, "test");
	vcpu_join(&vm.vcpus[0]);
	close(in_port_read);
}
