/* virtio-net's untrusted inputs without a VM: the --net spec (user input) and the frame
 * side of the data path over guest-shaped buffers (guest input). Checks, besides crashes and
 * UB: an accepted spec holds a usable tap name and MAC; a frame copied over receive buffers
 * arrives whole and in order, and nothing is written past a buffer.
 *
 * Input: a first byte picks the part. 0: the rest is a spec string. Otherwise: up to 8
 * chains of up to 4 segments, each length from one byte of input (0-255), then the frame. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/virtio/net_frame.h"
#include "vmm/virtio/net_spec.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void spec(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	if (!s)
		return;
	struct net_spec sp;
	vs_err_t err = NULL;
	if (net_spec_parse(s, &sp, &err) == 0) {
		size_t n = strnlen(sp.tap, sizeof(sp.tap));
		if (n == 0 || n >= sizeof(sp.tap) || strchr(sp.tap, '/') || strchr(sp.tap, ','))
			__builtin_trap();
		if (sp.has_mac && ((sp.mac[0] & 1) || !(sp.mac[0] | sp.mac[1] | sp.mac[2] |
							sp.mac[3] | sp.mac[4] | sp.mac[5])))
			__builtin_trap();
	} else if (!err || !err->msg || strchr(err->msg, '\n')) {
		__builtin_trap();
	}
	vs_err_free(&err);
	free(s);
}

#define CHAINS 8
#define SEGS 4
#define GUARD 0xa5

static void frames(const uint8_t *data, size_t size)
{
	static struct virtq_chain chain[CHAINS];
	static uint8_t mem[CHAINS][SEGS][256 + 1]; /* one guard byte after each segment */
	struct virtq_chain *c[CHAINS];
	if (size < 1)
		return;
	unsigned n = data[0] % (CHAINS + 1);
	data++, size--;
	if (size < (size_t)n * SEGS)
		return;
	memset(mem, GUARD, sizeof(mem));
	for (unsigned i = 0; i < n; i++) {
		chain[i] = (struct virtq_chain){.head = (uint16_t)i};
		for (unsigned s = 0; s < SEGS; s++) {
			uint32_t len = data[i * SEGS + s];
			chain[i].in[chain[i].n_in++] = (struct virtq_seg){mem[i][s], len};
			chain[i].in_len += len;
		}
		c[i] = &chain[i];
	}
	data += n * SEGS, size -= n * SEGS;

	uint32_t used[CHAINS];
	unsigned k = net_copy_to_chains(data, size, c, n, used);
	uint64_t room = 0;
	for (unsigned i = 0; i < n; i++)
		room += chain[i].in_len;
	if (k > n || (k == 0 && size > 0 && size <= room && n > 0))
		__builtin_trap();
	if (k) {
		/* the frame, read back in order, is the input; guards untouched */
		size_t off = 0;
		for (unsigned i = 0; i < k; i++) {
			uint32_t left = used[i];
			for (unsigned s = 0; s < SEGS && left; s++) {
				uint32_t take =
				    chain[i].in[s].len < left ? chain[i].in[s].len : left;
				if (memcmp(mem[i][s], data + off, take))
					__builtin_trap();
				off += take, left -= take;
			}
		}
		if (off != size)
			__builtin_trap();
	}
	for (unsigned i = 0; i < CHAINS; i++)
		for (unsigned s = 0; s < SEGS; s++) {
			uint32_t len = i < n ? chain[i].in[s].len : 0;
			if (mem[i][s][len] != GUARD || mem[i][s][256] != GUARD)
				__builtin_trap();
		}

	/* the same bytes as a transmit chain and as a received header */
	struct virtq_chain *t = &chain[0];
	*t = (struct virtq_chain){
	    .n_out = 1, .out = {{(void *)data, (uint32_t)size}}, .out_len = size};
	const char *why = net_tx_chain_invalid(t);
	if ((why != NULL) != (size < NET_HDR_LEN || size > NET_FRAME_MAX))
		__builtin_trap();
	if (size >= NET_HDR_LEN) {
		uint8_t hdr[NET_HDR_LEN];
		memcpy(hdr, data, NET_HDR_LEN);
		net_rx_hdr_fix(hdr, 0, 1);
		if (hdr[0] != 0 || hdr[10] != 1 || hdr[11] != 0)
			__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] == 0)
		spec(data + 1, size - 1);
	else
		frames(data + 1, size - 1);
	return 0;
}
