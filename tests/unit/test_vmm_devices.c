/* Emulated devices and the bus: register behaviour, widths and interrupts. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "vmm/bus.h"
#include "vmm/devices/i8042.h"
#include "vmm/devices/pm.h"
#include "vmm/devices/rtc.h"
#include "vmm/devices/serial.h"
#include "vmm/layout.h"

static int irq_level = -1, irq_changes;

static void record_irq(void *ctx, unsigned gsi, int level)
{
	(void)ctx;
	cr_assert_eq(gsi, 4);
	irq_level = level;
	irq_changes++;
}

static int stop_status = -1;

static void record_stop(void *ctx, int status, const char *why)
{
	(void)ctx;
	(void)why;
	stop_status = status;
}

static uint8_t rd(struct serial *s, unsigned reg)
{
	uint8_t v;
	serial_io(s, reg, &v, 1, false);
	return v;
}

static void wr(struct serial *s, unsigned reg, uint8_t v)
{
	serial_io(s, reg, &v, 1, true);
}

Test(serial, transmit_is_byte_for_byte)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	struct serial *s = serial_new(p[1], (struct irq_line){0});
	cr_assert(rd(s, 5) & 0x20, "THRE");
	const char *msg = "hi\r\n";
	for (const char *c = msg; *c; c++)
		wr(s, 0, (uint8_t)*c);
	char buf[8] = {0};
	cr_assert_eq(read(p[0], buf, sizeof(buf)), 4);
	cr_assert_str_eq(buf, msg);
	serial_free(s);
	close(p[0]);
	close(p[1]);
}

Test(serial, receive_and_interrupts)
{
	irq_level = -1;
	irq_changes = 0;
	struct serial *s = serial_new(-1, (struct irq_line){record_irq, NULL, 4});
	cr_assert_eq(rd(s, 2) & 0x0f, 0x01, "no interrupt pending");
	wr(s, 1, 0x01); /* RDI */
	cr_assert_eq(serial_rx_push(s, (const uint8_t *)"ab", 2), 2);
	cr_assert_eq(irq_level, 1);
	cr_assert(rd(s, 5) & 0x01, "data ready");
	cr_assert_eq(rd(s, 2) & 0x0f, 0x04, "RDI pending");
	cr_assert_eq(rd(s, 0), 'a');
	cr_assert_eq(rd(s, 0), 'b');
	cr_assert_not(rd(s, 5) & 0x01);
	cr_assert_eq(irq_level, 0, "line drops once the FIFO is empty");
	/* THRI: raised on enable, acknowledged by reading IIR */
	wr(s, 1, 0x02);
	cr_assert_eq(irq_level, 1);
	cr_assert_eq(rd(s, 2) & 0x0f, 0x02);
	cr_assert_eq(irq_level, 0);
	serial_free(s);
}

Test(serial, fifo_bounds_and_clear)
{
	struct serial *s = serial_new(-1, (struct irq_line){0});
	uint8_t big[200];
	memset(big, 'x', sizeof(big));
	size_t room = serial_rx_room(s);
	cr_assert_gt(room, 0);
	cr_assert_eq(serial_rx_push(s, big, sizeof(big)), room, "never more than the FIFO");
	cr_assert_eq(serial_rx_room(s), 0);
	wr(s, 2, 0x03); /* enable + clear RX FIFO */
	cr_assert_eq(serial_rx_room(s), room);
	cr_assert_eq(rd(s, 2) & 0xc0, 0xc0, "16550A FIFO bits");
	serial_free(s);
}

Test(serial, dlab_and_loopback)
{
	struct serial *s = serial_new(-1, (struct irq_line){0});
	wr(s, 3, 0x80);
	wr(s, 0, 0x01);
	wr(s, 1, 0x00);
	cr_assert_eq(rd(s, 0), 0x01, "divisor latch");
	wr(s, 3, 0x03);
	wr(s, 4, 0x10 | 0x0f); /* loopback, all outputs */
	cr_assert_eq(rd(s, 6) & 0xf0, 0xf0);
	wr(s, 4, 0x10 | 0x02); /* RTS only -> CTS */
	cr_assert_eq(rd(s, 6) & 0xf0, 0x10);
	wr(s, 0, 'z');
	cr_assert_eq(rd(s, 0), 'z', "loopback echoes into the receiver");
	/* a wide access is split into byte registers */
	uint8_t two[2];
	serial_io(s, 5, two, 2, false);
	cr_assert(two[0] & 0x20);
	serial_free(s);
}

Test(bus, dispatch_and_bounds)
{
	struct bus b = {0};
	vs_err_t err = NULL;
	struct serial *s = serial_new(-1, (struct irq_line){0});
	cr_assert_eq(bus_add(&b, 0x3f8, 8, "COM1", serial_io, s, &err), 0);
	cr_assert_eq(bus_add(&b, 0x3fc, 8, "overlap", serial_io, s, &err), -1);
	cr_assert(strstr(err->msg, "overlaps COM1"));
	vs_err_free(&err);
	cr_assert_eq(bus_add(&b, 0x3f0, 9, "overlap2", serial_io, s, &err), -1);
	vs_err_free(&err);
	cr_assert_eq(bus_add(&b, 0x3f0, 8, "below", serial_io, s, &err), 0);
	uint8_t v[8];
	cr_assert(bus_access(&b, 0x3fd, v, 1, false));
	cr_assert(v[0] & 0x20);
	cr_assert_not(bus_access(&b, 0x3ff, v, 2, false), "straddles the end");
	cr_assert_not(bus_access(&b, 0x400, v, 1, false));
	cr_assert_not(bus_access(&b, 0x3f8, v, 3, false), "odd width");
	cr_assert_eq(b.ranges[0].base, 0x3f0, "sorted");
	bus_free(&b);
	serial_free(s);
}

Test(i8042, reset_and_probe)
{
	stop_status = -1;
	struct i8042 *k = i8042_new((struct machine_ctl){record_stop, NULL}, (struct irq_line){0});
	uint8_t v = 0xaa;
	i8042_cmd_io(k, 0, &v, 1, true);
	i8042_cmd_io(k, 0, &v, 1, false);
	cr_assert(v & 0x01, "output buffer full after self-test");
	i8042_data_io(k, 0, &v, 1, false);
	cr_assert_eq(v, 0x55);
	i8042_cmd_io(k, 0, &v, 1, false);
	cr_assert_not(v & 0x01);
	cr_assert_eq(stop_status, -1);
	v = 0xfe;
	i8042_cmd_io(k, 0, &v, 1, true);
	cr_assert_eq(stop_status, VM_EXIT_RESET);
	i8042_free(k);
}

Test(pm, poweroff_and_reset)
{
	stop_status = -1;
	struct machine_ctl ctl = {record_stop, NULL};
	uint8_t v = (3 << 2) | (1 << 5); /* S3: not ours */
	pm_sleep_io(&ctl, 0, &v, 1, true);
	cr_assert_eq(stop_status, -1);
	v = 5 << 2; /* no SLP_EN */
	pm_sleep_io(&ctl, 0, &v, 1, true);
	cr_assert_eq(stop_status, -1);
	v = (5 << 2) | (1 << 5);
	pm_sleep_io(&ctl, 0, &v, 1, true);
	cr_assert_eq(stop_status, VM_EXIT_POWEROFF);
	stop_status = -1;
	v = 2;
	pm_reset_io(&ctl, 0, &v, 1, true);
	cr_assert_eq(stop_status, -1);
	v = PM_RESET_VALUE;
	pm_reset_io(&ctl, 0, &v, 1, true);
	cr_assert_eq(stop_status, VM_EXIT_RESET);
}

static uint8_t cmos(struct rtc *r, uint8_t reg)
{
	uint8_t v = reg;
	rtc_io(r, 0, &v, 1, true);
	rtc_io(r, 1, &v, 1, false);
	return v;
}

static void cmos_wr(struct rtc *r, uint8_t reg, uint8_t v)
{
	rtc_io(r, 0, &reg, 1, true);
	rtc_io(r, 1, &v, 1, true);
}

/* A clock the tests move: 2026-12-05 09:15:59.5 UTC to start with. */
static int64_t fake_ns;
#define FAKE_START ((1796462159LL * 1000000000LL) + 500000000LL)

static int64_t fake_now(void *ctx)
{
	(void)ctx;
	return fake_ns;
}

static const struct rtc_clock fake_clock = {fake_now, NULL};

static int rtc_level = -1, rtc_edges;

static void record_rtc_irq(void *ctx, unsigned gsi, int level)
{
	(void)ctx;
	cr_assert_eq(gsi, RTC_IRQ);
	if (level && rtc_level != 1)
		rtc_edges++;
	rtc_level = level;
}

static struct rtc *fake_rtc(void)
{
	fake_ns = FAKE_START;
	rtc_level = -1;
	rtc_edges = 0;
	return rtc_new((struct irq_line){record_rtc_irq, NULL, RTC_IRQ}, &fake_clock);
}

Test(rtc, bcd_then_binary)
{
	struct rtc *r = rtc_new((struct irq_line){0}, NULL);
	cr_assert_eq(cmos(r, 0x0b), 0x02, "24h, BCD");
	cr_assert(cmos(r, 0x0d) & 0x80, "valid RAM and time");
	uint8_t month = cmos(r, 0x08);
	cr_assert_leq(month & 0x0f, 9, "BCD digit");
	cr_assert_eq(cmos(r, RTC_CENTURY_REG), 0x20, "century 20 in BCD");
	cmos_wr(r, 0x0b, 0x06); /* binary, 24h */
	cr_assert_eq(cmos(r, RTC_CENTURY_REG), 20, "century 20 in binary");
	uint8_t m = cmos(r, 0x08);
	cr_assert(m >= 1 && m <= 12);
	/* scratch CMOS bytes keep what is written; bit 7 of the index is the NMI mask */
	uint8_t idx = 0x80 | 0x40, val = 0x5a;
	rtc_io(r, 0, &idx, 1, true);
	rtc_io(r, 1, &val, 1, true);
	cr_assert_eq(cmos(r, 0x40), 0x5a);
	rtc_free(r);
}

Test(rtc, reads_the_clock_in_bcd_and_12_hour_mode)
{
	struct rtc *r = fake_rtc();
	cr_assert_eq(cmos(r, 0x00), 0x59);
	cr_assert_eq(cmos(r, 0x02), 0x15);
	cr_assert_eq(cmos(r, 0x04), 0x09);
	cr_assert_eq(cmos(r, 0x07), 0x05);
	cr_assert_eq(cmos(r, 0x08), 0x12);
	cr_assert_eq(cmos(r, 0x09), 0x26);
	cr_assert_eq(cmos(r, 0x06), 0x07, "Saturday is day 7");
	fake_ns += 4 * 3600 * 1000000000LL; /* 13:16 */
	cmos_wr(r, 0x0b, 0x00);		    /* 12 h, BCD */
	cr_assert_eq(cmos(r, 0x04), 0x81, "1 PM");
	rtc_free(r);
}

Test(rtc, a_read_of_seconds_latches_the_date)
{
	struct rtc *r = fake_rtc();
	cr_assert_eq(cmos(r, 0x00), 0x59, "09:15:59");
	fake_ns += 600000000LL; /* the host is at 09:16:00.1 now */
	cr_assert_eq(cmos(r, 0x02), 0x15, "the minute that goes with 59 s");
	cr_assert_eq(cmos(r, 0x00), 0x00, "a new read of seconds moves on");
	cr_assert_eq(cmos(r, 0x02), 0x16);
	fake_ns += 2000000000LL;
	cr_assert_eq(cmos(r, 0x02), 0x16, "a latch older than a second expires");
	rtc_free(r);
}

static void set_time(struct rtc *r, const uint8_t v[8])
{
	static const uint8_t regs[] = {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, RTC_CENTURY_REG};
	uint8_t b = cmos(r, 0x0b);
	cmos_wr(r, 0x0b, b | 0x80);
	for (int i = 0; i < 8; i++)
		cmos_wr(r, regs[i], v[i]);
	cmos_wr(r, 0x0b, b);
}

Test(rtc, the_guest_sets_the_clock_and_it_keeps_running)
{
	struct rtc *r = fake_rtc();
	/* 2030-01-31 23:59:58, BCD */
	set_time(r, (const uint8_t[]){0x58, 0x59, 0x23, 0x05, 0x31, 0x01, 0x30, 0x20});
	cr_assert_eq(cmos(r, 0x00), 0x58);
	fake_ns += 3000000000LL;
	cr_assert_eq(cmos(r, 0x00), 0x01);
	cr_assert_eq(cmos(r, 0x07), 0x01);
	cr_assert_eq(cmos(r, 0x08), 0x02, "February");
	cr_assert_eq(cmos(r, 0x09), 0x30);
	/* not a date: bad BCD digits, 31 February, century 0; the clock stays */
	set_time(r, (const uint8_t[]){0x5a, 0x00, 0x00, 0x01, 0x01, 0x01, 0x30, 0x20});
	set_time(r, (const uint8_t[]){0x00, 0x00, 0x00, 0x01, 0x31, 0x02, 0x30, 0x20});
	set_time(r, (const uint8_t[]){0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x30, 0x00});
	cr_assert_eq(cmos(r, 0x08), 0x02);
	cr_assert_eq(cmos(r, 0x07), 0x01);
	rtc_free(r);
}

/* A snapshot keeps what the guest set (clock offset, binary mode, CMOS bytes, a pending
 * flag) and the clock goes on from the host's time after the load, not from the snapshot's. */
Test(rtc, snapshot_round_trip_keeps_the_guests_clock_and_registers)
{
	struct rtc *r = fake_rtc();
	/* 2030-01-31 23:59:58, BCD, then binary mode, a scratch byte, UF pending with UIE */
	set_time(r, (const uint8_t[]){0x58, 0x59, 0x23, 0x05, 0x31, 0x01, 0x30, 0x20});
	cmos_wr(r, 0x40, 0xa5);
	cmos_wr(r, 0x0b, 0x02 | 0x04 | 0x10);
	fake_ns += 1000000000LL;
	rtc_tick(r);
	cr_assert_eq(rtc_level, 1, "UF raised the line");
	cmos_wr(r, 0x0b, 0x02 | 0x04 | 0x10); /* leaves the index at B */
	void *blob = NULL;
	size_t len = 0;
	vs_err_t err = NULL;
	cr_assert_eq(rtc_save(r, &blob, &len, &err), 0);
	rtc_free(r);

	/* an hour later, on a fresh RTC */
	struct rtc *t = fake_rtc();
	fake_ns += 3600LL * 1000000000LL;
	uint8_t *bad = malloc(len);
	const struct {
		size_t off;
		uint8_t v;
		const char *expect;
	} corrupt[] = {{0, 9, "format version"}, {4, 0x80, "index"}, {5 + 128 + 7, 0x7f, "offset"}};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		memcpy(bad, blob, len);
		bad[corrupt[i].off] = corrupt[i].v;
		cr_assert_eq(rtc_restore(t, bad, len, &err), -1, "%s", corrupt[i].expect);
		cr_assert(strstr(err->msg, "rtc") && strstr(err->msg, corrupt[i].expect), "%s",
			  err->msg);
		vs_err_free(&err);
		cr_assert_eq(cmos(t, 0x40), 0, "nothing applied");
	}
	cr_assert_eq(rtc_restore(t, blob, len - 1, &err), -1, "truncated");
	vs_err_free(&err);
	cr_assert_eq(rtc_restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(rtc_level, 1, "the pending update is on the line again");
	/* the index came back: a data read now reads register B */
	uint8_t v = 0;
	rtc_io(t, 1, &v, 1, false);
	cr_assert_eq(v, 0x02 | 0x04 | 0x10);
	cr_assert_eq(cmos(t, 0x40), 0xa5);
	cr_assert_eq(cmos(t, 0x0c), 0x80 | 0x10, "IRQF, UF as saved, no burst for the hour");
	/* the guest's date, an hour on: 2030-02-01 00:59:58 in binary */
	cr_assert_eq(cmos(t, 0x00), 58);
	cr_assert_eq(cmos(t, 0x02), 59);
	cr_assert_eq(cmos(t, 0x04), 0);
	cr_assert_eq(cmos(t, 0x07), 1);
	cr_assert_eq(cmos(t, 0x08), 2);
	free(bad);
	free(blob);
	rtc_free(t);
}

Test(rtc, alarm_and_update_interrupts)
{
	struct rtc *r = fake_rtc();
	/* alarm at 09:16:02, 2.5 s away */
	cmos_wr(r, 0x01, 0x02);
	cmos_wr(r, 0x03, 0x16);
	cmos_wr(r, 0x05, 0x09);
	cmos_wr(r, 0x0b, 0x02 | 0x20); /* AIE */
	cr_assert_eq(cmos(r, 0x0c), 0, "nothing yet");
	fake_ns += 1000000000LL; /* 09:16:00.5 */
	rtc_tick(r);
	cr_assert_neq(rtc_level, 1, "an update alone does not interrupt with only AIE");
	cr_assert_eq(cmos(r, 0x0c), 0x10, "UF is flagged all the same");
	fake_ns += 2000000000LL; /* 09:16:02.5 */
	rtc_tick(r);
	cr_assert_eq(rtc_level, 1);
	cr_assert_eq(rtc_edges, 1);
	cr_assert_eq(cmos(r, 0x0c), 0x80 | 0x20 | 0x10, "IRQF, AF, UF");
	cr_assert_eq(rtc_level, 0, "reading C lowers the line");
	cr_assert_eq(cmos(r, 0x0c), 0, "and clears the flags");
	/* don't-care hours and minutes: every minute at :30 */
	cmos_wr(r, 0x03, 0xc0);
	cmos_wr(r, 0x05, 0xff);
	cmos_wr(r, 0x01, 0x30);
	fake_ns += 100 * 1000000000LL; /* long past 09:17:30 without a tick */
	cr_assert_eq(cmos(r, 0x0c) & 0x20, 0x20, "an alarm between two reads still shows");
	cr_assert_eq(rtc_edges, 2);
	/* UIE: once a second */
	cmos_wr(r, 0x0b, 0x02 | 0x10);
	fake_ns += 1000000000LL;
	rtc_tick(r);
	cr_assert_eq(rtc_edges, 3);
	cr_assert_eq(cmos(r, 0x0c), 0x80 | 0x10);
	/* setting the clock clears UIE, as the chip does */
	cmos_wr(r, 0x0b, 0x02 | 0x10 | 0x80);
	cr_assert_eq(cmos(r, 0x0b), 0x02 | 0x80);
	rtc_free(r);
}

Test(rtc, enabling_an_interrupt_whose_flag_is_set_raises_it)
{
	struct rtc *r = fake_rtc();
	fake_ns += 1000000000LL;
	rtc_tick(r);
	cr_assert_neq(rtc_level, 1);
	cmos_wr(r, 0x0b, 0x02 | 0x10);
	cr_assert_eq(rtc_level, 1, "UF was pending");
	rtc_free(r);
}

Test(rtc, host_clock_thread_starts_and_stops)
{
	struct rtc *r = rtc_new((struct irq_line){0}, NULL);
	vs_err_t err = NULL;
	cr_assert_eq(rtc_start(r, &err), 0);
	cmos_wr(r, 0x0b, 0x02 | 0x10);
	rtc_free(r);
}

static int kbd_irqs;
static void count_irq(void *ctx, unsigned gsi, int level)
{
	(void)ctx;
	cr_assert_eq(gsi, I8042_KBD_IRQ);
	kbd_irqs += level;
}

/* What the guest reads from the data port while the output buffer is full. */
static unsigned drain_kbd(struct i8042 *k, uint8_t *out, unsigned max)
{
	unsigned n = 0;
	uint8_t st;
	for (i8042_cmd_io(k, 0, &st, 1, false); (st & 0x01) && n < max;
	     i8042_cmd_io(k, 0, &st, 1, false))
		i8042_data_io(k, 0, &out[n++], 1, false);
	return n;
}

Test(i8042, keyboard_answers_and_types_ctrl_alt_del)
{
	kbd_irqs = 0;
	struct i8042 *k = i8042_new((struct machine_ctl){record_stop, NULL},
				    (struct irq_line){count_irq, NULL, I8042_KBD_IRQ});
	vs_err_t err = NULL;
	cr_assert_eq(i8042_ctrl_alt_del(k, &err), -1, "no driver turned the keyboard on");
	cr_assert(strstr(err->msg, "not turned its keyboard on"), "%s", err->msg);
	vs_err_free(&err);
	/* what Linux's i8042 driver does: keyboard on, interrupts on */
	uint8_t v = 0x60, buf[32];
	i8042_cmd_io(k, 0, &v, 1, true);
	v = 0x01; /* CTR: keyboard interrupt, keyboard enabled, no translation */
	i8042_data_io(k, 0, &v, 1, true);
	v = 0xf2; /* atkbd's GETID */
	i8042_data_io(k, 0, &v, 1, true);
	unsigned n = drain_kbd(k, buf, sizeof(buf));
	cr_assert_eq(n, 3);
	cr_assert(buf[0] == 0xfa && buf[1] == 0xab && buf[2] == 0x83, "ACK and an MF2 id");
	v = 0xed; /* set LEDs, then its parameter: each acknowledged */
	i8042_data_io(k, 0, &v, 1, true);
	v = 0x00;
	i8042_data_io(k, 0, &v, 1, true);
	cr_assert_eq(drain_kbd(k, buf, sizeof(buf)), 2);
	kbd_irqs = 0;
	cr_assert_eq(i8042_ctrl_alt_del(k, &err), 0);
	n = drain_kbd(k, buf, sizeof(buf));
	static const uint8_t want[] = {0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
				       0x71, 0xf0, 0x11, 0xf0, 0x14};
	cr_assert_eq(n, sizeof(want));
	cr_assert_arr_eq(buf, want, sizeof(want));
	cr_assert_eq(kbd_irqs, (int)sizeof(want), "one interrupt per byte");
	cr_assert_eq(stop_status, -1);
	i8042_free(k);
}

/* A snapshot of the UART: registers and pending input come back in a fresh one, the
 * interrupt line with them; a corrupt state is refused and changes nothing. */
Test(serial, snapshot_round_trip_and_corruptions)
{
	struct serial *s = serial_new(-1, (struct irq_line){0});
	wr(s, 3, 0x80); /* DLAB */
	wr(s, 0, 0x01); /* 115200 */
	wr(s, 3, 0x1b); /* 8E1 */
	wr(s, 7, 0x5a); /* scratch */
	wr(s, 1, 0x01); /* RDI */
	cr_assert_eq(serial_rx_push(s, (const uint8_t *)"xyz", 3), 3);
	cr_assert_eq(rd(s, 0), 'x');
	void *blob = NULL;
	size_t len;
	vs_err_t err = NULL;
	cr_assert_eq(serial_save(s, &blob, &len, &err), 0);
	serial_free(s);

	irq_level = -1;
	struct serial *t = serial_new(-1, (struct irq_line){record_irq, NULL, 4});
	uint8_t *bad = malloc(len + 1);
	const struct {
		size_t off;
		uint8_t v;
		const char *expect;
	} corrupt[] = {{0, 2, "format version"}, {4, 0xf1, "IER"}, {11, 2, "thr_pending"},
		       {12, 65, "receive FIFO"}, {12, 1, "bytes"}};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		memcpy(bad, blob, len);
		bad[corrupt[i].off] = corrupt[i].v;
		cr_assert_eq(serial_restore(t, bad, len, &err), -1, "%s", corrupt[i].expect);
		cr_assert(strstr(err->msg, "serial") && strstr(err->msg, corrupt[i].expect), "%s",
			  err->msg);
		vs_err_free(&err);
		cr_assert_eq(rd(t, 7), 0, "nothing applied");
	}
	cr_assert_eq(serial_restore(t, blob, len - 1, &err), -1, "truncated");
	vs_err_free(&err);
	cr_assert_eq(serial_restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	cr_assert_eq(irq_level, 1, "input pending with RDI on: the line is up again");
	cr_assert_eq(rd(t, 7), 0x5a);
	cr_assert_eq(rd(t, 3), 0x1b);
	wr(t, 3, 0x9b);
	cr_assert_eq(rd(t, 0), 0x01, "divisor");
	wr(t, 3, 0x1b);
	cr_assert_eq(rd(t, 0), 'y');
	cr_assert_eq(rd(t, 0), 'z');
	cr_assert_not(rd(t, 5) & 0x01);
	free(bad);
	free(blob);
	serial_free(t);
}

/* The i8042's snapshot: the command byte and unread keyboard bytes come back; corrupt
 * fields are refused with nothing applied. */
Test(i8042, snapshot_round_trip_and_corruptions)
{
	struct i8042 *k = i8042_new((struct machine_ctl){record_stop, NULL},
				    (struct irq_line){count_irq, NULL, I8042_KBD_IRQ});
	uint8_t v = 0x60; /* the command byte: keyboard enabled, its interrupt on */
	i8042_cmd_io(k, 0, &v, 1, true);
	v = 0x01;
	i8042_data_io(k, 0, &v, 1, true);
	vs_err_t err = NULL;
	cr_assert_eq(i8042_ctrl_alt_del(k, &err), 0, "%s", err ? err->msg : "");
	void *blob = NULL;
	size_t len;
	cr_assert_eq(i8042_save(k, &blob, &len, &err), 0);
	uint8_t first;
	i8042_data_io(k, 0, &first, 1, false);

	struct i8042 *t = i8042_new((struct machine_ctl){record_stop, NULL},
				    (struct irq_line){count_irq, NULL, I8042_KBD_IRQ});
	uint8_t *bad = malloc(len);
	const struct {
		size_t off;
		uint8_t v;
		const char *expect;
	} corrupt[] = {{0, 9, "format version"}, {8, 2, "has_out"}, {10, 17, "queue of"},
		       {10, 0, "expected"}};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		memcpy(bad, blob, len);
		bad[corrupt[i].off] = corrupt[i].v;
		cr_assert_eq(i8042_restore(t, bad, len, &err), -1, "%s", corrupt[i].expect);
		cr_assert(strstr(err->msg, "i8042") && strstr(err->msg, corrupt[i].expect), "%s",
			  err->msg);
		vs_err_free(&err);
	}
	cr_assert_eq(i8042_restore(t, blob, len, &err), 0, "%s", err ? err->msg : "");
	uint8_t again;
	i8042_data_io(t, 0, &again, 1, false);
	cr_assert_eq(again, first, "the same first scan code");
	free(bad);
	free(blob);
	i8042_free(k);
	i8042_free(t);
}
