#include "vmm/virtio/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/util.h"

static int link_up(const char *name, vs_err_t *err)
{
	cleanup_close int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return vs_err(err, errno, "tap `%s`: socket", name);
	struct ifreq ifr = {0};
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return vs_err(err, errno, "tap `%s`: SIOCGIFFLAGS", name);
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		return vs_err(err, errno, "tap `%s`: bring up", name);
	return 0;
}

int tap_open(const char *name, unsigned vnet_hdr_len, bool *created, vs_err_t *err)
{
	*created = if_nametoindex(name) == 0;
	cleanup_close int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return vs_err(err, errno, "tap `%s`: open /dev/net/tun", name);

	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR};
	strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		int e = errno;
		if (e == EBUSY)
			return vs_err(err, 0, "tap `%s`: in use by another process", name);
		if (e == EINVAL && !*created)
			return vs_err(err, 0, "tap `%s`: exists and is not a tap device", name);
		if (e == EPERM)
			return vs_err(err, e, "tap `%s`: %s needs CAP_NET_ADMIN", name,
				      *created ? "creating it" : "attaching to it");
		return vs_err(err, e, "tap `%s`: TUNSETIFF", name);
	}
	int sz = (int)vnet_hdr_len;
	if (ioctl(fd, TUNSETVNETHDRSZ, &sz) < 0)
		return vs_err(err, errno, "tap `%s`: TUNSETVNETHDRSZ %d", name, sz);
	if (ioctl(fd, TUNSETOFFLOAD, 0) < 0)
		return vs_err(err, errno, "tap `%s`: TUNSETOFFLOAD", name);
	if (*created && link_up(name, err) < 0)
		return -1;
	return steal_fd(fd);
}

int tap_set_offload(int fd, uint64_t f, vs_err_t *err)
{
	unsigned off = 0;
	/* TSO without checksum offload is meaningless to the kernel (and to the spec) */
	if (f & (1ULL << VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (f & (1ULL << VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0)
		return vs_err(err, errno, "TUNSETOFFLOAD %#x", off);
	return 0;
}
