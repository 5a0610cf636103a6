#include "vmm/virtio/blk_spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int parse_id(struct blk_spec *s, const char *v, vs_err_t *err)
{
	size_t len = v ? strlen(v) : 0;
	if (len == 0)
		return vs_err(err, 0, "id: needs a name (id=NAME)");
	if (len > VIRTIO_BLK_ID_BYTES)
		return vs_err(err, 0, "id: `%s` is longer than %d bytes", v, VIRTIO_BLK_ID_BYTES);
	for (const char *p = v; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return vs_err(err, 0, "id: `%s`: only printable ASCII without spaces", v);
	memcpy(s->id, v, len + 1);
	s->has_id = true;
	return 0;
}

static int parse_flag(bool *flag, const char *key, const char *v, vs_err_t *err)
{
	if (v)
		return vs_err(err, 0, "%s: takes no value", key);
	*flag = true;
	return 0;
}

static int parse_option(struct blk_spec *s, char *opt, vs_err_t *err)
{
	char *v = strchr(opt, '=');
	if (v)
		*v++ = '\0';
	if (!strcmp(opt, "ro"))
		return parse_flag(&s->ro, opt, v, err);
	if (!strcmp(opt, "direct"))
		return parse_flag(&s->direct, opt, v, err);
	if (!strcmp(opt, "id"))
		return parse_id(s, v, err);
	int r = rl_parse_option(&s->rl, opt, v, err);
	if (r != 0)
		return r < 0 ? -1 : 0;
	return vs_err(err, 0,
		      "`%s`: unknown option (ro, id=NAME, direct, bw=RATE, iops=N, "
		      "bw_burst=SIZE, iops_burst=N)",
		      opt);
}

int blk_spec_parse(const char *spec, struct blk_spec *out, vs_err_t *err)
{
	*out = (struct blk_spec){0};
	rl_init(&out->rl);
	char *copy = strdup(spec);
	if (!copy)
		return vs_err(err, ENOMEM, "--disk");
	char *save = NULL, *opt = copy;
	char *comma = strchr(copy, ',');
	if (comma)
		*comma = '\0';
	if (!*copy) {
		free(copy);
		return vs_err(err, 0, "needs a file or block device (PATH[,options])");
	}
	out->path = strdup(copy);
	if (!out->path) {
		free(copy);
		return vs_err(err, ENOMEM, "--disk");
	}
	int r = 0;
	for (opt = comma ? strtok_r(comma + 1, ",", &save) : NULL; opt && r == 0;
	     opt = strtok_r(NULL, ",", &save))
		r = parse_option(out, opt, err);
	free(copy);
	if (r == 0)
		r = rl_check(&out->rl, err);
	if (r < 0) {
		blk_spec_free(out);
		return -1;
	}
	return 0;
}

void blk_spec_free(struct blk_spec *s)
{
	free(s->path);
	s->path = NULL;
}
