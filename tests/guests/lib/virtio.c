/* The guest side of virtio-mmio: discovery, set-up and polled split queues (virtio.h). */
#include "virtio.h"

#include "guest.h"

#define VIRTIO_MAGIC 0x74726976
#define ALLOC_START 0x400000u /* 4 MiB: above the image, its stack and the boot data */

static uint32_t alloc_next = ALLOC_START, alloc_end;

static uint32_t low_ram_end(void)
{
	uint32_t n;
	const struct hvm_memmap_table_entry *e = guest_memmap(&n);
	for (uint32_t i = 0; i < n; i++) {
		if (e[i].type != HVM_MEMMAP_RAM || e[i].addr > ALLOC_START ||
		    e[i].addr + e[i].size <= ALLOC_START)
			continue;
		uint64_t end = e[i].addr + e[i].size;
		return end > 0xfffff000ull ? 0xfffff000u : (uint32_t)end;
	}
	return 0;
}

void *virtio_alloc(uint32_t size, uint32_t align)
{
	if (!alloc_end)
		alloc_end = low_ram_end();
	uint32_t p = (alloc_next + align - 1) & ~(align - 1);
	if (p < alloc_next || size > alloc_end || p > alloc_end - size)
		guest_fail("virtio_alloc: out of RAM");
	alloc_next = p + size;
	memset((void *)p, 0, size);
	return (void *)p;
}

/* A number as Linux's memparse reads it: decimal or 0x hex, then an optional K/M/G. */
static const char *parse_num(const char *s, uint64_t *out)
{
	uint64_t v = 0;
	int base = 10, digits = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (;; s++, digits++) {
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			break;
		v = v * (unsigned)base + d;
	}
	if (!digits)
		return 0;
	if (*s == 'K' || *s == 'k')
		v <<= 10, s++;
	else if (*s == 'M' || *s == 'm')
		v <<= 20, s++;
	else if (*s == 'G' || *s == 'g')
		v <<= 30, s++;
	*out = v;
	return s;
}

static bool starts_with(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

int virtio_find(struct vdev *out, int max)
{
	static const char key[] = "virtio_mmio.device=";
	int n = 0;
	const char *s = guest_cmdline();
	while (*s && n < max) {
		while (*s == ' ')
			s++;
		if (starts_with(s, "-- ")) /* init's arguments from here on */
			break;
		const char *word = s;
		while (*s && *s != ' ')
			s++;
		if (!starts_with(word, key))
			continue;
		uint64_t size, base, irq;
		const char *p = parse_num(word + sizeof(key) - 1, &size);
		if (!p || *p != '@' || !(p = parse_num(p + 1, &base)) || *p != ':' ||
		    !(p = parse_num(p + 1, &irq)) || base >= 0xfffff000ull || size < 0x100)
			continue;
		struct vdev d = {.base = (uint32_t)base, .irq = (uint32_t)irq};
		if (virtio_read(&d, VIRTIO_MMIO_MAGIC) != VIRTIO_MAGIC ||
		    virtio_read(&d, VIRTIO_MMIO_VERSION) != 2)
			continue;
		d.device_id = virtio_read(&d, VIRTIO_MMIO_DEVICE_ID);
		if (d.device_id == 0) /* an empty slot (QEMU's microvm has a row of them) */
			continue;
		out[n++] = d;
	}
	return n;
}

bool virtio_find_id(uint32_t device_id, int n, struct vdev *out)
{
	struct vdev all[16];
	int count = virtio_find(all, 16);
	for (int i = 0; i < count; i++)
		if (all[i].device_id == device_id && n-- == 0) {
			*out = all[i];
			return true;
		}
	return false;
}

void virtio_reset(struct vdev *d)
{
	virtio_write(d, VIRTIO_MMIO_STATUS, 0);
	while (virtio_status(d) != 0)
		cpu_relax();
}

int virtio_init(struct vdev *d, uint64_t want)
{
	virtio_reset(d);
	virtio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_write(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t offered = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		virtio_write(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		offered |= (uint64_t)virtio_read(d, VIRTIO_MMIO_DEVICE_FEATURES) << (32 * sel);
	}
	if (!(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1))) {
		gprintf("virtio@0x%x: no VERSION_1 (features 0x%llx)\n", d->base, offered);
		return -1;
	}
	d->features = (want | VIRTIO_BIT(VIRTIO_F_VERSION_1)) & offered;
	for (uint32_t sel = 0; sel < 2; sel++) {
		virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		virtio_write(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(d->features >> (32 * sel)));
	}
	uint32_t st = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	virtio_write(d, VIRTIO_MMIO_STATUS, st);
	if (!(virtio_status(d) & VIRTIO_STATUS_FEATURES_OK)) {
		gprintf("virtio@0x%x: features 0x%llx refused\n", d->base, d->features);
		return -1;
	}
	return 0;
}

int virtio_queue_setup(struct vdev *d, struct vq *q, uint16_t qi, uint16_t size)
{
	virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, qi);
	uint32_t max = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (max == 0 || virtio_read(d, VIRTIO_MMIO_QUEUE_READY)) {
		gprintf("virtio@0x%x: queue %u unavailable\n", d->base, qi);
		return -1;
	}
	if (size == 0)
		size = max < 256 ? (uint16_t)max : 256;
	if (size > max) {
		gprintf("virtio@0x%x: queue %u: %u entries, device max %u\n", d->base, qi, size,
			max);
		return -1;
	}
	*q = (struct vq){.d = d, .index = qi, .size = size, .num_free = size};
	q->event_idx = d->features & VIRTIO_BIT(VIRTIO_F_EVENT_IDX);
	q->desc = virtio_alloc(16u * size, 16);
	q->avail = virtio_alloc(6u + 2u * size, 2);
	q->used = virtio_alloc(6u + 8u * size, 4);
	for (uint16_t i = 0; i + 1 < size; i++)
		q->desc[i].next = i + 1;
	virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
	virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, vaddr(q->desc));
	virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, vaddr(q->avail));
	virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, vaddr(q->used));
	virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
	return 0;
}

void virtio_driver_ok(struct vdev *d)
{
	virtio_write(d, VIRTIO_MMIO_STATUS, virtio_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

uint32_t virtio_isr_ack(struct vdev *d)
{
	uint32_t isr = virtio_read(d, VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr)
		virtio_write(d, VIRTIO_MMIO_INTERRUPT_ACK, isr);
	return isr;
}

uint8_t virtio_config8(const struct vdev *d, uint32_t off)
{
	return *(volatile uint8_t *)(d->base + VIRTIO_MMIO_CONFIG + off);
}

uint32_t virtio_config32(const struct vdev *d, uint32_t off)
{
	return virtio_read(d, VIRTIO_MMIO_CONFIG + off);
}

int vq_add(struct vq *q, const struct vbuf *out, int n_out, const struct vbuf *in, int n_in)
{
	int n = n_out + n_in;
	if (n <= 0 || n > q->num_free)
		return -1;
	uint16_t head = q->free_head, i = head, last = head;
	for (int k = 0; k < n; k++) {
		const struct vbuf *b = k < n_out ? &out[k] : &in[k - n_out];
		volatile struct virtq_desc *d = &q->desc[i];
		d->addr = b->addr;
		d->len = b->len;
		d->flags = (uint16_t)((k < n_out ? 0 : VIRTQ_DESC_F_WRITE) |
				      (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		last = i;
		i = d->next;
	}
	q->free_head = q->desc[last].next;
	q->num_free = (uint16_t)(q->num_free - n);
	return head;
}

int vq_add_indirect(struct vq *q, struct virtq_desc *table, const struct vbuf *out, int n_out,
		    const struct vbuf *in, int n_in)
{
	int n = n_out + n_in;
	if (n <= 0 || q->num_free < 1)
		return -1;
	for (int k = 0; k < n; k++) {
		const struct vbuf *b = k < n_out ? &out[k] : &in[k - n_out];
		table[k] = (struct virtq_desc){
		    .addr = b->addr,
		    .len = b->len,
		    .flags = (uint16_t)((k < n_out ? 0 : VIRTQ_DESC_F_WRITE) |
					(k + 1 < n ? VIRTQ_DESC_F_NEXT : 0)),
		    .next = (uint16_t)(k + 1),
		};
	}
	struct vbuf one = {vaddr(table), (uint32_t)n * 16u};
	int head = vq_add(q, &one, 1, 0, 0);
	if (head >= 0)
		q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
	return head;
}

void vq_publish(struct vq *q, uint16_t head)
{
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
	__asm__ volatile("" ::: "memory"); /* x86: stores are not reordered with stores */
	q->avail->idx = q->avail_idx;
}

void vq_kick(struct vq *q)
{
	__asm__ volatile("mfence" ::
			     : "memory"); /* avail->idx before reading what the device wants */
	bool notify;
	if (q->event_idx) {
		uint16_t event = *(volatile uint16_t *)(vaddr(q->used) + 4u + 8u * q->size);
		uint16_t now = q->avail_idx, old = q->kicked_idx;
		notify = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
	} else {
		notify = !(q->used->flags & VIRTQ_USED_F_NO_NOTIFY);
	}
	q->kicked_idx = q->avail_idx;
	if (notify)
		virtio_write(q->d, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
}

int vq_get_used(struct vq *q, uint32_t *id, uint32_t *len)
{
	if (q->used->idx == q->last_used)
		return 0;
	__asm__ volatile("" ::: "memory");
	volatile struct virtq_used_elem *e = &q->used->ring[q->last_used & (q->size - 1)];
	uint32_t head = e->id;
	*id = head;
	*len = e->len;
	q->last_used++;
	if (q->event_idx) /* ask for an interrupt at the next one (we poll, but stay honest) */
		q->avail->ring[q->size] = q->last_used;
	if (head < q->size) { /* give the chain's descriptors back */
		uint16_t i = (uint16_t)head, n = 1;
		while ((q->desc[i].flags & VIRTQ_DESC_F_NEXT) && n < q->size) {
			i = q->desc[i].next;
			n++;
		}
		q->desc[i].next = q->free_head;
		q->free_head = (uint16_t)head;
		q->num_free = (uint16_t)(q->num_free + n);
	}
	return 1;
}

int vq_wait_used(struct vq *q, uint32_t *id, uint32_t *len, uint64_t timeout_ticks)
{
	uint64_t start = rdtsc();
	while (!vq_get_used(q, id, len)) {
		if (rdtsc() - start > timeout_ticks)
			return -1;
		cpu_relax();
	}
	return 0;
}

int vq_transfer(struct vq *q, const struct vbuf *out, int n_out, const struct vbuf *in, int n_in)
{
	int head = vq_add(q, out, n_out, in, n_in);
	if (head < 0)
		return -1;
	vq_publish(q, (uint16_t)head);
	vq_kick(q);
	uint32_t id, len;
	if (vq_wait_used(q, &id, &len, STOP_WAIT_TICKS) < 0 || id != (uint32_t)head)
		return -1;
	return (int)len;
}
