/* The OCI runtime's door: runc's commands. Each returns the process exit
 * status (>= 0) or -1 with err set. argv[0] is the command name. */
#ifndef VESSEL_OCI_OCI_H
#define VESSEL_OCI_OCI_H

#include "base/error.h"
#include "base/globals.h"

typedef int (*oci_command_fn)(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

int oci_cmd_create(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_start(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_run(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_state(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_kill(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_delete(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_list(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_spec(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_exec(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_ps(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_pause(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_resume(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_update(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_events(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);
int oci_cmd_features(const struct vs_globals *g, int argc, char **argv, vs_err_t *err);

#endif
