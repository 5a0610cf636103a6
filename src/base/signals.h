/* The signals a runtime's `run` and `exec` pass on to the container's process, one list
 * for the host runtime and for containers in microVMs. */
#ifndef VESSEL_BASE_SIGNALS_H
#define VESSEL_BASE_SIGNALS_H

#include <signal.h>

/* As runc: every signal a process can catch, real-time ones included, but SIGCHLD (the
 * runtime's own), SIGWINCH (a terminal's resize, which the runtime relays as such),
 * SIGURG and SIGPIPE (ours, about our own sockets and pipes) and the synchronous fault
 * signals (SEGV, BUS, FPE, ILL, TRAP, ABRT, SYS: raised by our own code, never to be
 * blocked). glibc's internal real-time signals are left out by sigaddset itself. */
void vs_forwarded_signals(sigset_t *set);

#endif
