/* KVM state through a state file on the real /dev/kvm: what one VM's vCPU and chips hold
 * is what a second VM holds after restore, and a snapshot of another CPU is refused. */
#include <criterion/criterion.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/boot/cpu.h"
#include "vmm/layout.h"
#include "vmm/snapshot/kvm_state.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

static struct vm a, b;
static int kvm_fd = -1;

static void make(struct vm *vm)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_create(vm, kvm_fd, 1, 16ULL << 20, 0, &err), 0, "%s", err ? err->msg : "");
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
	cr_assert_eq(kvm_state_restore_vcpu(&b.vcpus[0], &f, &err), 0, "%s", err ? err->msg : "");

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

/* The guest writes two pages; KVM's log names those and not the pages around them. (Not
 * asserted: the code page, which kvm_amd in the emulated host reports dirty.) */
Test(snapshot_kvm, dirty_log_names_the_pages_the_guest_wrote, .init = setup, .fini = teardown)
{
	vs_err_t err = NULL;
	static const uint8_t code[] = {
	    0xc7, 0x05, 0x00, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, /* mov [0x200000], 1 */
	    0xc7, 0x05, 0x00, 0x50, 0x30, 0x00, 0x02, 0x00, 0x00, 0x00, /* mov [0x305000], 2 */
	    0x66, 0xba, 0x00, 0x06,					/* mov dx, 0x600 */
	    0xb0, 0x34,							/* mov al, 0x34 */
	    0xee,							/* out dx, al */
	    0xf4,							/* hlt */
	};
	memcpy(a.mem.host + LAYOUT_HIMEM, code, sizeof(code));
	cr_assert_eq(vm_dirty_log(&a, true, &err), 0, "%s", err ? err->msg : "");
	uint64_t npages = guest_mem_npages(&a.mem);
	uint64_t *dirty = calloc((npages + 63) / 64, sizeof(uint64_t));
	cr_assert_eq(vm_take_dirty_log(&a, dirty, &err), 0, "%s", err ? err->msg : "");
	memset(dirty, 0, (npages + 63) / 64 * sizeof(uint64_t));
	cr_assert_eq(cpu_enter_pvh(a.vcpus[0].fd, &a.mem, LAYOUT_HIMEM, LAYOUT_PVH_INFO, &err), 0);
	cr_assert_eq(ioctl(a.vcpus[0].fd, KVM_RUN, 0), 0);
	cr_assert_eq(a.vcpus[0].run->exit_reason, KVM_EXIT_IO, "exit %s",
		     vcpu_exit_name(a.vcpus[0].run->exit_reason));
	cr_assert_eq(vm_take_dirty_log(&a, dirty, &err), 0, "%s", err ? err->msg : "");
#define BIT(p) ((dirty[(p) / 64] >> ((p) % 64)) & 1)
	cr_assert(BIT(0x200), "page 0x200000 not in the log");
	cr_assert(BIT(0x305), "page 0x305000 not in the log");
	cr_assert_not(BIT(0x304));
	cr_assert_not(BIT(0x400), "a page nobody touched is in the log");
	free(dirty);
}

/* RAM from a memory file: what was written is what the new VM sees. */
Test(snapshot_kvm, vm_from_a_memory_file, .init = setup, .fini = teardown)
{
	char path[] = "/tmp/vessel-snapkvm-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 16ULL << 20), 0);
	cr_assert_eq(pwrite(fd, "guest", 5, 0x1000), 5);
	close(fd);
	struct vm c;
	vs_err_t err = NULL;
	cr_assert_eq(vm_create_from_file(&c, kvm_fd, 1, 16ULL << 20, path, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(memcmp(c.mem.host + 0x1000, "guest", 5), 0);
	vm_destroy(&c);
	struct vm d;
	cr_assert_eq(vm_create_from_file(&d, kvm_fd, 1, 32ULL << 20, path, &err), -1);
	cr_assert(strstr(err->msg, "the snapshot's guest has"), "%s", err->msg);
	vs_err_free(&err);
	vm_destroy(&d);
	unlink(path);
}

static uint64_t clock_ns(struct vm *vm)
{
	struct kvm_clock_data c;
	memset(&c, 0, sizeof(c));
	cr_assert_eq(ioctl(vm->vm_fd, KVM_GET_CLOCK, &c), 0);
	return c.clock;
}

/* A pause holds kvmclock: 200 ms paused show as (almost) nothing after the release, and a
 * snapshot taken while held saves the held value, not the time of the snapshot. */
Test(snapshot_kvm, a_held_clock_skips_the_pause, .init = setup, .fini = teardown)
{
	vs_err_t err = NULL;
	uint64_t before = clock_ns(&a);
	cr_assert_eq(vm_clock_hold(&a, &err), 0, "%s", err ? err->msg : "");
	usleep(200 * 1000);
	struct snap_file f;
	uint8_t *bytes;
	save(&f, &bytes);
	const struct kvm_clock_data *saved =
	    snap_get_exact(&f, "vm.clock", 0, sizeof(*saved), &err);
	cr_assert_not_null(saved);
	cr_assert_lt(saved->clock - before, 100 * 1000000ull, "saved %llu ns after the hold",
		     (unsigned long long)(saved->clock - before));
	cr_assert_eq(vm_clock_release(&a, &err), 0, "%s", err ? err->msg : "");
	uint64_t after = clock_ns(&a);
	cr_assert_lt(after - before, 100 * 1000000ull,
		     "the clock moved %llu ns over a 200 ms pause",
		     (unsigned long long)(after - before));
	cr_assert_eq(vm_clock_release(&a, &err), 0, "a second release is a no-op");
	usleep(150 * 1000);
	cr_assert_geq(clock_ns(&a) - after, 150 * 1000000ull, "and it runs again");
	snap_file_release(&f);
	free(bytes);
}
