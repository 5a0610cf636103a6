/* A small rtnetlink client: the OCI runtime moves linux.netDevices into a container, a
 * VM-isolated container's host reads its network namespace and joins its interface to a
 * tap (tc), and its agent configures the guest's interface. Written by hand, not
 * iproute2: the guest has no `ip`, and on the host a request's errno is an error with
 * context, not text from a tool to parse. */
#ifndef VESSEL_BASE_NL_H
#define VESSEL_BASE_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "base/error.h"

#define NL_MSG_MAX 1024

/* One request being built: a header, the family's fixed part, then attributes. */
struct nl_msg {
	union {
		struct nlmsghdr h;
		char buf[NL_MSG_MAX];
	};
	bool overflow; /* an attribute did not fit: the request is refused, not sent */
};

/* hdr (hdr_len bytes: ifinfomsg, ifaddrmsg, rtmsg, tcmsg) follows the netlink header. */
void nl_init(struct nl_msg *m, uint16_t type, uint16_t flags, const void *hdr, size_t hdr_len);
void nl_put(struct nl_msg *m, uint16_t type, const void *data, size_t len);
void nl_put_u32(struct nl_msg *m, uint16_t type, uint32_t v);
void nl_put_str(struct nl_msg *m, uint16_t type, const char *s);
/* A nested attribute: its members are the nl_put calls until nl_nest_end. */
struct rtattr *nl_nest_begin(struct nl_msg *m, uint16_t type);
void nl_nest_end(struct nl_msg *m, struct rtattr *a);

/* A NETLINK_ROUTE socket in the calling thread's network namespace. */
int nl_open(vs_err_t *err);
/* The same in the network namespace netns_fd, the calling thread back in its own at once
 * (a socket keeps the namespace it was made in; a thread that can't return aborts). */
int nl_open_in(int netns_fd, vs_err_t *err);
/* Sends m with NLM_F_ACK and waits for the answer: 0, or the kernel's -errno (no err set:
 * the caller knows which errno is fine, EEXIST for an add that was done already). */
int nl_request(int fd, struct nl_msg *m);
/* A dump request (NLM_F_DUMP): fn gets each message until NLMSG_DONE; fn < 0 stops it. */
int nl_dump(int fd, struct nl_msg *m, int (*fn)(const struct nlmsghdr *h, void *arg), void *arg,
	    vs_err_t *err);
/* The attributes after a message's fixed part of hdr_len bytes, indexed by type (those up to
 * max; the rest are ignored). Returns -1 when the message is shorter than its fixed part. */
int nl_parse_attrs(const struct nlmsghdr *h, size_t hdr_len, const struct rtattr **tb, int max);
/* The same for a nested attribute's members. */
void nl_parse_nested(const struct rtattr *nest, const struct rtattr **tb, int max);

#endif
