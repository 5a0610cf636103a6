#include "base/proc.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t proc_start_time(pid_t pid)
{
	return proc_start_time_at(AT_FDCWD, pid);
}

uint64_t proc_start_time_at(int proc_fd, pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), proc_fd == AT_FDCWD ? "/proc/%d/stat" : "%d/stat", pid);
	int fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: count fields after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0;
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

bool proc_alive(pid_t pid, uint64_t start_time)
{
	if (pid <= 0)
		return false;
	uint64_t now = proc_start_time(pid);
	return now != 0 && now == start_time;
}
