/* http_echo: a small HTTPS server on src/http for tests/integration/test_http_server.sh.
 *
 *   http_echo --cert FILE --key FILE [--listen ADDR] [--client-ca FILE] [--workers N]
 *             [--max-conn N] [--max-body N] [--max-headers N]
 *             [--hs-timeout MS] [--header-timeout MS] [--idle-timeout MS]
 *
 * Prints "port N" on stdout once listening; runs until SIGTERM or SIGINT.
 *   GET  /echo   200: method, path, peer, serving thread and a few request headers
 *   POST /echo   200: the body back
 *   GET  /cert   200: "subject=... verified=0|1 chain=N" of the client certificate
 *   GET  /cb     200: "type=... hex=..." channel binding of the connection
 *   GET  /later  200 "later" after 300 ms from a timer (a deferred answer); a client
 *                that leaves first is logged as "event=gone" on stderr
 *   else         404 */
#include "http/server.h"

#include <event2/event.h>
#include <getopt.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct http_server *server;

static void on_signal(int sig)
{
	(void)sig;
	http_server_stop(server);
}

static void reply_text(struct http_request *r, int status, const char *text)
{
	http_reply(r, status, "text/plain", text, strlen(text), NULL);
}

static void echo_get(struct http_request *r)
{
	static const char *const names[] = {"Host", "User-Agent", "X-Test", "Content-Type"};
	char out[4096];
	int n = snprintf(out, sizeof(out), "method=%s\npath=%s\npeer=%s\nthread=%ld\n",
	                 http_request_method(r), http_request_path(r), http_request_peer(r),
	                 (long)syscall(SYS_gettid));
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && n > 0 && (size_t)n < sizeof(out);
	     i++) {
		const char *v = http_request_header(r, names[i]);
		if (v)
			n += snprintf(out + n, sizeof(out) - (size_t)n, "header %s: %.200s\n",
			              names[i], v);
	}
	reply_text(r, 200, out);
}

static void cert(struct http_request *r)
{
	char out[1024], subject[512] = "none";
	int verified = -1;
	STACK_OF(X509) *chain = http_request_peer_chain(r, &verified);
	if (chain && sk_X509_num(chain) > 0)
		X509_NAME_oneline(X509_get_subject_name(sk_X509_value(chain, 0)), subject,
		                  sizeof(subject));
	snprintf(out, sizeof(out), "subject=%s verified=%d chain=%d\n", subject, verified,
	         chain ? sk_X509_num(chain) : 0);
	reply_text(r, 200, out);
}

static void binding(struct http_request *r)
{
	char out[256];
	size_t len = 0;
	const char *type = NULL;
	const uint8_t *cb = http_request_channel_binding(r, &len, &type);
	if (!cb) {
		reply_text(r, 200, "type=none\n");
		return;
	}
	int n = snprintf(out, sizeof(out), "type=%s hex=", type);
	for (size_t i = 0; i < len && (size_t)n + 3 < sizeof(out); i++)
		n += snprintf(out + n, sizeof(out) - (size_t)n, "%02x", cb[i]);
	snprintf(out + n, sizeof(out) - (size_t)n, "\n");
	reply_text(r, 200, out);
}

struct later {
	struct http_request *req;
	struct event *timer;
};

static void later_gone(void *arg)
{
	struct later *l = arg;
	fprintf(stderr, "event=gone path=/later\n");
	event_free(l->timer);
	free(l);
}

static void later_fire(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;
	(void)fd;
	(void)what;
	http_request_on_gone(l->req, NULL, NULL);
	reply_text(l->req, 200, "later\n");
	event_free(l->timer);
	free(l);
}

static void later(struct http_request *r)
{
	struct timeval tv = {0, 300000};
	struct later *l = calloc(1, sizeof(*l));
	if (!l || !(l->timer = evtimer_new(http_request_base(r), later_fire, l))) {
		free(l);
		reply_text(r, 500, "out of memory\n");
		return;
	}
	l->req = r;
	http_request_on_gone(r, later_gone, l);
	evtimer_add(l->timer, &tv);
}

static void handle(struct http_request *r, void *arg)
{
	(void)arg;
	const char *m = http_request_method(r), *p = http_request_path(r);
	int get = strcmp(m, "GET") == 0;
	if (get && strcmp(p, "/echo") == 0) {
		echo_get(r);
	} else if (strcmp(m, "POST") == 0 && strcmp(p, "/echo") == 0) {
		size_t len;
		const uint8_t *body = http_request_body(r, &len);
		http_reply(r, 200, "application/octet-stream", body, len, NULL);
	} else if (get && strcmp(p, "/cert") == 0) {
		cert(r);
	} else if (get && strcmp(p, "/cb") == 0) {
		binding(r);
	} else if (get && strcmp(p, "/later") == 0) {
		later(r);
	} else {
		static const char *const hdr[] = {"X-Echo", "not found", NULL};
		http_reply(r, 404, "text/plain", "not found\n", 10, hdr);
	}
}

static int num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000000) {
		fprintf(stderr, "http_echo: bad number '%s'\n", s);
		exit(2);
	}
	return (int)v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"cert", required_argument, NULL, 'c'},
	    {"key", required_argument, NULL, 'k'},
	    {"client-ca", required_argument, NULL, 'a'},
	    {"workers", required_argument, NULL, 'w'},
	    {"max-conn", required_argument, NULL, 'm'},
	    {"max-body", required_argument, NULL, 'b'},
	    {"max-headers", required_argument, NULL, 'H'},
	    {"hs-timeout", required_argument, NULL, 's'},
	    {"header-timeout", required_argument, NULL, 'r'},
	    {"idle-timeout", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	struct http_server_opts o = {.listen = "127.0.0.1:0"};
	struct acmera_errmsg e = {{0}};
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			o.listen = optarg;
			break;
		case 'c':
			o.cert_file = optarg;
			break;
		case 'k':
			o.key_file = optarg;
			break;
		case 'a':
			o.client_ca_file = optarg;
			break;
		case 'w':
			o.workers = num(optarg);
			break;
		case 'm':
			o.max_connections = num(optarg);
			break;
		case 'b':
			o.max_body = (size_t)num(optarg);
			break;
		case 'H':
			o.max_headers = (size_t)num(optarg);
			break;
		case 's':
			o.handshake_timeout_ms = num(optarg);
			break;
		case 'r':
			o.header_timeout_ms = num(optarg);
			break;
		case 'i':
			o.idle_timeout_ms = num(optarg);
			break;
		default:
			return 2;
		}
	}
	if (http_server_new(&o, handle, NULL, &server, &e)) {
		fprintf(stderr, "http_echo: %s\n", e.text);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	printf("port %u\n", (unsigned)http_server_port(server));
	fflush(stdout);
	int rc = http_server_run(server);
	http_server_free(server);
	fprintf(stderr, "event=stopped\n");
	return rc ? 1 : 0;
}
