/* Options that come before the command (runc's global flags). */
#ifndef VESSEL_BASE_GLOBALS_H
#define VESSEL_BASE_GLOBALS_H

#include <stdbool.h>

struct vs_globals {
	const char *root; /* state directory: --root, else rootless_state_root() */
	const char *log;  /* --log FILE or NULL */
	bool log_json;	  /* --log-format json */
	bool debug;
	bool systemd_cgroup;
	bool isolation_vm; /* invoked as vessel-vm: every container in a microVM */
};

#endif
