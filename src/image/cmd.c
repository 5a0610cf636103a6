/* `vessel image ...`: the command table. Each command parses its own flags and calls
 * the store, the loader or the root mounter. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/json.h"
#include "base/log.h"
#include "base/util.h"
#include "image/bundle.h"
#include "image/image.h"
#include "image/load.h"
#include "image/store.h"

#define DEFAULT_MAX_LAYER (64ull << 30)

struct image_args {
	const char *store;
	const char *name;
	uint64_t max_layer;
	bool copy;
	char **pos; /* the positional arguments */
	int n_pos;
};

enum { OPT_STORE = 256, OPT_NAME, OPT_MAX_LAYER, OPT_COPY };

/* Flags any image command takes; the command checks the positionals. */
static int parse(int argc, char **argv, struct image_args *a, const char *usage, int min_pos,
		 int max_pos, vs_err_t *err)
{
	static const struct option opts[] = {
	    {"store", required_argument, NULL, OPT_STORE},
	    {"name", required_argument, NULL, OPT_NAME},
	    {"max-layer-size", required_argument, NULL, OPT_MAX_LAYER},
	    {"copy", no_argument, NULL, OPT_COPY},
	    {0},
	};
	*a = (struct image_args){.store = DEFAULT_STORE, .max_layer = DEFAULT_MAX_LAYER};
	optind = 0;
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_STORE:
			a->store = optarg;
			break;
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_MAX_LAYER:
			if (vs_parse_size(optarg, &a->max_layer) < 0 || a->max_layer == 0)
				return vs_err(err, 0, "--max-layer-size: `%s` is not a size",
					      optarg);
			break;
		case OPT_COPY:
			a->copy = true;
			break;
		default:
			return vs_err(err, 0, "usage: vessel image %s", usage);
		}
	}
	a->pos = argv + optind;
	a->n_pos = argc - optind;
	if (a->n_pos < min_pos || a->n_pos > max_pos)
		return vs_err(err, 0, "usage: vessel image %s", usage);
	return 0;
}

static int open_store(struct store *s, const char *path, bool exclusive, vs_err_t *err)
{
	if (store_open(s, path, exclusive, err) < 0) {
		store_close(s);
		return -1;
	}
	return 0;
}

static int cmd_load(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a,
		  "load [--store DIR] [--name NAME:TAG] [--max-layer-size N] "
		  "FILE|DIR",
		  1, 1, err) < 0)
		return 2;
	struct store s;
	if (open_store(&s, a.store, true, err) < 0)
		return -1;
	struct load_opts o = {.name = a.name, .max_layer = a.max_layer};
	int rc = image_load(&s, a.pos[0], &o, err);
	store_close(&s);
	return rc < 0 ? -1 : 0;
}

static uint64_t image_size(json_t *rec)
{
	uint64_t total = 0;
	size_t i;
	json_t *l;
	json_array_foreach(json_object_get(rec, "layers"), i, l) total +=
	    (uint64_t)json_integer_value(json_object_get(l, "size"));
	return total;
}

static int cmd_ls(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "ls [--store DIR]", 0, 0, err) < 0)
		return 2;
	struct store s;
	if (open_store(&s, a.store, false, err) < 0)
		return -1;
	json_t *all = store_images(&s, err);
	store_close(&s);
	if (!all)
		return -1;
	printf("%-40s %-12s %-6s %s\n", "NAME", "ID", "LAYERS", "SIZE");
	size_t i, k;
	json_t *rec, *n;
	json_array_foreach(all, i, rec)
	{
		const char *id = json_string_value(json_object_get(rec, "id")) + 7;
		json_t *names = json_object_get(rec, "names");
		size_t layers = json_array_size(json_object_get(rec, "layers"));
		double mib = (double)image_size(rec) / (1 << 20);
		if (json_array_size(names) == 0)
			printf("%-40s %-12.12s %-6zu %.1fMiB\n", "<none>", id, layers, mib);
		json_array_foreach(names, k, n)
		    printf("%-40s %-12.12s %-6zu %.1fMiB\n", json_string_value(n), id, layers, mib);
	}
	json_decref(all);
	return 0;
}

static int cmd_inspect(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "inspect [--store DIR] NAME", 1, 1, err) < 0)
		return 2;
	struct store s;
	bool by_name;
	if (open_store(&s, a.store, false, err) < 0)
		return -1;
	json_t *rec = store_find(&s, a.pos[0], &by_name, err);
	int rc = -1;
	if (rec) {
		cleanup_free char *path = NULL;
		const char *id = json_string_value(json_object_get(rec, "id"));
		if (asprintf(&path, "%s/blobs/sha256/%s", s.path, id + 7) < 0) {
			vs_err(err, ENOMEM, "inspect");
		} else {
			json_t *config = vjson_load_file(path, 16 << 20, err);
			if (config) {
				json_object_set_new(rec, "config", config);
				cleanup_free char *text = json_dumps(rec, JSON_INDENT(2));
				if (text) {
					puts(text);
					rc = 0;
				}
			}
		}
	}
	json_decref(rec);
	store_close(&s);
	return rc;
}

static int gc(struct store *s, vs_err_t *err)
{
	unsigned layers, blobs;
	if (store_gc(s, &layers, &blobs, err) < 0)
		return -1;
	if (layers || blobs)
		printf("Removed %u layers and %u blobs\n", layers, blobs);
	return 0;
}

static int cmd_rm(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "rm [--store DIR] NAME|ID", 1, 1, err) < 0)
		return 2;
	struct store s;
	bool by_name;
	if (open_store(&s, a.store, true, err) < 0)
		return -1;
	json_t *rec = store_find(&s, a.pos[0], &by_name, err);
	int rc = rec ? 0 : -1;
	if (rec && by_name) {
		/* the name, then the image when it was its last */
		json_t *names = json_object_get(rec, "names");
		cleanup_free char *norm = image_name_normalize(a.pos[0]);
		cleanup_free char *local = NULL;
		if (asprintf(&local, "localhost/%s", norm) < 0)
			local = NULL;
		for (size_t i = json_array_size(names); i-- > 0;) {
			const char *n = json_string_value(json_array_get(names, i));
			if (strcmp(n, a.pos[0]) == 0 || strcmp(n, norm) == 0 ||
			    (local && strcmp(n, local) == 0)) {
				printf("Untagged: %s\n", n);
				json_array_remove(names, i);
			}
		}
		if (json_array_size(names))
			rc = store_write_image(&s, rec, err);
	}
	if (rc == 0 && json_array_size(json_object_get(rec, "names")) == 0 &&
	    (rc = store_delete_image(&s, json_string_value(json_object_get(rec, "id")), err)) ==
		0) {
		printf("Deleted: %s\n", json_string_value(json_object_get(rec, "id")));
		rc = gc(&s, err);
	}
	json_decref(rec);
	store_close(&s);
	return rc;
}

static int cmd_prune(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "prune [--store DIR]", 0, 0, err) < 0)
		return 2;
	struct store s;
	if (open_store(&s, a.store, true, err) < 0)
		return -1;
	json_t *all = store_images(&s, err);
	int rc = all ? 0 : -1;
	size_t i;
	json_t *rec;
	json_array_foreach(all, i, rec)
	{
		if (rc == 0 && json_array_size(json_object_get(rec, "names")) == 0) {
			const char *id = json_string_value(json_object_get(rec, "id"));
			rc = store_delete_image(&s, id, err);
			if (rc == 0)
				printf("Deleted: %s\n", id);
		}
	}
	json_decref(all);
	if (rc == 0)
		rc = gc(&s, err);
	store_close(&s);
	return rc;
}

static int cmd_mount(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "mount [--store DIR] NAME TARGET RWDIR | --copy NAME TARGET", 2,
		  3, err) < 0)
		return 2;
	if (a.copy != (a.n_pos == 2))
		return vs_err(err, 0,
			      "usage: vessel image mount NAME TARGET RWDIR | --copy NAME "
			      "TARGET"),
		       2;
	if (a.copy)
		return image_copy_root(a.store, a.pos[0], a.pos[1], err) < 0 ? -1 : 0;
	bool copied;
	if (image_mount_root(a.store, a.pos[0], a.pos[1], a.pos[2], &copied, err) < 0)
		return -1;
	return 0;
}

static int cmd_diff(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "diff [--store DIR] NAME RWDIR", 2, 2, err) < 0)
		return 2;
	return image_diff(a.store, a.pos[0], a.pos[1], stdout, err) < 0 ? -1 : 0;
}

static int cmd_umount(int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "umount TARGET", 1, 1, err) < 0)
		return 2;
	return image_umount_root(a.pos[0], err);
}

static int cmd_bundle(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	struct image_args a;
	if (parse(argc, argv, &a, "bundle [--store DIR] NAME DIR", 2, 2, err) < 0)
		return 2;
	const char *dir = a.pos[1];
	cleanup_free char *rootfs = NULL, *rw = NULL;
	if (asprintf(&rootfs, "%s/rootfs", dir) < 0 || asprintf(&rw, "%s/rw", dir) < 0)
		return vs_err(err, ENOMEM, "bundle");
	struct store s;
	bool by_name, copied;
	if (open_store(&s, a.store, false, err) < 0)
		return -1;
	json_t *rec = store_find(&s, a.pos[0], &by_name, err);
	int rc = rec ? 0 : -1;
	if (rc == 0)
		rc = vs_mkdir_p(dir, 0755, err);
	if (rc == 0)
		rc = bundle_write_config(g, &s, rec, dir, err);
	json_decref(rec);
	store_close(&s);
	if (rc == 0)
		rc = image_mount_root(a.store, a.pos[0], rootfs, rw, &copied, err);
	return rc;
}

static const char image_help[] =
    "usage: vessel image COMMAND [--store DIR] ...\n"
    "\n"
    "commands:\n"
    "  load     load an OCI image layout or docker-archive (dir or tar):\n"
    "           load [--name NAME:TAG] [--max-layer-size N] FILE|DIR\n"
    "  ls       list the images\n"
    "  inspect  print an image's record and config: inspect NAME\n"
    "  rm       remove a name, and the image with its last: rm NAME|ID\n"
    "  prune    remove unnamed images and unused layers\n"
    "  mount    overlayfs root of an image: mount NAME TARGET RWDIR (its upper and\n"
    "           work dirs); or a plain copy of the layers: mount --copy NAME TARGET\n"
    "  umount   umount TARGET\n"
    "  diff     what a root mounted with RWDIR changed (A, C, D): diff NAME RWDIR\n"
    "  bundle   an OCI bundle: DIR/config.json from the image config, DIR/rootfs\n"
    "           mounted (DIR/rw its upper): bundle NAME DIR\n"
    "\n"
    "--store DIR: the image store (default " DEFAULT_STORE ")\n";

int image_main(const struct vs_globals *g, int argc, char **argv, vs_err_t *err)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(image_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv, vs_err_t *err);
	} table[] = {
	    {"load", cmd_load},	    {"ls", cmd_ls},	  {"inspect", cmd_inspect},
	    {"rm", cmd_rm},	    {"prune", cmd_prune}, {"mount", cmd_mount},
	    {"umount", cmd_umount}, {"diff", cmd_diff},
	};
	int rc;
	if (strcmp(argv[1], "bundle") == 0) {
		rc = cmd_bundle(g, argc - 1, argv + 1, err);
	} else {
		size_t i = 0;
		while (i < ARRAY_SIZE(table) && strcmp(table[i].name, argv[1]) != 0)
			i++;
		if (i == ARRAY_SIZE(table)) {
			vs_err(err, 0, "image: unknown command `%s` (see vessel image --help)",
			       argv[1]);
			vs_report(*err);
			return 2;
		}
		rc = table[i].fn(argc - 1, argv + 1, err);
	}
	if (rc == 2) {
		vs_report(*err);
		return 2;
	}
	return rc;
}
