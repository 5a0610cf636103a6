/* virtio-net without a VM: the --net spec, MAC addresses, the config space, and the frame
 * handling of the data path (transmit chain checks, receive header, mergeable buffers). */
#include <criterion/criterion.h>
#include <linux/virtio_net.h>
#include <string.h>

#include "vmm/virtio/net_frame.h"
#include "vmm/virtio/net_spec.h"

static struct net_spec spec_ok(const char *s)
{
	struct net_spec sp;
	vs_err_t err = NULL;
	cr_assert_eq(net_spec_parse(s, &sp, &err), 0, "%s: %s", s, err ? err->msg : "");
	return sp;
}

static void spec_bad(const char *s, const char *want)
{
	struct net_spec sp;
	vs_err_t err = NULL;
	cr_assert_eq(net_spec_parse(s, &sp, &err), -1, "`%s` was accepted", s);
	cr_assert_not_null(err);
	cr_assert(strstr(err->msg, want), "`%s`: got `%s`, want `%s`", s, err->msg, want);
	cr_assert_null(strchr(err->msg, '\n'), "one line: %s", err->msg);
	vs_err_free(&err);
}

Test(net_spec, tap_only)
{
	struct net_spec s = spec_ok("tap=vtap0");
	cr_assert_str_eq(s.tap, "vtap0");
	cr_assert_not(s.has_mac);
	cr_assert(rl_unlimited(&s.rl));
}

Test(net_spec, mac_and_rates_in_any_order)
{
	struct net_spec s = spec_ok("mac=52:54:00:AB:cd:0f,bw=10M,tap=t1,ops=1000,bw_burst=1M");
	cr_assert_str_eq(s.tap, "t1");
	cr_assert(s.has_mac);
	uint8_t want[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0x0f};
	cr_assert_arr_eq(s.mac, want, 6);
	cr_assert_eq(s.rl.bw.size, 10ULL << 20);
	cr_assert_eq(s.rl.bw.one_time_burst, 1ULL << 20);
	cr_assert_eq(s.rl.ops.size, 1000);
	cr_assert_eq(s.rl.ops.one_time_burst, 0);
}

Test(net_spec, longest_tap_name)
{
	struct net_spec s = spec_ok("tap=abcdefghijklmno");
	cr_assert_str_eq(s.tap, "abcdefghijklmno");
}

Test(net_spec, bad_inputs_name_the_option)
{
	spec_bad("", "tap: missing");
	spec_bad("mac=52:54:00:12:34:56", "tap: missing");
	spec_bad("tap=", "tap: needs an interface name");
	spec_bad("tap=abcdefghijklmnop", "longer than 15 characters");
	spec_bad("tap=a/b", "`/` cannot be in an interface name");
	spec_bad("tap=a b", "cannot be in an interface name");
	spec_bad("tap=tap%d", "`%` cannot be in an interface name");
	spec_bad("tap=..", "not an interface name");
	spec_bad("tap=a,tap=b", "tap: given twice");
	spec_bad("tap=a,", "stray `,`");
	spec_bad("tap=a,,mac=52:54:00:12:34:56", "stray `,`");
	spec_bad("vtap0", "expected KEY=VALUE");
	spec_bad("tap=a,speed=10", "speed: unknown option");
	spec_bad("tap=a,iops=10", "iops: unknown option");
	spec_bad("tap=a,mac=zz:54:00:12:34:56", "mac: `zz:54:00:12:34:56` is not a MAC address");
	spec_bad("tap=a,mac=52:54:00:12:34", "is not a MAC address");
	spec_bad("tap=a,mac=52:54:00:12:34:56:78", "is not a MAC address");
	spec_bad("tap=a,mac=52-54-00-12-34-56", "is not a MAC address");
	spec_bad("tap=a,mac=01:00:5e:00:00:01", "multicast");
	spec_bad("tap=a,mac=00:00:00:00:00:00", "not a usable address");
	spec_bad("tap=a,mac=52:54:00:12:34:56,mac=52:54:00:12:34:57", "mac: given twice");
	spec_bad("tap=a,bw=fast", "bw: not a rate");
	spec_bad("tap=a,ops=many", "ops: not a rate");
	spec_bad("tap=a,ops=0", "ops: must be above 0");
	spec_bad("tap=a,bw_burst=1M", "bw_burst: needs bw=");
	spec_bad("tap=a,ops_burst=10", "ops_burst: needs ops=");
	spec_bad("tap=a\nb", "byte 0xa at offset 5 is not a printable character");
	spec_bad("t\x07p", "byte 0x7 at offset 1");
}

Test(net_spec, random_mac_is_local_unicast_and_varies)
{
	uint8_t a[6], b[6];
	net_random_mac(a);
	net_random_mac(b);
	cr_assert_eq(a[0] & 3, 2, "locally administered unicast: %02x", a[0]);
	cr_assert_eq(b[0] & 3, 2);
	cr_assert(memcmp(a, b, 6) != 0, "two random MACs are equal");
}

Test(net_frame, config_space_is_mac_link_up_one_pair)
{
	uint8_t mac[6] = {0x52, 0x54, 0, 1, 2, 3}, cfg[NET_CONFIG_LEN];
	net_config_bytes(mac, cfg);
	uint8_t want[NET_CONFIG_LEN] = {0x52, 0x54, 0, 1, 2, 3, VIRTIO_NET_S_LINK_UP, 0, 1, 0};
	cr_assert_arr_eq(cfg, want, sizeof(want));
}

Test(net_frame, features_offered)
{
	cr_assert(NET_FEATURES & NET_F(VIRTIO_NET_F_MRG_RXBUF));
	cr_assert(NET_FEATURES & NET_F(VIRTIO_NET_F_CSUM));
	cr_assert(NET_FEATURES & NET_F(VIRTIO_NET_F_HOST_TSO4));
	cr_assert(NET_FEATURES & NET_F(VIRTIO_NET_F_GUEST_TSO6));
	cr_assert(NET_FEATURES & NET_F(VIRTIO_NET_F_MAC));
	/* no control queue: the device has exactly two queues */
	cr_assert_not(NET_FEATURES & NET_F(VIRTIO_NET_F_CTRL_VQ));
	cr_assert_not(NET_FEATURES & NET_F(VIRTIO_NET_F_MQ));
}

static struct virtq_chain chain;

Test(net_frame, tx_chain_rules)
{
	static uint8_t buf[NET_FRAME_MAX + 1];
	chain = (struct virtq_chain){.n_out = 1, .out = {{buf, 60}}, .out_len = 60};
	cr_assert_null(net_tx_chain_invalid(&chain));
	chain.out_len = NET_HDR_LEN;
	cr_assert_null(net_tx_chain_invalid(&chain), "a header and an empty frame is legal");
	chain.out_len = NET_HDR_LEN - 1;
	cr_assert_str_eq(net_tx_chain_invalid(&chain),
			 "transmit buffer shorter than the virtio-net header");
	chain.out_len = NET_FRAME_MAX + 1;
	cr_assert_str_eq(net_tx_chain_invalid(&chain), "transmit frame longer than 64 KiB");
	chain.out_len = 60;
	chain.n_in = 1;
	chain.in[0] = (struct virtq_seg){buf, 4};
	chain.in_len = 4;
	cr_assert_str_eq(net_tx_chain_invalid(&chain),
			 "transmit buffer has a device-writable part");
}

Test(net_frame, rx_header_keeps_offload_flags_only_with_guest_csum)
{
	struct virtio_net_hdr_mrg_rxbuf h = {
	    .hdr = {.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 34, .csum_offset = 6},
	    .num_buffers = 0x7777};
	uint8_t b[NET_HDR_LEN];
	memcpy(b, &h, sizeof(b));
	net_rx_hdr_fix(b, NET_F(VIRTIO_NET_F_GUEST_CSUM), 3);
	memcpy(&h, b, sizeof(b));
	cr_assert_eq(h.hdr.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
	cr_assert_eq(h.hdr.csum_start, 34);
	cr_assert_eq(h.num_buffers, 3);
	net_rx_hdr_fix(b, 0, 1);
	memcpy(&h, b, sizeof(b));
	cr_assert_eq(h.hdr.flags, 0, "no GUEST_CSUM: the driver must see no flags");
	cr_assert_eq(h.num_buffers, 1);
}

/* Receive buffers as a guest posts them: each chain one or more writable segments. */
static struct virtq_chain rx[4];
static uint8_t guest[4][64];

static void rx_setup(const unsigned *seglens, unsigned nchains, unsigned segs_per_chain)
{
	memset(guest, 0xee, sizeof(guest));
	for (unsigned i = 0; i < nchains; i++) {
		rx[i] = (struct virtq_chain){.head = (uint16_t)(10 + i)};
		unsigned off = 0;
		for (unsigned s = 0; s < segs_per_chain; s++) {
			unsigned len = seglens[i * segs_per_chain + s];
			rx[i].in[rx[i].n_in++] = (struct virtq_seg){guest[i] + off, len};
			rx[i].in_len += len;
			off += len;
		}
	}
}

Test(net_frame, frame_fits_in_one_buffer)
{
	unsigned lens[] = {40, 40};
	rx_setup(lens, 2, 1);
	struct virtq_chain *c[] = {&rx[0], &rx[1]};
	uint8_t frame[30];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)i;
	uint32_t used[2] = {99, 99};
	cr_assert_eq(net_copy_to_chains(frame, sizeof(frame), c, 2, used), 1);
	cr_assert_eq(used[0], 30);
	cr_assert_arr_eq(guest[0], frame, 30);
	cr_assert_eq(guest[0][30], 0xee, "wrote past the frame");
	cr_assert_eq(guest[1][0], 0xee, "touched the second buffer");
}

Test(net_frame, frame_spans_buffers_and_segments)
{
	/* two chains of two segments each: 10+6, then 8+30 */
	unsigned lens[] = {10, 6, 8, 30};
	rx_setup(lens, 2, 2);
	struct virtq_chain *c[] = {&rx[0], &rx[1]};
	uint8_t frame[40];
	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i + 1);
	uint32_t used[2];
	cr_assert_eq(net_copy_to_chains(frame, sizeof(frame), c, 2, used), 2);
	cr_assert_eq(used[0], 16);
	cr_assert_eq(used[1], 24);
	cr_assert_arr_eq(guest[0], frame, 16);
	cr_assert_arr_eq(guest[1], frame + 16, 24);
	cr_assert_eq(guest[1][24], 0xee);
}

Test(net_frame, buffers_too_small_take_nothing)
{
	unsigned lens[] = {8, 8};
	rx_setup(lens, 2, 1);
	struct virtq_chain *c[] = {&rx[0], &rx[1]};
	uint8_t frame[17] = {0};
	uint32_t used[2];
	cr_assert_eq(net_copy_to_chains(frame, sizeof(frame), c, 2, used), 0);
	cr_assert_eq(guest[0][0], 0xee, "a frame that does not fit must not be half-written");
	cr_assert_eq(net_copy_to_chains(frame, sizeof(frame), c, 0, used), 0);
}
