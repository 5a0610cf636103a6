/* The microVM's initramfs: the default guest image's, plus a second newc archive holding
 * the agent (vessel itself) at /vessel; Linux unpacks concatenated archives in turn. */
#ifndef VESSEL_VMC_INITRD_H
#define VESSEL_VMC_INITRD_H

#include "base/error.h"

int vmc_initrd_write(const char *base, const char *agent, const char *out, vs_err_t *err);
/* The static vessel the guest runs: $VESSEL_AGENT, else <dir of vessel>/../build/vessel,
 * else this binary. */
char *vmc_agent_path(void);

#endif
