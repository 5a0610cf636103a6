/* A client of a running VMM's API: one HTTP/1.1 request per connection over its Unix
 * socket (Connection: close, so the answer ends at EOF). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "vmm/vmm.h"

#define ANSWER_MAX (1u << 20)

int vmm_api_call(const char *sock, const char *method, const char *path, const char *body,
		 int *status, char **answer, vs_err_t *err)
{
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	if (strlen(sock) >= sizeof(un.sun_path))
		return vs_err(err, 0, "API socket `%s`: path too long", sock);
	strcpy(un.sun_path, sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vs_err(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
		int e = errno;
		close(fd);
		return vs_err(err, e, "connect to the API at `%s`", sock);
	}
	char head[512];
	size_t blen = body ? strlen(body) : 0;
	int hn = snprintf(head, sizeof(head),
			  "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			  "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
			  method, path, blen);
	char *buf = NULL;
	int rc = -1;
	if (vs_write_all(fd, head, (size_t)hn, err) < 0 ||
	    (blen && vs_write_all(fd, body, blen, err) < 0))
		goto out;
	size_t len = 0;
	buf = malloc(ANSWER_MAX + 1);
	if (!buf) {
		vs_err(err, ENOMEM, "API answer");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, ANSWER_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			vs_err(err, errno, "read the API's answer");
			goto out;
		}
		if (n == 0 || len + (size_t)n == ANSWER_MAX) {
			len += (size_t)n;
			break;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	const char *sep = strstr(buf, "\r\n\r\n");
	if (strncmp(buf, "HTTP/1.1 ", 9) != 0 || !sep) {
		vs_err(err, 0, "the API at `%s` answered no HTTP", sock);
		goto out;
	}
	*status = atoi(buf + 9);
	*answer = strdup(sep + 4);
	if (!*answer) {
		vs_err(err, ENOMEM, "API answer");
		goto out;
	}
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}
