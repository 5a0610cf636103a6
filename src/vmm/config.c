/* The VM config: defaults, the device list, the checks any source shares. */
#include "vmm/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void vm_config_init(struct vm_config *c)
{
	*c = (struct vm_config){.cpus = 1, .memory = VM_DEFAULT_MEMORY};
}

void vm_config_drop_last(struct vm_config *c)
{
	if (!c->ndevices)
		return;
	struct vm_config_device *d = &c->devices[--c->ndevices];
	if (d->config && d->kind->config_free)
		d->kind->config_free(d->config);
	free(d->config);
	free(d->origin);
	*d = (struct vm_config_device){0};
}

void vm_config_free(struct vm_config *c)
{
	while (c->ndevices)
		vm_config_drop_last(c);
	free(c->devices);
	free(c->kernel);
	free(c->initrd);
	free(c->cmdline);
	vm_config_init(c);
}

unsigned vm_config_count(const struct vm_config *c, const struct device_kind *kind)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->ndevices; i++)
		n += c->devices[i].kind == kind;
	return n;
}

static unsigned count_virtio(const struct vm_config *c)
{
	unsigned n = 0;
	for (unsigned i = 0; i < c->ndevices; i++)
		n += c->devices[i].kind->virtio;
	return n;
}

int vm_config_add_device(struct vm_config *c, const struct device_kind *kind, const char *origin,
			 void **config, vs_err_t *err)
{
	if (kind->virtio && count_virtio(c) >= VM_MAX_VIRTIO)
		return vs_err(err, 0, "%s: more than %d virtio devices", origin, VM_MAX_VIRTIO);
	struct vm_config_device *d = realloc(c->devices, (c->ndevices + 1) * sizeof(*d));
	if (!d)
		return vs_err(err, ENOMEM, "%s", origin);
	c->devices = d;
	d = &c->devices[c->ndevices];
	*d = (struct vm_config_device){.kind = kind, .origin = strdup(origin)};
	if (kind->config_size)
		d->config = calloc(1, kind->config_size);
	if (!d->origin || (kind->config_size && !d->config)) {
		free(d->origin);
		free(d->config);
		return vs_err(err, ENOMEM, "%s", origin);
	}
	c->ndevices++;
	if (config)
		*config = d->config;
	return 0;
}

int vm_config_check(const struct vm_config *c, vs_err_t *err)
{
	if (c->demo && (c->kernel || c->initrd))
		return vs_err(err, 0, "--demo runs the built-in guest: drop --kernel/--initrd");
	return 0;
}

int vm_parse_cpus(const char *s, unsigned *out, vs_err_t *err)
{
	char *end;
	errno = 0;
	if (!s || *s < '0' || *s > '9')
		return vs_err(err, 0, "--cpus `%s`: must be a positive number", s ? s : "");
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end)
		return vs_err(err, 0, "--cpus `%s`: must be a positive number", s);
	if (v == 0)
		return vs_err(err, 0, "--cpus 0: a VM needs at least one vCPU");
	if (v > VM_CPUS_CEILING)
		return vs_err(err, 0, "--cpus %lu: too many (vessel's limit is %d)", v,
			      VM_CPUS_CEILING);
	*out = (unsigned)v;
	return 0;
}

int vm_parse_memory(const char *s, uint64_t *out, vs_err_t *err)
{
	if (vs_parse_size(s, out) < 0)
		return vs_err(err, 0, "--memory `%s`: not a size (use e.g. 512M, 2G or 131072K)",
			      s);
	return 0;
}

/* Linux splits the command line at spaces unless a word is in double quotes, which
 * it strips (next_arg()); there is no escape for a quote itself. */
char *vm_build_cmdline(const char *base, char **words, int n)
{
	size_t len = strlen(base) + 1;
	if (n > 0)
		len += 4;
	for (int i = 0; i < n; i++) {
		if (strchr(words[i], '"')) {
			errno = EINVAL;
			return NULL;
		}
		len += strlen(words[i]) + 3;
	}
	char *s = malloc(len);
	if (!s)
		return NULL;
	char *p = stpcpy(s, base);
	if (n > 0)
		p = stpcpy(p, *base ? " --" : "--");
	for (int i = 0; i < n; i++) {
		bool quote = !*words[i] || strpbrk(words[i], " \t\n");
		*p++ = ' ';
		if (quote)
			*p++ = '"';
		p = stpcpy(p, words[i]);
		if (quote)
			*p++ = '"';
	}
	*p = '\0';
	return s;
}

int vm_spec_next(const char *spec, const char **pos, struct vm_spec_opt *o, vs_err_t *err)
{
	const char *p = *pos;
	if (p == spec)
		for (const char *q = spec; *q; q++)
			if (!isprint((unsigned char)*q))
				return vs_err(err, 0,
					      "byte %#x at offset %zu is not a printable character",
					      (unsigned char)*q, (size_t)(q - spec));
	if (!*p) {
		/* a trailing comma: said after the option before it was taken */
		if (p != spec && p[-1] == ',')
			return vs_err(err, 0, "empty option (a stray `,`)");
		return 0;
	}
	const char *end = strchrnul(p, ',');
	size_t len = (size_t)(end - p);
	if (len == 0)
		return vs_err(err, 0, "empty option (a stray `,`)");
	const char *eq = memchr(p, '=', len);
	*o = (struct vm_spec_opt){.text = p,
				  .key = p,
				  .val = eq ? eq + 1 : NULL,
				  .len = len,
				  .klen = eq ? (size_t)(eq - p) : len,
				  .vlen = eq ? (size_t)(end - eq - 1) : 0};
	*pos = *end ? end + 1 : end;
	return 1;
}

bool vm_spec_key(const struct vm_spec_opt *o, const char *key)
{
	return o->klen == strlen(key) && memcmp(o->key, key, o->klen) == 0;
}
