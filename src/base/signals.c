#include "base/signals.h"

#include <stdbool.h>

static bool kept(int sig)
{
	switch (sig) {
	case SIGKILL:
	case SIGSTOP:
	case SIGCHLD:
	case SIGWINCH:
	case SIGURG:
	case SIGPIPE:
	case SIGSEGV:
	case SIGBUS:
	case SIGFPE:
	case SIGILL:
	case SIGTRAP:
	case SIGABRT:
	case SIGSYS:
		return true;
	default:
		return false;
	}
}

void vs_forwarded_signals(sigset_t *set)
{
	sigemptyset(set);
	for (int sig = 1; sig <= SIGRTMAX; sig++)
		if (!kept(sig))
			sigaddset(set, sig); /* EINVAL for glibc's own: left out */
}
