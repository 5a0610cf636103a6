/* How an emulated device raises its interrupt line, without knowing about KVM. */
#ifndef VESSEL_VMM_DEVICES_IRQ_H
#define VESSEL_VMM_DEVICES_IRQ_H

struct irq_line {
	void (*set)(void *ctx, unsigned gsi, int level);
	void *ctx;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l->set)
		l->set(l->ctx, l->gsi, level);
}

#endif
