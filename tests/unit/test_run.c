/* vs_run: the helper runner OCI hooks and CNI plugins share. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "base/run.h"

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

Test(run, stdin_reaches_stdout_and_status_is_kept)
{
	char *argv[] = {"/bin/sh", "-c", "cat; exit 3", NULL};
	struct vs_run r = {.path = "/bin/sh",
			   .argv = argv,
			   .in = "hello",
			   .in_len = 5,
			   .timeout_s = 10,
			   .max_out = 100};
	struct vs_run_result res;
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 3);
	cr_assert_str_eq(res.out, "hello");
	cr_assert_eq(res.out_len, 5);
	cr_assert(!res.timed_out && !res.too_big);
	free(res.out);
}

Test(run, environment_is_only_what_is_given)
{
	char *argv[] = {"/bin/sh", "-c", "echo \"[$FOO][$HOME]\"", NULL};
	char *envp[] = {"FOO=bar", NULL};
	struct vs_run r = {.path = "/bin/sh", .argv = argv, .envp = envp, .max_out = 100};
	struct vs_run_result res;
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert_str_eq(res.out, "[bar][]\n");
	free(res.out);
}

Test(run, a_program_that_never_reads_its_stdin_is_killed_at_the_deadline)
{
	size_t n = 1 << 20; /* far more than a pipe holds */
	char *big = calloc(1, n);
	char *argv[] = {"/bin/sleep", "30", NULL};
	struct vs_run r = {
	    .path = "/bin/sleep", .argv = argv, .in = big, .in_len = n, .timeout_s = 1};
	struct vs_run_result res;
	double t0 = seconds();
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert(res.timed_out);
	cr_assert(WIFSIGNALED(res.status) && WTERMSIG(res.status) == SIGKILL);
	cr_assert_lt(seconds() - t0, 10.0);
	free(big);
}

Test(run, the_deadline_holds_after_the_pipes_close)
{
	char *argv[] = {"/bin/sh", "-c", "exec >/dev/null </dev/null 2>&1; exec sleep 30", NULL};
	struct vs_run r = {.path = "/bin/sh", .argv = argv, .timeout_s = 1, .max_out = 100};
	struct vs_run_result res;
	double t0 = seconds();
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert(res.timed_out);
	cr_assert_lt(seconds() - t0, 10.0);
	free(res.out);
}

Test(run, output_past_the_limit_is_cut_and_said)
{
	char *argv[] = {"/bin/sh", "-c", "exec yes 2>/dev/null", NULL};
	struct vs_run r = {.path = "/bin/sh", .argv = argv, .timeout_s = 10, .max_out = 4096};
	struct vs_run_result res;
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert(res.too_big);
	cr_assert_leq(res.out_len, 4096);
	free(res.out);
}

Test(run, a_missing_program_exits_with_the_exec_failed_status)
{
	struct vs_run r = {.path = "/nonexistent/prog", .max_out = 10};
	struct vs_run_result res;
	cr_assert_eq(vs_run(&r, &res, NULL), 0);
	cr_assert(WIFEXITED(res.status) && WEXITSTATUS(res.status) == VS_RUN_EXEC_FAILED);
	cr_assert_str_eq(res.out, "");
	free(res.out);
}
