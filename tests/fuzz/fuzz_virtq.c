/* libFuzzer harness: arbitrary bytes as a guest's RAM, rings included. The first bytes
 * pick the queue size, the ring addresses and the features; the rest is the guest memory
 * the split-virtqueue walker reads. Every chain it takes must lie inside RAM and within
 * VIRTQ_MAX_SEGS; the used ring is written back as a device would.
 *
 * Built by `make fuzz`. By hand:
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Isrc tests/fuzz/fuzz_virtq.c \
 *     src/vmm/virtio/queue.c src/vmm/memory.c src/base/error.c -o fuzz_virtq
 *   ./fuzz_virtq -max_len=8192 tests/fuzz/corpus/virtq
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/queue.h"

#define RAM (16u << 10) /* small: most addresses the fuzzer makes land in RAM */
#define HEADER 16

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_seg(const struct guest_mem *m, const struct virtq_seg *s)
{
	const uint8_t *p = s->host;
	if (p < m->host || p > m->host + m->ram_size ||
	    s->len > m->ram_size - (size_t)(p - m->host))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem mem;
	static struct virtq_chain chain;
	if (!mem.host) {
		mem.host = aligned_alloc(4096, RAM);
		mem.ram_size = mem.low_size = RAM;
	}
	if (size < HEADER)
		return 0;
	uint16_t qsize = (uint16_t)(1u << (data[0] % 10)); /* 1 .. 512 */
	uint32_t a[3];
	memcpy(a, data + 1, sizeof(a));
	bool event_idx = data[13] & 1, indirect = data[13] & 2;
	unsigned rounds = data[14] % 8 + 1;
	memset(mem.host, 0, RAM);
	size_t n = size - HEADER < RAM ? size - HEADER : RAM;
	memcpy(mem.host, data + HEADER, n);

	/* addresses mostly inside RAM, some anywhere (the high bit of each keeps them raw) */
	struct virtq_addrs addrs = {
	    a[0] & 0x80000000u ? a[0] : a[0] % RAM,
	    a[1] & 0x80000000u ? a[1] : a[1] % RAM,
	    a[2] & 0x80000000u ? a[2] : a[2] % RAM,
	};
	struct virtq q;
	vs_err_t err = NULL;
	if (virtq_init(&q, &mem, qsize, &addrs, event_idx, indirect, &err) < 0) {
		vs_err_free(&err);
		return 0;
	}
	for (unsigned r = 0; r < rounds; r++) {
		int got;
		while ((got = virtq_pop(&q, &chain, &err)) == 1) {
			if (chain.head >= qsize || chain.n_out + chain.n_in > VIRTQ_MAX_SEGS)
				abort();
			uint64_t out = 0, in = 0;
			for (unsigned i = 0; i < chain.n_out; i++) {
				check_seg(&mem, &chain.out[i]);
				out += chain.out[i].len;
			}
			for (unsigned i = 0; i < chain.n_in; i++) {
				check_seg(&mem, &chain.in[i]);
				in += chain.in[i].len;
			}
			if (out != chain.out_len || in != chain.in_len)
				abort();
			uint8_t buf[64];
			virtq_chain_read(&chain, data[15], buf, sizeof(buf));
			virtq_chain_write(&chain, data[15], buf, sizeof(buf));
			virtq_push(&q, chain.head, (uint32_t)(in > UINT32_MAX ? UINT32_MAX : in));
		}
		virtq_should_interrupt(&q);
		if (got < 0) {
			vs_err_free(&err);
			break;
		}
	}
	return 0;
}
