/* The engine: `vessel container ...`, containers made from the image store's images and
 * run by vessel's own OCI runtime (docs/engine.md). A CLI, not a daemon: each
 * container's record lives under STORE/containers/ID and its status is derived from the
 * runtime's state. */
#ifndef VESSEL_ENGINE_ENGINE_H
#define VESSEL_ENGINE_ENGINE_H

#include "base/error.h"
#include "base/globals.h"

/* argv[0] is "container". Returns the exit status, or -1 with err set. */
int engine_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

#endif
