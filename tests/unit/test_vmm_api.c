/* The API without a socket or a VM: the router's table, requests -> the VM config the
 * controller gets (the same config --config-file makes), the instance's states, and the
 * HTTP layer fed byte by byte. The controller is a fake that records what it is asked. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/api/api.h"
#include "vmm/api/resources.h"
#include "vmm/virtio/blk_spec.h"

struct fake {
	int starts, pauses, resumes;
	bool fail_start;
	/* what InstanceStart asked for */
	unsigned cpus;
	uint64_t memory;
	char kernel[256], cmdline[512];
	unsigned ndevices;
	char first_device[32], first_path[256];
};

static int fake_start(void *ctx, const struct vm_config *c, vs_err_t *err)
{
	struct fake *f = ctx;
	f->starts++;
	if (f->fail_start)
		return vs_err(err, 0, "kernel: not a kernel");
	f->cpus = c->cpus;
	f->memory = c->memory;
	snprintf(f->kernel, sizeof(f->kernel), "%s", c->kernel);
	snprintf(f->cmdline, sizeof(f->cmdline), "%s", c->cmdline);
	f->ndevices = c->ndevices;
	if (c->ndevices) {
		snprintf(f->first_device, sizeof(f->first_device), "%s", c->devices[0].kind->name);
		if (!strcmp(c->devices[0].kind->name, "drive"))
			snprintf(f->first_path, sizeof(f->first_path), "%s",
				 ((const struct blk_spec *)c->devices[0].config)->path);
	}
	return 0;
}

static int fake_pause(void *ctx, vs_err_t *err)
{
	(void)err;
	((struct fake *)ctx)->pauses++;
	return 0;
}

static int fake_resume(void *ctx, vs_err_t *err)
{
	(void)err;
	((struct fake *)ctx)->resumes++;
	return 0;
}

static int fake_cad(void *ctx, vs_err_t *err)
{
	(void)ctx;
	return vs_err(err, 0, "SendCtrlAltDel: not supported");
}

static struct {
	int creates, loads;
	bool diff, resume, track_dirty;
	char state[64], mem[64], config[1024], net[64];
} snap;

static int fake_snap_create(void *ctx, const struct api_snapshot_create *o, const char *config,
			    vs_err_t *err)
{
	(void)ctx;
	(void)err;
	snap.creates++;
	snap.diff = o->diff;
	snprintf(snap.state, sizeof(snap.state), "%s", o->state_path);
	snprintf(snap.mem, sizeof(snap.mem), "%s", o->mem_path);
	snprintf(snap.config, sizeof(snap.config), "%s", config);
	return 0;
}

/* loads a description of 2 vCPUs */
static int fake_snap_load(void *ctx, const struct api_snapshot_load *o, json_t **doc, vs_err_t *err)
{
	(void)ctx;
	snap.loads++;
	snap.resume = o->resume;
	snap.track_dirty = o->track_dirty;
	snprintf(snap.state, sizeof(snap.state), "%s", o->state_path);
	snprintf(snap.mem, sizeof(snap.mem), "%s", o->mem_path);
	snprintf(snap.net, sizeof(snap.net), "%s=%s", o->nnet ? o->net[0].iface_id : "",
		 o->nnet ? o->net[0].host_dev_name : "");
	if (!strcmp(o->state_path, "/bad"))
		return vs_err(err, 0, "state file `/bad`: truncated");
	*doc = json_pack("{s:{s:i, s:i}}", "machine-config", "vcpu_count", 2, "mem_size_mib", 64);
	return 0;
}

/* PATCH of a started VM's device: what the controller was asked; "/missing" is a file the
 * device can't open */
static struct {
	int calls;
	char kind[32];
	unsigned index;
} upd;

static int fake_device_update(void *ctx, const struct device_kind *kind, unsigned index,
			      json_t *body, vs_err_t *err)
{
	(void)ctx;
	upd.calls++;
	snprintf(upd.kind, sizeof(upd.kind), "%s", kind->name);
	upd.index = index;
	const char *path = json_string_value(json_object_get(body, "path_on_host"));
	if (path && !strcmp(path, "/missing"))
		return vs_err(err, ENOENT, "path_on_host: open `/missing`");
	return 0;
}

static struct fake fake;
static struct api *api;
static char kernel[] = "/tmp/vessel-unit-api-XXXXXX";

static void setup(void)
{
	memset(&fake, 0, sizeof(fake));
	memset(&snap, 0, sizeof(snap));
	memset(&upd, 0, sizeof(upd));
	const struct api_controller ops = {&fake,	   fake_start,	      fake_pause,
					   fake_resume,	   fake_cad,	      fake_snap_create,
					   fake_snap_load, fake_device_update};
	vs_err_t err = NULL;
	api = api_new("unit", &ops, &err);
	cr_assert(api);
	int fd = mkstemp(kernel);
	cr_assert(fd >= 0);
	close(fd);
}

static void teardown(void)
{
	api_free(api);
	unlink(kernel);
	strcpy(kernel, "/tmp/vessel-unit-api-XXXXXX");
}

/* One call: its status, and its body in *body (caller frees) when asked. */
static int call(const char *method, const char *path, const char *body, char **out)
{
	struct api_response r;
	api_handle(api, method, path, body, body ? strlen(body) : 0, &r);
	if (out)
		*out = r.body;
	else
		free(r.body);
	return r.status;
}

static void expect_fault(const char *method, const char *path, const char *body, const char *names)
{
	char *out = NULL;
	int status = call(method, path, body, &out);
	cr_assert_eq(status, 400, "%s %s %s: %d %s", method, path, body ? body : "", status,
		     out ? out : "");
	cr_assert(out && strstr(out, "\"fault_message\"") && strstr(out, names),
		  "%s %s: %s lacks `%s`", method, path, out ? out : "(none)", names);
	free(out);
}

TestSuite(api, .init = setup, .fini = teardown);

Test(api, router_matches_paths_and_ids)
{
	const struct api_route *r = NULL;
	struct api_request q = {0};
	vs_err_t err = NULL;
	cr_assert_eq(api_route("PUT", "/drives/rootfs", &r, &q, &err), 0);
	cr_assert_str_eq(q.id, "rootfs");
	cr_assert(q.kind && !strcmp(q.kind->name, "drive"));
	cr_assert_eq(r->fn, res_device_put);
	cr_assert_eq(api_route("PATCH", "/network-interfaces/eth_0", &r, &q, &err), 0);
	cr_assert_str_eq(q.id, "eth_0");
	cr_assert_eq(r->fn, res_device_patch);
	cr_assert_eq(api_route("PUT", "/entropy", &r, &q, &err), 0);
	cr_assert_eq(api_route("PATCH", "/entropy", &r, &q, &err), -1, "no PATCH without an id");
	vs_err_free(&err);
	cr_assert_eq(api_route("GET", "/", &r, &q, &err), 0);
	cr_assert_eq(r->fn, res_instance_get);
	cr_assert_eq(api_route("GET", "/vm/config", &r, &q, &err), 0);
	cr_assert_eq(r->fn, res_vm_config_get);
	const char *bad[][2] = {{"GET", "/drives"},
				{"PUT", "/drives/"},
				{"PUT", "/drives/a/b"},
				{"PUT", "/drives/a-b"},
				{"GET", "/machine-config/"},
				{"POST", "/actions"},
				{"GET", ""},
				{"GET", "/version/x"}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(api_route(bad[i][0], bad[i][1], &r, &q, &err), -1, "%s %s", bad[i][0],
			     bad[i][1]);
		cr_assert(strstr(err->msg, "path"), "%s", err->msg);
		vs_err_free(&err);
	}
	char longid[100];
	memset(longid, 'a', sizeof(longid));
	memcpy(longid, "/drives/", 8);
	longid[99] = '\0';
	cr_assert_eq(api_route("PUT", longid, &r, &q, &err), -1, "an id over 64 characters");
	vs_err_free(&err);
}

Test(api, requests_become_the_config_instance_start_gets)
{
	char body[512];
	snprintf(body, sizeof(body),
		 "{\"kernel_image_path\": \"%s\", \"boot_args\": \"console=ttyS0\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", body, NULL), 204);
	cr_assert_eq(
	    call("PUT", "/machine-config", "{\"vcpu_count\": 3, \"mem_size_mib\": 96}", NULL), 204);
	cr_assert_eq(call("PUT", "/drives/data",
			  "{\"drive_id\": \"data\", \"path_on_host\": \"/d.img\", "
			  "\"is_root_device\": false}",
			  NULL),
		     204);
	cr_assert_eq(call("PUT", "/drives/root",
			  "{\"drive_id\": \"root\", \"path_on_host\": \"/r.img\", "
			  "\"is_root_device\": true, \"is_read_only\": true}",
			  NULL),
		     204);
	cr_assert_eq(call("PUT", "/entropy", "{}", NULL), 204);
	cr_assert_eq(fake.starts, 0);
	cr_assert_eq(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL), 204);
	cr_assert_eq(fake.starts, 1);
	cr_assert_eq(fake.cpus, 3);
	cr_assert_eq(fake.memory, 96ull << 20);
	cr_assert_str_eq(fake.kernel, kernel);
	/* as --config-file does it: the root drive first (vda), root= on the command line */
	cr_assert_str_eq(fake.cmdline, "console=ttyS0 root=/dev/vda ro");
	cr_assert_eq(fake.ndevices, 3);
	cr_assert_str_eq(fake.first_device, "drive");
	cr_assert_str_eq(fake.first_path, "/r.img");
	cr_assert_eq(api_state(api), API_RUNNING);
}

Test(api, a_failed_start_leaves_it_not_started)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", body, NULL), 204);
	fake.fail_start = true;
	expect_fault("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", "not a kernel");
	cr_assert_eq(api_state(api), API_NOT_STARTED);
	fake.fail_start = false;
	cr_assert_eq(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL), 204);
}

Test(api, states_and_the_calls_each_allows)
{
	expect_fault("PATCH", "/vm", "{\"state\": \"Paused\"}", "not started");
	expect_fault("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", "boot source");
	char body[256];
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", body, NULL), 204);
	cr_assert_eq(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL), 204);
	expect_fault("PUT", "/boot-source", body, "InstanceStart");
	expect_fault("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}",
		     "InstanceStart");
	expect_fault("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", "started already");
	cr_assert_eq(call("PATCH", "/vm", "{\"state\": \"Paused\"}", NULL), 204);
	cr_assert_eq(call("PATCH", "/vm", "{\"state\": \"Paused\"}", NULL), 204);
	cr_assert_eq(fake.pauses, 1, "pausing a paused VM asks nothing");
	cr_assert_eq(api_state(api), API_PAUSED);
	char *out = NULL;
	cr_assert_eq(call("GET", "/", NULL, &out), 200);
	cr_assert(strstr(out, "\"state\":\"Paused\""), "%s", out);
	free(out);
	cr_assert_eq(call("PATCH", "/vm", "{\"state\": \"Resumed\"}", NULL), 204);
	cr_assert_eq(fake.resumes, 1);
	cr_assert_eq(api_state(api), API_RUNNING);
}

Test(api, bodies_are_checked_before_anything_changes)
{
	expect_fault("PUT", "/machine-config", NULL, "body");
	expect_fault("PUT", "/machine-config", "[]", "object");
	expect_fault("PUT", "/machine-config", "{\"vcpu_count\": 1, \"vcpu_count\": 2}", "JSON");
	expect_fault("PUT", "/machine-config", "{\"vcpu_count\": 1}", "mem_size_mib");
	expect_fault("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 8, \"x\": 1}",
		     "x: unknown");
	expect_fault("PUT", "/drives/a",
		     "{\"drive_id\": \"b\", \"path_on_host\": \"/x\", "
		     "\"is_root_device\": false}",
		     "drive_id");
	expect_fault("PUT", "/boot-source",
		     "{\"kernel_image_path\": \"/proc/vessel-no-such-kernel\"}",
		     "kernel_image_path");
	char *out = NULL;
	cr_assert_eq(call("GET", "/vm/config", NULL, &out), 200);
	cr_assert(!strstr(out, "boot-source"), "%s", out);
	free(out);
	/*/* a refused boot source leaves the one before (a path in /proc: nothing can make it, as
	 * a stray /nonexistent directory made the earlier "/nonexistent" readable) */
	char body[256];
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", body, NULL), 204);
	expect_fault("PUT", "/boot-source",
		     "{\"kernel_image_path\": \"/proc/vessel-no-such-kernel\"}",
		     "kernel_image_path");
	expect_fault("PUT", "/boot-source", "{\"boot_args\": \"x\"}", "kernel_image_path");
	cr_assert_eq(call("GET", "/vm/config", NULL, &out), 200);
	cr_assert(strstr(out, kernel), "%s", out);
	free(out);
	/* and the refused drive left the description without it */
	cr_assert_eq(call("GET", "/vm/config", NULL, &out), 200);
	cr_assert(strstr(out, "\"drives\":[]"), "%s", out);
	free(out);
}

/* The output so far as a string (it is not NUL-terminated). */
static char *output(struct api_http *h, size_t *len)
{
	const char *o = api_http_output(h, len);
	char *s = malloc(*len + 1);
	cr_assert(s);
	memcpy(s, o, *len);
	s[*len] = '\0';
	return s;
}

/* The same request in any split gives the same answer. */
Test(api, http_in_pieces)
{
	static const char req[] = "PATCH /machine-config HTTP/1.1\r\nHost: x\r\n"
				  "Content-Length: 17\r\n\r\n{\"vcpu_count\": 3}"
				  "GET /machine-config?x=1 HTTP/1.1\r\n\r\n";
	for (size_t step = 1; step <= sizeof(req); step++) {
		teardown();
		setup();
		struct api_http *h = api_http_new(api);
		for (size_t i = 0; i < sizeof(req) - 1; i += step) {
			size_t n = sizeof(req) - 1 - i < step ? sizeof(req) - 1 - i : step;
			cr_assert(api_http_feed(h, req + i, n));
		}
		size_t len;
		char *copy = output(h, &len);
		cr_assert(!strncmp(copy, "HTTP/1.1 204 No Content\r\n", 25), "%s", copy);
		cr_assert(strstr(copy, "HTTP/1.1 200 OK") && strstr(copy, "\"vcpu_count\":3"), "%s",
			  copy);
		free(copy);
		api_http_sent(h, len);
		api_http_output(h, &len);
		cr_assert_eq(len, 0);
		api_http_free(h);
	}
}

Test(api, http_refuses_and_closes)
{
	const char *bad[][2] = {
	    {"NOPE\r\n\r\n", "malformed"},
	    {"PUT /vm HTTP/1.1\r\nContent-Length: 99999\r\n\r\n", "51200"},
	    {"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "upgrade"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct api_http *h = api_http_new(api);
		cr_assert(!api_http_feed(h, bad[i][0], strlen(bad[i][0])), "%s", bad[i][0]);
		size_t len;
		char *out = output(h, &len);
		cr_assert(strstr(out, "400 Bad Request") && strstr(out, bad[i][1]), "%s", out);
		free(out);
		api_http_free(h);
	}
}

/* PUT /snapshot/create: only paused, the body decoded, the description handed over. */
Test(api, snapshot_create_wants_a_paused_vm_and_takes_firecrackers_body)
{
	const char *body = "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}";
	expect_fault("PUT", "/snapshot/create", body, "not started");
	char boot[256];
	snprintf(boot, sizeof(boot), "{\"kernel_image_path\": \"%s\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", boot, NULL), 204);
	cr_assert_eq(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL), 204);
	expect_fault("PUT", "/snapshot/create", body, "paused first");
	cr_assert_eq(call("PATCH", "/vm", "{\"state\": \"Paused\"}", NULL), 204);
	expect_fault("PUT", "/snapshot/create", "{\"snapshot_path\": \"/s\"}", "mem_file_path");
	expect_fault("PUT", "/snapshot/create",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/s\"}", "different");
	expect_fault("PUT", "/snapshot/create",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"snapshot_type\": \"Half\"}",
		     "snapshot_type");
	cr_assert_eq(snap.creates, 0, "nothing reached the controller");
	cr_assert_eq(call("PUT", "/snapshot/create",
			  "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
			  "\"snapshot_type\": \"Diff\"}",
			  NULL),
		     204);
	cr_assert_eq(snap.creates, 1);
	cr_assert(snap.diff);
	cr_assert_str_eq(snap.state, "/s");
	cr_assert_str_eq(snap.mem, "/m");
	cr_assert(strstr(snap.config, kernel), "the description holds the boot source: %s",
		  snap.config);
}

/* PUT /snapshot/load: a fresh instance only; mem_backend or mem_file_path; the loaded
 * description becomes the instance's. */
Test(api, snapshot_load_only_on_a_fresh_instance)
{
	expect_fault("PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\"}", "mem_backend");
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"mem_backend\": {\"backend_path\": \"/m\", \"backend_type\": \"File\"}}",
		     "not both");
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": \"/m\", "
		     "\"backend_type\": \"Uffd\"}}",
		     "Uffd");
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\", "
		     "\"network_overrides\": [{\"iface_id\": \"eth0\"}]}",
		     "host_dev_name");
	cr_assert_eq(snap.loads, 0);
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/bad\", \"mem_file_path\": \"/m\"}", "truncated");
	cr_assert_eq(call("GET", "/", NULL, NULL), 200);
	cr_assert_eq(api_state(api), API_NOT_STARTED, "a failed load leaves it fresh");
	cr_assert_eq(call("PUT", "/snapshot/load",
			  "{\"snapshot_path\": \"/s\", \"mem_backend\": {\"backend_path\": "
			  "\"/m\", \"backend_type\": \"File\"}, \"enable_diff_snapshots\": true, "
			  "\"network_overrides\": [{\"iface_id\": \"eth0\", "
			  "\"host_dev_name\": \"tap7\"}]}",
			  NULL),
		     204);
	cr_assert_str_eq(snap.mem, "/m");
	cr_assert_str_eq(snap.net, "eth0=tap7");
	cr_assert(snap.track_dirty);
	cr_assert_not(snap.resume);
	cr_assert_eq(api_state(api), API_PAUSED, "without resume_vm it waits paused");
	char *out = NULL;
	cr_assert_eq(call("GET", "/machine-config", NULL, &out), 200);
	cr_assert(strstr(out, "\"vcpu_count\":2"), "%s", out);
	free(out);
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", "started already");
}

Test(api, snapshot_load_after_configuring_is_refused)
{
	cr_assert_eq(
	    call("PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64}", NULL), 204);
	expect_fault("PUT", "/snapshot/load",
		     "{\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}",
		     "configured already");
	cr_assert_eq(snap.loads, 0);
}

Test(api, patch_of_a_device_goes_to_the_built_one_and_into_the_description)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"kernel_image_path\": \"%s\"}", kernel);
	cr_assert_eq(call("PUT", "/boot-source", body, NULL), 204);
	const char *data = "{\"drive_id\": \"data\", \"path_on_host\": \"/d.img\", "
			   "\"is_root_device\": false, \"rate_limiter\": {\"bandwidth\": "
			   "{\"size\": 1000, \"refill_time\": 100}, \"ops\": {\"size\": 10, "
			   "\"refill_time\": 1000}}}";
	cr_assert_eq(call("PUT", "/drives/data", data, NULL), 204);
	cr_assert_eq(call("PUT", "/drives/root",
			  "{\"drive_id\": \"root\", \"path_on_host\": \"/r.img\", "
			  "\"is_root_device\": true}",
			  NULL),
		     204);
	cr_assert_eq(call("PUT", "/network-interfaces/eth0",
			  "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}", NULL),
		     204);
	/* Firecracker's rule: PATCH is for a started microVM */
	expect_fault("PATCH", "/drives/data", "{\"drive_id\": \"data\", \"path_on_host\": \"/e\"}",
		     "not started");
	cr_assert_eq(call("PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", NULL), 204);
	expect_fault("PATCH", "/drives/nothere",
		     "{\"drive_id\": \"nothere\", \"path_on_host\": \"/e\"}", "no drive `nothere`");
	expect_fault("PATCH", "/drives/data", "{\"drive_id\": \"root\", \"path_on_host\": \"/e\"}",
		     "drive_id");
	expect_fault("PATCH", "/drives/data",
		     "{\"drive_id\": \"data\", \"path_on_host\": \"/missing\"}", "path_on_host");
	cr_assert_eq(upd.calls, 1);
	/* data is the second drive built: the root drive is vda */
	cr_assert_str_eq(upd.kind, "drive");
	cr_assert_eq(upd.index, 1);
	cr_assert_eq(call("PATCH", "/drives/data",
			  "{\"drive_id\": \"data\", \"path_on_host\": \"/e.img\", "
			  "\"rate_limiter\": {\"ops\": {\"size\": 0, \"refill_time\": 0}}}",
			  NULL),
		     204);
	cr_assert_eq(upd.calls, 2);
	cr_assert_eq(call("PATCH", "/drives/root",
			  "{\"drive_id\": \"root\", \"rate_limiter\": {\"bandwidth\": null}}",
			  NULL),
		     204);
	cr_assert_eq(upd.index, 0);
	cr_assert_eq(call("PATCH", "/network-interfaces/eth0",
			  "{\"iface_id\": \"eth0\", \"tx_rate_limiter\": {\"bandwidth\": "
			  "{\"size\": 5, \"refill_time\": 7}}}",
			  NULL),
		     204);
	cr_assert_str_eq(upd.kind, "network-interface");
	cr_assert_eq(upd.index, 0);
	char *out = NULL;
	cr_assert_eq(call("GET", "/vm/config", NULL, &out), 200);
	json_t *cfg = json_loads(out, 0, NULL);
	free(out);
	cr_assert(cfg);
	json_t *d0 = json_array_get(json_object_get(cfg, "drives"), 0);
	cr_assert_str_eq(json_string_value(json_object_get(d0, "path_on_host")), "/e.img",
			 "the refused /missing left no trace, the accepted path is kept");
	json_t *rl = json_object_get(d0, "rate_limiter");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(rl, "bandwidth"), "size")),
		     1000, "a bucket the PATCH left out stays");
	cr_assert_eq(json_integer_value(json_object_get(json_object_get(rl, "ops"), "size")), 0);
	json_t *d1 = json_array_get(json_object_get(cfg, "drives"), 1);
	cr_assert_null(json_object_get(json_object_get(d1, "rate_limiter"), "bandwidth"),
		       "null is not given");
	json_t *n0 = json_array_get(json_object_get(cfg, "network-interfaces"), 0);
	cr_assert_eq(json_integer_value(json_object_get(
			 json_object_get(json_object_get(n0, "tx_rate_limiter"), "bandwidth"),
			 "refill_time")),
		     7);
	json_decref(cfg);
}
