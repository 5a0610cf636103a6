/* src/image's pure parts: the image JSON parsers (errors name the field), digests,
 * ChainIDs, archive paths, names; and the layer reader on small in-memory blobs. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "image/layer.h"
#include "image/manifest.h"
#include "image/overlay.h"
#include "image/store.h"

#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define B64 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static int parse_index(const char *json, struct index *x, vs_err_t *err)
{
	return index_parse(json, strlen(json), "index.json", x, err);
}

Test(image_manifest, index_with_platform_and_ref_name)
{
	struct index x;
	vs_err_t err = NULL;
	const char *j = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
			"\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:" A64
			"\",\"size\":7,\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"},"
			"\"annotations\":{\"org.opencontainers.image.ref.name\":\"a/b:1\"}}]}";
	cr_assert_eq(parse_index(j, &x, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(x.n, 1);
	cr_assert_str_eq(x.manifests[0].ref_name, "a/b:1");
	cr_assert_eq(x.manifests[0].size, 7);
	cr_assert_not(descriptor_fits_host(&x.manifests[0]));
	cr_assert_eq(media_kind_of(x.manifests[0].media_type), MEDIA_MANIFEST);
	index_free(&x);
}

Test(image_manifest, bad_digest_is_named_by_its_path)
{
	struct index x;
	vs_err_t err = NULL;
	const char *j = "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":"
			"\"sha256:ABC\",\"size\":1}]}";
	cr_assert_eq(parse_index(j, &x, &err), -1);
	cr_assert(strstr(err->msg, "index.json.manifests[0].digest"), "%s", err->msg);
	vs_err_free(&err);
}

Test(image_manifest, manifest_refuses_a_layer_type_it_cannot_read)
{
	struct manifest m;
	vs_err_t err = NULL;
	const char *j = "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
			"\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" A64
			"\",\"size\":2},\"layers\":[{\"mediaType\":\"application/x-squashfs\","
			"\"digest\":\"sha256:" B64 "\",\"size\":3}]}";
	cr_assert_eq(manifest_parse(j, strlen(j), "m", &m, &err), -1);
	cr_assert(strstr(err->msg, "m.layers[0].mediaType"), "%s", err->msg);
	vs_err_free(&err);
}

Test(image_manifest, docker_v2_manifest_and_config)
{
	struct manifest m;
	struct image_config c;
	vs_err_t err = NULL;
	const char *j =
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":"
	    "\"application/vnd.docker.container.image.v1+json\",\"digest\":\"sha256:" A64
	    "\",\"size\":2},\"layers\":[{\"mediaType\":"
	    "\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
	    "\"digest\":\"sha256:" B64 "\",\"size\":3}]}";
	cr_assert_eq(manifest_parse(j, strlen(j), "m", &m, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(m.n_layers, 1);
	manifest_free(&m);
	const char *cfg = "{\"os\":\"linux\",\"architecture\":\"amd64\",\"rootfs\":{\"type\":"
			  "\"layers\",\"diff_ids\":[\"sha256:" A64 "\",\"sha256:" B64 "\"]}}";
	cr_assert_eq(image_config_parse(cfg, strlen(cfg), "c", &c, &err), 0);
	cr_assert_eq(c.n, 2);
	cr_assert_str_eq(c.arch, "amd64");
	image_config_free(&c);
}

Test(image_manifest, docker_archive_paths_stay_inside)
{
	struct docker_manifest d;
	vs_err_t err = NULL;
	const char *j = "[{\"Config\":\"c.json\",\"RepoTags\":[\"x:1\"],\"Layers\":"
			"[\"a/layer.tar\",\"../../etc/shadow\"]}]";
	cr_assert_eq(docker_manifest_parse(j, strlen(j), "manifest.json", &d, &err), -1);
	cr_assert(strstr(err->msg, "manifest.json[0].Layers[1]"), "%s", err->msg);
	vs_err_free(&err);
}

Test(image_manifest, digests_and_paths)
{
	cr_assert(digest_valid("sha256:" A64));
	cr_assert_not(digest_valid("sha512:" A64));
	cr_assert_not(digest_valid("sha256:" A64 "a"));
	cr_assert(archive_path_safe("blobs/sha256/x"));
	cr_assert(archive_path_safe("a..b/c"));
	cr_assert_not(archive_path_safe("/abs"));
	cr_assert_not(archive_path_safe("a/../../b"));
	cr_assert_not(archive_path_safe(""));
}

Test(image_store, chain_ids_follow_the_image_spec)
{
	char out[DIGEST_LEN + 1];
	chain_id_next(NULL, "sha256:" A64, out);
	cr_assert_str_eq(out, "sha256:" A64);
	chain_id_next("sha256:" A64, "sha256:" B64, out);
	/* sha256("sha256:aaa... sha256:bbb...") */
	cr_assert_str_eq(out,
			 "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c");
}

Test(image_store, names_get_latest_when_untagged)
{
	char *n = image_name_normalize("busybox");
	cr_assert_str_eq(n, "busybox:latest");
	free(n);
	n = image_name_normalize("localhost:5000/busybox");
	cr_assert_str_eq(n, "localhost:5000/busybox:latest");
	free(n);
	n = image_name_normalize("a/b:1");
	cr_assert_str_eq(n, "a/b:1");
	free(n);
}

/* A 1-entry ustar archive of "f" holding "hi", built by hand (512-byte blocks). */
static size_t tiny_tar(unsigned char *buf, const char *name, char type, const char *link)
{
	memset(buf, 0, 2048);
	strcpy((char *)buf, name);
	memcpy(buf + 100, "0000644", 7);
	memcpy(buf + 108, "0000000", 7);
	memcpy(buf + 116, "0000000", 7);
	memcpy(buf + 124, type == '0' ? "00000000002" : "00000000000", 11);
	memcpy(buf + 136, "00000000000", 11);
	buf[156] = (unsigned char)type;
	if (link)
		strcpy((char *)buf + 157, link);
	memcpy(buf + 257,
	       "ustar\0"
	       "00",
	       8);
	memset(buf + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += buf[i];
	snprintf((char *)buf + 148, 8, "%06o", sum);
	if (type == '0')
		memcpy(buf + 512, "hi", 2);
	return 2048;
}

static int unpack(const unsigned char *blob, size_t len, char *dir, vs_err_t *err)
{
	int fd = memfd_create("blob", MFD_CLOEXEC);
	cr_assert(fd >= 0 && write(fd, blob, len) == (ssize_t)len);
	lseek(fd, 0, SEEK_SET);
	cr_assert(mkdtemp(dir));
	int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct layer_expect x = {.blob_size = (int64_t)len, .max_bytes = 1 << 20};
	struct layer_result res;
	int rc = layer_unpack(fd, root, "layer", &x, &res, err);
	close(fd);
	close(root);
	return rc;
}

Test(image_layer, a_plain_tar_unpacks)
{
	unsigned char buf[2048];
	char dir[] = "/tmp/vessel-unit-layer-XXXXXX";
	vs_err_t err = NULL;
	size_t n = tiny_tar(buf, "d/f", '0', NULL);
	cr_assert_eq(unpack(buf, n, dir, &err), 0, "%s", err ? err->msg : "");
	char path[128], text[8] = {0};
	snprintf(path, sizeof(path), "%s/d/f", dir);
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0 && read(fd, text, sizeof(text)) == 2);
	close(fd);
	cr_assert_str_eq(text, "hi");
	int parent = open("/tmp", O_RDONLY | O_DIRECTORY);
	vs_remove_tree(parent, dir + 5, &err);
	close(parent);
}

Test(image_layer, dotdot_and_escaping_links_are_refused)
{
	static const struct {
		const char *name;
		char type;
		const char *link;
		const char *says;
	} cases[] = {
	    {"../x", '0', NULL, "`..` leaves the layer"},
	    {"/x", '0', NULL, "absolute path refused"},
	    {"l", '2', "../..", "leaves the layer: refused"},
	    {"h", '1', "../etc/passwd", "`..` leaves the layer"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned char buf[2048];
		char dir[] = "/tmp/vessel-unit-layer-XXXXXX";
		vs_err_t err = NULL;
		size_t n = tiny_tar(buf, cases[i].name, cases[i].type, cases[i].link);
		cr_assert_eq(unpack(buf, n, dir, &err), -1, "%s", cases[i].name);
		cr_assert(strstr(err->msg, cases[i].says), "%s: %s", cases[i].name, err->msg);
		vs_err_free(&err);
		int parent = open("/tmp", O_RDONLY | O_DIRECTORY);
		vs_remove_tree(parent, dir + 5, &err);
		close(parent);
	}
}

Test(image_layer, a_blob_longer_than_its_descriptor_is_refused)
{
	unsigned char buf[2048];
	char dir[] = "/tmp/vessel-unit-layer-XXXXXX";
	vs_err_t err = NULL;
	size_t n = tiny_tar(buf, "f", '0', NULL);
	int fd = memfd_create("blob", MFD_CLOEXEC);
	cr_assert(write(fd, buf, n) == (ssize_t)n);
	lseek(fd, 0, SEEK_SET);
	cr_assert(mkdtemp(dir));
	int root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct layer_expect x = {.blob_size = 1000, .max_bytes = 1 << 20};
	struct layer_result res;
	cr_assert_eq(layer_unpack(fd, root, "layer", &x, &res, &err), -1);
	cr_assert(strstr(err->msg, "larger than its descriptor"), "%s", err->msg);
	vs_err_free(&err);
	close(fd);
	close(root);
	int parent = open("/tmp", O_RDONLY | O_DIRECTORY);
	vs_remove_tree(parent, dir + 5, &err);
	close(parent);
}

/* The old kernels' overlay mount (one lowerdir= of paths relative to the layers dir),
 * which this kernel (lowerdir+) never falls back to: mounted here directly. */
Test(image_overlay, legacy_lowerdir_string_mounts_and_refuses_past_a_page)
{
	char dir[] = "/tmp/vessel-unit-ovl-XXXXXX";
	cr_assert(mkdtemp(dir));
	char p[4][512], lower_a[128], lower_b[128], layers[128];
	snprintf(layers, sizeof(layers), "%s/layers", dir);
	snprintf(lower_a, sizeof(lower_a), "%s/layers/a", dir);
	snprintf(lower_b, sizeof(lower_b), "%s/layers/b", dir);
	snprintf(p[0], sizeof(p[0]), "%s/upper", dir);
	snprintf(p[1], sizeof(p[1]), "%s/work", dir);
	snprintf(p[2], sizeof(p[2]), "%s/target", dir);
	cr_assert_eq(mkdir(layers, 0755), 0);
	cr_assert_eq(mkdir(lower_a, 0755), 0);
	cr_assert_eq(mkdir(lower_b, 0755), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(mkdir(p[i], 0755), 0);
	snprintf(p[3], sizeof(p[3]), "%s/only-in-b", lower_b);
	int fd = open(p[3], O_CREAT | O_WRONLY, 0644);
	cr_assert(fd >= 0);
	close(fd);
	const char *lowers[] = {lower_a, lower_b};
	vs_err_t err = NULL;
	cr_assert_eq(overlay_mount_legacy(lowers, 2, layers, p[0], p[1], p[2], &err), 0, "%s",
		     err ? err->msg : "");
	snprintf(p[3], sizeof(p[3]), "%s/target/only-in-b", dir);
	cr_assert_eq(access(p[3], F_OK), 0);
	cr_assert_eq(umount2(p[2], 0), 0);

	/* 80 layers of 70 bytes each: past one page */
	const char *many[80];
	char names[80][128];
	for (int i = 0; i < 80; i++) {
		snprintf(names[i], sizeof(names[i]), "%s/layers/%064d/root", dir, i);
		many[i] = names[i];
	}
	cr_assert_eq(overlay_mount_legacy(many, 80, layers, p[0], p[1], p[2], &err), -1);
	cr_assert(strstr(err->msg, "one page"), "%s", err->msg);
	vs_err_free(&err);
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY);
	vs_remove_tree(tmp, dir + 5, &err);
	close(tmp);
}
