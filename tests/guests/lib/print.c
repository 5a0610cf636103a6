/* gprintf: the printf subset the guests report with, on COM1. */
#include "guest.h"

static volatile uint32_t print_lock;

static void lock(void)
{
	uint32_t busy = 1;

	/* xchg with memory is implicitly locked: one CPU prints a whole line at a time */
	for (;;) {
		__asm__ volatile("xchg %0, %1" : "+r"(busy), "+m"(print_lock) : : "memory");
		if (!busy)
			return;
		busy = 1;
		cpu_relax();
	}
}

static void unlock(void)
{
	__asm__ volatile("" ::: "memory");
	print_lock = 0;
}

/* Two 32-bit divides: 32-bit code has no 64-bit divide without libgcc. */
uint64_t udiv64(uint64_t n, uint32_t d, uint32_t *rem)
{
	uint32_t hi = (uint32_t)(n >> 32), lo = (uint32_t)n, qhi = hi / d, qlo, r = hi % d;

	__asm__("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
	if (rem)
		*rem = r;
	return ((uint64_t)qhi << 32) | qlo;
}

static void put_number(uint64_t n, unsigned base, int width, char pad, int negative)
{
	char buf[24];
	int len = 0;

	do {
		uint32_t digit;

		if (base == 16) {
			digit = (uint32_t)n & 15;
			n >>= 4;
		} else {
			n = udiv64(n, 10, &digit);
		}
		buf[len++] = (char)(digit < 10 ? '0' + digit : 'a' + digit - 10);
	} while (n);
	if (negative)
		buf[len++] = '-';
	for (; width > len; width--)
		serial_putc(pad);
	while (len)
		serial_putc(buf[--len]);
}

void gprintf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lock();
	for (; *fmt; fmt++) {
		int width = 0, longs = 0;
		char pad = ' ';
		uint64_t u;

		if (*fmt != '%') {
			if (*fmt == '\n')
				serial_putc('\r');
			serial_putc(*fmt);
			continue;
		}
		if (*++fmt == '0')
			pad = '0';
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') {
			longs++;
			fmt++;
		}
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);

			for (s = s ? s : "(null)"; *s; s++)
				serial_putc(*s);
			break;
		}
		case 'c':
			serial_putc((char)va_arg(ap, int));
			break;
		case 'd': {
			int64_t v = longs == 2 ? va_arg(ap, int64_t) : va_arg(ap, int32_t);

			put_number(v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad, v < 0);
			break;
		}
		case 'u':
		case 'x':
			u = longs == 2 ? va_arg(ap, uint64_t) : va_arg(ap, uint32_t);
			put_number(u, *fmt == 'x' ? 16 : 10, width, pad, 0);
			break;
		case '%':
			serial_putc('%');
			break;
		default:
			/* an unknown conversion is the guest's own bug: show it, consume nothing */
			serial_putc('%');
			serial_putc(*fmt ? *fmt : '?');
			if (!*fmt)
				fmt--;
		}
	}
	unlock();
	va_end(ap);
}
