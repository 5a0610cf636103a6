/* A Firecracker config file -> a VM config: the same objects its API takes (boot-source,
 * machine-config, drives, network-interfaces, entropy), in one JSON document. Device
 * objects go to their kind's from_json (the table in devices/registry.c names the member). */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/util.h"

#define CONFIG_FILE_MAX (1u << 20)
#define MEM_MIB_MAX (1LL << 24) /* 16 TiB: bounds the multiplication, not the host */

/* Firecracker's members vessel does not do (yet): a clear refusal, not silence. */
static const char *const unsupported[] = {
    "logger",	  "metrics", "mmds-config",
    "cpu-config", "serial",  "pmem",  "memory-hotplug",
};

static int bucket(json_t *obj, const char *path, const char *key, struct token_bucket *b,
		  vs_err_t *err)
{
	json_t *o = NULL;
	int rc = vjson_object(obj, path, key, &o, err);
	if (rc <= 0)
		return rc;
	cleanup_free char *at = vjson_join(path, key);
	uint64_t size = 0, burst = 0, refill = 0;
	if (vjson_require(vjson_uint64(o, at, "size", &size, err), at, "size", "an integer", err) <
		0 ||
	    vjson_require(vjson_uint64(o, at, "refill_time", &refill, err), at, "refill_time",
			  "an integer", err) < 0 ||
	    vjson_uint64(o, at, "one_time_burst", &burst, err) < 0)
		return -1;
	if (size && !refill)
		return vs_err(err, 0,
			      "%s.refill_time: must be more than 0 for a bucket of size %llu", at,
			      (unsigned long long)size);
	tb_init(b, size, burst, refill);
	return 1;
}

int vm_json_rate_limiter(json_t *obj, const char *key, struct rate_limiter *rl, vs_err_t *err)
{
	json_t *o = NULL;
	int rc = vjson_object(obj, NULL, key, &o, err);
	if (rc <= 0)
		return rc;
	if (bucket(o, key, "bandwidth", &rl->bw, err) < 0 ||
	    bucket(o, key, "ops", &rl->ops, err) < 0)
		return -1;
	return 1;
}

int vm_json_rate_limiter_patch(json_t *obj, const char *key, struct rl_patch *p, vs_err_t *err)
{
	*p = (struct rl_patch){0};
	rl_init(&p->rl);
	int rc = vm_json_rate_limiter(obj, key, &p->rl, err);
	if (rc <= 0)
		return rc;
	/* null is "not given", as everywhere in the schema */
	json_t *o = json_object_get(obj, key), *bw = json_object_get(o, "bandwidth"),
	       *ops = json_object_get(o, "ops");
	p->bw_set = bw && !json_is_null(bw);
	p->ops_set = ops && !json_is_null(ops);
	return 1;
}

void rl_patch_apply(struct rate_limiter *rl, const struct rl_patch *p)
{
	if (p->bw_set)
		rl->bw = p->rl.bw;
	if (p->ops_set)
		rl->ops = p->rl.ops;
}

int vm_json_only(json_t *obj, const char *const *keys, vs_err_t *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(obj, key, v)
	{
		const char *const *k = keys;
		while (*k && strcmp(*k, key) != 0)
			k++;
		if (!*k)
			return vs_err(err, 0, "%s: unknown or unsupported member", key);
	}
	return 0;
}

/* Firecracker's rule for drive_id and iface_id: non-empty, alphanumeric or `_`. */
int vm_json_api_id(json_t *obj, const char *key, vs_err_t *err)
{
	const char *id = NULL;
	if (vjson_require(vjson_string(obj, NULL, key, &id, err), NULL, key, "a string", err) < 0)
		return -1;
	if (!*id || strlen(id) > 64)
		return vs_err(err, 0, "%s: must be 1 to 64 characters", key);
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_')
			return vs_err(err, 0, "%s: `%s`: only letters, digits and `_`", key, id);
	return 0;
}

static int set_string(char **dst, const char *s, vs_err_t *err)
{
	free(*dst);
	*dst = strdup(s);
	return *dst ? 0 : vs_err(err, ENOMEM, "config file");
}

static int boot_source(struct vm_config *c, json_t *root, bool required, vs_err_t *err)
{
	json_t *o = NULL;
	int rc = vjson_object(root, NULL, "boot-source", &o, err);
	if (rc == 0 && !required)
		return 0;
	if (vjson_require(rc, NULL, "boot-source", "an object", err) < 0)
		return -1;
	static const char *const keys[] = {"kernel_image_path", "initrd_path", "boot_args", NULL};
	if (vm_json_only(o, keys, err) < 0)
		return vs_err_wrap(err, "boot-source");
	const char *kernel = NULL, *initrd = NULL, *args = NULL;
	if (vjson_require(vjson_string(o, "boot-source", "kernel_image_path", &kernel, err),
			  "boot-source", "kernel_image_path", "a string", err) < 0 ||
	    vjson_string(o, "boot-source", "initrd_path", &initrd, err) < 0 ||
	    vjson_string(o, "boot-source", "boot_args", &args, err) < 0)
		return -1;
	if (set_string(&c->kernel, kernel, err) < 0 ||
	    (initrd && set_string(&c->initrd, initrd, err) < 0) ||
	    set_string(&c->cmdline, args ? args : "", err) < 0)
		return -1;
	return 0;
}

static int machine_config(struct vm_config *c, json_t *root, vs_err_t *err)
{
	json_t *o = NULL;
	int rc = vjson_object(root, NULL, "machine-config", &o, err);
	if (rc <= 0)
		return rc; /* Firecracker's defaults: 1 vCPU, 128 MiB, as ours */
	const char *p = "machine-config";
	static const char *const keys[] = {"vcpu_count", "mem_size_mib", "smt", "track_dirty_pages",
					   "huge_pages", "cpu_template", "mem_merge", "mem_shared",
					   NULL};
	if (vm_json_only(o, keys, err) < 0)
		return vs_err_wrap(err, "%s", p);
	int64_t cpus = 0, mib = 0;
	if (vjson_require(vjson_int_range(o, p, "vcpu_count", 1, VM_CPUS_CEILING, &cpus, err), p,
			  "vcpu_count", "an integer", err) < 0 ||
	    vjson_require(vjson_int_range(o, p, "mem_size_mib", 1, MEM_MIB_MAX, &mib, err), p,
			  "mem_size_mib", "an integer", err) < 0)
		return -1;
	c->cpus = (unsigned)cpus;
	c->memory = (uint64_t)mib << 20;
	bool smt = false, dirty = false, merge = false, shared = false;
	const char *huge = NULL, *tmpl = NULL;
	if (vjson_bool(o, p, "smt", &smt, err) < 0 ||
	    vjson_bool(o, p, "mem_merge", &merge, err) < 0 ||
	    vjson_bool(o, p, "mem_shared", &shared, err) < 0 ||
	    vjson_bool(o, p, "track_dirty_pages", &dirty, err) < 0 ||
	    vjson_string(o, p, "huge_pages", &huge, err) < 0 ||
	    vjson_string(o, p, "cpu_template", &tmpl, err) < 0)
		return -1;
	if (smt)
		return vs_err(err, 0, "%s.smt: vessel's vCPUs are one thread per core (false)", p);
	if (tmpl)
		return vs_err(err, 0, "%s.cpu_template: not supported (vessel passes KVM's CPUID)",
			      p);
	if (huge && strcmp(huge, "None") != 0 && strcmp(huge, "2M") != 0)
		return vs_err(err, 0, "%s.huge_pages: `%s`: vessel takes None or 2M", p, huge);
	c->hugepages = huge && strcmp(huge, "2M") == 0;
	c->track_dirty = dirty;
	c->merge = merge;
	c->shared_memory = shared;
	return 0;
}

/* One device object of kind from `origin` (e.g. "drives[0]"). */
static int device(struct vm_config *c, const struct device_kind *k, json_t *obj, const char *origin,
		  vs_err_t *err)
{
	if (!json_is_object(obj))
		return vs_err(err, 0, "%s: must be an object", origin);
	void *config = NULL;
	if (vm_config_add_device(c, k, origin, &config, err) < 0)
		return -1;
	if (k->from_json(obj, config, err) < 0) {
		vm_config_drop_last(c);
		return vs_err_wrap(err, "%s", origin);
	}
	return 0;
}

/* Firecracker's root device: the drive with is_root_device goes first (so it is vda) and
 * the boot arguments get root=/dev/vda (ro or rw), or root=PARTUUID=... when given. */
static int root_drive(struct vm_config *c, json_t *drives, size_t *index, vs_err_t *err)
{
	for (size_t j = 0; j < json_array_size(drives); j++) {
		json_t *d = json_array_get(drives, j);
		cleanup_free char *origin = vjson_index("drives", j);
		if (!origin)
			return vs_err(err, ENOMEM, "drives");
		bool is_root = false, ro = false;
		const char *partuuid = NULL;
		if (!json_is_object(d))
			return vs_err(err, 0, "%s: must be an object", origin);
		if (vjson_require(vjson_bool(d, origin, "is_root_device", &is_root, err), origin,
				  "is_root_device", "a boolean", err) < 0 ||
		    vjson_bool(d, origin, "is_read_only", &ro, err) < 0 ||
		    vjson_string(d, origin, "partuuid", &partuuid, err) < 0)
			return -1;
		if (!is_root)
			continue;
		if (*index != SIZE_MAX)
			return vs_err(err, 0,
				      "%s.is_root_device: drives[%zu] is the root device already",
				      origin, *index);
		*index = j;
		if (device(c, device_kind_by_name("drive"), d, origin, err) < 0)
			return -1;
		cleanup_free char *args = NULL;
		/* no boot-source yet (an API call's partial description): no arguments yet */
		const char *base = c->cmdline ? c->cmdline : "";
		int n = partuuid ? asprintf(&args, "%s%sroot=PARTUUID=%s", base, *base ? " " : "",
					    partuuid)
				 : asprintf(&args, "%s%sroot=/dev/vda %s", base, *base ? " " : "",
					    ro ? "ro" : "rw");
		if (n < 0)
			return vs_err(err, ENOMEM, "boot-source.boot_args");
		free(c->cmdline);
		c->cmdline = args;
		args = NULL;
	}
	return 0;
}

static int devices(struct vm_config *c, json_t *root, vs_err_t *err)
{
	for (size_t i = 0; i < device_nkinds; i++) {
		const struct device_kind *k = device_kinds[i];
		json_t *v = k->json_key ? json_object_get(root, k->json_key) : NULL;
		if (!v || json_is_null(v))
			continue;
		if (!k->from_json)
			return vs_err(err, 0, "%s: not supported in a config file", k->json_key);
		if (!k->json_array) {
			if (device(c, k, v, k->json_key, err) < 0)
				return -1;
			continue;
		}
		if (!json_is_array(v))
			return vs_err(err, 0, "%s: must be an array", k->json_key);
		size_t root = SIZE_MAX;
		if (!strcmp(k->json_key, "drives") && root_drive(c, v, &root, err) < 0)
			return -1;
		for (size_t j = 0; j < json_array_size(v); j++) {
			if (j == root)
				continue; /* already first */
			cleanup_free char *origin = vjson_index(k->json_key, j);
			if (!origin)
				return vs_err(err, ENOMEM, "%s", k->json_key);
			if (device(c, k, json_array_get(v, j), origin, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int known_members(json_t *root, vs_err_t *err)
{
	const char *key;
	json_t *v;
	json_object_foreach(root, key, v)
	{
		if (!strcmp(key, "boot-source") || !strcmp(key, "machine-config"))
			continue;
		bool device_key = false;
		for (size_t i = 0; i < device_nkinds; i++)
			device_key |=
			    device_kinds[i]->json_key && !strcmp(device_kinds[i]->json_key, key);
		if (device_key)
			continue;
		for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++)
			if (!strcmp(key, unsupported[i]))
				return vs_err(err, 0, "%s: not supported by vessel yet", key);
		return vs_err(err, 0,
			      "%s: unknown member (boot-source, machine-config, drives, "
			      "network-interfaces, entropy, vsock, balloon, fs)",
			      key);
	}
	return 0;
}

/* Errors quote values and are one line: a control character in any string or key is
 * refused before anything reads it. */
static int printable(json_t *v, const char *path, vs_err_t *err)
{
	if (json_is_string(v)) {
		for (const char *p = json_string_value(v); *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				return vs_err(err, 0, "%s: a control character in a string", path);
		return 0;
	}
	const char *key;
	json_t *m;
	size_t i;
	if (json_is_object(v)) {
		json_object_foreach(v, key, m)
		{
			for (const char *p = key; *p; p++)
				if ((unsigned char)*p < 0x20 || *p == 0x7f)
					return vs_err(err, 0, "%s: a control character in a key",
						      *path ? path : "(top level)");
			cleanup_free char *at = vjson_join(path, key);
			if (!at)
				return vs_err(err, ENOMEM, "config");
			if (printable(m, at, err) < 0)
				return -1;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, m)
		{
			cleanup_free char *at = vjson_index(path, i);
			if (!at)
				return vs_err(err, ENOMEM, "config");
			if (printable(m, at, err) < 0)
				return -1;
		}
	}
	return 0;
}

static int from_json(struct vm_config *c, json_t *root, bool need_boot_source, vs_err_t *err)
{
	if (!json_is_object(root))
		return vs_err(err, 0, "must be a JSON object");
	if (printable(root, "", err) < 0 || known_members(root, err) < 0 ||
	    boot_source(c, root, need_boot_source, err) < 0 || machine_config(c, root, err) < 0 ||
	    devices(c, root, err) < 0)
		return -1;
	return 0;
}

int vm_config_from_json(struct vm_config *c, json_t *root, vs_err_t *err)
{
	return from_json(c, root, true, err);
}

int vm_config_from_json_partial(struct vm_config *c, json_t *root, vs_err_t *err)
{
	return from_json(c, root, false, err);
}

int vm_config_from_json_file(struct vm_config *c, const char *path, vs_err_t *err)
{
	json_t *root = vjson_load_file(path, CONFIG_FILE_MAX, err);
	if (!root)
		return -1;
	int r = vm_config_from_json(c, root, err);
	json_decref(root);
	if (r < 0)
		return vs_err_wrap(err, "%s", path);
	return 0;
}

int vm_json_set_tap(json_t *doc, const char *iface_id, const char *tap)
{
	json_t *it;
	size_t k;
	json_array_foreach(json_object_get(doc, "network-interfaces"), k, it)
	{
		const char *id = json_string_value(json_object_get(it, "iface_id"));
		if (id && strcmp(id, iface_id) == 0) {
			if (json_object_set_new(it, "host_dev_name", json_string(tap)) < 0) {
				errno = ENOMEM;
				return -1;
			}
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}
