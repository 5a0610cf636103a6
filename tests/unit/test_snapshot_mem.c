/* Memory files: a full file maps back as the RAM it was written from, privately (a
 * guest's write never reaches the file); a wrong size is refused; a diff holds only
 * the dirty pages and, merged into its base, gives the later RAM. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/memory.h"
#include "vmm/snapshot/mem_file.h"

static char dir[] = "/tmp/vessel-snapmem-XXXXXX";
static char full[64], diff[64];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(full, sizeof(full), "%s/full", dir);
	snprintf(diff, sizeof(diff), "%s/diff", dir);
}

static void teardown(void)
{
	unlink(full);
	unlink(diff);
	rmdir(dir);
}

static void ram(struct guest_mem *m)
{
	vs_err_t err = NULL;
	memset(m, 0, sizeof(*m));
	cr_assert_eq(guest_mem_map(m, GUEST_MEM_MIN, 0, &err), 0);
}

Test(snapshot_mem, full_maps_back_privately, .init = setup, .fini = teardown)
{
	struct guest_mem a, b;
	ram(&a);
	memset(a.host + 4096 * 3, 0xab, 4096);
	a.host[GUEST_MEM_MIN - 1] = 7;
	vs_err_t err = NULL;
	cr_assert_eq(mem_file_write_full(&a, full, &err), 0, "%s", err ? err->msg : "");
	memset(&b, 0, sizeof(b));
	cr_assert_eq(guest_mem_map_file(&b, full, GUEST_MEM_MIN, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(memcmp(a.host, b.host, GUEST_MEM_MIN), 0);
	b.host[4096 * 3] = 1; /* the guest writes: its copy, not the file */
	guest_mem_unmap(&b);
	memset(&b, 0, sizeof(b));
	cr_assert_eq(guest_mem_map_file(&b, full, GUEST_MEM_MIN, &err), 0);
	cr_assert_eq(b.host[4096 * 3], 0xab);
	guest_mem_unmap(&b);
	guest_mem_unmap(&a);
}

Test(snapshot_mem, wrong_size_is_refused, .init = setup, .fini = teardown)
{
	struct guest_mem a, b;
	ram(&a);
	vs_err_t err = NULL;
	cr_assert_eq(mem_file_write_full(&a, full, &err), 0);
	memset(&b, 0, sizeof(b));
	cr_assert_eq(guest_mem_map_file(&b, full, 2 * GUEST_MEM_MIN, &err), -1);
	cr_assert(strstr(err->msg, "is 2097152 bytes, the snapshot's guest has 4194304 bytes"),
		  "%s", err->msg);
	cr_assert_null(b.host);
	vs_err_free(&err);
	guest_mem_unmap(&a);
}

Test(snapshot_mem, diff_on_full_gives_the_later_ram, .init = setup, .fini = teardown)
{
	struct guest_mem a, b;
	ram(&a);
	memset(a.host, 0x11, GUEST_MEM_MIN);
	vs_err_t err = NULL;
	cr_assert_eq(mem_file_write_full(&a, full, &err), 0);
	/* later: page 5 changes, page 9 becomes zeros (a dirty page of zeros must still
	 * overwrite its base) */
	uint64_t npages = guest_mem_npages(&a);
	uint64_t *dirty = calloc((npages + 63) / 64, sizeof(uint64_t));
	memset(a.host + 5 * 4096, 0x22, 4096);
	memset(a.host + 9 * 4096, 0, 4096);
	dirty[0] = (1ull << 5) | (1ull << 9);
	cr_assert_eq(mem_file_write_diff(&a, dirty, diff, &err), 0);
	struct stat st;
	cr_assert_eq(stat(diff, &st), 0);
	cr_assert_eq((uint64_t)st.st_size, GUEST_MEM_MIN);
	cr_assert_lt((uint64_t)st.st_blocks * 512, GUEST_MEM_MIN / 4, "the diff is not sparse");
	cr_assert_eq(mem_file_merge(full, diff, &err), 0, "%s", err ? err->msg : "");
	memset(&b, 0, sizeof(b));
	cr_assert_eq(guest_mem_map_file(&b, full, GUEST_MEM_MIN, &err), 0);
	cr_assert_eq(memcmp(a.host, b.host, GUEST_MEM_MIN), 0);
	guest_mem_unmap(&b);
	guest_mem_unmap(&a);
	free(dirty);
}

Test(snapshot_mem, merge_refuses_another_size, .init = setup, .fini = teardown)
{
	struct guest_mem a;
	ram(&a);
	vs_err_t err = NULL;
	cr_assert_eq(mem_file_write_full(&a, full, &err), 0);
	int fd = open(diff, O_WRONLY | O_CREAT, 0600);
	cr_assert_eq(ftruncate(fd, 4096), 0);
	close(fd);
	cr_assert_eq(mem_file_merge(full, diff, &err), -1);
	cr_assert(strstr(err->msg, "not the same guest"), "%s", err->msg);
	vs_err_free(&err);
	guest_mem_unmap(&a);
}
