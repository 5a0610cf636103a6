/* Live migration (docs/migration.md): a running VM's RAM, then its state, go over a Unix or
 * TCP socket to a `vessel vm migrate-receive`, which restores and runs it; the source
 * exits only once the destination said it has the VM (or, --local, its RAM's memfd goes
 * instead of its RAM: a VMM upgrade in place). The component's door: the
 * controller and the `vm` commands call only this. Inside: wire.c (the messages: framing
 * and the pure parsers, fuzzed), endpoint.c (URLs, connect, listen), send.c (the sender's
 * worker thread: pre-copy rounds with the dirty log), receive.c (the receiver). */
#ifndef VESSEL_VMM_MIGRATION_MIGRATION_H
#define VESSEL_VMM_MIGRATION_MIGRATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

struct vm;

/* ---- the wire (wire.c): every message is a 16-byte header and a payload ---- */

#define MIG_MAGIC 0x47494d56u /* "VMIG" little-endian */
#define MIG_VERSION 1u
#define MIG_HEADER_SIZE 16u
#define MIG_PAGE 4096u
#define MIG_MAX_PAGES_PER_MSG 256u /* 1 MiB of data per MEMORY message */
#define MIG_CONFIG_MAX (1u << 20)
#define MIG_CPUID_MAX 256u
#define MIG_ERROR_MAX 4096u

enum mig_type {
	MIG_HELLO = 1,	  /* source -> dest: version, vCPUs, RAM size, CPUID, config JSON */
	MIG_ACK = 2,	  /* dest -> source: HELLO accepted / COMPLETE restored */
	MIG_ERROR = 3,	  /* either way: a reason (text), then the sender hangs up */
	MIG_MEMORY = 4,	  /* source -> dest: a run of pages at a RAM offset */
	MIG_STATE = 5,	  /* source -> dest: the snapshot state file's bytes */
	MIG_COMPLETE = 6, /* source -> dest: no more; restore and run */
	MIG_RAM_FD = 7,	  /* source -> dest, first, local only: u64 RAM bytes + the RAM's memfd */
};
#define MIG_RAM_FD_LEN 8u

struct mig_header {
	uint16_t type;
	uint64_t len; /* payload bytes */
};

/* Checks magic, type, reserved bits and the payload length against the type's limit,
 * before a byte of the payload is read. */
int mig_parse_header(const uint8_t h[MIG_HEADER_SIZE], struct mig_header *out, vs_err_t *err);
void mig_put_header(uint8_t h[MIG_HEADER_SIZE], enum mig_type type, uint64_t len);
const char *mig_type_name(unsigned type);

/* HELLO's payload: u32 version | u32 ncpus | u64 ram_size | u32 ncpuid | u32 config_len |
 * ncpuid * struct kvm_cpuid_entry2 (40 bytes) | config_len bytes of JSON */
struct mig_hello {
	uint32_t version, ncpus, ncpuid, config_len;
	uint64_t ram_size;
	const uint8_t *cpuid; /* ncpuid entries of 40 bytes, into the payload */
	const char *config;   /* config_len bytes (not NUL-terminated), into the payload */
};
#define MIG_CPUID_ENTRY_SIZE 40u
#define MIG_HELLO_FIXED 24u
int mig_parse_hello(const uint8_t *p, size_t len, struct mig_hello *out, vs_err_t *err);
/* A malloc'd payload of the HELLO for these values. */
uint8_t *mig_build_hello(const struct mig_hello *h, size_t *len, vs_err_t *err);

/* MEMORY's payload: u64 offset into guest RAM (host layout: low RAM, then what sits above
 * 4 GiB) | u32 pages | u32 0 | pages * 4096 bytes. Offset page-aligned, inside ram_size.
 * Parsed from its fixed part and the header's length, so the pages can then be read
 * straight into guest RAM. */
#define MIG_MEMORY_FIXED 16u
struct mig_memory {
	uint64_t offset;
	uint32_t pages;
};
int mig_parse_memory(const uint8_t fixed[MIG_MEMORY_FIXED], uint64_t payload_len, uint64_t ram_size,
		     struct mig_memory *out, vs_err_t *err);

/* ---- endpoints (endpoint.c): unix:PATH or tcp:HOST:PORT ---- */

int mig_connect(const char *url, vs_err_t *err);
/* A listening socket; the Unix path is removed on close by mig_unlisten. */
int mig_listen(const char *url, vs_err_t *err);
void mig_unlisten(const char *url, int fd);
/* All of buf, or -1 with err (EOF is "the peer hung up"). */
int mig_read_full(int fd, void *buf, size_t len, vs_err_t *err);
int mig_send_all(int fd, const void *buf, size_t len, vs_err_t *err);
int mig_send_msg(int fd, enum mig_type type, const void *a, size_t alen, const void *b, size_t blen,
		 vs_err_t *err);
/* RAM_FD: the message with mem_fd attached (SCM_RIGHTS; a Unix socket only). */
int mig_send_ram_fd(int fd, uint64_t ram_size, int mem_fd, vs_err_t *err);
/* mig_read_full that also takes a file descriptor passed with the bytes: *passed is the
 * first one (-1 if none came; any more are closed), the caller's to close, after a
 * failure too. */
int mig_read_full_fd(int fd, void *buf, size_t len, int *passed, vs_err_t *err);
bool mig_url_is_unix(const char *url);

/* ---- the source (send.c) ---- */

enum mig_on_timeout { MIG_TIMEOUT_CANCEL, MIG_TIMEOUT_FORCE };

struct mig_send_opts {
	const char *url;
	unsigned downtime_ms; /* default 300 */
	unsigned timeout_s;   /* default 60 */
	enum mig_on_timeout on_timeout;
	/* hand the destination the RAM's memfd (RAM_FD) instead of copying RAM: the VM must
	 * have shared memory and url be unix: */
	bool local;
};

/* What the sender asks of the controller, which alone acts on the VM: each is called on
 * the controller's thread (after notify_fd woke it, through migration_service). */
struct mig_controller {
	void *ctx;
	/* Pause the VM (vCPUs, clock, devices) and give the state file's bytes (malloc'd). */
	int (*stop_and_save)(void *ctx, uint8_t **state, size_t *len, vs_err_t *err);
	/* The migration failed after stop_and_save: run the VM again. */
	void (*resume)(void *ctx);
	/* The migration ended: ok (the destination runs the VM) or not (error said why). */
	void (*finished)(void *ctx, bool ok, const char *error);
};

struct mig_sender;

/* Turns the dirty logs on and starts the worker; notify_fd (an eventfd in the controller's
 * loop) is written whenever the worker needs the controller. config_json is the VM's
 * description (copied). */
struct mig_sender *migration_send_start(struct vm *vm, const struct mig_send_opts *o,
					const char *config_json, const struct mig_controller *ctl,
					int notify_fd, vs_err_t *err);
/* On the controller's thread when notify_fd is readable: runs what the worker asked. */
void migration_service(struct mig_sender *s);
/* The status for GET /migrate (a new object): state active|completed|failed, and figures. */
json_t *migration_status(struct mig_sender *s);
bool migration_active(struct mig_sender *s);
/* Joins the worker (it must have finished) and frees it. */
void migration_send_free(struct mig_sender *s);

/* ---- the destination (receive.c) ---- */

struct mig_net_override {
	const char *iface_id, *host_dev_name;
};

struct mig_recv_opts {
	const char *url;
	unsigned expect_cpus;	/* 0: whatever the source has */
	uint64_t expect_memory; /* 0: whatever the source has */
	const struct mig_net_override *net;
	size_t nnet;
};

/* Waits for one source, checks its HELLO (vCPUs, RAM, CPU), builds the VM, takes its RAM
 * and state and restores it: *vm is ready to run (devices paused: devices_resume), *doc
 * its description. Before COMPLETE, any error ends it (the source is told why). */
int migration_receive(const struct mig_recv_opts *o, struct vm **vm, json_t **doc, vs_err_t *err);

#endif
