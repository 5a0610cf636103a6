/* `vessel image bundle`'s config.json. */
#ifndef VESSEL_IMAGE_BUNDLE_H
#define VESSEL_IMAGE_BUNDLE_H

#include <jansson.h>

#include "base/error.h"
#include "base/globals.h"
#include "image/store.h"

/* Writes DIR/config.json for the image record rec: Entrypoint + Cmd as process.args,
 * Env, WorkingDir, a numeric User (uid[:gid]), terminal false, root "rootfs" writable. */
int bundle_write_config(const struct vs_globals *g, struct store *s, json_t *rec, const char *dir,
			vs_err_t *err);

#endif
