#include "oci/oci.h"
#define STUB(n) int n(const struct vs_globals *g, int argc, char **argv, vs_err_t *err) { (void)g; (void)argc; (void)argv; return vs_err(err, 0, #n ": not implemented"); }
STUB(oci_cmd_create) STUB(oci_cmd_start) STUB(oci_cmd_run) STUB(oci_cmd_state) STUB(oci_cmd_kill)
STUB(oci_cmd_delete) STUB(oci_cmd_list) STUB(oci_cmd_spec) STUB(oci_cmd_features)
