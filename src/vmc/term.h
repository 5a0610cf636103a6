/* The host's end of a VM-isolated process's terminal. The pty the process has is the
 * guest's (the agent relays its master); the host gives the caller a terminal of its own
 * as runc does: over --console-socket a new pty's master (the relay keeps the slave,
 * raw, so bytes pass untouched and the guest's line discipline is the only one), or
 * without one the caller's own terminal, raw while the process runs. A change of the
 * window's size becomes a RESIZE frame. */
#ifndef VESSEL_VMC_TERM_H
#define VESSEL_VMC_TERM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "base/error.h"
#include "vmc/proto.h"

/* A new pty of rows x cols (none if 0), its master sent over the console socket at path:
 * the raw slave, or -1 with err. */
int vmc_term_console(const char *path, unsigned rows, unsigned cols, vs_err_t *err);

/* The caller's terminal on fd made raw until vmc_term_restore (nothing if fd is no tty). */
struct vmc_term_saved {
	int fd;
	bool raw;
	struct termios attrs;
};
void vmc_term_raw(int fd, struct vmc_term_saved *s);
void vmc_term_restore(struct vmc_term_saved *s);

/* The window of the terminal on fd, as last sent. */
struct vmc_term_window {
	int fd; /* -1: no terminal to watch */
	struct winsize last;
};
/* How often a relay looks at the window: there is no SIGWINCH without being the
 * terminal's session, and the VMM's threads keep their signals. */
#define VMC_TERM_WATCH_MS 200
/* true with payload set when the window's size is not the last one sent (now it is). */
bool vmc_term_resized(struct vmc_term_window *w, uint8_t payload[VMC_RESIZE_SIZE]);

#endif
