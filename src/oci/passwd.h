/* /etc/passwd of a container's rootfs, read for one thing: the home directory runc and
 * crun give HOME when process.env has none. Pure: text in, answer out, so it is
 * unit-tested and fuzzed apart from any file. */
#ifndef VESSEL_OCI_PASSWD_H
#define VESSEL_OCI_PASSWD_H

#include <stddef.h>
#include <stdint.h>

/* Finds the first entry of uid in text (len bytes, need not end in NUL) and copies its
 * home directory, NUL-terminated, into home. Returns 1 when found, 0 when no entry of
 * uid has a home that fits in size (malformed lines are skipped, as glibc does). */
int passwd_home(const char *text, size_t len, uint32_t uid, char *home, size_t size);

#endif
