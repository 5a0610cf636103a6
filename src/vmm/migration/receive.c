/* The destination's side: one source, one VM. Its HELLO is checked (vCPUs, RAM, the CPU
 * the guest was given against what this host's KVM gives) before any memory moves; then
 * the VM is built as a snapshot's load builds it, with anonymous RAM that the MEMORY
 * messages fill (or, local, on the memfd of the source's RAM that RAM_FD passed), and
 * STATE + COMPLETE restore it. The source keeps its VM until this side
 * says ACK to COMPLETE; until then any failure here is an ERROR to the source and an
 * error out of here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "vmm/boot/cpu.h"
#include "vmm/builder.h"
#include "vmm/config.h"
#include "vmm/devices/vmgenid.h"
#include "vmm/migration/migration.h"
#include "vmm/snapshot/cpu_compat.h"
#include "vmm/snapshot/snapshot.h"
#include "vmm/vm.h"

struct receiver {
	const struct mig_recv_opts *o;
	int fd;
	struct vm *vm;
	json_t *doc;
	uint8_t *state;
	size_t state_len;
	uint64_t pages;
	int ram_fd; /* a local migration's: the source's RAM (-1: RAM comes as MEMORY) */
	uint64_t ram_fd_size;
};

static int check_cpu(const struct mig_hello *h, vs_err_t *err)
{
	int kvm_fd;
	if (vm_open_kvm(&kvm_fd, err) < 0)
		return -1;
	struct kvm_cpuid2 *sup = cpu_supported_cpuid(kvm_fd, err);
	close(kvm_fd);
	if (!sup)
		return -1;
	struct kvm_cpuid_entry2 ours[MIG_CPUID_MAX];
	int n = cpuid_build(sup->entries, sup->nent, 0, h->ncpus, ours, MIG_CPUID_MAX);
	free(sup);
	if (n <= 0)
		return vs_err(err, 0, "this host's CPUID table");
	/* the payload's bytes, aligned (the parser bounded ncpuid by MIG_CPUID_MAX) */
	struct kvm_cpuid_entry2 theirs[MIG_CPUID_MAX];
	memcpy(theirs, h->cpuid, (size_t)h->ncpuid * sizeof(theirs[0]));
	/* the same check as a snapshot's load (snapshot/cpu_compat.h) */
	bool model_differs = false;
	if (cpu_compat_check(theirs, h->ncpuid, ours, (size_t)n, &model_differs, err) < 0)
		return vs_err_wrap(err, "the source's guest");
	if (model_differs) {
		char there[96], here[96];
		cpu_compat_describe(theirs, h->ncpuid, there, sizeof(there));
		cpu_compat_describe(ours, (size_t)n, here, sizeof(here));
		vs_warn("the source's guest ran on %s, this host is %s: the same family, so it "
			"moves",
			there, here);
	}
	return 0;
}

static int apply_overrides(json_t *doc, const struct mig_recv_opts *o, vs_err_t *err)
{
	for (size_t i = 0; i < o->nnet; i++)
		if (vm_json_set_tap(doc, o->net[i].iface_id, o->net[i].host_dev_name) < 0)
			return errno == ENOENT ? vs_err(err, 0,
							"--net-override %s: the VM has no such "
							"interface",
							o->net[i].iface_id)
					       : vs_err(err, ENOMEM, "--net-override");
	return 0;
}

/* A header, checked. A file descriptor may come with RAM_FD's only. */
static int read_header(struct receiver *r, struct mig_header *mh, int *passed, vs_err_t *err)
{
	uint8_t h[MIG_HEADER_SIZE];
	int fd = -1;
	int rc = mig_read_full_fd(r->fd, h, sizeof(h), &fd, err);
	if (rc == 0)
		rc = mig_parse_header(h, mh, err);
	if (rc == 0 && fd >= 0 && (!passed || mh->type != MIG_RAM_FD))
		rc = vs_err(err, 0, "a file descriptor came with %s", mig_type_name(mh->type));
	if (rc == 0 && passed)
		*passed = fd;
	else if (fd >= 0)
		close(fd);
	return rc;
}

/* A local migration's first message: the source's RAM as a memfd, which the VM is then
 * built on (guest_mem_map_fd checks that it is a memfd of the size HELLO gives). */
static int on_ram_fd(struct receiver *r, vs_err_t *err)
{
	uint8_t p[MIG_RAM_FD_LEN];
	if (mig_read_full(r->fd, p, sizeof(p), err) < 0)
		return -1;
	if (r->ram_fd < 0)
		return vs_err(err, 0, "RAM_FD without a file descriptor");
	r->ram_fd_size = 0;
	for (int i = 0; i < 8; i++)
		r->ram_fd_size |= (uint64_t)p[i] << (8 * i);
	return 0;
}

static int on_hello(struct receiver *r, vs_err_t *err)
{
	struct mig_header mh;
	if (read_header(r, &mh, &r->ram_fd, err) < 0)
		return -1;
	if (mh.type == MIG_RAM_FD) {
		if (on_ram_fd(r, err) < 0 || read_header(r, &mh, NULL, err) < 0)
			return -1;
	}
	if (mh.type != MIG_HELLO)
		return vs_err(err, 0, "the source began with %s, not HELLO",
			      mig_type_name(mh.type));
	uint8_t *p = malloc(mh.len ? mh.len : 1);
	if (!p)
		return vs_err(err, ENOMEM, "HELLO");
	struct mig_hello h;
	struct vm_config cfg;
	vm_config_init(&cfg);
	int rc = -1;
	if (mig_read_full(r->fd, p, mh.len, err) < 0 || mig_parse_hello(p, mh.len, &h, err) < 0)
		goto out;
	if (r->o->expect_cpus && h.ncpus != r->o->expect_cpus) {
		vs_err(err, 0, "the source's VM has %u vCPUs, this receiver takes %u", h.ncpus,
		       r->o->expect_cpus);
		goto out;
	}
	if (r->o->expect_memory && h.ram_size != r->o->expect_memory) {
		vs_err(err, 0, "the source's VM has %llu MiB of RAM, this receiver takes %llu MiB",
		       (unsigned long long)(h.ram_size >> 20),
		       (unsigned long long)(r->o->expect_memory >> 20));
		goto out;
	}
	if (check_cpu(&h, err) < 0)
		goto out;
	json_error_t je;
	r->doc = json_loadb(h.config, h.config_len, JSON_REJECT_DUPLICATES, &je);
	if (!r->doc || !json_is_object(r->doc)) {
		vs_err(err, 0, "HELLO: the config is not a JSON object (%s)",
		       r->doc ? "another value" : je.text);
		goto out;
	}
	if (apply_overrides(r->doc, r->o, err) < 0)
		goto out;
	if (vm_config_from_json_partial(&cfg, r->doc, err) < 0) {
		vs_err_wrap(err, "HELLO: the source's config");
		goto out;
	}
	if (cfg.cpus != h.ncpus || cfg.memory != h.ram_size) {
		vs_err(err, 0, "HELLO: %u vCPUs and %llu bytes, its config says %u and %llu",
		       h.ncpus, (unsigned long long)h.ram_size, cfg.cpus,
		       (unsigned long long)cfg.memory);
		goto out;
	}
	if (r->ram_fd >= 0 && r->ram_fd_size != h.ram_size) {
		vs_err(err, 0, "RAM_FD says %llu bytes, HELLO %llu",
		       (unsigned long long)r->ram_fd_size, (unsigned long long)h.ram_size);
		goto out;
	}
	/* as a snapshot's load builds it; RAM anonymous (zeros), filled from the stream, or
	 * (local) the source's own */
	r->vm = vm_build_restore(&cfg, NULL, r->ram_fd, err);
	if (!r->vm)
		goto out;
	rc = 0;
out:
	vm_config_free(&cfg);
	free(p);
	return rc;
}

static int on_memory(struct receiver *r, const struct mig_header *mh, vs_err_t *err)
{
	uint8_t fixed[MIG_MEMORY_FIXED];
	struct mig_memory m;
	if (mh->len < MIG_MEMORY_FIXED)
		return vs_err(err, 0, "MEMORY of %llu bytes", (unsigned long long)mh->len);
	if (mig_read_full(r->fd, fixed, sizeof(fixed), err) < 0 ||
	    mig_parse_memory(fixed, mh->len, r->vm->mem.ram_size, &m, err) < 0)
		return -1;
	/* checked against the RAM's size: straight into guest RAM */
	if (mig_read_full(r->fd, r->vm->mem.host + m.offset, (size_t)m.pages * MIG_PAGE, err) < 0)
		return -1;
	r->pages += m.pages;
	return 0;
}

static int on_payload(struct receiver *r, const struct mig_header *mh, uint8_t **out, vs_err_t *err)
{
	uint8_t *p = malloc(mh->len + 1);
	if (!p)
		return vs_err(err, ENOMEM, "%s of %llu bytes", mig_type_name(mh->type),
			      (unsigned long long)mh->len);
	if (mig_read_full(r->fd, p, mh->len, err) < 0) {
		free(p);
		return -1;
	}
	p[mh->len] = '\0';
	*out = p;
	return 0;
}

static int restore(struct receiver *r, vs_err_t *err)
{
	if (!r->state)
		return vs_err(err, 0, "COMPLETE before STATE");
	struct snapshot s;
	if (snapshot_open_bytes(r->state, r->state_len, &s, err) < 0)
		return vs_err_wrap(err, "STATE");
	/* the same VM, moved: its generation ID (in the RAM that came) must not change */
	struct vmgenid *g = device_find(r->vm, &vmgenid_kind);
	if (g)
		vmgenid_continue(g);
	int rc = snapshot_restore(r->vm, &s, err);
	snapshot_close(&s);
	return rc < 0 ? vs_err_wrap(err, "STATE") : 0;
}

static int stream(struct receiver *r, vs_err_t *err)
{
	for (;;) {
		struct mig_header mh;
		if (read_header(r, &mh, NULL, err) < 0)
			return vs_err_wrap(err, "after %llu MiB of RAM",
					   (unsigned long long)(r->pages * MIG_PAGE >> 20));
		switch (mh.type) {
		case MIG_MEMORY:
			/* the source's VM still owns the shared RAM: nothing writes it from here */
			if (r->ram_fd >= 0)
				return vs_err(err, 0, "MEMORY in a local migration");
			if (on_memory(r, &mh, err) < 0)
				return -1;
			break;
		case MIG_STATE:
			if (r->state)
				return vs_err(err, 0, "STATE twice");
			if (on_payload(r, &mh, &r->state, err) < 0)
				return -1;
			r->state_len = mh.len;
			break;
		case MIG_COMPLETE:
			return restore(r, err);
		case MIG_ERROR: {
			uint8_t *msg = NULL;
			if (on_payload(r, &mh, &msg, err) < 0)
				return -1;
			for (size_t i = 0; i < mh.len; i++)
				if (msg[i] < 0x20)
					msg[i] = ' ';
			vs_err(err, 0, "the source gave up: %s", msg);
			free(msg);
			return -1;
		}
		default:
			return vs_err(err, 0, "unexpected %s from the source",
				      mig_type_name(mh.type));
		}
	}
}

static void tell_error(int fd, vs_err_t err)
{
	const char *m = err && err->msg ? err->msg : "failed";
	size_t n = strlen(m) < MIG_ERROR_MAX ? strlen(m) : MIG_ERROR_MAX;
	mig_send_msg(fd, MIG_ERROR, m, n, NULL, 0, NULL);
}

int migration_receive(const struct mig_recv_opts *o, struct vm **vm, json_t **doc, vs_err_t *err)
{
	struct receiver r = {.o = o, .fd = -1, .ram_fd = -1};
	int lfd = mig_listen(o->url, err);
	if (lfd < 0)
		return -1;
	vs_info("migration: waiting on %s", o->url);
	r.fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int e = errno;
	mig_unlisten(o->url, lfd); /* one source per receiver */
	if (r.fd < 0)
		return vs_err(err, e, "accept on `%s`", o->url);
	/* a source that goes silent is a failed migration, not a receiver waiting forever */
	struct timeval tv = {.tv_sec = 60};
	setsockopt(r.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(r.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (on_hello(&r, err) < 0) {
		vs_err_wrap(err, "refused the migration");
		tell_error(r.fd, *err);
		goto fail;
	}
	if (mig_send_msg(r.fd, MIG_ACK, NULL, 0, NULL, 0, err) < 0 || stream(&r, err) < 0) {
		tell_error(r.fd, *err);
		goto fail;
	}
	if (mig_send_msg(r.fd, MIG_ACK, NULL, 0, NULL, 0, err) < 0)
		goto fail; /* the source did not learn that we have it: it keeps its VM */
	if (r.ram_fd >= 0)
		vs_info("migration: took over the source's RAM (local), the VM runs here");
	else
		vs_info("migration: received %llu MiB of RAM, the VM runs here",
			(unsigned long long)(r.pages * MIG_PAGE >> 20));
	close(r.fd);
	if (r.ram_fd >= 0)
		close(r.ram_fd); /* the VM has its own copy of the fd */
	free(r.state);
	*vm = r.vm;
	*doc = r.doc;
	return 0;
fail:
	close(r.fd);
	if (r.ram_fd >= 0)
		close(r.ram_fd);
	free(r.state);
	vm_free(r.vm);
	json_decref(r.doc);
	return vs_err_wrap(err, "migration from %s", o->url);
}
