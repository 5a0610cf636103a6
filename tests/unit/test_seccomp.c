/* linux.seccomp: every parse error names its field, and compiled filters really act when
 * installed in a forked child (the child reports through its exit status). */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <seccomp.h>

#include "base/error.h"
#include "oci/seccomp.h"

static json_t *load(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	cr_assert_not_null(j, "test JSON does not parse: %s: %s", jerr.text, text);
	return j;
}

static struct seccomp_spec *parse_ok(const char *text)
{
	json_t *j = load(text);
	struct seccomp_spec *s = NULL;
	vs_err_t err = NULL;
	int rc = seccomp_spec_parse(j, "linux.seccomp", &s, &err);
	cr_assert_eq(rc, 0, "parse failed: %s", err ? err->msg : "?");
	cr_assert_not_null(s);
	json_decref(j);
	return s;
}

static void expect_error(const char *text, const char *msg)
{
	json_t *j = load(text);
	struct seccomp_spec *s = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(seccomp_spec_parse(j, "linux.seccomp", &s, &err), -1, "accepted: %s", text);
	cr_assert_null(s);
	cr_assert_not_null(err);
	cr_assert_str_eq(err->msg, msg);
	vs_err_free(&err);
	json_decref(j);
}

static struct seccomp_prog *compile_ok(const char *text)
{
	struct seccomp_spec *s = parse_ok(text);
	struct seccomp_prog *p = NULL;
	vs_err_t err = NULL;
	int rc = seccomp_compile(s, &p, &err);
	cr_assert_eq(rc, 0, "compile failed: %s", err ? err->msg : "?");
	cr_assert_not_null(p);
	cr_assert_gt(seccomp_prog_len(p), 0);
	seccomp_spec_free(s);
	return p;
}

/* Allow lists name sigaltstack: ASan calls it before every noreturn call (_exit here). */

/* Forks; the child installs p (optionally with no_new_privs first) and runs body, whose
 * return value becomes the exit status. Returns the raw wait status. */
static int run_filtered(const struct seccomp_prog *p, bool nnp, int (*body)(void))
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
			_exit(100);
		vs_err_t err = NULL;
		if (seccomp_install(p, NULL, &err) < 0) {
			fprintf(stderr, "install: %s\n", err->msg);
			_exit(101);
		}
		/* _exit: no atexit handlers (LeakSanitizer) under the filter */
		_exit(body());
	}
	int status = 0;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return status;
}

static void expect_exit0(int status)
{
	cr_assert(WIFEXITED(status), "child died by signal %d", WTERMSIG(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child check %d failed", WEXITSTATUS(status));
}

/* ------------------------------------------------------------------ parse errors */

Test(seccomp_parse, absent_means_no_filter)
{
	struct seccomp_spec *s = (void *)1;
	vs_err_t err = NULL;
	cr_assert_eq(seccomp_spec_parse(NULL, "linux.seccomp", &s, &err), 0);
	cr_assert_null(s);
	struct seccomp_prog *p = (void *)1;
	cr_assert_eq(seccomp_compile(NULL, &p, &err), 0);
	cr_assert_null(p);
	cr_assert_eq(seccomp_install(NULL, NULL, &err), 0);
}

Test(seccomp_parse, errors_name_the_field)
{
	expect_error("[]", "linux.seccomp: must be an object");
	expect_error("{}", "linux.seccomp.defaultAction: is required (an action)");
	expect_error("{\"defaultAction\": 5}", "linux.seccomp.defaultAction: must be a string");
	expect_error("{\"defaultAction\": \"SCMP_ACT_FOO\"}",
		     "linux.seccomp.defaultAction: unknown action `SCMP_ACT_FOO`");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"defaultErrnoRet\": 1}",
		     "linux.seccomp.defaultErrnoRet: not allowed with SCMP_ACT_ALLOW (only "
		     "SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno)");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 65536}",
		     "linux.seccomp.defaultErrnoRet: must be an integer from 0 to 65535");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": -1}",
		     "linux.seccomp.defaultErrnoRet: must be an integer from 0 to 65535");
	expect_error("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}",
		     "linux.seccomp.listenerPath: is required with SCMP_ACT_NOTIFY");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/x.sock\"}",
		     "linux.seccomp.listenerPath: no syscall has SCMP_ACT_NOTIFY");
	expect_error("{\"defaultAction\": \"SCMP_ACT_NOTIFY\", \"listenerPath\": \"x.sock\"}",
		     "linux.seccomp.listenerPath: must be an absolute path");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": 1}",
		     "linux.seccomp.listenerPath: must be a string");
}

Test(seccomp_parse, architectures_and_flags)
{
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": \"x86\"}",
		     "linux.seccomp.architectures: must be an array");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		     "[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_Z80\"]}",
		     "linux.seccomp.architectures[1]: unknown architecture `SCMP_ARCH_Z80`");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [7]}",
		     "linux.seccomp.architectures[0]: must be a string");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		     "[\"x86_64\"]}",
		     "linux.seccomp.architectures[0]: unknown architecture `x86_64`");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": "
		     "[\"SECCOMP_FILTER_FLAG_LOG\", \"SECCOMP_FILTER_FLAG_FOO\"]}",
		     "linux.seccomp.flags[1]: unknown flag `SECCOMP_FILTER_FLAG_FOO`");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": "
		     "[\"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV\"]}",
		     "linux.seccomp.flags: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs "
		     "SCMP_ACT_NOTIFY");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": {}}",
		     "linux.seccomp.flags: must be an array");

	/* every runtime-spec arch libseccomp 2.5 knows is accepted */
	struct seccomp_spec *s = parse_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_X86\", "
	    "\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X32\", \"SCMP_ARCH_ARM\", "
	    "\"SCMP_ARCH_AARCH64\", \"SCMP_ARCH_MIPS\", \"SCMP_ARCH_MIPS64\", "
	    "\"SCMP_ARCH_MIPS64N32\", \"SCMP_ARCH_MIPSEL\", \"SCMP_ARCH_MIPSEL64\", "
	    "\"SCMP_ARCH_MIPSEL64N32\", \"SCMP_ARCH_PPC\", \"SCMP_ARCH_PPC64\", "
	    "\"SCMP_ARCH_PPC64LE\", \"SCMP_ARCH_S390\", \"SCMP_ARCH_S390X\", "
	    "\"SCMP_ARCH_PARISC\", \"SCMP_ARCH_PARISC64\", \"SCMP_ARCH_RISCV64\"], "
	    "\"flags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", \"SECCOMP_FILTER_FLAG_LOG\", "
	    "\"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"]}");
	seccomp_spec_free(s);
}

Test(seccomp_parse, loongarch_is_named_as_unsupported)
{
	json_t *j = load("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
			 "[\"SCMP_ARCH_LOONGARCH64\"]}");
	struct seccomp_spec *s = NULL;
	vs_err_t err = NULL;
	if (seccomp_version()->major == 2 && seccomp_version()->minor < 6) {
		cr_assert_eq(seccomp_spec_parse(j, "linux.seccomp", &s, &err), -1);
		cr_assert(strstr(err->msg, "linux.seccomp.architectures[0]: SCMP_ARCH_LOONGARCH64 "
					   "is not supported by this libseccomp (2."),
			  "%s", err->msg);
	} else {
		cr_assert_eq(seccomp_spec_parse(j, "linux.seccomp", &s, &err), 0);
	}
	seccomp_spec_free(s);
	vs_err_free(&err);
	json_decref(j);
}

Test(seccomp_parse, syscall_entries)
{
	const char *pre = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": ";
	char buf[1024];
#define SYSCALLS(x) (snprintf(buf, sizeof(buf), "%s%s}", pre, x), buf)
	expect_error(SYSCALLS("{}"), "linux.seccomp.syscalls: must be an array");
	expect_error(SYSCALLS("[5]"), "linux.seccomp.syscalls[0]: must be an object");
	expect_error(SYSCALLS("[{\"action\": \"SCMP_ACT_ERRNO\"}]"),
		     "linux.seccomp.syscalls[0].names: is required (syscall names)");
	expect_error(SYSCALLS("[{\"names\": \"mkdir\", \"action\": \"SCMP_ACT_ERRNO\"}]"),
		     "linux.seccomp.syscalls[0].names: must be an array");
	expect_error(SYSCALLS("[{\"names\": [], \"action\": \"SCMP_ACT_ERRNO\"}]"),
		     "linux.seccomp.syscalls[0].names: must not be empty");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"}, "
			      "{\"names\": [\"getpid\", 3], \"action\": \"SCMP_ACT_ERRNO\"}]"),
		     "linux.seccomp.syscalls[1].names[1]: must be a string");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"]}]"),
		     "linux.seccomp.syscalls[0].action: is required (an action)");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"}, "
			      "{\"names\": [\"mkdir\"], \"action\": \"ERRNO\"}]"),
		     "linux.seccomp.syscalls[1].action: unknown action `ERRNO`");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_KILL\", "
			      "\"errnoRet\": 1}]"),
		     "linux.seccomp.syscalls[0].errnoRet: not allowed with SCMP_ACT_KILL (only "
		     "SCMP_ACT_ERRNO and SCMP_ACT_TRACE return an errno)");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\", "
			      "\"errnoRet\": \"1\"}]"),
		     "linux.seccomp.syscalls[0].errnoRet: must be an integer");
	expect_error(SYSCALLS("[{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_NOTIFY\"}]"),
		     "linux.seccomp.listenerPath: is required with SCMP_ACT_NOTIFY");
}

Test(seccomp_parse, argument_errors)
{
	const char *pre = "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
			  "[\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": ";
	char buf[1024];
#define ARGS(x) (snprintf(buf, sizeof(buf), "%s%s}]}", pre, x), buf)
	expect_error(ARGS("{}"), "linux.seccomp.syscalls[0].args: must be an array");
	expect_error(ARGS("[1]"), "linux.seccomp.syscalls[0].args[0]: must be an object");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}, "
			  "{\"index\": 6, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[1].index: must be an integer from 0 to 5");
	expect_error(ARGS("[{\"index\": -1, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5");
	expect_error(ARGS("[{\"value\": 1, \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].index: is required (argument number 0-5)");
	expect_error(ARGS("[{\"index\": 0, \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].value: is required (a 64-bit value)");
	expect_error(ARGS("[{\"index\": 0, \"value\": \"8\", \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1.5, \"op\": \"SCMP_CMP_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].value: must be a non-negative integer");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1, \"valueTwo\": -2, \"op\": "
			  "\"SCMP_CMP_MASKED_EQ\"}]"),
		     "linux.seccomp.syscalls[0].args[0].valueTwo: must be a non-negative integer");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1}]"),
		     "linux.seccomp.syscalls[0].args[0].op: is required (an operator)");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_FOO\"}]"),
		     "linux.seccomp.syscalls[0].args[0].op: unknown operator `SCMP_CMP_FOO`");
	expect_error(ARGS("[{\"index\": 0, \"value\": 1, \"op\": 3}]"),
		     "linux.seccomp.syscalls[0].args[0].op: must be a string");
}

Test(seccomp_parse, too_many_comparisons)
{
	/* 65 comparisons in one rule */
	size_t cap = 8192, len = 0;
	char *buf = malloc(cap);
	len +=
	    (size_t)snprintf(buf + len, cap - len,
			     "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
			     "[\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"args\": [");
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"%s{\"index\": 0, \"value\": %d, \"op\": \"SCMP_CMP_EQ\"}",
					i ? "," : "", i);
	snprintf(buf + len, cap - len, "]}]}");
	expect_error(buf, "linux.seccomp.syscalls[0].args: more than 64 comparisons");
	free(buf);
}

Test(seccomp_parse, unknown_syscalls_are_skipped)
{
	struct seccomp_spec *s =
	    parse_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		     "[\"mkdir\", \"no_such_syscall_2099\", \"\", \"chown32\"], \"action\": "
		     "\"SCMP_ACT_ERRNO\"}]}");
	/* chown32 is an x86 (32-bit) syscall libseccomp knows: kept for multi-arch filters */
	cr_assert_eq(seccomp_spec_rule_count(s), 2);
	struct seccomp_prog *p = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(seccomp_compile(s, &p, &err), 0, "%s", err ? err->msg : "");
	seccomp_prog_free(p);
	seccomp_spec_free(s);
}

Test(seccomp_parse, null_means_absent)
{
	struct seccomp_spec *s = parse_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", "
					  "\"architectures\": null, \"syscalls\": null, "
					  "\"flags\": null, \"defaultErrnoRet\": null}");
	cr_assert_eq(seccomp_spec_rule_count(s), 0);
	seccomp_spec_free(s);
}

/* ------------------------------------------------------------------ filters at work */

static int mkdir_gets_1234(void)
{
	if (mkdir("/tmp/vessel-seccomp-test-never", 0700) != -1)
		return 1;
	if (errno != 1234)
		return 2;
	if (getpid() <= 0 || syscall(SYS_getpid) != getpid())
		return 3;
	/* another denied name in the same rule */
	if (rmdir("/tmp") != -1 || errno != 1234)
		return 4;
	return 0;
}

Test(seccomp_filter, errno_ret_on_a_denied_syscall)
{
	struct seccomp_prog *p =
	    compile_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		       "[\"mkdir\", \"mkdirat\", \"rmdir\"], \"action\": \"SCMP_ACT_ERRNO\", "
		       "\"errnoRet\": 1234}]}");
	expect_exit0(run_filtered(p, true, mkdir_gets_1234));
	/* as root without no_new_privs too (CAP_SYS_ADMIN is effective) */
	expect_exit0(run_filtered(p, false, mkdir_gets_1234));
	seccomp_prog_free(p);
}

static int default_errno_allow_list(void)
{
	if (mkdir("/tmp/vessel-seccomp-test-never", 0700) != -1 || errno != EPERM)
		return 1;
	if (syscall(SYS_getppid) <= 0)
		return 2;
	if (syscall(SYS_getpid) <= 0)
		return 3;
	/* not in the allow list: the default errno */
	if (syscall(SYS_getuid) != -1 || errno != EPERM)
		return 4;
	return 0;
}

Test(seccomp_filter, default_errno_with_an_allow_list)
{
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"syscalls\": [{\"names\": [\"getpid\", "
	    "\"getppid\", \"exit\", \"exit_group\", \"write\", \"rt_sigreturn\", "
	    "\"futex\", \"sigaltstack\"], \"action\": \"SCMP_ACT_ALLOW\"}]}");
	expect_exit0(run_filtered(p, true, default_errno_allow_list));
	seccomp_prog_free(p);
}

static int default_errno_ret_38(void)
{
	if (syscall(SYS_getuid) != -1 || errno != ENOSYS)
		return 1;
	return syscall(SYS_getpid) > 0 ? 0 : 2;
}

Test(seccomp_filter, default_errno_ret)
{
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38, \"syscalls\": "
	    "[{\"names\": [\"getpid\", \"exit\", \"exit_group\", \"sigaltstack\"], \"action\": "
	    "\"SCMP_ACT_ALLOW\"}, {\"names\": [\"getppid\"], \"action\": \"SCMP_ACT_ERRNO\", "
	    "\"errnoRet\": 38}]}");
	expect_exit0(run_filtered(p, true, default_errno_ret_38));
	seccomp_prog_free(p);
}

#define PERSONA_DENIED 0x0008 /* PER_LINUX32 */

static int personality_arg_filter(void)
{
	/* 0xffffffff only queries the persona: allowed */
	if (syscall(SYS_personality, 0xffffffffUL) < 0)
		return 1;
	if (syscall(SYS_personality, (unsigned long)PERSONA_DENIED) != -1 || errno != 77)
		return 2;
	if (syscall(SYS_personality, (unsigned long)PER_LINUX) < 0)
		return 3;
	return 0;
}

Test(seccomp_filter, argument_filter)
{
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
	    "[\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 77, \"args\": "
	    "[{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}]}]}");
	expect_exit0(run_filtered(p, true, personality_arg_filter));
	seccomp_prog_free(p);
}

static int repeated_index_is_or(void)
{
	if (syscall(SYS_personality, 0x0008UL) != -1 || errno != 55)
		return 1;
	if (syscall(SYS_personality, 0x0010UL) != -1 || errno != 55)
		return 2;
	if (syscall(SYS_personality, 0xffffffffUL) < 0)
		return 3;
	/* masked: (flags & 0x4000) == 0x4000 -> denied whatever else is set */
	if (syscall(SYS_kill, 0, 0) != 0)
		return 4;
	if (syscall(SYS_setns, -1, 0x4000 | 0x100) != -1 || errno != 66)
		return 5;
	if (syscall(SYS_setns, -1, 0) != -1 || errno != EBADF)
		return 6;
	return 0;
}

Test(seccomp_filter, repeated_index_and_masked_eq)
{
	/* Two comparisons on arg 0 mean "either" (runc's behaviour, Docker's profiles rely on
	 * it); MASKED_EQ takes value as the mask and valueTwo as the expected result. */
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
	    "[\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 55, \"args\": "
	    "[{\"index\": 0, \"value\": 8, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 0, "
	    "\"value\": 16, \"op\": \"SCMP_CMP_EQ\"}]}, {\"names\": [\"setns\"], \"action\": "
	    "\"SCMP_ACT_ERRNO\", \"errnoRet\": 66, \"args\": [{\"index\": 1, \"value\": "
	    "16384, \"valueTwo\": 16384, \"op\": \"SCMP_CMP_MASKED_EQ\"}]}]}");
	expect_exit0(run_filtered(p, true, repeated_index_is_or));
	seccomp_prog_free(p);
}

static int two_args_are_and(void)
{
	/* arg0 == 3 AND arg1 == 4 denied; each alone allowed (EBADF from the kernel) */
	if (syscall(SYS_dup2, 1000, 1001) != -1 || errno != EBADF)
		return 1;
	if (syscall(SYS_dup3, 1000, 1001, 0) != -1 || errno != EBADF)
		return 2;
	if (syscall(SYS_dup3, 1000, 1001, 1) != -1 || errno != EINVAL)
		return 3;
	if (syscall(SYS_dup3, 2000, 1001, 0x80000) != -1 || errno != EBADF)
		return 4;
	if (syscall(SYS_dup3, 1000, 1001, 0x80000) != -1 || errno != 99)
		return 5;
	return 0;
}

Test(seccomp_filter, comparisons_on_different_args_all_must_match)
{
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"dup3\"], "
	    "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 99, \"args\": [{\"index\": 0, "
	    "\"value\": 1000, \"op\": \"SCMP_CMP_EQ\"}, {\"index\": 2, \"value\": 524288, "
	    "\"op\": \"SCMP_CMP_EQ\"}]}]}");
	expect_exit0(run_filtered(p, true, two_args_are_and));
	seccomp_prog_free(p);
}

static int calls_getuid(void)
{
	syscall(SYS_getuid);
	return 0;
}

Test(seccomp_filter, kill_process)
{
	struct seccomp_prog *p =
	    compile_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		       "[\"getuid\"], \"action\": \"SCMP_ACT_KILL_PROCESS\"}]}");
	int status = run_filtered(p, true, calls_getuid);
	cr_assert(WIFSIGNALED(status), "status %#x", status);
	cr_assert_eq(WTERMSIG(status), SIGSYS);
	seccomp_prog_free(p);
}

Test(seccomp_filter, flags_reach_the_kernel)
{
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_TSYNC\", "
	    "\"SECCOMP_FILTER_FLAG_LOG\", \"SECCOMP_FILTER_FLAG_SPEC_ALLOW\"], \"syscalls\": "
	    "[{\"names\": [\"mkdir\", \"rmdir\"], \"action\": \"SCMP_ACT_ERRNO\", "
	    "\"errnoRet\": 1234}]}");
	expect_exit0(run_filtered(p, true, mkdir_gets_1234));
	seccomp_prog_free(p);
}

Test(seccomp_filter, rule_equal_to_default_is_dropped)
{
	/* libseccomp refuses such a rule (EACCES); it would change nothing */
	struct seccomp_prog *p = compile_ok(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"getpid\"], "
	    "\"action\": \"SCMP_ACT_ALLOW\"}, {\"names\": [\"mkdir\", \"rmdir\"], \"action\": "
	    "\"SCMP_ACT_ERRNO\", \"errnoRet\": 1234}]}");
	expect_exit0(run_filtered(p, true, mkdir_gets_1234));
	seccomp_prog_free(p);
}

Test(seccomp_filter, more_architectures_make_a_longer_program)
{
	const char *rule = "\"syscalls\": [{\"names\": [\"mkdir\", \"chown32\", \"socketcall\"], "
			   "\"action\": \"SCMP_ACT_ERRNO\"}]}";
	char one[512], three[512];
	snprintf(one, sizeof(one), "{\"defaultAction\": \"SCMP_ACT_ALLOW\", %s", rule);
	snprintf(three, sizeof(three),
		 "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": "
		 "[\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"], %s",
		 rule);
	struct seccomp_prog *a = compile_ok(one), *b = compile_ok(three);
	cr_assert_gt(seccomp_prog_len(b), seccomp_prog_len(a));
	seccomp_prog_free(a);
	seccomp_prog_free(b);
}

static int uid_1000_with_filter(void)
{
	return mkdir_gets_1234();
}

/* The init's order without noNewPrivileges: caps kept over setuid, then install. */
Test(seccomp_filter, installs_after_setuid_without_no_new_privs)
{
	struct seccomp_prog *p =
	    compile_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": "
		       "[\"mkdir\", \"rmdir\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": "
		       "1234}]}");
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 || setuid(1000) < 0)
			_exit(90);
		struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		if (syscall(SYS_capget, &hdr, d) < 0 || d[0].effective != 0)
			_exit(91); /* setuid cleared the effective set */
		vs_err_t err = NULL;
		if (seccomp_install(p, NULL, &err) < 0) {
			fprintf(stderr, "install: %s\n", err->msg);
			_exit(92);
		}
		/* CAP_SYS_ADMIN was raised for the call only */
		if (syscall(SYS_capget, &hdr, d) < 0 || d[0].effective != 0)
			_exit(93);
		_exit(uid_1000_with_filter());
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	expect_exit0(status);
	seccomp_prog_free(p);
}

Test(seccomp_filter, install_without_sys_admin_or_nnp_is_a_clear_error)
{
	struct seccomp_prog *p = compile_ok("{\"defaultAction\": \"SCMP_ACT_ALLOW\", "
					    "\"syscalls\": [{\"names\": [\"mkdir\"], \"action\": "
					    "\"SCMP_ACT_ERRNO\"}]}");
	int pipefd[2];
	cr_assert_eq(pipe(pipefd), 0);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		close(pipefd[0]);
		if (setuid(1000) < 0) /* no KEEPCAPS: permitted is gone too */
			_exit(90);
		vs_err_t err = NULL;
		if (seccomp_install(p, NULL, &err) == 0)
			_exit(91);
		if (write(pipefd[1], err->msg, strlen(err->msg)) < 0)
			_exit(92);
		_exit(0);
	}
	close(pipefd[1]);
	char msg[256] = {0};
	cr_assert_gt(read(pipefd[0], msg, sizeof(msg) - 1), 0);
	close(pipefd[0]);
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	expect_exit0(status);
	cr_assert_str_eq(msg, "install the seccomp filter: needs noNewPrivileges or "
			      "CAP_SYS_ADMIN: Permission denied");
	seccomp_prog_free(p);
}

/* ------------------------------------------------------------------ big profiles */

/* Every syscall libseccomp knows on x86-64 allowed but mkdir/rmdir, default ERRNO: the
 * shape and size of Docker's default profile (which lists ~350 names). */
static char *allow_all_but_mkdir(size_t *n_names)
{
	size_t cap = 64 * 1024, len = 0;
	char *buf = malloc(cap);
	cr_assert_not_null(buf);
	len +=
	    (size_t)snprintf(buf, cap,
			     "{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": "
			     "1234, \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\", "
			     "\"SCMP_ARCH_X32\"], \"syscalls\": [{\"action\": \"SCMP_ACT_ALLOW\", "
			     "\"names\": [");
	*n_names = 0;
	for (int nr = 0; nr < 512; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
		if (!name)
			continue;
		if (strcmp(name, "mkdir") && strcmp(name, "rmdir") && strcmp(name, "mkdirat"))
			len += (size_t)snprintf(buf + len, cap - len, "%s\"%s\"",
						*n_names ? "," : "", name);
		(*n_names)++;
		free(name);
		cr_assert_lt(len, cap - 64);
	}
	snprintf(buf + len, cap - len, "]}]}");
	return buf;
}

Test(seccomp_filter, docker_sized_profile)
{
	size_t n = 0;
	char *text = allow_all_but_mkdir(&n);
	cr_assert_gt(n, 300);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct seccomp_prog *p = compile_ok(text);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	cr_log_info("%zu syscalls, 3 arches: %zu BPF instructions, parse+compile %.2f ms", n,
		    seccomp_prog_len(p), ms);
	cr_assert_leq(seccomp_prog_len(p), 4096);
	expect_exit0(run_filtered(p, true, mkdir_gets_1234));
	seccomp_prog_free(p);
	free(text);
}

Test(seccomp_filter, too_big_for_the_kernel_is_a_clear_error)
{
	/* 24 entries of 64 distinct 64-bit values for personality's arg 0: ~6000 BPF
	 * instructions, past BPF_MAXINSNS (values differ in both halves so libseccomp cannot
	 * share the comparisons; this shape also compiles fast) */
	size_t cap = 256 * 1024, len = 0;
	char *buf = malloc(cap);
	len +=
	    (size_t)snprintf(buf, cap, "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [");
	for (int entry = 0; entry < 24; entry++) {
		len += (size_t)snprintf(buf + len, cap - len,
					"%s{\"names\": [\"personality\"], \"action\": "
					"\"SCMP_ACT_ERRNO\", \"args\": [",
					entry ? "," : "");
		for (int i = 0; i < 64; i++) {
			unsigned long long k = (unsigned long long)entry * 64 + (unsigned)i;
			len += (size_t)snprintf(buf + len, cap - len,
						"%s{\"index\": 0, \"value\": %llu, \"op\": "
						"\"SCMP_CMP_EQ\"}",
						i ? "," : "", (k + 1) << 32 | k);
		}
		len += (size_t)snprintf(buf + len, cap - len, "]}");
		cr_assert_lt(len, cap - 64);
	}
	snprintf(buf + len, cap - len, "]}");
	struct seccomp_spec *s = parse_ok(buf);
	struct seccomp_prog *p = NULL;
	vs_err_t err = NULL;
	cr_assert_eq(seccomp_compile(s, &p, &err), -1, "%zu instructions", seccomp_prog_len(p));
	cr_assert_null(p);
	cr_assert(strstr(err->msg, "BPF instructions, the kernel takes at most 4096"), "%s",
		  err->msg);
	vs_err_free(&err);
	seccomp_spec_free(s);
	free(buf);
}

/* ------------------------------------------------------------------ features */

static bool has_string(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) if (json_is_string(v) &&
					  !strcmp(json_string_value(v), s)) return true;
	return false;
}

Test(seccomp_features, lists_what_parse_accepts)
{
	json_t *f = seccomp_features_json();
	cr_assert(json_is_true(json_object_get(f, "enabled")));
	json_t *acts = json_object_get(f, "actions");
	cr_assert(has_string(acts, "SCMP_ACT_ERRNO"));
	cr_assert(has_string(acts, "SCMP_ACT_KILL_PROCESS"));
	cr_assert(has_string(acts, "SCMP_ACT_NOTIFY"));
	cr_assert_eq(json_array_size(json_object_get(f, "operators")), 7);
	cr_assert(has_string(json_object_get(f, "archs"), "SCMP_ARCH_X86_64"));
	cr_assert(has_string(json_object_get(f, "archs"), "SCMP_ARCH_AARCH64"));
	cr_assert(has_string(json_object_get(f, "knownFlags"), "SECCOMP_FILTER_FLAG_TSYNC"));
	/* kernel 4.17+ has the first three; 5.19+ WAIT_KILLABLE_RECV as well */
	cr_assert_geq(json_array_size(json_object_get(f, "supportedFlags")), 3);

	/* each listed action and arch parses */
	size_t i;
	json_t *v;
	json_array_foreach(acts, i, v)
	{
		char buf[160];
		/* a notify action needs its listener */
		snprintf(buf, sizeof(buf), "{\"defaultAction\": \"%s\"%s}", json_string_value(v),
			 strcmp(json_string_value(v), "SCMP_ACT_NOTIFY") == 0
			     ? ", \"listenerPath\": \"/run/agent.sock\""
			     : "");
		seccomp_spec_free(parse_ok(buf));
	}
	json_array_foreach(json_object_get(f, "archs"), i, v)
	{
		char buf[128];
		snprintf(buf, sizeof(buf),
			 "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"%s\"]}",
			 json_string_value(v));
		seccomp_spec_free(parse_ok(buf));
	}
	json_decref(f);
}
