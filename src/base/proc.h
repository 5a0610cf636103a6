/* A process's identity over time: its pid and its start time (field 22 of /proc/PID/stat,
 * clock ticks since boot), so a record that names a process can tell it from a later one
 * that got the same pid. Containers' state and the VMs' inventory both keep such records. */
#ifndef VESSEL_BASE_PROC_H
#define VESSEL_BASE_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* 0 if the process is gone (or a zombie). */
uint64_t proc_start_time(pid_t pid);
/* The same through proc_fd, a /proc opened earlier (the jailer reads it after its pivot,
 * where the jail has no /proc); AT_FDCWD: the mounted /proc. */
uint64_t proc_start_time_at(int proc_fd, pid_t pid);
/* pid runs and is the process that started at start_time. */
bool proc_alive(pid_t pid, uint64_t start_time);

#endif
