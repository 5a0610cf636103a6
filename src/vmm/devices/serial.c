#include "vmm/devices/serial.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"

enum {
	UART_RBR_THR = 0,
	UART_IER = 1,
	UART_IIR_FCR = 2,
	UART_LCR = 3,
	UART_MCR = 4,
	UART_LSR = 5,
	UART_MSR = 6,
	UART_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD 0x80
#define MSR_DSR 0x20
#define MSR_CTS 0x10

#define RX_FIFO 64

struct serial {
	pthread_mutex_t lock;
	int out_fd;
	struct irq_line irq;
	int irq_level;
	uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
	bool thr_pending; /* a "transmitter empty" interrupt not yet acknowledged */
	uint8_t rx[RX_FIFO];
	unsigned rx_head, rx_len;
};

struct serial *serial_new(int out_fd, struct irq_line irq)
{
	struct serial *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq = irq;
	s->dll = 12; /* 9600 baud, what firmware leaves */
	s->lcr = 0x03;
	return s;
}

void serial_free(struct serial *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static uint8_t iir_locked(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;
	if ((s->ier & IER_RDI) && s->rx_len)
		return IIR_RDI | fifo;
	if ((s->ier & IER_THRI) && s->thr_pending)
		return IIR_THRI | fifo;
	return IIR_NONE | fifo;
}

static void update_irq_locked(struct serial *s)
{
	int level = !(iir_locked(s) & IIR_NONE);
	if (level != s->irq_level) {
		s->irq_level = level;
		irq_line_set(&s->irq, level);
	}
}

static void rx_put_locked(struct serial *s, uint8_t c)
{
	if (s->rx_len == RX_FIFO)
		return; /* overrun: the byte is lost, as on hardware */
	s->rx[(s->rx_head + s->rx_len) % RX_FIFO] = c;
	s->rx_len++;
}

static void transmit_locked(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		rx_put_locked(s, c);
	} else if (s->out_fd >= 0) {
		/* a non-blocking stdout that is full: wait a little, as a slow line would */
		for (int tries = 0; tries < 100; tries++) {
			ssize_t r = write(s->out_fd, &c, 1);
			if (r >= 0 || (errno != EINTR && errno != EAGAIN))
				break;
			if (errno == EAGAIN) {
				struct pollfd p = {.fd = s->out_fd, .events = POLLOUT};
				poll(&p, 1, 10);
			}
		}
	}
	s->thr_pending = true;
}

static uint8_t msr_locked(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS;
	/* loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD (Linux probes this) */
	return (uint8_t)(((s->mcr & 0x01) << 5) | ((s->mcr & 0x02) << 3) | ((s->mcr & 0x04) << 4) |
			 ((s->mcr & 0x08) << 4));
}

static void reg_access(void *opaque, uint64_t reg, uint8_t *v, bool is_write)
{
	struct serial *s = opaque;
	bool dlab = s->lcr & LCR_DLAB;
	if (is_write) {
		switch (reg) {
		case UART_RBR_THR:
			if (dlab)
				s->dll = *v;
			else
				transmit_locked(s, *v);
			break;
		case UART_IER:
			if (dlab) {
				s->dlm = *v;
			} else {
				/* enabling THRI with an empty transmitter raises it at once */
				if (!(s->ier & IER_THRI) && (*v & IER_THRI))
					s->thr_pending = true;
				s->ier = *v & 0x0f;
			}
			break;
		case UART_IIR_FCR:
			s->fcr = *v & 0xc9;
			if (*v & FCR_CLEAR_RX)
				s->rx_len = 0;
			break;
		case UART_LCR:
			s->lcr = *v;
			break;
		case UART_MCR:
			s->mcr = *v & 0x1f;
			break;
		case UART_SCR:
			s->scr = *v;
			break;
		default: /* LSR and MSR are read-only */
			break;
		}
		return;
	}
	switch (reg) {
	case UART_RBR_THR:
		if (dlab) {
			*v = s->dll;
		} else if (s->rx_len) {
			*v = s->rx[s->rx_head];
			s->rx_head = (s->rx_head + 1) % RX_FIFO;
			s->rx_len--;
		} else {
			*v = 0;
		}
		break;
	case UART_IER:
		*v = dlab ? s->dlm : s->ier;
		break;
	case UART_IIR_FCR:
		*v = iir_locked(s);
		if ((*v & 0x0f) == IIR_THRI)
			s->thr_pending = false;
		break;
	case UART_LCR:
		*v = s->lcr;
		break;
	case UART_MCR:
		*v = s->mcr;
		break;
	case UART_LSR:
		*v = LSR_THRE | LSR_TEMT | (s->rx_len ? LSR_DR : 0);
		break;
	case UART_MSR:
		*v = msr_locked(s);
		break;
	default:
		*v = s->scr;
		break;
	}
}

void serial_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct serial *s = opaque;
	pthread_mutex_lock(&s->lock);
	bus_each_byte(reg_access, s, offset, data, len, is_write);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
}

size_t serial_rx_room(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	size_t room = RX_FIFO - s->rx_len;
	pthread_mutex_unlock(&s->lock);
	return room;
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t n)
{
	pthread_mutex_lock(&s->lock);
	size_t i = 0;
	for (; i < n && s->rx_len < RX_FIFO; i++)
		rx_put_locked(s, buf[i]);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	return i;
}

/* A snapshot: the UART's registers and the bytes waiting in its receive FIFO. */
#define SERIAL_SNAP_VERSION 1
#define SERIAL_SNAP_HEAD (4 + 8 + 1)

int serial_save(void *state, void **blob, size_t *len, vs_err_t *err)
{
	struct serial *s = state;
	uint8_t *b = malloc(SERIAL_SNAP_HEAD + RX_FIFO);
	if (!b)
		return vs_err(err, ENOMEM, "serial");
	uint32_t version = SERIAL_SNAP_VERSION;
	memcpy(b, &version, 4);
	pthread_mutex_lock(&s->lock);
	uint8_t regs[8] = {s->ier, s->lcr, s->mcr, s->scr, s->fcr, s->dll, s->dlm, s->thr_pending};
	memcpy(b + 4, regs, 8);
	b[12] = (uint8_t)s->rx_len;
	for (unsigned i = 0; i < s->rx_len; i++)
		b[SERIAL_SNAP_HEAD + i] = s->rx[(s->rx_head + i) % RX_FIFO];
	*len = SERIAL_SNAP_HEAD + s->rx_len;
	pthread_mutex_unlock(&s->lock);
	*blob = b;
	return 0;
}

int serial_restore(void *state, const void *blob, size_t len, vs_err_t *err)
{
	struct serial *s = state;
	const uint8_t *b = blob;
	uint32_t version;
	if (len < 4)
		return vs_err(err, 0, "serial: state of %zu bytes, truncated", len);
	memcpy(&version, b, 4);
	if (version != SERIAL_SNAP_VERSION)
		return vs_err(err, 0, "serial: format version %u (this vessel reads %u)", version,
			      SERIAL_SNAP_VERSION);
	if (len < SERIAL_SNAP_HEAD)
		return vs_err(err, 0, "serial: state of %zu bytes, truncated", len);
	const uint8_t *r = b + 4;
	if (r[0] & 0xf0)
		return vs_err(err, 0, "serial: IER 0x%02x has unknown bits", r[0]);
	if (r[7] > 1)
		return vs_err(err, 0, "serial: thr_pending %u", r[7]);
	if (b[12] > RX_FIFO)
		return vs_err(err, 0, "serial: %u bytes in a %u-byte receive FIFO", b[12], RX_FIFO);
	if (len != SERIAL_SNAP_HEAD + (size_t)b[12])
		return vs_err(err, 0, "serial: state of %zu bytes, %u expected", len,
			      SERIAL_SNAP_HEAD + b[12]);
	pthread_mutex_lock(&s->lock);
	s->ier = r[0];
	s->lcr = r[1];
	s->mcr = r[2];
	s->scr = r[3];
	s->fcr = r[4];
	s->dll = r[5];
	s->dlm = r[6];
	s->thr_pending = r[7];
	s->rx_head = 0;
	s->rx_len = b[12];
	memcpy(s->rx, b + SERIAL_SNAP_HEAD, s->rx_len);
	update_irq_locked(s);
	pthread_mutex_unlock(&s->lock);
	return 0;
}
