/* KVM state through a state file on the real /dev/kvm: what one VM's vCPU and chips hold
 * is what a second VM holds after restore, and a snapshot of another CPU is refused. */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/snapshot/kvm_state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static struct vm a, b;
static int kvm_fd = -1;

static void make(struct vm *vm)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_create(vm, kvm_fd, 1, 16ULL << 20, 0, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(vcpu_create(vm, 0, &err), 0, "%s", err ? err->msg : "");
}

static void setup(void)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_open_kvm(&kvm_fd, &err), 0, "%s", err ? err->msg : "");
	make(&a);
	make(&b);
}

static void teardown(void)
{
	vm_destroy(&a);
	vm_destroy(&b);
	close(kvm_fd);
}

static void save(struct snap_file *f, uint8_t **bytes)
{
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	cr_assert_eq(kvm_state_save_vcpu(&a.vcpus[0], &w, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(kvm_state_save_vm(&a, &w, &err), 0, "%s", err ? err->msg : "");
	size_t len;
	cr_assert_eq(snap_writer_finish(&w, bytes, &len, &err), 0);
	cr_assert_eq(snap_parse(*bytes, len, f, &err), 0, "%s", err ? err->msg : "");
}

Test(snapshot_kvm, vcpu_and_chips_round_trip, .init = setup, .fini = teardown)
{
	struct kvm_regs regs;
	cr_assert_eq(ioctl(a.vcpus[0].fd, KVM_GET_REGS, &regs), 0);
	regs.rax = 0x1122334455667788ull;
	regs.rip = 0xfff0;
	cr_assert_eq(ioctl(a.vcpus[0].fd, KVM_SET_REGS, &regs), 0);
	struct kvm_irqchip pic = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
	cr_assert_eq(ioctl(a.vm_fd, KVM_GET_IRQCHIP, &pic), 0);
	pic.chip.pic.imr = 0xa5;
	cr_assert_eq(ioctl(a.vm_fd, KVM_SET_IRQCHIP, &pic), 0);

	struct snap_file f;
	uint8_t *bytes;
	save(&f, &bytes);
	cr_assert_gt(snap_find(&f, "vcpu.msrs", 0)->len, 0);
	vs_err_t err = NULL;
	cr_assert_eq(kvm_state_restore_vm(&b, &f, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(kvm_state_restore_vcpu(&b.vcpus[0], &f, &err), 0, "%s",
		     err ? err->msg : "");

	struct kvm_regs got;
	cr_assert_eq(ioctl(b.vcpus[0].fd, KVM_GET_REGS, &got), 0);
	cr_assert_eq(got.rax, 0x1122334455667788ull);
	cr_assert_eq(got.rip, 0xfff0);
	struct kvm_irqchip gpic = {.chip_id = KVM_IRQCHIP_PIC_MASTER};
	cr_assert_eq(ioctl(b.vm_fd, KVM_GET_IRQCHIP, &gpic), 0);
	cr_assert_eq(gpic.chip.pic.imr, 0xa5);
	snap_file_release(&f);
	free(bytes);
}

Test(snapshot_kvm, another_vendor_is_refused, .init = setup, .fini = teardown)
{
	struct snap_file f;
	uint8_t *bytes;
	save(&f, &bytes);
	struct snap_section *s = (struct snap_section *)snap_find(&f, "vcpu.cpuid", 0);
	struct kvm_cpuid_entry2 *e = (struct kvm_cpuid_entry2 *)s->data;
	size_t n = s->len / sizeof(*e);
	for (size_t i = 0; i < n; i++)
		if (e[i].function == 0) {
			memcpy(&e[i].ebx, "Cyri", 4);
			memcpy(&e[i].edx, "xIns", 4);
			memcpy(&e[i].ecx, "tead", 4);
		}
	vs_err_t err = NULL;
	cr_assert_eq(kvm_state_restore_vcpu(&b.vcpus[0], &f, &err), -1);
	cr_assert(strstr(err->msg, "snapshot of a CyrixInstead CPU, this host is "), "%s",
		  err->msg);
	vs_err_free(&err);
	snap_file_release(&f);
	free(bytes);
}
