/* The pod sandbox's process (Kubernetes' "pause"), built static by the CRI tests and
 * imported into containerd as its sandbox_image, since no registry is reachable.
 *
 * It holds the pod's namespaces open and does nothing else: it sleeps until SIGTERM or
 * SIGINT (the CRI plugin's StopPodSandbox) and exits 0. With pid namespace sharing it is
 * the pod's pid 1, so it also reaps the orphans the app containers leave behind. */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig)
{
	(void)sig;
	_exit(0);
}

static void reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void handle(int sig, void (*fn)(int))
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

int main(void)
{
	handle(SIGTERM, stop);
	handle(SIGINT, stop);
	handle(SIGCHLD, reap);
	for (;;)
		pause();
}
