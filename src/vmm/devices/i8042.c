#include "vmm/devices/i8042.h"

#include <pthread.h>
#include <stdlib.h>

#include "vmm/bus.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_PULSE_RESET 0xfe

/* No keyboard and no mouse are attached: the controller answers its own
 * commands so Linux's probe ends quickly instead of timing out. */
struct i8042 {
	pthread_mutex_t lock;
	struct machine_ctl ctl;
	uint8_t ctr, status, out, pending_cmd;
	bool has_out;
};

struct i8042 *i8042_new(struct machine_ctl ctl)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->ctl = ctl;
	k->ctr = 0x30; /* both ports disabled, no interrupts */
	k->status = STATUS_SYS;
	return k;
}

void i8042_free(struct i8042 *k)
{
	if (!k)
		return;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static void put_out(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->has_out = true;
}

static void command(struct i8042 *k, uint8_t cmd)
{
	switch (cmd) {
	case CMD_READ_CTR:
		put_out(k, k->ctr);
		break;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT:
		k->pending_cmd = cmd;
		break;
	case CMD_SELF_TEST:
		put_out(k, 0x55);
		break;
	case CMD_TEST_AUX:
	case CMD_TEST_KBD:
		put_out(k, 0x00);
		break;
	case CMD_READ_OUTPORT:
		put_out(k, 0x01);
		break;
	case CMD_DISABLE_AUX:
		k->ctr |= 0x20;
		break;
	case CMD_ENABLE_AUX:
		k->ctr &= (uint8_t)~0x20;
		break;
	case CMD_DISABLE_KBD:
		k->ctr |= 0x10;
		break;
	case CMD_ENABLE_KBD:
		k->ctr &= (uint8_t)~0x10;
		break;
	case CMD_PULSE_RESET:
		machine_stop(&k->ctl, VM_EXIT_RESET, "i8042 reset (0xfe on port 0x64)");
		break;
	default:
		break;
	}
}

static void data_byte(void *opaque, uint64_t offset, uint8_t *v, bool is_write)
{
	struct i8042 *k = opaque;
	(void)offset;
	if (!is_write) {
		*v = k->has_out ? k->out : 0;
		k->has_out = false;
		return;
	}
	switch (k->pending_cmd) {
	case CMD_WRITE_CTR:
		k->ctr = *v;
		break;
	case CMD_WRITE_OUTPORT:
		/* bit 0 low pulses the CPU reset line */
		if (!(*v & 1))
			machine_stop(&k->ctl, VM_EXIT_RESET, "i8042 reset (output port)");
		break;
	default:
		/* a byte for the (absent) keyboard: answer "resend"-free silence */
		break;
	}
	k->pending_cmd = 0;
}

static void cmd_byte(void *opaque, uint64_t offset, uint8_t *v, bool is_write)
{
	struct i8042 *k = opaque;
	(void)offset;
	if (is_write)
		command(k, *v);
	else
		*v = (uint8_t)(k->status | (k->has_out ? STATUS_OBF : 0));
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	bus_each_byte(data_byte, k, offset, data, len, is_write);
	pthread_mutex_unlock(&k->lock);
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	bus_each_byte(cmd_byte, k, offset, data, len, is_write);
	pthread_mutex_unlock(&k->lock);
}
