/* Arbitrary bytes as an image layer blob (plain, gzip or zstd tar), unpacked into a
 * scratch directory. Found: crashes, UB, leaks; and any file the unpacker makes outside
 * the layer root (checked below: the scratch directory holds nothing but the root). */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "image/layer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int scratch = -1;
static char scratch_path[] = "/tmp/vessel-fuzz-layer-XXXXXX";

static void remove_scratch(void)
{
	vs_err_t err = NULL;
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmp >= 0)
		vs_remove_tree(tmp, scratch_path + 5, &err);
	vs_err_free(&err);
}

static size_t entries(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d = fdopendir(fd);
	size_t n = 0;
	struct dirent *de;
	rewinddir(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (scratch < 0) {
		if (!mkdtemp(scratch_path))
			abort();
		scratch = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		atexit(remove_scratch);
	}
	int blob = memfd_create("blob", MFD_CLOEXEC);
	if (blob < 0 || write(blob, data, size) != (ssize_t)size || lseek(blob, 0, SEEK_SET) < 0)
		abort();
	if (mkdirat(scratch, "root", 0755) < 0)
		abort();
	int root = openat(scratch, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct layer_expect x = {.blob_size = -1, .max_bytes = 16 << 20};
	struct layer_result res;
	vs_err_t err = NULL;
	layer_unpack(blob, root, "fuzz", &x, &res, &err);
	vs_err_free(&err);
	close(root);
	close(blob);
	if (entries(scratch) != 1)
		__builtin_trap(); /* something landed beside the layer root */
	if (vs_remove_tree(scratch, "root", &err) < 0)
		abort();
	return 0;
}
