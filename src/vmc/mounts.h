/* config.json's bind mounts for a container in a microVM (docs/vm-containers.md): a
 * directory reaches the guest through a virtio-fs share of its own (one virtiofsd each,
 * read-only on the host for a `ro` mount), a regular file (podman's /etc/hosts,
 * /etc/resolv.conf, /etc/hostname, /run/.containerenv) as a copy sent at create, a bind
 * onto /dev/shm becomes the guest's tmpfs. The guest's runtime then bind-mounts each from
 * where the agent put it. */
#ifndef VESSEL_VMC_MOUNTS_H
#define VESSEL_VMC_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#include "base/error.h"
#include "vmc/proto.h"

/* virtio devices are few (16 a VM, the rootfs and vsock take two) and each share is a
 * virtiofsd process on the host */
#define VMC_MAX_SHARES 8
/* files are copied into the guest's RAM (a tmpfs) at create */
#define VMC_MAX_FILES 16
#define VMC_MAX_FILE_SIZE (256u << 10)
/* Debian's qemu-system-common; every share's server, the rootfs's too */
#define VMC_VIRTIOFSD "/usr/lib/qemu/virtiofsd"
/* where the agent mounts share N (tag bindN) and writes file N, in the guest */
#define VMC_GUEST_SHARES "/run/vessel-binds"
#define VMC_GUEST_FILES "/run/vessel-files"

struct vmc_share {
	char *source; /* the host's directory */
	bool readonly;
};

struct vmc_file {
	char *data; /* NUL-terminated copy (the guest gets len bytes) */
	size_t len;
};

struct vmc_binds {
	struct vmc_share shares[VMC_MAX_SHARES];
	size_t n_shares;
	struct vmc_file files[VMC_MAX_FILES];
	size_t n_files;
};

/* Host: rewrites the bind mounts of config (the guest's copy) in place to the guest's
 * paths and fills b with the shares and files; a relative source is the bundle's. A source
 * that is neither a directory nor a regular file, a file over VMC_MAX_FILE_SIZE, more than
 * VMC_MAX_SHARES directories or VMC_MAX_FILES files: an error naming the mount. */
int vmc_binds_plan(json_t *config, const char *bundle, struct vmc_binds *b, vs_err_t *err);
void vmc_binds_release(struct vmc_binds *b);

/* Host, in the VMM process: virtiofsd serving source on socket (its log in log_dir), a
 * child that dies with the VMM; with readonly it sees source through a read-only bind in a
 * mount namespace of its own, so the guest can't write whatever it asks. */
pid_t vmc_virtiofsd_start(const char *log_dir, const char *socket, const char *source,
			  bool readonly);
/* Host: the path of share i's socket in the sockets directory */
void vmc_share_socket(char *out, size_t n, const char *sockets, size_t i);
/* Host: waits for a virtiofsd (pid) to listen on path: 0, or -1 when it exited or took
 * more than 10 s. */
int vmc_wait_socket(const char *path, pid_t pid);
/* Host: each share's virtiofsd, waiting for its socket; fs_args[i] = "tag=bindI,socket=..."
 * (malloc'd) for the VMM's --fs. -1 with err when one did not start. */
int vmc_binds_start(const struct vmc_binds *b, const char *log_dir, const char *sockets,
		    char **fs_args, vs_err_t *err);
/* Host, after CONFIG: the files' FILE frames, in order. */
int vmc_binds_send(int conn, const struct vmc_binds *b, vs_err_t *err);
/* Host: removes the shares' sockets (delete). */
void vmc_binds_cleanup(const char *sockets);

/* Guest: CONFIG's counts ("shares", "files"), checked against the limits. */
int vmc_binds_counts(json_t *msg, size_t *shares, size_t *files, vs_err_t *err);
/* Guest: mounts the shares and writes the files CONFIG announced, reading their FILE
 * frames from conn. */
int vmc_binds_guest(json_t *msg, int conn, struct vmc_reader *rd, vs_err_t *err);

#endif
