/* Device blobs in the state file: each device gets back the blob its kind saved, in
 * vm->devices order; a VM whose devices differ from the file's is refused before any
 * device is touched. Fake kinds stand in for the real ones (their blobs are theirs). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/device.h"
#include "vmm/memory.h"
#include "vmm/snapshot/device_state.h"
#include "vmm/vm.h"

struct counter {
	int value;
	int restores;
};

static void *counter_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)vm;
	(void)err;
	struct counter *c = calloc(1, sizeof(*c));
	c->value = config ? *(const int *)config : 0;
	return c;
}

static int counter_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	(void)err;
	*blob = malloc(sizeof(int));
	memcpy(*blob, &((struct counter *)state)->value, sizeof(int));
	*len = sizeof(int);
	return 0;
}

static int counter_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	if (len != sizeof(int))
		return vs_err(err, 0, "counter blob is %zu bytes", len);
	struct counter *c = state;
	memcpy(&c->value, blob, sizeof(int));
	c->restores++;
	return 0;
}

static const struct device_kind counter_kind = {
    .name = "counter",
    .create = counter_create,
    .destroy = free,
    .save = counter_save,
    .restore = counter_restore,
};
static const struct device_kind other_kind = {
    .name = "other",
    .create = counter_create,
    .destroy = free,
    .save = counter_save,
    .restore = counter_restore,
};
static const struct device_kind unsaveable_kind = {
    .name = "unsaveable",
    .create = counter_create,
    .destroy = free,
};

static void no_line(struct vm *vm, unsigned gsi, int level)
{
	(void)vm, (void)gsi, (void)level;
}
static const struct vm_ops no_ops = {.irq_line = no_line};

static void make(struct vm *vm, const struct device_kind *second, int v0, int v1)
{
	vs_err_t err = NULL;
	cr_assert_eq(vm_create_detached(vm, &no_ops, NULL, GUEST_MEM_MIN, &err), 0, "%s",
		     err ? err->msg : "");
	cr_assert_eq(device_add(vm, &counter_kind, &v0, &err), 0);
	cr_assert_eq(device_add(vm, second, &v1, &err), 0);
}

static void save(struct vm *vm, struct snap_file *f, uint8_t **bytes)
{
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	size_t len;
	cr_assert_eq(device_state_save(vm, &w, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(snap_writer_finish(&w, bytes, &len, &err), 0);
	cr_assert_eq(snap_parse(*bytes, len, f, &err), 0);
}

Test(snapshot_devices, blobs_go_back_in_order)
{
	struct vm a, b;
	make(&a, &counter_kind, 7, 9);
	make(&b, &counter_kind, 0, 0);
	struct snap_file f;
	uint8_t *bytes;
	save(&a, &f, &bytes);
	vs_err_t err = NULL;
	cr_assert_eq(device_state_restore(&b, &f, &err), 0, "%s", err ? err->msg : "");
	struct counter *c0 = b.devices->state, *c1 = b.devices->next->state;
	cr_assert_eq(c0->value, 7);
	cr_assert_eq(c1->value, 9);
	snap_file_release(&f);
	free(bytes);
	vm_destroy(&a);
	vm_destroy(&b);
}

Test(snapshot_devices, other_devices_are_refused_untouched)
{
	struct vm a, b;
	make(&a, &counter_kind, 7, 9);
	make(&b, &other_kind, 0, 0);
	struct snap_file f;
	uint8_t *bytes;
	save(&a, &f, &bytes);
	vs_err_t err = NULL;
	cr_assert_eq(device_state_restore(&b, &f, &err), -1);
	cr_assert_str_eq(err->msg, "state file's device 1 is `counter`, the VM's is `other`");
	vs_err_free(&err);
	struct counter *c0 = b.devices->state;
	cr_assert_eq(c0->restores, 0);
	snap_file_release(&f);
	free(bytes);
	vm_destroy(&a);
	vm_destroy(&b);
}

Test(snapshot_devices, a_device_without_save_is_named)
{
	struct vm a;
	make(&a, &unsaveable_kind, 1, 2);
	struct snap_writer w = {0};
	vs_err_t err = NULL;
	cr_assert_eq(device_state_save(&a, &w, &err), -1);
	cr_assert(strstr(err->msg, "unsaveable"), "%s", err->msg);
	vs_err_free(&err);
	snap_writer_release(&w);
	vm_destroy(&a);
}
