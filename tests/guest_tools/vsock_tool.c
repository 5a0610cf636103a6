/* A static Linux program for test guests: AF_VSOCK streams with byte counts and CRC-32s,
 * so the host side can check a transfer byte for byte (tests/integration/test_vm_vsock.py).
 *
 *   vsock_tool listen PORT COUNT MODE   serve COUNT connections (each in its own process)
 *   vsock_tool connect CID PORT MODE    one connection
 *
 * MODE: echo (send back what comes, until EOF), sink (read until EOF), source:N (send N
 * pseudo-random bytes, then shut the sending side; then read until EOF). Each connection
 * ends in one line: `T:VSOCK <tag> recv=N rcrc=X sent=N scrc=X` or `T:VSOCK <tag> err=E`,
 * E being the errno's name. `listen` first prints `T:VSOCK_LISTENING PORT`. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* zlib's crc32: start with 0, feed the previous value back */
static uint32_t crc32_update(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static const char *errname(int e)
{
	switch (e) {
	case ECONNRESET:
		return "ECONNRESET";
	case ECONNREFUSED:
		return "ECONNREFUSED";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EPIPE:
		return "EPIPE";
	case ENODEV:
		return "ENODEV";
	case EAFNOSUPPORT:
		return "EAFNOSUPPORT";
	default:
		return strerror(e);
	}
}

struct stats {
	uint64_t recv, sent;
	uint32_t rcrc, scrc;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* -1 with errno on a failed read or write */
static int serve(int fd, const char *mode, struct stats *st)
{
	static uint8_t buf[1 << 16];
	memset(st, 0, sizeof(*st));
	if (strncmp(mode, "source:", 7) == 0) {
		uint64_t left = strtoull(mode + 7, NULL, 0);
		uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
		while (left) {
			size_t n = left < sizeof(buf) ? (size_t)left : sizeof(buf);
			for (size_t i = 0; i < n; i += 8) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				memcpy(buf + i, &x, n - i < 8 ? n - i : 8);
			}
			if (write_all(fd, buf, n) < 0)
				return -1;
			st->scrc = crc32_update(st->scrc, buf, n);
			st->sent += n;
			left -= n;
		}
		shutdown(fd, SHUT_WR);
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		st->rcrc = crc32_update(st->rcrc, buf, (size_t)n);
		st->recv += (uint64_t)n;
		if (strcmp(mode, "echo") == 0) {
			if (write_all(fd, buf, (size_t)n) < 0)
				return -1;
			st->scrc = crc32_update(st->scrc, buf, (size_t)n);
			st->sent += (uint64_t)n;
		}
	}
}

static void report(const char *tag, int r, const struct stats *st)
{
	if (r < 0)
		printf("T:VSOCK %s err=%s recv=%llu\n", tag, errname(errno),
		       (unsigned long long)st->recv);
	else
		printf("T:VSOCK %s recv=%llu rcrc=%08x sent=%llu scrc=%08x\n", tag,
		       (unsigned long long)st->recv, st->rcrc, (unsigned long long)st->sent,
		       st->scrc);
	fflush(stdout);
}

static int do_listen(unsigned port, int count, const char *mode)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 128) < 0) {
		printf("T:VSOCK listen-%u err=%s\n", port, errname(errno));
		return 1;
	}
	printf("T:VSOCK_LISTENING %u\n", port);
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		int fd = accept(s, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR) {
				i--;
				continue;
			}
			printf("T:VSOCK accept-%u err=%s\n", port, errname(errno));
			return 1;
		}
		pid_t pid = fork();
		if (pid == 0) {
			char tag[32];
			struct stats st;
			close(s);
			snprintf(tag, sizeof(tag), "port=%u conn=%d", port, i);
			int r = serve(fd, mode, &st);
			report(tag, r, &st);
			_exit(r < 0);
		}
		close(fd);
	}
	int bad = 0, status;
	while (wait(&status) > 0)
		bad |= !WIFEXITED(status) || WEXITSTATUS(status);
	return bad;
}

static int do_connect(unsigned cid, unsigned port, const char *mode)
{
	char tag[32];
	struct stats st = {0};
	snprintf(tag, sizeof(tag), "connect=%u", port);
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port};
	/* Linux gives up on a connect after 2 s of the guest's clock (ETIMEDOUT); the host's
	 * answer, RESPONSE or RST, can take longer in an emulated KVM host under load, and
	 * the tests are about which answer comes, not how fast */
	struct timeval tv = {.tv_sec = 60};
	if (fd >= 0)
		setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		report(tag, -1, &st);
		return 1;
	}
	int r = serve(fd, mode, &st);
	report(tag, r, &st);
	close(fd);
	return r < 0;
}

int main(int argc, char **argv)
{
	crc_init();
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && strcmp(argv[1], "listen") == 0)
		return do_listen((unsigned)strtoul(argv[2], NULL, 0), atoi(argv[3]), argv[4]);
	if (argc == 5 && strcmp(argv[1], "connect") == 0)
		return do_connect((unsigned)strtoul(argv[2], NULL, 0),
				  (unsigned)strtoul(argv[3], NULL, 0), argv[4]);
	fprintf(stderr, "usage: vsock_tool listen PORT COUNT MODE | connect CID PORT MODE\n"
			"MODE: echo | sink | source:N\n");
	return 2;
}
