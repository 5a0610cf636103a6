#include "vmm/devices/i8042.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/bus.h"

#define STATUS_OBF 0x01
#define STATUS_SYS 0x04
#define STATUS_CMD 0x08
#define STATUS_UNLOCKED 0x10 /* the keyboard is not inhibited (no "Keylock active") */

#define CMD_READ_CTR 0x20
#define CMD_WRITE_CTR 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_AUX_LOOP 0xd3
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTPORT 0xd0
#define CMD_WRITE_OUTPORT 0xd1
#define CMD_PULSE_RESET 0xfe

#define CTR_KBD_INT 0x01
#define CTR_KBD_DISABLED 0x10

/* what the keyboard answers */
#define KBD_ACK 0xfa
#define KBD_BAT_OK 0xaa
#define KBD_ECHO 0xee
/* commands that take a parameter byte next */
#define KBD_SET_LEDS 0xed
#define KBD_SCANCODE_SET 0xf0
#define KBD_TYPEMATIC 0xf3
#define KBD_GET_ID 0xf2
#define KBD_RESET 0xff

#define KBD_QUEUE 16

/* No mouse is attached (the AUX tests fail at once). The controller answers its own
 * commands so Linux's probe ends quickly; the keyboard answers its commands (ACK, an MF2 id) and
 * types what the VMM asks (Ctrl+Alt+Del), one byte in the output buffer at a time, each with an
 * IRQ 1. */
struct i8042 {
	pthread_mutex_t lock;
	struct machine_ctl ctl;
	struct irq_line irq;
	uint8_t ctr, status, out, pending_cmd;
	bool has_out;
	uint8_t kbd[KBD_QUEUE]; /* bytes from the keyboard waiting for the output buffer */
	unsigned kbd_head, kbd_len;
	uint8_t kbd_cmd; /* a keyboard command waiting for its parameter */
};

struct i8042 *i8042_new(struct machine_ctl ctl, struct irq_line irq)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	pthread_mutex_init(&k->lock, NULL);
	k->ctl = ctl;
	k->irq = irq;
	k->ctr = 0x30; /* both ports disabled, no interrupts */
	k->status = STATUS_SYS | STATUS_UNLOCKED;
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

/* The next keyboard byte into the empty output buffer, with an interrupt if the guest
 * wants them. Lock held. */
static void kbd_feed(struct i8042 *k)
{
	if (k->has_out || !k->kbd_len || (k->ctr & CTR_KBD_DISABLED))
		return;
	put_out(k, k->kbd[k->kbd_head]);
	k->kbd_head = (k->kbd_head + 1) % KBD_QUEUE;
	k->kbd_len--;
	if (k->ctr & CTR_KBD_INT) { /* an edge on the ISA line */
		irq_line_set(&k->irq, 1);
		irq_line_set(&k->irq, 0);
	}
}

static void kbd_push(struct i8042 *k, const uint8_t *bytes, unsigned n)
{
	for (unsigned i = 0; i < n && k->kbd_len < KBD_QUEUE; i++) {
		k->kbd[(k->kbd_head + k->kbd_len) % KBD_QUEUE] = bytes[i];
		k->kbd_len++;
	}
	kbd_feed(k);
}

/* A byte the guest sent to the keyboard (the data port, no controller command pending). */
static void kbd_command(struct i8042 *k, uint8_t v)
{
	static const uint8_t ack[] = {KBD_ACK}, id[] = {KBD_ACK, 0xab, 0x83},
			     reset[] = {KBD_ACK, KBD_BAT_OK}, echo[] = {KBD_ECHO},
			     set2[] = {KBD_ACK, 0x02};
	if (k->kbd_cmd) { /* the parameter of the previous command */
		bool get_set = k->kbd_cmd == KBD_SCANCODE_SET && v == 0;
		k->kbd_cmd = 0;
		kbd_push(k, get_set ? set2 : ack, get_set ? 2 : 1);
		return;
	}
	switch (v) {
	case KBD_SET_LEDS:
	case KBD_SCANCODE_SET:
	case KBD_TYPEMATIC:
		k->kbd_cmd = v;
		kbd_push(k, ack, 1);
		break;
	case KBD_GET_ID:
		kbd_push(k, id, sizeof(id));
		break;
	case KBD_RESET:
		k->kbd_len = 0;
		kbd_push(k, reset, sizeof(reset));
		break;
	case KBD_ECHO:
		kbd_push(k, echo, 1);
		break;
	default: /* enable, disable, defaults, resend...: acknowledged */
		kbd_push(k, ack, 1);
		break;
	}
}

int i8042_ctrl_alt_del(struct i8042 *k, vs_err_t *err)
{
	/* set 2: Ctrl, Alt, E0 Del pressed, then released in reverse (F0 = break) */
	static const uint8_t keys[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	pthread_mutex_lock(&k->lock);
	bool on = (k->ctr & CTR_KBD_INT) && !(k->ctr & CTR_KBD_DISABLED);
	if (on)
		kbd_push(k, keys, sizeof(keys));
	pthread_mutex_unlock(&k->lock);
	if (!on)
		return vs_err(err, 0,
			      "the guest has not turned its keyboard on (no i8042 driver, or the "
			      "guest is still booting)");
	return 0;
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
	case CMD_TEST_KBD:
		put_out(k, 0x00);
		break;
	case CMD_TEST_AUX:
		/* no mouse: "clock line stuck low", so Linux gives the AUX port up at once */
		put_out(k, 0x01);
		break;
	case CMD_AUX_LOOP:
		/* the byte does not come back as AUX data: the loopback fails now, not after
		 * Linux's half-second timeout */
		k->pending_cmd = cmd;
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
		k->ctr |= CTR_KBD_DISABLED;
		break;
	case CMD_ENABLE_KBD:
		k->ctr &= (uint8_t)~CTR_KBD_DISABLED;
		kbd_feed(k);
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
		kbd_feed(k);
		return;
	}
	switch (k->pending_cmd) {
	case CMD_WRITE_CTR:
		k->ctr = *v;
		kbd_feed(k);
		break;
	case CMD_WRITE_OUTPORT:
		/* bit 0 low pulses the CPU reset line */
		if (!(*v & 1))
			machine_stop(&k->ctl, VM_EXIT_RESET, "i8042 reset (output port)");
		break;
	case CMD_AUX_LOOP:
		put_out(k, 0x00);
		break;
	case 0:
		kbd_command(k, *v);
		break;
	default: /* a parameter for a command we ignore (the absent mouse's 0xd4...) */
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

/* A snapshot: the controller's registers and the keyboard bytes not yet read. */
#define I8042_SNAP_VERSION 1
#define I8042_SNAP_HEAD (4 + 7)

int i8042_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	struct i8042 *k = state;
	uint8_t *b = malloc(I8042_SNAP_HEAD + KBD_QUEUE);
	if (!b)
		return vs_err(err, ENOMEM, "i8042");
	uint32_t version = I8042_SNAP_VERSION;
	memcpy(b, &version, 4);
	pthread_mutex_lock(&k->lock);
	uint8_t regs[7] = {k->ctr, k->status, k->out, k->pending_cmd, k->has_out, k->kbd_cmd,
			   (uint8_t)k->kbd_len};
	memcpy(b + 4, regs, sizeof(regs));
	for (unsigned i = 0; i < k->kbd_len; i++)
		b[I8042_SNAP_HEAD + i] = k->kbd[(k->kbd_head + i) % KBD_QUEUE];
	*len = I8042_SNAP_HEAD + k->kbd_len;
	pthread_mutex_unlock(&k->lock);
	*blob = b;
	return 0;
}

int i8042_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	struct i8042 *k = state;
	const uint8_t *b = blob;
	uint32_t version;
	if (len < 4)
		return vs_err(err, 0, "i8042: state of %zu bytes, truncated", len);
	memcpy(&version, b, 4);
	if (version != I8042_SNAP_VERSION)
		return vs_err(err, 0, "i8042: format version %u (this vessel reads %u)", version,
			      I8042_SNAP_VERSION);
	if (len < I8042_SNAP_HEAD)
		return vs_err(err, 0, "i8042: state of %zu bytes, truncated", len);
	const uint8_t *r = b + 4;
	if (r[4] > 1)
		return vs_err(err, 0, "i8042: has_out %u", r[4]);
	if (r[6] > KBD_QUEUE)
		return vs_err(err, 0, "i8042: %u keyboard bytes in a queue of %u", r[6], KBD_QUEUE);
	if (len != I8042_SNAP_HEAD + (size_t)r[6])
		return vs_err(err, 0, "i8042: state of %zu bytes, %u expected", len,
			      I8042_SNAP_HEAD + r[6]);
	pthread_mutex_lock(&k->lock);
	k->ctr = r[0];
	k->status = r[1];
	k->out = r[2];
	k->pending_cmd = r[3];
	k->has_out = r[4];
	k->kbd_cmd = r[5];
	k->kbd_head = 0;
	k->kbd_len = r[6];
	memcpy(k->kbd, b + I8042_SNAP_HEAD, k->kbd_len);
	pthread_mutex_unlock(&k->lock);
	return 0;
}
