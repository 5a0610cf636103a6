#include "vmm/seccomp.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/boot/cpu.h"
#include "vmm/vm.h"

#define KICK_SIGNAL SIGUSR1

int vcpu_create(struct vm *vm, unsigned id, vs_err_t *err)
{
	struct vcpu *c = &vm->vcpus[id];
	c->vm = vm;
	c->id = id;
	c->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (c->fd < 0)
		return vs_err(err, errno, "KVM_CREATE_VCPU %u", id);
	void *run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, c->fd, 0);
	if (run == MAP_FAILED)
		return vs_err(err, errno, "vCPU %u: mmap kvm_run", id);
	c->run = run;
	return cpu_init(c->fd, vm->cpuid, id, vm->ncpus, err);
}

void vcpu_destroy(struct vcpu *c, int run_size)
{
	if (c->run)
		munmap(c->run, (size_t)run_size);
	if (c->fd >= 0)
		close(c->fd);
	c->run = NULL;
	c->fd = -1;
}

static void kick_handler(int sig)
{
	(void)sig; /* only here so KVM_RUN returns with EINTR */
}

int vcpu_signals_init(vs_err_t *err)
{
	struct sigaction sa = {.sa_handler = kick_handler}; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KICK_SIGNAL, &sa, NULL) < 0)
		return vs_err(err, errno, "sigaction");
	return 0;
}

void vcpu_kick(struct vcpu *c)
{
	if (c->run)
		__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (c->started)
		pthread_kill(c->thread, KICK_SIGNAL);
}

const char *vcpu_exit_name(unsigned reason)
{
	static const char *const names[] = {
	    [KVM_EXIT_UNKNOWN] = "UNKNOWN",
	    [KVM_EXIT_EXCEPTION] = "EXCEPTION",
	    [KVM_EXIT_IO] = "IO",
	    [KVM_EXIT_HYPERCALL] = "HYPERCALL",
	    [KVM_EXIT_DEBUG] = "DEBUG",
	    [KVM_EXIT_HLT] = "HLT",
	    [KVM_EXIT_MMIO] = "MMIO",
	    [KVM_EXIT_IRQ_WINDOW_OPEN] = "IRQ_WINDOW_OPEN",
	    [KVM_EXIT_SHUTDOWN] = "SHUTDOWN",
	    [KVM_EXIT_FAIL_ENTRY] = "FAIL_ENTRY",
	    [KVM_EXIT_INTR] = "INTR",
	    [KVM_EXIT_SET_TPR] = "SET_TPR",
	    [KVM_EXIT_TPR_ACCESS] = "TPR_ACCESS",
	    [KVM_EXIT_NMI] = "NMI",
	    [KVM_EXIT_INTERNAL_ERROR] = "INTERNAL_ERROR",
	    [KVM_EXIT_OSI] = "OSI",
	    [KVM_EXIT_WATCHDOG] = "WATCHDOG",
	    [KVM_EXIT_EPR] = "EPR",
	    [KVM_EXIT_SYSTEM_EVENT] = "SYSTEM_EVENT",
	    [KVM_EXIT_IOAPIC_EOI] = "IOAPIC_EOI",
	    [KVM_EXIT_HYPERV] = "HYPERV",
	};
	if (reason < sizeof(names) / sizeof(names[0]) && names[reason])
		return names[reason];
	return "unknown exit";
}

static const char *internal_suberror(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "emulation failure";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
		return "unexpected exit reason";
	default:
		return "unknown suberror";
	}
}

/* The post-mortem a human needs: why, where, and the registers. One write. */
static void report(struct vcpu *c, const char *what)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return;
	struct kvm_run *run = c->run;
	fprintf(f, "vessel: vCPU %u: %s (exit reason %u %s)", c->id, what, run->exit_reason,
		vcpu_exit_name(run->exit_reason));
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR) {
		fprintf(f, ", suberror %u (%s)", run->internal.suberror,
			internal_suberror(run->internal.suberror));
	} else if (run->exit_reason == KVM_EXIT_FAIL_ENTRY) {
		fprintf(f, ", hardware entry failure reason 0x%llx",
			(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
	}
	fputc('\n', f);
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR &&
	    run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		/* what the emulator could not do, e.g. f0 48 0f c7 = lock cmpxchg16b */
		unsigned n = run->emulation_failure.insn_size;
		if (n > sizeof(run->emulation_failure.insn_bytes))
			n = sizeof(run->emulation_failure.insn_bytes);
		fprintf(f, "  instruction bytes:");
		for (unsigned i = 0; i < n; i++)
			fprintf(f, " %02x", run->emulation_failure.insn_bytes[i]);
		fputc('\n', f);
	}
	if (run->exit_reason == KVM_EXIT_INTERNAL_ERROR && run->internal.ndata) {
		uint32_t n = run->internal.ndata;
		if (n > sizeof(run->internal.data) / sizeof(run->internal.data[0]))
			n = sizeof(run->internal.data) / sizeof(run->internal.data[0]);
		fprintf(f, "  data:");
		for (uint32_t i = 0; i < n; i++)
			fprintf(f, " 0x%llx", (unsigned long long)run->internal.data[i]);
		fputc('\n', f);
	}
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(c->fd, KVM_GET_REGS, &r) == 0) {
		fprintf(f,
			"  rip %016llx rflags %08llx\n"
			"  rax %016llx rbx %016llx rcx %016llx rdx %016llx\n"
			"  rsi %016llx rdi %016llx rbp %016llx rsp %016llx\n"
			"  r8  %016llx r9  %016llx r10 %016llx r11 %016llx\n"
			"  r12 %016llx r13 %016llx r14 %016llx r15 %016llx\n",
			r.rip, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
			r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15);
	}
	if (ioctl(c->fd, KVM_GET_SREGS, &s) == 0) {
		fprintf(f,
			"  cs %04x (base %llx, %s) cr0 %llx cr2 %llx cr3 %llx cr4 %llx efer %llx\n",
			s.cs.selector, (unsigned long long)s.cs.base,
			s.cs.l ? "64-bit" : (s.cs.db ? "32-bit" : "16-bit"), s.cr0, s.cr2, s.cr3,
			s.cr4, s.efer);
	}
	fclose(f);
	ssize_t w = write(STDERR_FILENO, text, len);
	(void)w;
	free(text);
}

static void handle_pio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint32_t size = run->io.size, count = run->io.count;
	uint64_t off = run->io.data_offset;
	/* KVM fills these, but a bad value must not send us outside the mapping */
	if ((size != 1 && size != 2 && size != 4) || off >= (uint64_t)c->vm->run_size ||
	    (uint64_t)size * count > (uint64_t)c->vm->run_size - off) {
		vs_warn("vCPU %u: malformed port I/O exit (size %u count %u)", c->id, size, count);
		return;
	}
	uint8_t *data = (uint8_t *)run + off;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	for (uint32_t i = 0; i < count; i++, data += size) {
		if (!bus_access(&c->vm->pio, run->io.port, data, size, is_write)) {
			if (!is_write)
				memset(data, 0xff, size);
			vm_unclaimed(c->vm, run->io.port, false, is_write, size);
		}
	}
}

static void handle_mmio(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	uint32_t len = run->mmio.len;
	if (len == 0 || len > sizeof(run->mmio.data)) {
		vs_warn("vCPU %u: malformed MMIO exit (len %u)", c->id, len);
		return;
	}
	bool is_write = run->mmio.is_write;
	if (!bus_access(&c->vm->mmio, run->mmio.phys_addr, run->mmio.data, len, is_write)) {
		if (!is_write)
			memset(run->mmio.data, 0xff, len);
		vm_unclaimed(c->vm, run->mmio.phys_addr, true, is_write, len);
	}
}

/* Returns false when the VM must stop. */
static bool handle_exit(struct vcpu *c)
{
	struct kvm_run *run = c->run;
	struct vm *vm = c->vm;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		handle_pio(c);
		return true;
	case KVM_EXIT_MMIO:
		handle_mmio(c);
		return true;
	case KVM_EXIT_INTR:
	case KVM_EXIT_IRQ_WINDOW_OPEN:
		return true;
	case KVM_EXIT_HLT:
		/* only without an in-kernel LAPIC; ours has one, so HLT never gets here */
		return true;
	case KVM_EXIT_SHUTDOWN:
		vs_log(VS_LOG_ERROR,
		       "vCPU %u: triple fault (KVM_EXIT_SHUTDOWN): the guest reset itself", c->id);
		vm_stop(vm, VM_EXIT_TRIPLE_FAULT, "triple fault");
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_stop(vm, VM_EXIT_POWEROFF, "system event: shutdown");
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_stop(vm, VM_EXIT_RESET, "system event: reset");
			return false;
		default:
			report(c, "guest crash system event");
			vm_stop(vm, VM_EXIT_INTERNAL, "system event");
			return false;
		}
	case KVM_EXIT_INTERNAL_ERROR:
		report(c, "KVM internal error");
		vm_stop(vm, VM_EXIT_INTERNAL, "KVM internal error");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		report(c, "KVM could not enter the guest");
		vm_stop(vm, VM_EXIT_INTERNAL, "entry failure");
		return false;
	default:
		report(c, "unhandled KVM exit");
		vm_stop(vm, VM_EXIT_INTERNAL, "unhandled exit");
		return false;
	}
}

/* Waits outside KVM_RUN while the VM is paused (vcpus_pause). */
static void park(struct vcpu *c)
{
	struct vm *vm = c->vm;
	pthread_mutex_lock(&vm->park_lock);
	vm->nparked++;
	pthread_cond_broadcast(&vm->park_cond);
	while (atomic_load(&vm->park_req) && !vm_stopping(vm))
		pthread_cond_wait(&vm->park_cond, &vm->park_lock);
	vm->nparked--;
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

static unsigned started(const struct vm *vm)
{
	unsigned n = 0;
	for (unsigned i = 0; i < vm->ncpus; i++)
		n += vm->vcpus[i].started;
	return n;
}

int vcpus_pause(struct vm *vm, vs_err_t *err)
{
	atomic_store(&vm->park_req, true);
	/* park_req is set before the kick: a vCPU the kick misses (between its check and
	 * KVM_RUN) finds immediate_exit set, returns at once and sees park_req */
	for (unsigned i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	unsigned want = started(vm);
	int e = 0;
	pthread_mutex_lock(&vm->park_lock);
	while (vm->nparked < want && !vm_stopping(vm) && e != ETIMEDOUT)
		e = pthread_cond_timedwait(&vm->park_cond, &vm->park_lock, &deadline);
	unsigned parked = vm->nparked;
	pthread_mutex_unlock(&vm->park_lock);
	if (parked < want && !vm_stopping(vm)) {
		vcpus_resume(vm);
		return vs_err(err, 0, "pause: %u of %u vCPUs did not leave KVM_RUN within 5 s",
			      want - parked, want);
	}
	return 0;
}

void vcpus_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->park_lock);
	atomic_store(&vm->park_req, false);
	pthread_cond_broadcast(&vm->park_cond);
	pthread_mutex_unlock(&vm->park_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *c = arg;
	struct vm *vm = c->vm;
	/* before the first KVM_RUN: every exit after it carries guest-written values */
	vmm_seccomp_apply_or_die(VMM_THREAD_VCPU);
	sigset_t kick;
	sigemptyset(&kick);
	sigaddset(&kick, KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	/* KVM finishes a port I/O or MMIO exit (IN's data into RAX, RIP past the instruction,
	 * the rest of a rep string) only in the next KVM_RUN; until then the registers a
	 * pause saves are mid-instruction, and a snapshot or migration would replay an OUT
	 * on the other side. "settled": the last KVM_RUN left nothing to finish. */
	bool settled = true;
	while (!vm_stopping(vm)) {
		if (atomic_load(&vm->park_req)) {
			if (settled) {
				park(c);
				continue;
			}
			/* completes the pending exit and returns EINTR before any instruction */
			__atomic_store_n(&c->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		}
		if (ioctl(c->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&c->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				settled = true;
				continue;
			}
			vs_log(VS_LOG_ERROR, "vCPU %u: KVM_RUN: %s", c->id, strerror(errno));
			break;
		}
		settled = false;
		if (!handle_exit(c))
			break;
	}
	/* a vCPU that ends for any reason takes the whole VM with it */
	vm_stop(vm, VM_EXIT_INTERNAL, "vCPU thread ended");
	return NULL;
}

int vcpu_start(struct vcpu *c, vs_err_t *err)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	/* the loop needs little stack; keep the address space small */
	pthread_attr_setstacksize(&attr, 256 * 1024);
	int e = pthread_create(&c->thread, &attr, vcpu_thread, c);
	pthread_attr_destroy(&attr);
	if (e)
		return vs_err(err, e, "vCPU %u: start thread", c->id);
	c->started = true;
	return 0;
}

void vcpu_join(struct vcpu *c)
{
	if (!c->started)
		return;
	/* kick again every 100 ms; after 5 s say so and leave the thread to our exit */
	for (int i = 0; i < 50; i++) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 100 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		if (pthread_timedjoin_np(c->thread, NULL, &until) == 0) {
			c->started = false;
			return;
		}
		vcpu_kick(c);
	}
	vs_warn("vCPU %u did not stop within 5 s; exiting without it", c->id);
	pthread_detach(c->thread);
	c->started = false;
}
