/* virtio-fs's untrusted inputs without a VM or a back-end: a vhost-user back-end's replies
 * (vhost_user.c), read through the same socket code vessel uses (vhost_user_io.c over a
 * socketpair, so a header's size is checked before its payload is read), and the --fs
 * spec (user input). Checks, besides crashes, leaks and UB: an accepted reply is exactly a
 * header and the 8 bytes its request's answer has, with the reply flag; an accepted ring
 * base is the ring asked for and fits 16 bits; an accepted spec's tag is 1..36 bytes with
 * no space and its socket 1..107 bytes; every error is one line.
 *
 * Input: a first byte picks the part. 0: the rest is a --fs spec. 1: the rest is what a
 * back-end writes after GET_FEATURES; 2: after GET_VRING_BASE for the ring in the next
 * byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vmm/virtio/fs_spec.h"
#include "vmm/virtio/vhost_user.h"
#include "vmm/virtio/vhost_user_io.h"

#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one_line(vs_err_t err)
{
	if (!err || !err->msg || strchr(err->msg, '\n'))
		__builtin_trap();
}

static void spec(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstring(data, size);
	if (!s)
		return;
	struct fs_spec f;
	vs_err_t err = NULL;
	if (fs_spec_parse(s, &f, &err) == 0) {
		size_t t = strlen(f.tag), k = strlen(f.socket);
		if (t == 0 || t > FS_TAG_MAX || k == 0 || k > FS_SOCKET_MAX || strchr(f.tag, ' '))
			__builtin_trap();
	} else {
		one_line(err);
	}
	vs_err_free(&err);
	free(s);
}

/* The back-end's bytes, then EOF: what vessel reads of them, and what it makes of that. */
static void reply(const uint8_t *data, size_t size, enum vhu_request req, uint32_t ring)
{
	int sv[2];
	if (size > 4096 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	if (size && write(sv[1], data, size) != (ssize_t)size) {
		close(sv[0]);
		close(sv[1]);
		return;
	}
	close(sv[1]);
	uint8_t buf[VHU_MAX_MSG];
	vs_err_t err = NULL;
	ssize_t n = vhu_recv_reply(sv[0], req, buf, &err);
	close(sv[0]);
	if (n < 0) {
		one_line(err);
		vs_err_free(&err);
		return;
	}
	uint32_t flags;
	memcpy(&flags, buf + 4, 4);
	if (n != VHU_HDR_SIZE + 8 || !(flags & VHU_FLAG_REPLY) || memcmp(buf, &req, 4) != 0)
		__builtin_trap();
	if (req == VHU_GET_FEATURES) {
		uint64_t f;
		if (vhu_parse_features(buf, (size_t)n, &f, &err) < 0)
			__builtin_trap(); /* the header was checked: the whole reply must pass */
		return;
	}
	uint16_t base;
	if (vhu_parse_vring_base(buf, (size_t)n, ring, &base, &err) == 0) {
		uint32_t got;
		memcpy(&got, buf + VHU_HDR_SIZE, 4);
		if (got != ring)
			__builtin_trap();
	} else {
		one_line(err);
		vs_err_free(&err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		spec(data + 1, size - 1);
		break;
	case 1:
		reply(data + 1, size - 1, VHU_GET_FEATURES, 0);
		break;
	case 2:
		if (size >= 2)
			reply(data + 2, size - 2, VHU_GET_VRING_BASE, data[1] % 2);
		break;
	}
	return 0;
}
