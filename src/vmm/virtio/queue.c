#include "vmm/virtio/queue.h"

#include "vmm/layout.h"

#include <stddef.h>
#include <string.h>

/* The split virtqueue's guest-visible layout (virtio 1.x, 2.7). */
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

struct virtq_avail {
	uint16_t flags, idx;
	uint16_t ring[]; /* size entries, then used_event */
};

struct virtq_used_elem {
	uint32_t id, len;
};

struct virtq_used {
	uint16_t flags, idx;
	struct virtq_used_elem ring[]; /* size entries, then avail_event */
};

_Static_assert(sizeof(struct virtq_desc) == 16, "virtq_desc layout");

static void *ring_ptr(const struct guest_mem *mem, uint64_t gpa, uint64_t len, uint64_t align,
		      const char *what, vs_err_t *err)
{
	if (gpa % align)
		return vs_err(err, 0, "%s ring at 0x%llx: not %llu-byte aligned", what,
			      (unsigned long long)gpa, (unsigned long long)align),
		       NULL;
	void *p = guest_mem_ptr(mem, gpa, len);
	if (!p)
		vs_err(err, 0, "%s ring at 0x%llx (+%llu bytes): outside guest RAM", what,
		       (unsigned long long)gpa, (unsigned long long)len);
	return p;
}

static int setup(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		 const struct virtq_addrs *a, bool event_idx, bool indirect, bool fresh,
		 vs_err_t *err)
{
	virtq_reset(q);
	if (size == 0 || (size & (size - 1)))
		return vs_err(err, 0, "queue size %u: not a power of two", size);
	uint64_t n = size;
	struct virtq_desc *desc = ring_ptr(mem, a->desc, 16 * n, 16, "descriptor", err);
	struct virtq_avail *avail =
	    desc ? ring_ptr(mem, a->avail, 6 + 2 * n, 2, "driver", err) : NULL;
	struct virtq_used *used =
	    avail ? ring_ptr(mem, a->used, 6 + 8 * n, 4, "device", err) : NULL;
	if (!used)
		return -1;
	*q = (struct virtq){
	    .mem = mem,
	    .size = size,
	    .event_idx = event_idx,
	    .indirect = indirect,
	    .desc = desc,
	    .avail = avail,
	    .used = used,
	    .ready = true,
	};
	/* the driver starts from zero (2.7.13): so do we, whatever RAM held before */
	if (fresh)
		__atomic_store_n(&used->idx, 0, __ATOMIC_RELEASE);
	return 0;
}

int virtq_init(struct virtq *q, const struct guest_mem *mem, uint16_t size,
	       const struct virtq_addrs *a, bool event_idx, bool indirect, vs_err_t *err)
{
	return setup(q, mem, size, a, event_idx, indirect, true, err);
}

int virtq_restore(struct virtq *q, const struct guest_mem *mem, uint16_t size,
		  const struct virtq_addrs *a, bool event_idx, bool indirect, uint16_t last_avail,
		  uint16_t used_idx, uint16_t signalled_used, vs_err_t *err)
{
	/* guest RAM (the used ring's idx included) is the snapshot's: nothing is written */
	struct virtq tmp;
	if (setup(&tmp, mem, size, a, event_idx, indirect, false, err) < 0)
		return -1;
	tmp.last_avail = last_avail;
	tmp.used_idx = used_idx;
	tmp.signalled_used = signalled_used;
	*q = tmp;
	return 0;
}

void virtq_reset(struct virtq *q)
{
	*q = (struct virtq){0};
}

static uint16_t *used_event(struct virtq *q)
{
	return &q->avail->ring[q->size];
}

static uint16_t *avail_event(struct virtq *q)
{
	return (uint16_t *)&q->used->ring[q->size];
}

/* The guest writes these concurrently: one copy, then only the copy is looked at. */
static struct virtq_desc desc_load(const struct virtq_desc *table, uint32_t i)
{
	struct virtq_desc d;
	memcpy(&d, (const void *)&table[i], sizeof(d));
	return d;
}

static int walk_chain(struct virtq *q, uint16_t head, struct virtq_chain *c, vs_err_t *err)
{
	const struct virtq_desc *table = q->desc;
	uint32_t table_size = q->size, i = head, seen = 0;
	bool in_indirect = false;
	c->head = head;
	c->n_out = c->n_in = 0;
	c->out_len = c->in_len = 0;
	for (;;) {
		/* a chain without repeats visits each descriptor of its table at most once */
		if (++seen > table_size)
			return vs_err(err, 0, "chain %u: loops (more than %u descriptors)", head,
				      table_size);
		struct virtq_desc d = desc_load(table, i);
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect)
				return vs_err(err, 0,
					      "chain %u: indirect descriptor without "
					      "VIRTIO_F_INDIRECT_DESC",
					      head);
			if (in_indirect)
				return vs_err(err, 0,
					      "chain %u: indirect table inside an indirect "
					      "table",
					      head);
			if (d.flags & VIRTQ_DESC_F_NEXT)
				return vs_err(err, 0, "chain %u: indirect descriptor with NEXT set",
					      head);
			if (d.len == 0 || d.len % sizeof(struct virtq_desc))
				return vs_err(err, 0,
					      "chain %u: indirect table of %u bytes (not a "
					      "multiple of 16)",
					      head, d.len);
			table = guest_mem_ptr(q->mem, d.addr, d.len);
			if (!table)
				return vs_err(err, 0,
					      "chain %u: indirect table at 0x%llx (+%u bytes) is "
					      "outside guest RAM",
					      head, (unsigned long long)d.addr, d.len);
			table_size = d.len / sizeof(struct virtq_desc);
			in_indirect = true;
			i = 0;
			seen = 0;
			continue;
		}
		if (c->n_out + c->n_in >= VIRTQ_MAX_SEGS)
			return vs_err(err, 0, "chain %u: longer than %u descriptors", head,
				      VIRTQ_MAX_SEGS);
		void *host = guest_mem_ptr(q->mem, d.addr, d.len);
		if (!host)
			return vs_err(err, 0,
				      "chain %u: buffer at 0x%llx (+%u bytes) is outside guest RAM",
				      head, (unsigned long long)d.addr, d.len);
		if (d.flags & VIRTQ_DESC_F_WRITE) {
			c->in[c->n_in++] = (struct virtq_seg){host, d.len};
			c->in_len += d.len;
		} else {
			if (c->n_in)
				return vs_err(err, 0,
					      "chain %u: device-readable descriptor after a "
					      "device-writable one",
					      head);
			c->out[c->n_out++] = (struct virtq_seg){host, d.len};
			c->out_len += d.len;
		}
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		if (d.next >= table_size)
			return vs_err(err, 0, "chain %u: next index %u is past the %s table of %u",
				      head, d.next, in_indirect ? "indirect" : "descriptor",
				      table_size);
		i = d.next;
	}
}

int virtq_pop(struct virtq *q, struct virtq_chain *c, vs_err_t *err)
{
	if (!q->ready)
		return 0;
	uint16_t avail = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
	if (avail == q->last_avail) {
		if (!q->event_idx)
			return 0;
		/* ask for a kick at the next buffer, then look again: the driver may have
		 * added one before it could see our request (2.7.10) */
		__atomic_store_n(avail_event(q), q->last_avail, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		avail = __atomic_load_n(&q->avail->idx, __ATOMIC_ACQUIRE);
		if (avail == q->last_avail)
			return 0;
	}
	if ((uint16_t)(avail - q->last_avail) > q->size)
		return vs_err(err, 0, "driver index moved by %u on a queue of %u",
			      (uint16_t)(avail - q->last_avail), q->size);
	uint16_t head =
	    __atomic_load_n(&q->avail->ring[q->last_avail & (q->size - 1)], __ATOMIC_RELAXED);
	if (head >= q->size)
		return vs_err(err, 0, "head index %u is past the queue size %u", head, q->size);
	if (walk_chain(q, head, c, err) < 0)
		return -1;
	q->last_avail++;
	return 1;
}

void virtq_mark_host(struct virtq *q, const void *p, uint64_t len)
{
	const struct guest_mem *m = q->mem;
	if (!m || !m->dirty || !len)
		return;
	/* host offsets past the low RAM are the RAM above 4 GiB (memory.h's layout) */
	uint64_t off = (uint64_t)((const uint8_t *)p - m->host);
	uint64_t gpa = off < m->low_size ? off : LAYOUT_4G + (off - m->low_size);
	guest_mem_mark_dirty((struct guest_mem *)m, gpa, len);
}

void virtq_mark_written(struct virtq *q, const struct virtq_chain *c, uint64_t written)
{
	for (uint16_t i = 0; i < c->n_in && written; i++) {
		uint64_t n = c->in[i].len < written ? c->in[i].len : written;
		virtq_mark_host(q, c->in[i].host, n);
		written -= n;
	}
}

void virtq_push(struct virtq *q, uint16_t head, uint32_t written)
{
	if (!q->ready)
		return;
	struct virtq_used_elem *e = &q->used->ring[q->used_idx & (q->size - 1)];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
	q->used_idx++;
	__atomic_store_n(&q->used->idx, q->used_idx, __ATOMIC_RELEASE);
	/* KVM's dirty log sees only the guest's writes: ours go in the VMM's own bitmap */
	virtq_mark_host(q, e, sizeof(*e));
	virtq_mark_host(q, &q->used->idx, sizeof(q->used->idx));
}

bool virtq_should_interrupt(struct virtq *q)
{
	if (!q->ready)
		return false;
	/* our used->idx store must be visible before we read what the driver wants */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!q->event_idx)
		return !(__atomic_load_n(&q->avail->flags, __ATOMIC_RELAXED) &
			 VIRTQ_AVAIL_F_NO_INTERRUPT);
	uint16_t old = q->signalled_used, now = q->used_idx;
	uint16_t event = __atomic_load_n(used_event(q), __ATOMIC_RELAXED);
	q->signalled_used = now;
	/* vring_need_event: did used_idx pass event in (old, now]? */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

uint64_t virtq_chain_read(const struct virtq_chain *c, uint64_t offset, void *dst, uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < c->n_out && done < len; i++) {
		const struct virtq_seg *s = &c->out[i];
		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		uint64_t n = s->len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)dst + done, (const uint8_t *)s->host + offset, n);
		done += n;
		offset = 0;
	}
	return done;
}

uint64_t virtq_chain_write(const struct virtq_chain *c, uint64_t offset, const void *src,
			   uint64_t len)
{
	uint64_t done = 0;
	for (unsigned i = 0; i < c->n_in && done < len; i++) {
		const struct virtq_seg *s = &c->in[i];
		if (offset >= s->len) {
			offset -= s->len;
			continue;
		}
		uint64_t n = s->len - offset;
		if (n > len - done)
			n = len - done;
		memcpy((uint8_t *)s->host + offset, (const uint8_t *)src + done, n);
		done += n;
		offset = 0;
	}
	return done;
}
