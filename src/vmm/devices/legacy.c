/* The PC's own devices as device kinds: each is made with the VM, takes its port ranges
 * on the VM's I/O bus, and raises its IRQ or stops the machine through the VM, so the
 * device files themselves know nothing of KVM or of the VM. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/device.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pm.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/layout.h"
#include "vmm/vm.h"

static void *serial_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	struct serial *s = serial_new(STDOUT_FILENO, (struct irq_line){vm_irq_line, vm, COM1_IRQ});
	if (!s) {
		vs_err(err, ENOMEM, "serial port");
		return NULL;
	}
	if (bus_add(&vm->pio, COM1_PORT, 8, "COM1", serial_io, s, err) < 0) {
		serial_free(s);
		return NULL;
	}
	return s;
}

static void serial_destroy(void *s)
{
	serial_free(s);
}

const struct device_kind serial_kind = {
    .name = "serial",
    .builtin = true,
    .create = serial_create,
    .destroy = serial_destroy,
    .save = serial_save,
    .restore = serial_restore,
};

static void *i8042_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	struct i8042 *k = i8042_new(vm->ctl, (struct irq_line){vm_irq_line, vm, I8042_KBD_IRQ});
	if (!k) {
		vs_err(err, ENOMEM, "i8042");
		return NULL;
	}
	if (bus_add(&vm->pio, I8042_DATA_PORT, 1, "i8042 data", i8042_data_io, k, err) < 0) {
		i8042_free(k);
		return NULL;
	}
	if (bus_add(&vm->pio, I8042_CMD_PORT, 1, "i8042 command", i8042_cmd_io, k, err) < 0) {
		bus_remove(&vm->pio, I8042_DATA_PORT);
		i8042_free(k);
		return NULL;
	}
	return k;
}

static void i8042_destroy(void *k)
{
	i8042_free(k);
}

int device_ctrl_alt_del(struct vm *vm, vs_err_t *err)
{
	struct i8042 *k = device_find(vm, &i8042_kind);
	if (!k)
		return vs_err(err, 0, "the VM has no i8042 to type Ctrl+Alt+Del on");
	return i8042_ctrl_alt_del(k, err);
}

const struct device_kind i8042_kind = {
    .name = "i8042",
    .builtin = true,
    .create = i8042_create,
    .destroy = i8042_destroy,
    .save = i8042_save,
    .restore = i8042_restore,
};

static void *rtc_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	struct rtc *r = rtc_new((struct irq_line){vm_irq_line, vm, RTC_IRQ}, NULL);
	if (!r) {
		vs_err(err, ENOMEM, "CMOS RTC");
		return NULL;
	}
	if (bus_add(&vm->pio, RTC_PORT, 2, "CMOS RTC", rtc_io, r, err) < 0) {
		rtc_free(r);
		return NULL;
	}
	if (rtc_start(r, err) < 0) {
		bus_remove(&vm->pio, RTC_PORT);
		rtc_free(r);
		return NULL;
	}
	return r;
}

static void rtc_destroy(void *r)
{
	rtc_free(r);
}

const struct device_kind rtc_kind = {
    .name = "rtc",
    .builtin = true,
    .create = rtc_create,
    .destroy = rtc_destroy,
    .save = rtc_save,
    .restore = rtc_restore,
};

/* No state of its own: the registers stop the machine through vm->ctl. */
static void *pm_create(struct vm *vm, const void *config, vs_err_t *err)
{
	(void)config;
	if (bus_add(&vm->pio, PM_SLEEP_CONTROL_PORT, 2, "ACPI sleep", pm_sleep_io, &vm->ctl, err) <
	    0)
		return NULL;
	if (bus_add(&vm->pio, PM_RESET_PORT, 1, "ACPI reset", pm_reset_io, &vm->ctl, err) < 0) {
		bus_remove(&vm->pio, PM_SLEEP_CONTROL_PORT);
		return NULL;
	}
	return &vm->ctl;
}

/* Its snapshot is its format version only: a later one with state is refused, not misread. */
#define PM_SNAP_VERSION 1

static int pm_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	(void)state;
	uint32_t *v = malloc(sizeof(*v));
	if (!v)
		return vs_err(err, ENOMEM, "pm");
	*v = PM_SNAP_VERSION;
	*blob = v;
	*len = sizeof(*v);
	return 0;
}

static int pm_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	(void)state;
	uint32_t v;
	if (len != sizeof(v))
		return vs_err(err, 0, "pm: state of %zu bytes (expected %zu)", len, sizeof(v));
	memcpy(&v, blob, sizeof(v));
	if (v != PM_SNAP_VERSION)
		return vs_err(err, 0, "pm: format version %u (this vessel reads %u)", v,
			      PM_SNAP_VERSION);
	return 0;
}

const struct device_kind pm_kind = {
    .name = "pm",
    .builtin = true,
    .create = pm_create,
    .save = pm_save,
    .restore = pm_restore,
};
