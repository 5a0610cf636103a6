/* A vhost-user front-end's socket: connect to the back-end, send a message (with the fds
 * it carries), read a reply checked by vhost_user.c. Every call is bounded in time (the
 * socket's timeouts), since a back-end that stops answering would otherwise hold the vCPU
 * that wrote DRIVER_OK. */
#ifndef VESSEL_VMM_VIRTIO_VHOST_USER_IO_H
#define VESSEL_VMM_VIRTIO_VHOST_USER_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "vmm/virtio/vhost_user.h"

#define VHU_TIMEOUT_S 10

/* The connected socket, or -1 with err (errno as connect gave it). */
int vhu_connect(const char *path, vs_err_t *err);
/* Sends len bytes of msg with nfds fds (at most VHU_MAX_REGIONS) as SCM_RIGHTS. */
int vhu_send(int sock, const uint8_t *msg, size_t len, const int *fds, unsigned nfds,
	     vs_err_t *err);
/* Reads one reply to req (header checked before its payload is read) into buf
 * (VHU_MAX_MSG bytes); returns its length or -1. Fds the back-end sends along are dropped. */
ssize_t vhu_recv_reply(int sock, enum vhu_request req, uint8_t *buf, vs_err_t *err);

#endif
