/* What the engine's files share; not a public header. */
#ifndef VESSEL_ENGINE_INTERNAL_H
#define VESSEL_ENGINE_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "base/globals.h"
#include "image/store.h"

/* `vessel container run`'s options. */
struct engine_opts {
	bool detach, rm;
	bool interactive, tty; /* -i: our stdin is the container's; -t: a terminal */
	const char *name, *user, *workdir;
	const char *network; /* NULL: the default network; "none", "host" or a name */
	uint64_t memory, net_rate;
	double cpus;
	json_t *env, *volumes, *ports; /* arrays of strings, as given */
	uint64_t cap_add, cap_drop;    /* capability bits; ALL: every bit */
	json_t *sysctls;	       /* --sysctl: an object of strings */
	json_t *entrypoint;	       /* --entrypoint: an array of strings, or NULL */
	const char *hostname;	       /* --hostname */
	bool read_only;		       /* --read-only */
};

/* STORE/containers/ID, or with name a file inside it. */
char *engine_dir(const char *store, const char *id, const char *name);
/* The record of the container whose id, id prefix or name is ref (caller decrefs). */
json_t *engine_find(const char *store, const char *ref, vs_err_t *err);
/* Every record, as an array. */
json_t *engine_records(const char *store, vs_err_t *err);
int engine_write_record(const char *store, json_t *rec, vs_err_t *err);
/* Holds off the other engine processes that change a container (its monitor's end, stop,
 * rm) until the fd is closed; -1 when the container's directory is gone. */
int engine_lock(const char *store, const char *id);

/* The runtime, vessel itself as a child: argv after `vessel --root ROOT`. out_fd >= 0
 * takes the child's stdout and stderr. Returns the child's exit status. */
int engine_runtime(const struct vs_globals *g, char **argv, int out_fd, vs_err_t *err);
/* The same, waited for through SIGINT, SIGTERM and SIGHUP, which are passed on to the
 * runtime (and by it to the container): the engine outlives the container, to give its
 * network back. The child's stdout and stderr are ours. */
int engine_runtime_forward(const struct vs_globals *g, char **argv, vs_err_t *err);
/* /dev/null becomes our stdin, so the runtime children we start next can't read the
 * caller's (no -i). */
int engine_stdin_null(vs_err_t *err);
/* The runtime's status of id: "running", "created", "stopped", or NULL when it has
 * none (never created, or deleted). */
char *engine_runtime_status(const struct vs_globals *g, const char *id);

/* config.c: DIR/config.json from the image config by the image spec's conversion rules,
 * the options on top; DIR/{hosts,hostname,resolv.conf} bound in. rec gives the
 * hostname, the network and its netns; rec's stop_signal is set from the image. */
int engine_make_config(const struct vs_globals *g, struct store *s, json_t *image_rec,
		       const struct engine_opts *o, char **cmd, json_t *rec, const char *dir,
		       const char *rootfs, vs_err_t *err);

/* spec ("USER[:GROUP]", names or numbers) as ids, names looked up in the container's own
 * /etc/passwd and /etc/group under rootfs; without GROUP, the user's primary group. */
int engine_user_ids(const char *rootfs, const char *spec, unsigned *uid, unsigned *gid,
		    vs_err_t *err);

/* -e and -w of run and exec: KEY=VALUE with a key, and an absolute directory. */
int engine_check_env(const char *kv, vs_err_t *err);
int engine_check_workdir(const char *dir, vs_err_t *err);

/* Gives DIR/config.json the poststart hook of this binary (start's: the one run wrote
 * may name a binary since moved). */
int engine_renew_hook(const char *store, json_t *rec, const char *dir, vs_err_t *err);

/* net.c: a container's network (rec's "network": a name, none or host). attach makes
 * the netns (not for host), sets its lo up and on a named network runs CNI ADD, setting
 * rec's "netns", "ip" and "gateway"; detach runs DEL and removes the netns, idempotent;
 * its caller holds engine_lock. */
bool engine_net_named(json_t *rec);
int engine_net_attach(const char *store, json_t *rec, vs_err_t *err);
int engine_net_detach(const char *store, json_t *rec, vs_err_t *err);
/* STORE/containers/ID/hosts: localhost, the container itself, and by name every peer
 * attached to its network. */
int engine_write_hosts(const char *store, json_t *rec, vs_err_t *err);
/* Rewrites the hosts file of every container still attached to network (in place: it
 * is bind-mounted into the running ones). */
int engine_refresh_peers(const char *store, const char *network, vs_err_t *err);
/* "HOST:CTR[/tcp|udp]" or "IP:HOST:CTR[/tcp|udp]". */
int engine_parse_port(const char *s, vs_err_t *err);
/* "RATE[k|m|g][bit]": bits per second, decimal prefixes as tc's. */
int engine_parse_rate(const char *s, uint64_t *bps);

/* userdb.c: the id of name in an /etc/passwd (gid: the user's group, the fourth field) or
 * /etc/group (gid NULL) text of len bytes, which need not end in NUL. 1 when found, 0
 * when not; lines whose id is not a plain decimal of 32 bits are skipped. */
int engine_userdb_find(const char *text, size_t len, const char *name, uint32_t *id, uint32_t *gid);

int engine_run(const struct vs_globals *g, const char *store, int argc, char **argv, vs_err_t *err);
int engine_start(const struct vs_globals *g, const char *store, int argc, char **argv,
		 vs_err_t *err);
/* Detaches, unmounts and removes a container's root and record, deleting it from the
 * runtime. */
int engine_remove(const struct vs_globals *g, const char *store, json_t *rec, bool force,
		  vs_err_t *err);

#endif
