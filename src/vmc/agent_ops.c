/* ps, pause, resume, events --stats, update in the guest: the container's processes and
 * cgroup exist only there, so the guest's runtime does what runc would on a host, and the
 * agent hands its stdout back. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "base/util.h"
#include "vmc/agent_ops.h"
#include "vmc/ops_msg.h"

#define RESOURCES_FILE "/run/vessel-update.json"

static const oci_command_fn commands[] = {
    [VMC_OCI_PS] = oci_cmd_ps,	       [VMC_OCI_PAUSE] = oci_cmd_pause,
    [VMC_OCI_RESUME] = oci_cmd_resume, [VMC_OCI_STATS] = oci_cmd_events,
    [VMC_OCI_UPDATE] = oci_cmd_update,
};

/* The command's stdout: a memfd, so output of any size can't block it the way a pipe
 * nobody reads yet would. */
static int run_captured(const struct vmc_oci_msg *m, const char *id, int out, vs_err_t *err)
{
	int argc;
	char **argv = vmc_oci_argv(m, id, RESOURCES_FILE, &argc, err);
	if (!argv)
		return -1;
	fflush(stdout);
	int saved = fcntl(1, F_DUPFD_CLOEXEC, 3);
	dup2(out, 1);
	int rc = vmc_agent_runtime(argc, argv, commands[m->cmd], err);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, 1);
		close(saved);
	}
	free(argv);
	return rc;
}

static int send_output(int fd, int out, vs_err_t *err)
{
	off_t size = lseek(out, 0, SEEK_END);
	if (size < 0)
		return vs_err(err, errno, "OCI: the command's output");
	if (size == 0)
		return 0;
	if (size > VMC_MAX_PAYLOAD)
		return vs_err(err, 0, "OCI: the command wrote %lld bytes (at most %u)",
			      (long long)size, VMC_MAX_PAYLOAD);
	char *buf = malloc((size_t)size);
	if (!buf)
		return vs_err(err, ENOMEM, "OCI: the command's output");
	int rc = -1;
	if (pread(out, buf, (size_t)size, 0) != size)
		vs_err(err, errno, "OCI: read the command's output");
	else
		rc = vmc_send(fd, VMC_OUTPUT, buf, (uint32_t)size, err);
	free(buf);
	return rc;
}

void vmc_agent_oci(int fd, const char *id, const struct vmc_frame *f)
{
	vs_err_t err = NULL;
	struct vmc_oci_msg m;
	int out = -1;
	if (vmc_oci_msg_parse(f->payload, f->len, &m, &err) < 0)
		goto answer;
	struct sysinfo si;
	if (sysinfo(&si) == 0 &&
	    vmc_oci_check_memory(&m, (uint64_t)si.totalram * si.mem_unit, &err) < 0)
		goto answer;
	if (m.resources &&
	    vs_write_file(RESOURCES_FILE, m.resources, strlen(m.resources), &err) < 0)
		goto answer;
	if ((out = memfd_create("vessel-oci-output", MFD_CLOEXEC)) < 0) {
		vs_err(&err, errno, "OCI: memfd");
		goto answer;
	}
	if (run_captured(&m, id, out, &err) == 0)
		send_output(fd, out, &err);
answer:
	if (m.resources)
		unlink(RESOURCES_FILE);
	vmc_oci_msg_release(&m);
	if (out >= 0)
		close(out);
	vs_err_t e = NULL;
	if (err)
		vmc_send(fd, VMC_ERROR, err->msg, (uint32_t)strlen(err->msg), &e);
	else
		vmc_send(fd, VMC_OK, NULL, 0, &e);
	vs_err_free(&e);
	vs_err_free(&err);
}
