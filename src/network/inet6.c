#include "network/inet6.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* if_inet6's flags (linux/if_addr.h) */
#define IFA_F_DADFAILED 0x08
#define IFA_F_TENTATIVE 0x40

bool inet6_from_proc_hex(const char *hex, unsigned char out[16])
{
	if (strspn(hex, "0123456789abcdef") < 32)
		return false;
	for (int i = 0; i < 16; i++) {
		unsigned byte;
		if (sscanf(hex + 2 * i, "%2x", &byte) != 1)
			return false;
		out[i] = (unsigned char)byte;
	}
	return true;
}

enum state { ABSENT, TENTATIVE, FAILED, USABLE };

static enum state addr_state(const unsigned char want[16])
{
	FILE *f = fopen("/proc/net/if_inet6", "re");
	char line[256];
	enum state st = ABSENT;
	while (f && st == ABSENT && fgets(line, sizeof(line), f)) {
		char hex[33];
		unsigned idx, plen, scope, flags;
		unsigned char a[16];
		if (sscanf(line, "%32s %x %x %x %x", hex, &idx, &plen, &scope, &flags) != 5 ||
		    !inet6_from_proc_hex(hex, a) || memcmp(a, want, 16) != 0)
			continue;
		st = flags & IFA_F_DADFAILED   ? FAILED
		     : flags & IFA_F_TENTATIVE ? TENTATIVE
					       : USABLE;
	}
	if (f)
		fclose(f);
	return st;
}

bool inet6_wait_usable(const char *addr, int timeout_ms)
{
	char text[INET6_ADDRSTRLEN];
	snprintf(text, sizeof(text), "%.*s", (int)strcspn(addr, "/"), addr);
	unsigned char want[16];
	if (inet_pton(AF_INET6, text, want) != 1)
		return false;
	for (int waited = 0;; waited += 20) {
		enum state st = addr_state(want);
		if (st != TENTATIVE || waited >= timeout_ms)
			return st == USABLE;
		nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
	}
}
