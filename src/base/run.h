/* Runs a helper program (an OCI hook, a CNI plugin): bytes on its stdin, its stdout
 * kept if asked, killed at a deadline. */
#ifndef VESSEL_BASE_RUN_H
#define VESSEL_BASE_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

/* The exit status a child reports when execve itself failed. */
#define VS_RUN_EXEC_FAILED 127

struct vs_run {
	const char *path;
	char *const *argv; /* NULL: { path } */
	char *const *envp; /* NULL: an empty environment */
	const char *in;	   /* written to its stdin, which is then closed */
	size_t in_len;
	int timeout_s;	/* 0: no deadline */
	size_t max_out; /* 0: stdout is inherited; else kept, up to this many bytes */
};

struct vs_run_result {
	int status; /* as waitpid reports it */
	bool timed_out, too_big;
	char *out; /* malloc'd, NUL-terminated, when max_out was given */
	size_t out_len;
};

/* -1 only when the program could not be started or waited for; a program that ran
 * and failed is 0 with the reason in *res. */
int vs_run(const struct vs_run *r, struct vs_run_result *res, vs_err_t *err);

#endif
