/*
 * The guest `make demo` boots where Linux cannot run: it shows what a guest sees of the
 * machine vessel built (CPUs from the MADT, RAM from the memmap) and how long it took from
 * its entry point to get there, in TSC ticks and, when CPUID tells the TSC rate, in ms.
 */
#include "acpi.h"
#include "guest.h"

#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

struct pvclock_vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed, aligned(32)));

static struct pvclock_vcpu_time_info kvmclock;

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* KVM's clock gives ns = (ticks << shift) * mul >> 32, so kHz = 10^6 << 32 / mul >> shift. */
static uint32_t kvmclock_tsc_khz(void)
{
	uint32_t a, b, c, d;
	uint64_t khz;

	cpuid(0x40000000, &a, &b, &c, &d);
	if (b != 0x4b4d564b || a < 0x40000001) /* "KVMK" */
		return 0;
	cpuid(0x40000001, &a, &b, &c, &d);
	if (!(a & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint32_t)(uintptr_t)&kvmclock | 1);
	/* KVM fills the page on the next entry: the port write to print forces one */
	gprintf("TSC RATE: from KVM's pvclock\n");
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!kvmclock.tsc_to_system_mul || (kvmclock.version & 1))
		return 0;
	khz = udiv64(1000000ull << 32, kvmclock.tsc_to_system_mul, NULL);
	return (uint32_t)(kvmclock.tsc_shift >= 0 ? khz >> kvmclock.tsc_shift
						  : khz << -kvmclock.tsc_shift);
}

/* TSC ticks per ms: CPUID leaf 0x40000010 (kHz), leaf 0x15, else KVM's pvclock. */
static uint32_t tsc_khz(void)
{
	uint32_t a, b, c, d;

	cpuid(0x40000000, &a, &b, &c, &d);
	if (a >= 0x40000010) {
		cpuid(0x40000010, &a, &b, &c, &d);
		if (a)
			return a;
	}
	cpuid(0, &a, &b, &c, &d);
	if (a >= 0x15) {
		uint32_t den, num, hz;

		cpuid(0x15, &den, &num, &hz, &d);
		if (den && num && hz)
			return (uint32_t)udiv64(udiv64((uint64_t)hz * num, den, NULL), 1000, NULL);
	}
	return kvmclock_tsc_khz();
}

void guest_main(void)
{
	uint8_t ids[MAX_CPUS];
	int cpus = madt_cpu_ids(ids, MAX_CPUS);
	uint64_t ram = guest_ram_bytes();
	uint64_t ticks = rdtsc() - entry_tsc;
	uint32_t khz;

	gprintf("vessel demo guest: a tiny PVH kernel, reporting on the serial port\n");
	khz = tsc_khz();
	gprintf("CPUS (from the ACPI MADT): %d\n", cpus);
	gprintf("MEMORY (RAM in the PVH memmap): %llu MiB (%llu bytes)\n", ram >> 20, ram);
	gprintf("CMDLINE: %s\n", guest_cmdline());
	if (khz) {
		uint32_t us_part;
		uint64_t ms = udiv64(udiv64(ticks * 1000, khz, NULL), 1000, &us_part);

		gprintf("TIME SINCE ENTRY: %llu TSC ticks = %llu.%03u ms (TSC %u kHz)\n", ticks, ms,
			us_part, khz);
	} else {
		gprintf(
		    "TIME SINCE ENTRY: %llu TSC ticks (TSC rate unknown: no CPUID leaf tells it)\n",
		    ticks);
	}
	gprintf("POWEROFF: through the ACPI FADT sleep register\n");
}
