#include "oci/rootless.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"

/* uid 0 here is the host's root only when the first line of uid_map maps 0 to 0 */
static bool host_root_mapped(void)
{
	cleanup_free char *map = NULL;
	if (vs_read_file("/proc/self/uid_map", 4096, &map, NULL, NULL) < 0)
		return true; /* no /proc: nothing says we are in a user namespace */
	unsigned long inside, outside;
	return sscanf(map, "%lu %lu", &inside, &outside) == 2 && inside == 0 && outside == 0;
}

bool rootless(void)
{
	static int known = -1;
	if (known < 0)
		known = geteuid() != 0 || !host_root_mapped();
	return known;
}

int rootless_state_root(char **out, vs_err_t *err)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	/* podman's user namespace: root there owns the user's runtime directory, which is
	 * where runc's rule also puts the state */
	bool honour = xdg && *xdg && rootless() && stat(xdg, &st) == 0 && st.st_uid == geteuid();
	if (!honour && geteuid() != 0)
		return vs_err(err, 0,
			      "running as uid %u: the state root is $XDG_RUNTIME_DIR/vessel, "
			      "and XDG_RUNTIME_DIR is %s: set it, or give --root DIR",
			      (unsigned)geteuid(),
			      !xdg || !*xdg ? "not set" : "not a directory of ours");
	if (asprintf(out, "%s/vessel", honour ? xdg : "/run") < 0)
		return vs_err(err, ENOMEM, "state root");
	return 0;
}
