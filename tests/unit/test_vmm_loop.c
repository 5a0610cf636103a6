/* The main thread's event loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "vmm/loop.h"

struct seen {
	int calls;
	uint32_t events;
	struct loop *loop;
	int other_fd; /* removed by the handler when >= 0 */
};

static void record(void *opaque, uint32_t events)
{
	struct seen *s = opaque;
	s->calls++;
	s->events = events;
	if (s->other_fd >= 0)
		loop_del(s->loop, s->other_fd);
}

Test(loop, runs_the_handler_of_a_ready_fd)
{
	vs_err_t err = NULL;
	struct loop *l = loop_new(&err);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct seen s = {.other_fd = -1};
	cr_assert_eq(loop_add(l, p[0], EPOLLIN, record, &s, &err), 0);
	cr_assert_eq(loop_run_once(l, 0, &err), 0, "nothing ready yet");
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(loop_run_once(l, 1000, &err), 1);
	cr_assert_eq(s.calls, 1);
	cr_assert(s.events & EPOLLIN);
	loop_del(l, p[0]);
	cr_assert_eq(loop_run_once(l, 0, &err), 0, "removed");
	cr_assert_eq(s.calls, 1);
	loop_free(l);
	close(p[0]);
	close(p[1]);
}

Test(loop, a_handler_may_remove_another_ready_one)
{
	vs_err_t err = NULL;
	struct loop *l = loop_new(&err);
	int a[2], b[2];
	cr_assert_eq(pipe(a), 0);
	cr_assert_eq(pipe(b), 0);
	struct seen sa = {.loop = l, .other_fd = b[0]}, sb = {.loop = l, .other_fd = a[0]};
	cr_assert_eq(loop_add(l, a[0], EPOLLIN, record, &sa, &err), 0);
	cr_assert_eq(loop_add(l, b[0], EPOLLIN, record, &sb, &err), 0);
	cr_assert_eq(write(a[1], "x", 1), 1);
	cr_assert_eq(write(b[1], "x", 1), 1);
	cr_assert_eq(loop_run_once(l, 1000, &err), 2);
	cr_assert_eq(sa.calls + sb.calls, 1, "the second handler was removed by the first");
	loop_free(l);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
}

Test(loop, regular_files_cannot_be_watched)
{
	vs_err_t err = NULL;
	struct loop *l = loop_new(&err);
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	struct seen s = {.other_fd = -1};
	cr_assert_eq(loop_add(l, fd, EPOLLIN, record, &s, &err), -1);
	cr_assert_eq(err->errnum, EPERM);
	vs_err_free(&err);
	loop_free(l);
	close(fd);
}
