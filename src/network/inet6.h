/* IPv6 as /proc/net shows it: the kernel's 32-hex-digit addresses, and whether an address
 * of this network namespace has passed duplicate address detection. */
#ifndef VESSEL_NETWORK_INET6_H
#define VESSEL_NETWORK_INET6_H

#include <stdbool.h>

/* The 16 bytes of an address as /proc/net/ipv6_route and if_inet6 print it (32 hex
 * digits, no colons); false if hex is not that. */
bool inet6_from_proc_hex(const char *hex, unsigned char out[16]);

/* Waits up to timeout_ms for addr (text, an optional /PREFIX ignored) on an interface of
 * this namespace to leave DAD's tentative state: until then the kernel neither answers
 * nor sends from it, so a connection to it fails with EHOSTUNREACH. True once usable;
 * false when it stays tentative, failed DAD or is not there. */
bool inet6_wait_usable(const char *addr, int timeout_ms);

#endif
