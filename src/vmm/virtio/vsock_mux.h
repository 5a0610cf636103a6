/* virtio-vsock's muxer: the guest's stream connections on one side, Unix sockets on the
 * host on the other, the way Firecracker proxies them (docs/vsock.md).
 *
 * Host-initiated: a host program connects to `uds`, writes `CONNECT <port>\n`; the muxer
 * asks the guest (REQUEST) and answers `OK <hostport>\n` once the guest accepts, or closes
 * the socket on its RST. Guest-initiated: a REQUEST to the host (CID 2) port P connects to
 * `<uds>_P`; nothing there is an RST. Then bytes are spliced both ways under the virtio
 * credit rules: the muxer never sends the guest more than it said it could take, and it
 * buffers at most VSOCK_CONN_BUF bytes a connection of what the guest sends (what it
 * advertised as buf_alloc); a guest that sends more lied, and its connection is reset.
 *
 * Pure of the transport: it takes the guest's tx packets and fills rx buffers as
 * virtq_chains, so the fuzzer drives it directly. One thread calls it (the device's worker;
 * a reset may come from a vCPU, under the transport's work lock). */
#ifndef VESSEL_VMM_VIRTIO_VSOCK_MUX_H
#define VESSEL_VMM_VIRTIO_VSOCK_MUX_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "vmm/virtio/queue.h"

#define VSOCK_CONN_BUF (128u << 10) /* buf_alloc the guest is told; the most buffered */
#define VSOCK_MAX_CONNS 1024	    /* connections (and host sockets still handshaking) */

struct vsock_mux;

/* Listens on uds (a stale socket there, one nobody answers on, is replaced). */
struct vsock_mux *vsock_mux_new(uint64_t guest_cid, const char *uds, vs_err_t *err);
/* Closes every connection and the listener, and removes the listener's path. */
void vsock_mux_free(struct vsock_mux *m);
/* Readable when a host socket has something for the muxer: then call vsock_mux_poll. */
int vsock_mux_epfd(const struct vsock_mux *m);
void vsock_mux_set_cid(struct vsock_mux *m, uint64_t guest_cid);

/* One packet the guest sent (the chain's device-readable part). 0: handled; -1: the
 * header is malformed and *why says how (the device needs a reset). */
int vsock_mux_tx(struct vsock_mux *m, const struct virtq_chain *c, const char **why);
/* Takes what the host sockets have for the muxer (accepts, reads, writable sockets). */
void vsock_mux_poll(struct vsock_mux *m);
/* Something waits for the guest: vsock_mux_rx may fill a buffer. */
bool vsock_mux_rx_pending(const struct vsock_mux *m);
/* Writes one packet for the guest into the chain's device-writable part; returns its
 * length (header included), or 0 when there was nothing to send after all. -1: the
 * chain cannot hold a header (the device needs a reset). */
int64_t vsock_mux_rx(struct vsock_mux *m, const struct virtq_chain *c);
/* The driver reset the device (or a snapshot was restored): every connection is gone. */
void vsock_mux_reset(struct vsock_mux *m);

struct vsock_mux_stats {
	unsigned conns;
	uint64_t lies, drops;
};
void vsock_mux_stats(const struct vsock_mux *m, struct vsock_mux_stats *out);

#endif
