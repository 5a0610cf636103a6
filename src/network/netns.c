/* Network namespaces kept alive by a bind mount of nsfs (what `ip netns add` does),
 * under STORE/run/netns so that the store holds all of vessel's state; their lo up. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "network/netconf.h"
#include "network/network.h"

int network_netns_create(const char *store, const char *container_id, char *path, size_t len,
			 vs_err_t *err)
{
	char dir[4096];
	netconf_path(dir, sizeof(dir), store, "run/netns", NULL);
	if (!*container_id || strchr(container_id, '/') || container_id[0] == '.')
		return vs_err(err, 0, "netns: `%s` is not a container id", container_id);
	if (vs_mkdir_p(dir, 0700, err) < 0)
		return -1;
	if ((size_t)snprintf(path, len, "%s/%s", dir, container_id) >= len)
		return vs_err(err, ENAMETOOLONG, "netns of %s", container_id);
	int fd = open(path, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0444);
	if (fd < 0)
		return vs_err(err, errno, "netns: creating %s", path);
	close(fd);
	/* a child unshares so that the caller keeps its own namespace; it sets lo up while
	 * it is inside, which neither the runtime (given a netns) nor a CNI chain does, so
	 * that a server on 127.0.0.1 answers inside (runc's loopback) */
	pid_t pid = fork();
	if (pid < 0) {
		unlink(path);
		return vs_err(err, errno, "netns: fork");
	}
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct ifreq ifr = {.ifr_name = "lo"};
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
			_exit(3);
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			_exit(3);
		if (mount("/proc/self/ns/net", path, NULL, MS_BIND, NULL) < 0)
			_exit(2);
		_exit(0);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			break;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		static const char *const step[] = {"", "unshare", "bind mount", "setting lo up"};
		int code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
		unlink(path);
		return vs_err(err, 0, "netns: %s in %s failed",
			      code >= 1 && code <= 3 ? step[code] : "its child", path);
	}
	return 0;
}

int network_netns_remove(const char *path, vs_err_t *err)
{
	if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT)
		return vs_err(err, errno, "netns: unmounting %s", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return vs_err(err, errno, "netns: removing %s", path);
	return 0;
}
