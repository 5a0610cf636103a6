/* The runtime <-> container init handshake over a SOCK_SEQPACKET pair.
 * One message is one packet: a type byte and, for errors, the text. */
#ifndef VESSEL_OCI_SYNC_H
#define VESSEL_OCI_SYNC_H

#include "base/error.h"

enum sync_type {
	SYNC_GO = 'G',	       /* runtime -> init: id maps written, start the setup */
	SYNC_CGROUP = 'C',     /* runtime -> init: joined to the container's cgroup */
	SYNC_HOOKS = 'H',      /* init -> runtime: rootfs mounted, run prestart/createRuntime */
	SYNC_HOOKS_DONE = 'D', /* runtime -> init */
	SYNC_READY = 'R',      /* init -> runtime: set up, waiting for start */
	SYNC_COMMIT = 'K',     /* runtime -> init: create has finished, the init may outlive us */
	SYNC_START = 'S',      /* runtime -> init (run: no exec fifo) */
	SYNC_SECCOMP = 'F',    /* child -> runtime: the seccomp notify fd rides along */
	SYNC_ERROR = 'E',      /* init -> runtime: text follows */
};

int sync_send(int fd, enum sync_type type, vs_err_t *err);
/* Sends an error's text; never fails (the init is about to exit anyway). */
void sync_send_error(int fd, const char *msg);
/* Receives one message and checks its type. An error message from the init becomes
 * *err with its text; EOF is "the container init exited during setup". */
int sync_expect(int fd, enum sync_type type, vs_err_t *err);

/* One message carrying fd (SCM_RIGHTS), and its receipt: *fd is ours then. */
int sync_send_fd(int sock, enum sync_type type, int fd, vs_err_t *err);
int sync_expect_fd(int sock, enum sync_type type, int *fd, vs_err_t *err);
/* Makes the calling init die with the runtime at the other end of fd (SIGKILL when the
 * thread that cloned it exits), and fails if the runtime is gone already: it may have
 * died before the signal was armed. A change of credentials disarms it (setuid, and
 * setresuid in a user namespace): call again after one. */
int sync_die_with_runtime(int fd, vs_err_t *err);
/* Disarms it: after this, the init only notices the runtime's end on the socket. */
void sync_outlive_runtime(void);

/* After a failure of ours: if the init already reported why it failed (its message is
 * queued on the socket), that cause replaces *err, which only describes the symptom. */
void sync_prefer_init_error(int fd, vs_err_t *err);

#endif
