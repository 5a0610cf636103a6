#include "vmm/virtio/vhost_user.h"

#include <string.h>

#include "vmm/layout.h"

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static size_t header(uint8_t *buf, enum vhu_request req, uint32_t size)
{
	put32(buf, req);
	put32(buf + 4, VHU_VERSION);
	put32(buf + 8, size);
	return VHU_HDR_SIZE + size;
}

size_t vhu_encode(uint8_t *buf, enum vhu_request req)
{
	return header(buf, req, 0);
}

size_t vhu_encode_u64(uint8_t *buf, enum vhu_request req, uint64_t v)
{
	put64(buf + VHU_HDR_SIZE, v);
	return header(buf, req, 8);
}

size_t vhu_encode_state(uint8_t *buf, enum vhu_request req, uint32_t index, uint32_t num)
{
	put32(buf + VHU_HDR_SIZE, index);
	put32(buf + VHU_HDR_SIZE + 4, num);
	return header(buf, req, 8);
}

size_t vhu_encode_addr(uint8_t *buf, const struct vhu_vring_addr *a)
{
	uint8_t *p = buf + VHU_HDR_SIZE;
	put32(p, a->index);
	put32(p + 4, a->flags);
	put64(p + 8, a->desc);
	put64(p + 16, a->used);
	put64(p + 24, a->avail);
	put64(p + 32, a->log);
	return header(buf, VHU_SET_VRING_ADDR, 40);
}

size_t vhu_encode_mem(uint8_t *buf, const struct vhu_region *r, unsigned n)
{
	if (n > VHU_MAX_REGIONS)
		return 0;
	uint8_t *p = buf + VHU_HDR_SIZE;
	put32(p, n);
	put32(p + 4, 0); /* padding */
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = p + 8 + 32 * i;
		put64(e, r[i].gpa);
		put64(e + 8, r[i].size);
		put64(e + 16, r[i].uaddr);
		put64(e + 24, r[i].mmap_offset);
	}
	return header(buf, VHU_SET_MEM_TABLE, 8 + 32 * n);
}

size_t vhu_encode_fd(uint8_t *buf, enum vhu_request req, uint32_t index)
{
	/* bits 0-7 the index; bit 8 (no fd: polling mode) stays clear, an eventfd comes along */
	return vhu_encode_u64(buf, req, index & 0xff);
}

int vhu_check_reply_header(const uint8_t *hdr, enum vhu_request req, uint32_t *size, vs_err_t *err)
{
	uint32_t got = get32(hdr), flags = get32(hdr + 4), sz = get32(hdr + 8);
	if ((flags & 0x3) != VHU_VERSION)
		return vs_err(err, 0, "reply with protocol version %u (expected %u)", flags & 0x3,
			      VHU_VERSION);
	if (!(flags & VHU_FLAG_REPLY))
		return vs_err(err, 0, "a message that is not a reply (flags 0x%x)", flags);
	if (got != req)
		return vs_err(err, 0, "reply to request %u (%s) where %s was asked", got,
			      vhu_request_name(got), vhu_request_name(req));
	/* both answers vessel asks for are 8 bytes: anything else is refused before it is read */
	if (sz != 8)
		return vs_err(err, 0, "%s reply of %u bytes (expected 8)", vhu_request_name(req),
			      sz);
	*size = sz;
	return 0;
}

static int whole(const uint8_t *msg, size_t len, enum vhu_request req, vs_err_t *err)
{
	uint32_t size;
	if (len < VHU_HDR_SIZE)
		return vs_err(err, 0, "%s reply of %zu bytes, shorter than a header",
			      vhu_request_name(req), len);
	if (vhu_check_reply_header(msg, req, &size, err) < 0)
		return -1;
	if (len - VHU_HDR_SIZE != size)
		return vs_err(err, 0, "%s reply: %zu payload bytes, the header says %u",
			      vhu_request_name(req), len - VHU_HDR_SIZE, size);
	return 0;
}

int vhu_parse_features(const uint8_t *msg, size_t len, uint64_t *features, vs_err_t *err)
{
	if (whole(msg, len, VHU_GET_FEATURES, err) < 0)
		return -1;
	*features = get64(msg + VHU_HDR_SIZE);
	return 0;
}

int vhu_parse_vring_base(const uint8_t *msg, size_t len, uint32_t index, uint16_t *base,
			 vs_err_t *err)
{
	if (whole(msg, len, VHU_GET_VRING_BASE, err) < 0)
		return -1;
	uint32_t got = get32(msg + VHU_HDR_SIZE), num = get32(msg + VHU_HDR_SIZE + 4);
	if (got != index)
		return vs_err(err, 0, "GET_VRING_BASE reply for ring %u where ring %u was asked",
			      got, index);
	if (num > UINT16_MAX)
		return vs_err(err, 0, "GET_VRING_BASE reply: ring %u base %u is not a ring index",
			      index, num);
	*base = (uint16_t)num;
	return 0;
}

unsigned vhu_mem_regions(const struct guest_mem *m, struct vhu_region out[2])
{
	out[0] = (struct vhu_region){
	    .gpa = 0,
	    .size = m->low_size,
	    .uaddr = (uint64_t)(uintptr_t)m->host,
	    .mmap_offset = 0,
	};
	if (m->ram_size == m->low_size)
		return 1;
	out[1] = (struct vhu_region){
	    .gpa = LAYOUT_4G,
	    .size = m->ram_size - m->low_size,
	    .uaddr = (uint64_t)(uintptr_t)(m->host + m->low_size),
	    .mmap_offset = m->low_size,
	};
	return 2;
}

const char *vhu_request_name(uint32_t req)
{
	switch (req) {
	case VHU_GET_FEATURES:
		return "GET_FEATURES";
	case VHU_SET_FEATURES:
		return "SET_FEATURES";
	case VHU_SET_OWNER:
		return "SET_OWNER";
	case VHU_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VHU_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VHU_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VHU_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VHU_GET_VRING_BASE:
		return "GET_VRING_BASE";
	case VHU_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VHU_SET_VRING_CALL:
		return "SET_VRING_CALL";
	}
	return "an unknown request";
}
