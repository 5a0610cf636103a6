/* The microVM monitor's door: `vessel vm ...`. */
#ifndef VESSEL_VMM_VMM_H
#define VESSEL_VMM_VMM_H

#include "base/error.h"
#include "base/globals.h"

/* argv[0] is "vm". Returns the process exit status, or -1 with err set. */
int vmm_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

#endif
