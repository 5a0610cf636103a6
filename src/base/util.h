/* Small helpers every area shares: cleanup attributes, fd and file I/O. */
#ifndef VESSEL_BASE_UTIL_H
#define VESSEL_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"

void vs_freep(void *p);
void vs_closep(int *fd);
#define cleanup_free __attribute__((cleanup(vs_freep)))
#define cleanup_close __attribute__((cleanup(vs_closep)))

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Hands ownership out of a cleanup variable. */
#define steal_ptr(p)                                                                               \
	({                                                                                         \
		__typeof__(p) _tmp = (p);                                                          \
		(p) = NULL;                                                                        \
		_tmp;                                                                              \
	})
#define steal_fd(fd)                                                                               \
	({                                                                                         \
		int _tmp = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_tmp;                                                                              \
	})

/* Writes all of buf, retrying on EINTR and short writes. */
int vs_write_all(int fd, const void *buf, size_t len, vs_err_t *err);
/* One sendmsg of buf (at least one byte) carrying fd as SCM_RIGHTS, retried on EINTR,
 * without SIGPIPE: the bytes sent, or -1 with errno. */
ssize_t vs_send_fd(int sock, const void *buf, size_t len, int fd);
/* One recvmsg into buf, retried on EINTR: the bytes read (0 at EOF) or -1 with errno.
 * *fd is the one fd that came with them (close-on-exec) or -1; a message with more than
 * one closes them all and fails with EPROTO, as a peer that sends more is not ours. */
ssize_t vs_recv_fd(int sock, void *buf, size_t len, int *fd);
/* Writes a whole small file (cgroup knobs, uid_map, ...), at dirfd if not AT_FDCWD. */
int vs_write_file_at(int dirfd, const char *path, const char *data, size_t len, vs_err_t *err);
int vs_write_file(const char *path, const char *data, size_t len, vs_err_t *err);
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
int vs_read_file_at(int dirfd, const char *path, size_t max, char **out, size_t *len,
		    vs_err_t *err);
int vs_read_file(const char *path, size_t max, char **out, size_t *len, vs_err_t *err);

/* rm -rf of name in dirfd (AT_FDCWD: a path): never follows a symlink and never
 * descends into another file system (a mount point under it is an EBUSY error naming it,
 * so an overlay still mounted is not emptied through). ENOENT is success. */
int vs_remove_tree(int dirfd, const char *name, vs_err_t *err);

/* mkdir -p, mode for each created component. */
int vs_mkdir_p(const char *path, mode_t mode, vs_err_t *err);

/* Parses "123", "64K", "512M", "2G" (powers of 1024). Returns -1 on junk/overflow. */
/* The directory of the vessel binary: of $VESSEL_EXE (main sets it before the sealed
 * re-exec, whose /proc/self/exe names no path), else of /proc/self/exe. Malloc'd. */
char *vs_exe_dir(void);

int vs_parse_size(const char *s, uint64_t *out);

/* Is fd (or the whole line) free of a NUL-terminated match? small helpers */
bool vs_str_has_prefix(const char *s, const char *prefix);

#endif
