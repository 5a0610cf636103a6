/* Runs one CNI plugin: the CNI_* environment, its config on stdin, its stdout kept,
 * a timeout. */
#ifndef VESSEL_NETWORK_PLUGIN_H
#define VESSEL_NETWORK_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "base/error.h"

#define CNI_PLUGIN_DIR "/usr/lib/cni"
#define CNI_TIMEOUT_S 30

struct cni_call {
	const char *command; /* ADD, DEL, CHECK */
	const char *container_id, *netns, *ifname;
	const char *args; /* CNI_ARGS or NULL */
};

/* Runs plugin type with config on stdin. On success *out is its stdout (malloc'd,
 * NUL-terminated). A failure is one line naming the plugin and, where the plugin
 * printed a CNI error, its msg. */
int cni_plugin_run(const char *type, const struct cni_call *c, const char *config, char **out,
		   size_t *out_len, vs_err_t *err);

/* A plugin of a chain that has nothing to do for one attachment: portmap without ports,
 * bandwidth without a rate (neither asked nor in its config), tuning with no setting. The
 * chain leaves it out of ADD, CHECK and DEL alike (DEL decides from the same kept ports
 * and rate): each is a Go binary that costs an exec and its start-up, twice per container,
 * for nothing (issue 12: a networked start). Any other plugin, or one of these with a
 * setting, runs. */
bool cni_plugin_idle(json_t *plugin, size_t nports, uint64_t rate);

#endif
