/*
 * Starts every AP the MADT lists with INIT-SIPI-SIPI through the xAPIC, the way an OS does;
 * each AP reports `AP n up` from its own stack, then the BSP reports how many CPUs run.
 */
#include "guest.h"
#include "acpi.h"

#define AP_TRAMPOLINE 0x10000u
#define LAPIC 0xfee00000u
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define ICR_PENDING (1u << 12)
#define ICR_INIT 0x00004500u
#define ICR_STARTUP 0x00004600u
/* TSC ticks the BSP waits for the APs: seconds at any rate a VM runs at */
#define AP_WAIT_TICKS 8000000000ull

extern const char ap_trampoline[], ap_trampoline_end[];
void ap_main(uint32_t apic_id);

static volatile uint32_t aps_up;

void ap_main(uint32_t apic_id)
{
	gprintf("AP %u up\n", apic_id);
	atomic_inc(&aps_up);
}

static void send_ipi(uint8_t apic_id, uint32_t icr)
{
	mmio_write32(LAPIC + LAPIC_ICR_HIGH, (uint32_t)apic_id << 24);
	mmio_write32(LAPIC + LAPIC_ICR_LOW, icr);
	for (int i = 0; i < 1000 && (mmio_read32(LAPIC + LAPIC_ICR_LOW) & ICR_PENDING); i++)
		cpu_relax();
}

void guest_main(void)
{
	uint8_t ids[MAX_CPUS];
	int cpus = madt_cpu_ids(ids, MAX_CPUS), started = 0;
	uint32_t self = mmio_read32(LAPIC + LAPIC_ID) >> 24;
	uint64_t t0;

	gprintf("MADT CPUS: %d\n", cpus);
	gprintf("BSP APIC ID: %u\n", self);
	memcpy((void *)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	/* software-enable the local APIC (spurious vector 0xff); IF stays clear */
	mmio_write32(LAPIC + LAPIC_SVR, 0x1ff);
	for (int i = 0; i < cpus; i++) {
		if (ids[i] == self)
			continue;
		send_ipi(ids[i], ICR_INIT);
		send_ipi(ids[i], ICR_STARTUP | (AP_TRAMPOLINE >> 12));
		send_ipi(ids[i], ICR_STARTUP | (AP_TRAMPOLINE >> 12));
		started++;
	}
	for (t0 = rdtsc(); aps_up < (uint32_t)started && rdtsc() - t0 < AP_WAIT_TICKS;)
		cpu_relax();
	gprintf("CPUS UP: %u\n", aps_up + 1);
}
