/* HTTP/1.1 for the API: Debian's http-parser (nodejs's) reads requests; we keep the URL and
 * body (bounded), hand each whole request to api_handle and queue its response. One
 * request at a time per connection, in order; pipelined requests wait in the input. */
#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/api/api.h"

struct api_http {
	struct api *api;
	http_parser p;
	http_parser_settings s;
	char url[API_URL_MAX + 1];
	size_t url_len;
	char *body;
	size_t body_len;
	size_t header_bytes;
	char field[16], expect[16]; /* the header being read (truncated), Expect's value */
	size_t field_len, expect_len;
	bool in_expect, field_done;
	char fault[160]; /* why a callback stopped the parser */
	bool close;	 /* no more requests: answer what is queued, then close */
	char *out;
	size_t out_len, out_cap, out_off;
};

static void out_append(struct api_http *h, const char *s, size_t n)
{
	if (h->out_off == h->out_len)
		h->out_off = h->out_len = 0;
	if (h->out_len + n > h->out_cap) {
		size_t cap = h->out_cap ? h->out_cap : 1024;
		while (cap < h->out_len + n)
			cap *= 2;
		char *o = realloc(h->out, cap);
		if (!o) {
			h->close = true; /* can't answer: drop the connection */
			return;
		}
		h->out = o;
		h->out_cap = cap;
	}
	memcpy(h->out + h->out_len, s, n);
	h->out_len += n;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 204:
		return "No Content";
	default:
		return "Bad Request";
	}
}

static void respond(struct api_http *h, int status, const char *body)
{
	char head[256];
	int n;
	const char *conn = h->close ? "Connection: close\r\n" : "";
	if (status == 204)
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 204 No Content\r\nServer: vessel\r\n%s\r\n", conn);
	else
		n = snprintf(
		    head, sizeof(head),
		    "HTTP/1.1 %d %s\r\nServer: vessel\r\nContent-Type: application/json\r\n"
		    "Content-Length: %zu\r\n%s\r\n",
		    status, reason(status), body ? strlen(body) : 0, conn);
	out_append(h, head, (size_t)n);
	if (body && status != 204)
		out_append(h, body, strlen(body));
}

static void respond_fault(struct api_http *h, const char *msg)
{
	json_t *v = json_pack("{s:s}", "fault_message", msg);
	char *body = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	h->close = true;
	respond(h, 400, body ? body : "{}");
	free(body);
}

static struct api_http *of(http_parser *p)
{
	return p->data;
}

/* A callback's error: -1, since on_headers_complete's 1 means "no body", not "stop". */
static int stop(struct api_http *h, const char *msg)
{
	snprintf(h->fault, sizeof(h->fault), "%s", msg);
	return -1;
}

static int on_begin(http_parser *p)
{
	struct api_http *h = of(p);
	h->url_len = h->body_len = h->header_bytes = 0;
	h->field_len = h->expect_len = 0;
	h->in_expect = h->field_done = false;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
	struct api_http *h = of(p);
	if (h->url_len + n > API_URL_MAX)
		return stop(h, "request URL: longer than 1024 bytes");
	memcpy(h->url + h->url_len, at, n);
	h->url_len += n;
	h->url[h->url_len] = '\0';
	return 0;
}

static int count_header(struct api_http *h, size_t n)
{
	h->header_bytes += n;
	return h->header_bytes > API_HEADERS_MAX ? stop(h, "HTTP headers: more than 8192 bytes")
						 : 0;
}

static int on_field(http_parser *p, const char *at, size_t n)
{
	struct api_http *h = of(p);
	if (h->field_done) { /* a new header begins */
		h->field_len = 0;
		h->field_done = false;
	}
	for (size_t i = 0; i < n && h->field_len + 1 < sizeof(h->field); i++)
		h->field[h->field_len++] = (char)tolower((unsigned char)at[i]);
	h->field[h->field_len] = '\0';
	return count_header(h, n);
}

static int on_value(http_parser *p, const char *at, size_t n)
{
	struct api_http *h = of(p);
	h->field_done = true;
	if (strcmp(h->field, "expect") == 0)
		for (size_t i = 0; i < n && h->expect_len + 1 < sizeof(h->expect); i++)
			h->expect[h->expect_len++] = (char)tolower((unsigned char)at[i]);
	h->expect[h->expect_len] = '\0';
	return count_header(h, n);
}

static int on_headers_complete(http_parser *p)
{
	struct api_http *h = of(p);
	if (p->upgrade)
		return stop(h, "protocol upgrades are not taken");
	if (p->content_length != ULLONG_MAX && p->content_length > API_BODY_MAX)
		return stop(h, "request body: more than 51200 bytes");
	/* curl waits a second for this before sending a large body */
	if (strcmp(h->expect, "100-continue") == 0)
		out_append(h, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
	struct api_http *h = of(p);
	if (h->body_len + n > API_BODY_MAX)
		return stop(h, "request body: more than 51200 bytes");
	if (!h->body) {
		h->body = malloc(API_BODY_MAX);
		if (!h->body)
			return stop(h, "out of memory");
	}
	memcpy(h->body + h->body_len, at, n);
	h->body_len += n;
	return 0;
}

static int on_complete(http_parser *p)
{
	struct api_http *h = of(p);
	h->url[strcspn(h->url, "?#")] = '\0'; /* the API takes no query */
	if (!http_should_keep_alive(p))
		h->close = true;
	struct api_response r;
	api_handle(h->api, http_method_str((enum http_method)p->method), h->url, h->body,
		   h->body_len, &r);
	respond(h, r.status, r.body);
	free(r.body);
	free(h->body);
	h->body = NULL;
	h->body_len = 0;
	http_parser_pause(p, 1); /* one request per execute: the caller goes on */
	return 0;
}

struct api_http *api_http_new(struct api *a)
{
	struct api_http *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->api = a;
	http_parser_init(&h->p, HTTP_REQUEST);
	h->p.data = h;
	http_parser_settings_init(&h->s);
	h->s.on_message_begin = on_begin;
	h->s.on_url = on_url;
	h->s.on_header_field = on_field;
	h->s.on_header_value = on_value;
	h->s.on_headers_complete = on_headers_complete;
	h->s.on_body = on_body;
	h->s.on_message_complete = on_complete;
	return h;
}

void api_http_free(struct api_http *h)
{
	if (!h)
		return;
	free(h->body);
	free(h->out);
	free(h);
}

bool api_http_feed(struct api_http *h, const char *data, size_t len)
{
	while (len && !h->close) {
		size_t n = http_parser_execute(&h->p, &h->s, data, len);
		enum http_errno e = HTTP_PARSER_ERRNO(&h->p);
		if (e == HPE_PAUSED) {
			http_parser_pause(&h->p, 0);
			data += n;
			len -= n;
			continue;
		}
		if (e != HPE_OK) {
			char msg[200];
			snprintf(msg, sizeof(msg), "malformed HTTP request: %s",
				 h->fault[0] ? h->fault : http_errno_description(e));
			respond_fault(h, msg);
			break;
		}
		if (h->p.upgrade) {
			respond_fault(h, "malformed HTTP request: protocol upgrades are not taken");
			break;
		}
		if (n == 0)
			break;
		data += n;
		len -= n;
	}
	return !h->close;
}

const char *api_http_output(const struct api_http *h, size_t *len)
{
	*len = h->out_len - h->out_off;
	return h->out + h->out_off;
}

void api_http_sent(struct api_http *h, size_t n)
{
	h->out_off += n;
	if (h->out_off > h->out_len)
		h->out_off = h->out_len;
}
