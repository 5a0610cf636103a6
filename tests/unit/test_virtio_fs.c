/* virtio-fs without a VM: the vhost-user messages (vhost_user.c: what vessel sends, byte for
 * byte as the spec lays them out, and every way a back-end's reply can be wrong), the socket
 * I/O (vhost_user_io.c over a socketpair: fds travel, a gone back-end is an error), and the
 * --fs spec and the config file's "fs" objects (fs_spec.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/virtio/fs_spec.h"
#include "vmm/virtio/vhost_user.h"
#include "vmm/virtio/vhost_user_io.h"

static uint32_t u32_at(const uint8_t *p, size_t off)
{
	uint32_t v;
	memcpy(&v, p + off, 4);
	return v;
}

static uint64_t u64_at(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, 8);
	return v;
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, 4);
}

/* A back-end's reply: header (request, flags, size) and payload. */
static size_t reply(uint8_t *m, uint32_t req, uint32_t flags, uint32_t size, uint32_t a, uint32_t b)
{
	put32(m, 0, req);
	put32(m, 4, flags);
	put32(m, 8, size);
	put32(m, 12, a);
	put32(m, 16, b);
	return 20;
}

Test(vhost_user, headers_are_request_version_and_size)
{
	uint8_t m[VHU_MAX_MSG];
	cr_assert_eq(vhu_encode(m, VHU_GET_FEATURES), 12);
	cr_assert_eq(u32_at(m, 0), 1);
	cr_assert_eq(u32_at(m, 4), 1); /* version 1, no reply flag */
	cr_assert_eq(u32_at(m, 8), 0);
	cr_assert_eq(vhu_encode_u64(m, VHU_SET_FEATURES, 0x1300000000ULL), 20);
	cr_assert_eq(u32_at(m, 0), 2);
	cr_assert_eq(u64_at(m, 12), 0x1300000000ULL);
	cr_assert_eq(vhu_encode_state(m, VHU_SET_VRING_NUM, 1, 256), 20);
	cr_assert_eq(u32_at(m, 0), 8);
	cr_assert_eq(u32_at(m, 12), 1);
	cr_assert_eq(u32_at(m, 16), 256);
}

Test(vhost_user, vring_addr_is_index_flags_desc_used_avail_log)
{
	uint8_t m[VHU_MAX_MSG];
	struct vhu_vring_addr a = {.index = 1, .desc = 0x1000, .used = 0x3000, .avail = 0x2000};
	cr_assert_eq(vhu_encode_addr(m, &a), 12 + 40);
	cr_assert_eq(u32_at(m, 0), VHU_SET_VRING_ADDR);
	cr_assert_eq(u32_at(m, 8), 40);
	cr_assert_eq(u32_at(m, 12), 1);
	cr_assert_eq(u32_at(m, 16), 0);
	cr_assert_eq(u64_at(m, 20), 0x1000);
	cr_assert_eq(u64_at(m, 28), 0x3000);
	cr_assert_eq(u64_at(m, 36), 0x2000);
	cr_assert_eq(u64_at(m, 44), 0);
}

Test(vhost_user, kick_and_call_carry_the_index_and_say_an_fd_comes)
{
	uint8_t m[VHU_MAX_MSG];
	cr_assert_eq(vhu_encode_fd(m, VHU_SET_VRING_KICK, 1), 20);
	cr_assert_eq(u32_at(m, 0), 12);
	cr_assert_eq(u64_at(m, 12), 1); /* bit 8 (no fd) clear */
}

Test(vhost_user, memory_table_of_two_regions)
{
	uint8_t m[VHU_MAX_MSG];
	struct vhu_region r[2] = {{0, 0xc0000000, 0x7f0000000000, 0},
				  {LAYOUT_4G, 0x40000000, 0x7f00c0000000, 0xc0000000}};
	cr_assert_eq(vhu_encode_mem(m, r, 2), 12 + 8 + 64);
	cr_assert_eq(u32_at(m, 0), VHU_SET_MEM_TABLE);
	cr_assert_eq(u32_at(m, 8), 72);
	cr_assert_eq(u32_at(m, 12), 2);
	cr_assert_eq(u64_at(m, 20 + 32), LAYOUT_4G);
	cr_assert_eq(u64_at(m, 20 + 32 + 8), 0x40000000);
	cr_assert_eq(u64_at(m, 20 + 32 + 16), 0x7f00c0000000);
	cr_assert_eq(u64_at(m, 20 + 32 + 24), 0xc0000000);
	cr_assert_eq(vhu_encode_mem(m, r, VHU_MAX_REGIONS + 1), 0);
}

Test(vhost_user, guest_ram_is_one_region_below_the_hole_two_across_it)
{
	uint8_t host[16];
	struct guest_mem small = {.host = host, .ram_size = 256 << 20, .low_size = 256 << 20};
	struct vhu_region r[2];
	cr_assert_eq(vhu_mem_regions(&small, r), 1);
	cr_assert_eq(r[0].gpa, 0);
	cr_assert_eq(r[0].size, 256 << 20);
	cr_assert_eq(r[0].uaddr, (uint64_t)(uintptr_t)host);
	struct guest_mem big = {.host = host, .ram_size = 4ULL << 30, .low_size = 3ULL << 30};
	cr_assert_eq(vhu_mem_regions(&big, r), 2);
	cr_assert_eq(r[1].gpa, LAYOUT_4G);
	cr_assert_eq(r[1].size, 1ULL << 30);
	cr_assert_eq(r[1].mmap_offset, 3ULL << 30);
	cr_assert_eq(r[1].uaddr, (uint64_t)(uintptr_t)host + (3ULL << 30));
}

Test(vhost_user, a_good_features_reply)
{
	uint8_t m[32];
	size_t n = reply(m, VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 8, 0x30000000, 0x1);
	uint64_t f = 0;
	vs_err_t err = NULL;
	cr_assert_eq(vhu_parse_features(m, n, &f, &err), 0);
	cr_assert_eq(f, 0x130000000ULL);
}

Test(vhost_user, bad_replies_are_refused_saying_why)
{
	struct {
		uint32_t req, flags, size;
		size_t len;
		const char *why;
	} cases[] = {
	    {VHU_GET_FEATURES, 2 | VHU_FLAG_REPLY, 8, 20, "protocol version 2"},
	    {VHU_GET_FEATURES, 1, 8, 20, "not a reply"},
	    {VHU_SET_OWNER, 1 | VHU_FLAG_REPLY, 8, 20,
	     "reply to request 3 (SET_OWNER) where "
	     "GET_FEATURES was asked"},
	    {VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 0xffffffff, 20, "of 4294967295 bytes"},
	    {VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 4, 16, "of 4 bytes"},
	    {VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 8, 19, "7 payload bytes, the header says 8"},
	    {VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 8, 7, "shorter than a header"},
	    {999, 1 | VHU_FLAG_REPLY, 8, 20, "an unknown request"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t m[32] = {0};
		reply(m, cases[i].req, cases[i].flags, cases[i].size, 0, 0);
		uint64_t f = 0;
		vs_err_t err = NULL;
		cr_assert_eq(vhu_parse_features(m, cases[i].len, &f, &err), -1, "case %zu", i);
		cr_assert(strstr(err->msg, cases[i].why), "case %zu: %s", i, err->msg);
		vs_err_free(&err);
	}
}

Test(vhost_user, vring_base_reply_names_the_ring_asked_for)
{
	uint8_t m[32];
	uint16_t base = 0;
	vs_err_t err = NULL;
	size_t n = reply(m, VHU_GET_VRING_BASE, 1 | VHU_FLAG_REPLY, 8, 1, 77);
	cr_assert_eq(vhu_parse_vring_base(m, n, 1, &base, &err), 0);
	cr_assert_eq(base, 77);
	cr_assert_eq(vhu_parse_vring_base(m, n, 0, &base, &err), -1);
	cr_assert(strstr(err->msg, "for ring 1 where ring 0"), "%s", err->msg);
	vs_err_free(&err);
	n = reply(m, VHU_GET_VRING_BASE, 1 | VHU_FLAG_REPLY, 8, 1, 65536);
	cr_assert_eq(vhu_parse_vring_base(m, n, 1, &base, &err), -1);
	cr_assert(strstr(err->msg, "65536 is not a ring index"), "%s", err->msg);
	vs_err_free(&err);
}

Test(vhost_user_io, fds_travel_with_the_message_and_a_reply_is_read)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	int efd = eventfd(0, 0);
	uint8_t m[VHU_MAX_MSG];
	size_t n = vhu_encode_fd(m, VHU_SET_VRING_CALL, 0);
	vs_err_t err = NULL;
	cr_assert_eq(vhu_send(sv[0], m, n, &efd, 1, &err), 0);
	/* the back-end's side: the message and one fd that is the same eventfd */
	uint8_t got[64];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {got, sizeof(got)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	cr_assert_eq(recvmsg(sv[1], &mh, 0), (ssize_t)n);
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
	cr_assert(c && c->cmsg_type == SCM_RIGHTS);
	int passed;
	memcpy(&passed, CMSG_DATA(c), sizeof(int));
	struct stat a, b;
	fstat(efd, &a);
	fstat(passed, &b);
	cr_assert_eq(a.st_ino, b.st_ino);
	close(passed);
	/* a reply in two pieces is read whole */
	size_t rn = reply(m, VHU_GET_FEATURES, 1 | VHU_FLAG_REPLY, 8, 5, 0);
	cr_assert_eq(write(sv[1], m, 5), 5);
	cr_assert_eq(write(sv[1], m + 5, rn - 5), (ssize_t)(rn - 5));
	uint8_t in[VHU_MAX_MSG];
	ssize_t len = vhu_recv_reply(sv[0], VHU_GET_FEATURES, in, &err);
	cr_assert_eq(len, 20);
	uint64_t f;
	cr_assert_eq(vhu_parse_features(in, (size_t)len, &f, &err), 0);
	cr_assert_eq(f, 5);
	/* the back-end goes: an error, not a hang */
	close(sv[1]);
	cr_assert_eq(vhu_recv_reply(sv[0], VHU_GET_FEATURES, in, &err), -1);
	cr_assert(strstr(err->msg, "closed the connection"), "%s", err->msg);
	vs_err_free(&err);
	close(sv[0]);
	close(efd);
}

Test(vhost_user_io, a_reply_with_a_huge_size_is_refused_before_its_payload)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uint8_t m[32];
	reply(m, VHU_GET_VRING_BASE, 1 | VHU_FLAG_REPLY, 1 << 30, 0, 0);
	cr_assert_eq(write(sv[1], m, 12), 12);
	uint8_t in[VHU_MAX_MSG];
	vs_err_t err = NULL;
	cr_assert_eq(vhu_recv_reply(sv[0], VHU_GET_VRING_BASE, in, &err), -1);
	cr_assert(strstr(err->msg, "of 1073741824 bytes"), "%s", err->msg);
	vs_err_free(&err);
	close(sv[0]);
	close(sv[1]);
}

Test(vhost_user_io, connect_to_nothing_says_errno)
{
	vs_err_t err = NULL;
	cr_assert_eq(vhu_connect("/nonexistent/vessel-test.sock", &err), -1);
	cr_assert_eq(err->errnum, ENOENT);
	vs_err_free(&err);
}

static void spec_fails(const char *spec, const char *why)
{
	struct fs_spec s;
	vs_err_t err = NULL;
	cr_assert_eq(fs_spec_parse(spec, &s, &err), -1, "%s", spec);
	cr_assert(strstr(err->msg, why), "%s: %s", spec, err->msg);
	vs_err_free(&err);
}

Test(fs_spec, tag_and_socket)
{
	struct fs_spec s;
	vs_err_t err = NULL;
	cr_assert_eq(fs_spec_parse("tag=share,socket=/run/fs.sock", &s, &err), 0);
	cr_assert_str_eq(s.tag, "share");
	cr_assert_str_eq(s.socket, "/run/fs.sock");
	cr_assert_eq(fs_spec_parse("socket=/s,tag=123456789012345678901234567890123456", &s, &err),
		     0);
	cr_assert_eq(strlen(s.tag), FS_TAG_MAX);
}

Test(fs_spec, every_wrong_spec_names_its_field)
{
	spec_fails("socket=/s", "tag: missing");
	spec_fails("tag=x", "socket: missing");
	spec_fails("tag=1234567890123456789012345678901234567,socket=/s", "tag: `");
	spec_fails("tag=1234567890123456789012345678901234567,socket=/s", "37 bytes");
	spec_fails("tag=,socket=/s", "tag: an empty tag");
	spec_fails("tag=a\tb,socket=/s", "is not a printable character");
	spec_fails("tag=x,socket=", "socket: an empty path");
	spec_fails("tag=x,tag=y,socket=/s", "tag: given twice");
	spec_fails("tag=x,socket=/s,socket=/t", "socket: given twice");
	spec_fails("tag=x,socket=/s,num_queues=2", "num_queues: unknown option");
	spec_fails("tag=x,,socket=/s", "");
	spec_fails("share", "expected KEY=VALUE");
	char longpath[160] = "tag=x,socket=/";
	memset(longpath + strlen(longpath), 'p', 107);
	spec_fails(longpath, "socket: `");
}

Test(fs_spec, config_file_object)
{
	struct fs_spec s;
	vs_err_t err = NULL;
	json_t *o = json_pack("{s:s, s:s}", "tag", "share", "socket", "/s");
	cr_assert_eq(fs_spec_from_json(o, &s, &err), 0);
	cr_assert_str_eq(s.tag, "share");
	json_decref(o);
	o = json_pack("{s:s}", "tag", "share");
	cr_assert_eq(fs_spec_from_json(o, &s, &err), -1);
	cr_assert(strstr(err->msg, "socket"), "%s", err->msg);
	vs_err_free(&err);
	json_decref(o);
	o = json_pack("{s:s, s:s, s:i}", "tag", "share", "socket", "/s", "num_queues", 1);
	cr_assert_eq(fs_spec_from_json(o, &s, &err), -1);
	cr_assert(strstr(err->msg, "num_queues"), "%s", err->msg);
	vs_err_free(&err);
	json_decref(o);
	o = json_pack("{s:i, s:s}", "tag", 3, "socket", "/s");
	cr_assert_eq(fs_spec_from_json(o, &s, &err), -1);
	cr_assert(strstr(err->msg, "tag"), "%s", err->msg);
	vs_err_free(&err);
	json_decref(o);
}
