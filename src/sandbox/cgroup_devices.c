/* Device access rules on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program, built as an
 * instruction array and loaded and attached with the raw bpf(2) syscall (no libbpf).
 *
 * Like v1 (cgroup_devices_v1.c) it starts from "deny everything" and applies the rules in
 * order (runc's model); the runtime appends the devices every container needs after the
 * config's own rules. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "sandbox/cgroup_internal.h"

/* --- the v2 program --- */

#define INSN(c, d, s, o, i)                                                                        \
	((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})
#define LDX_W(dst, src, off) INSN(BPF_LDX | BPF_W | BPF_MEM, dst, src, off, 0)
#define MOV_REG(dst, src) INSN(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOV_IMM(dst, imm) INSN(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define AND_IMM(dst, imm) INSN(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define RSH_IMM(dst, imm) INSN(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define JNE_IMM(dst, imm) INSN(BPF_JMP | BPF_JNE | BPF_K, dst, 0, 0, imm) /* .off set later */
#define JEQ_IMM(dst, imm) INSN(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, 0, imm)
#define EXIT INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* Registers: r1 = struct bpf_cgroup_dev_ctx *, r3 = device type, r4 = requested access,
 * r5 = major, r6 = minor. */
enum { R0, R1, R2, R3, R4, R5, R6 };

int cg_dev_bpf_build(const struct cg_dev_rule *rules, size_t n, struct bpf_insn **insns,
		     size_t *count, vs_err_t *err)
{
	/* prologue 7 + at most 8 per rule + epilogue 2 */
	if (n > 4096)
		return vs_err(err, 0, "too many device rules (%zu, at most 4096)", n);
	struct bpf_insn *p = calloc(7 + 8 * n + 2, sizeof(*p));
	if (!p)
		return vs_err(err, ENOMEM, "device program");
	size_t k = 0;
	p[k++] = LDX_W(R2, R1, 0); /* access_type: access << 16 | type */
	p[k++] = MOV_REG(R3, R2);
	p[k++] = AND_IMM(R3, 0xffff);
	p[k++] = RSH_IMM(R2, 16);
	p[k++] = MOV_REG(R4, R2);
	p[k++] = LDX_W(R5, R1, 4);
	p[k++] = LDX_W(R6, R1, 8);
	/* last match wins: test the rules from the last one back */
	bool catch_all = false;
	for (size_t i = n; i-- > 0 && !catch_all;) {
		const struct cg_dev_rule *r = &rules[i];
		size_t start = k;
		/* a rule for every device and access ends the program: the verifier refuses
		 * the unreachable code that would follow it */
		catch_all =
		    r->type == 'a' && r->major < 0 && r->minor < 0 && r->access == CG_ACC_ALL;
		if (r->type != 'a')
			p[k++] =
			    JNE_IMM(R3, r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR);
		if (r->allow && r->access != CG_ACC_ALL) {
			/* an allow rule covers a request only if it grants every bit asked */
			p[k++] = MOV_REG(R0, R4);
			p[k++] = AND_IMM(R0, (int32_t)(~r->access & CG_ACC_ALL));
			p[k++] = JNE_IMM(R0, 0);
		} else if (!r->allow && r->access != CG_ACC_ALL) {
			/* a deny rule refuses a request asking any bit it names */
			p[k++] = MOV_REG(R0, R4);
			p[k++] = AND_IMM(R0, (int32_t)r->access);
			p[k++] = JEQ_IMM(R0, 0);
		}
		if (r->major >= 0)
			p[k++] = JNE_IMM(R5, (int32_t)r->major);
		if (r->minor >= 0)
			p[k++] = JNE_IMM(R6, (int32_t)r->minor);
		p[k++] = MOV_IMM(R0, r->allow ? 1 : 0);
		p[k++] = EXIT;
		/* every conditional jump of the block skips to the next block */
		for (size_t j = start; j < k; j++)
			if (BPF_CLASS(p[j].code) == BPF_JMP && BPF_OP(p[j].code) != BPF_EXIT)
				p[j].off = (int16_t)(k - (j + 1));
	}
	if (!catch_all) {
		p[k++] = MOV_IMM(R0, 0);
		p[k++] = EXIT;
	}
	*insns = p;
	*count = k;
	return 0;
}

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int prog_load(const struct bpf_insn *insns, size_t count, vs_err_t *err)
{
	static char log[16384];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = (uint32_t)count;
	attr.license = (uint64_t)(uintptr_t) "Apache";
	int fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	/* again with the verifier's log, which says why */
	int saved = errno;
	log[0] = '\0';
	attr.log_buf = (uint64_t)(uintptr_t)log;
	attr.log_size = sizeof(log);
	attr.log_level = 1;
	fd = sys_bpf(BPF_PROG_LOAD, &attr);
	if (fd >= 0)
		return fd;
	vs_debug("cgroup: device program verifier log: %s", log);
	return vs_err(err, saved, "load the device access BPF program");
}

int cg_devices_v2_apply(const char *dir, const struct cg_dev_rule *rules, size_t n, vs_err_t *err)
{
	cleanup_free struct bpf_insn *insns = NULL;
	size_t count;
	if (cg_dev_bpf_build(rules, n, &insns, &count, err) < 0)
		return -1;
	cleanup_close int prog = prog_load(insns, count, err);
	if (prog < 0)
		return -1;
	cleanup_close int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return vs_err(err, errno, "open `%s`", dir);

	uint32_t old_ids[64];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)dirfd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)old_ids;
	attr.query.prog_cnt = ARRAY_SIZE(old_ids);
	if (sys_bpf(BPF_PROG_QUERY, &attr) < 0)
		return vs_err(err, errno, "query the device programs of `%s`", dir);
	uint32_t n_old = attr.query.prog_cnt;
	/* programs attached by someone else without ALLOW_MULTI can only be replaced in
	 * their own mode */
	uint32_t flags = n_old && !(attr.query.attach_flags & BPF_F_ALLOW_MULTI)
			     ? attr.query.attach_flags
			     : BPF_F_ALLOW_MULTI;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = (uint32_t)dirfd;
	attr.attach_bpf_fd = (uint32_t)prog;
	attr.attach_type = BPF_CGROUP_DEVICE;
	attr.attach_flags = flags;
	if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0)
		return vs_err(err, errno, "attach the device program to `%s`", dir);
	if (flags != BPF_F_ALLOW_MULTI)
		return 0; /* attaching replaced the old program */

	/* the new program is in place: now the old ones can go */
	for (uint32_t i = 0; i < n_old; i++) {
		memset(&attr, 0, sizeof(attr));
		attr.prog_id = old_ids[i];
		cleanup_close int old = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
		if (old < 0) {
			if (errno == ENOENT)
				continue;
			return vs_err(err, errno, "find device program %u", old_ids[i]);
		}
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)dirfd;
		attr.attach_bpf_fd = (uint32_t)old;
		attr.attach_type = BPF_CGROUP_DEVICE;
		if (sys_bpf(BPF_PROG_DETACH, &attr) < 0 && errno != ENOENT)
			return vs_err(err, errno, "detach the old device program from `%s`", dir);
	}
	return 0;
}
