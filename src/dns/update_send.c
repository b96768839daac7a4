/* Sends one TSIG-signed UPDATE and judges the answer. The exchange is ldns's
 * (ldns_udp_send / ldns_tcp_send with our timeout); the loop adds retries on
 * timeout, TCP for messages too big for UDP or answers with TC set, and checks
 * that the answer is the one to our message and is signed by our key. TSIG is
 * dns/tsig.c's, not ldns's, which cannot sign with hmac-sha384. */
#include "dns/update.h"

#include "dns/tsig.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define UDP_MAX 512 /* larger UPDATEs go over TCP (RFC 2136 3.8 leaves it to us) */

/* What an error message says the UPDATE was: "UPDATE of zone Z at S with key K". */
struct target {
	char what[768];
	const struct tsig_key *key;
};

static int fail_at(const struct target *t, struct acmera_errmsg *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(const struct target *t, struct acmera_errmsg *e, int code, const char *fmt, ...)
{
	char why[ACMERA_ERRMSG_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return acmera_fail(e, code, "%s: %s", t->what, why);
}

/* Names are shown without the trailing dot. */
static int shown_len(const char *s)
{
	size_t n = strnlen(s, 255);
	return (int)(n > 0 && s[n - 1] == '.' ? n - 1 : n);
}

static void describe(struct target *t, const struct dns_server *srv, const struct tsig_key *key,
                     const char *zone)
{
	int v6 = strchr(srv->host, ':') != NULL;
	snprintf(t->what, sizeof(t->what), "UPDATE of zone %.*s at %s%s%s:%u with key %.*s",
	         shown_len(zone), zone, v6 ? "[" : "", srv->host, v6 ? "]" : "", srv->port,
	         shown_len(key->name), key->name);
	t->key = key;
}

static const struct {
	int rcode;
	const char *name;
	const char *why;
} rcodes[] = {
    {LDNS_RCODE_FORMERR, "FORMERR", "the server could not parse the UPDATE"},
    {LDNS_RCODE_SERVFAIL, "SERVFAIL", "the server failed to apply the UPDATE"},
    {LDNS_RCODE_NXDOMAIN, "NXDOMAIN", "a prerequisite failed"},
    {LDNS_RCODE_NOTIMPL, "NOTIMP", "the server does not implement UPDATE"},
    {LDNS_RCODE_REFUSED, "REFUSED", "the server's update-policy does not allow it"},
    {LDNS_RCODE_YXDOMAIN, "YXDOMAIN", "a prerequisite failed"},
    {LDNS_RCODE_YXRRSET, "YXRRSET", "a prerequisite failed"},
    {LDNS_RCODE_NXRRSET, "NXRRSET", "a prerequisite failed"},
    {LDNS_RCODE_NOTAUTH, "NOTAUTH",
     "the server is not authoritative for the zone, or rejected the TSIG"},
    {LDNS_RCODE_NOTZONE, "NOTZONE", "a name is outside the zone"},
};

/* "REFUSED", or "rcode 23" for one without a name; with why, "REFUSED (reason)". */
static const char *rcode_show(int rcode, int why, char *buf, size_t len)
{
	for (size_t i = 0; i < sizeof(rcodes) / sizeof(rcodes[0]); i++) {
		if (rcodes[i].rcode == rcode) {
			if (why)
				snprintf(buf, len, "%s (%s)", rcodes[i].name, rcodes[i].why);
			else
				snprintf(buf, len, "%s", rcodes[i].name);
			return buf;
		}
	}
	snprintf(buf, len, "rcode %d", rcode);
	return buf;
}

static int tsig_failure(const struct target *t, int rcode, int err, struct acmera_errmsg *e)
{
	const char *k = t->key->name;
	int kl = shown_len(k);
	char rb[128];
	const char *rc = rcode_show(rcode, 0, rb, sizeof(rb));
	switch (err) {
	case TSIG_BADSIG:
		return fail_at(t, e, ACMERA_ERR_REFUSED,
		               "%s, TSIG BADSIG (the server's secret for key '%.*s' differs from "
		               "ours)",
		               rc, kl, k);
	case TSIG_BADKEY:
		return fail_at(t, e, ACMERA_ERR_REFUSED,
		               "%s, TSIG BADKEY (the server does not know key '%.*s' with "
		               "algorithm %.*s)",
		               rc, kl, k, shown_len(t->key->algorithm), t->key->algorithm);
	case TSIG_BADTIME:
		return fail_at(t, e, ACMERA_ERR_REFUSED,
		               "%s, TSIG BADTIME (this host's clock and the server's differ by "
		               "more than %d s)",
		               rc, TSIG_FUDGE);
	case TSIG_BADTRUNC:
		return fail_at(t, e, ACMERA_ERR_REFUSED, "%s, TSIG BADTRUNC", rc);
	default:
		return fail_at(t, e, ACMERA_ERR_REFUSED, "%s, TSIG error %d", rc, err);
	}
}

static int server_addr(const struct dns_server *srv, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, srv->host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(srv->port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, srv->host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(srv->port);
		*len = sizeof(*a6);
		return 0;
	}
	return -1;
}

/* An answer belongs to our message when it is a response with our id and opcode. */
static int is_our_answer(const uint8_t *w, size_t n, uint16_t id)
{
	return n >= LDNS_HEADER_SIZE && LDNS_QR_WIRE(w) && LDNS_ID_WIRE(w) == id &&
	       LDNS_OPCODE_WIRE(w) == LDNS_PACKET_UPDATE;
}

/* Sends qb and returns the first answer to it. UDP unless the message is larger than
 * UDP_MAX or the UDP answer is truncated; 1 + retries attempts of timeout_ms each. */
static int exchange(const struct target *t, const struct dns_server *srv, ldns_buffer *qb,
                    uint16_t id, uint8_t **ans, size_t *anslen, struct acmera_errmsg *e)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	int attempts = 1 + (srv->retries > 0 ? srv->retries : 0);
	int timeout_ms = srv->timeout_ms > 0 ? srv->timeout_ms : 3000;
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	int tcp = ldns_buffer_position(qb) > UDP_MAX;
	int refused = 0, foreign = 0;

	if (server_addr(srv, &ss, &sslen) != 0)
		return fail_at(t, e, ACMERA_ERR_CONFIG, "server address is not an IP address");
	for (int i = 0; i < attempts; i++) {
		uint8_t *w = NULL;
		size_t n = 0;
		ldns_status st;
		if (!tcp) {
			st = ldns_udp_send(&w, qb, &ss, sslen, tv, &n);
			if (st == LDNS_STATUS_OK && is_our_answer(w, n, id) && LDNS_TC_WIRE(w)) {
				free(w);
				w = NULL;
				tcp = 1; /* and ask again at once, over TCP */
			}
		}
		if (tcp) {
			errno = 0;
			st = ldns_tcp_send(&w, qb, &ss, sslen, tv, &n);
			refused = st != LDNS_STATUS_OK && errno == ECONNREFUSED;
		}
		if (st == LDNS_STATUS_OK && is_our_answer(w, n, id)) {
			*ans = w;
			*anslen = n;
			return 0;
		}
		if (st == LDNS_STATUS_OK)
			foreign++;
		free(w);
	}
	if (refused)
		return fail_at(t, e, ACMERA_ERR_IO, "TCP connection refused after %d attempts",
		               attempts);
	if (foreign)
		return fail_at(t, e, ACMERA_ERR_PROTO,
		               "no answer to our message after %d attempts (%d answers with a "
		               "wrong id or opcode)",
		               attempts, foreign);
	return fail_at(t, e, ACMERA_ERR_TIMEOUT, "no answer after %d attempts of %d ms%s", attempts,
	               timeout_ms, tcp ? " over TCP" : "");
}

/* Judges the answer to req: a TSIG error, an unsigned or badly signed answer, then the
 * rcode. */
static int check_answer(const struct target *t, const uint8_t *req, size_t reqlen, const uint8_t *w,
                        size_t n, struct acmera_errmsg *e)
{
	int rcode, terr, rc;
	char rb[128];

	rc = dns_response_parse(w, n, &rcode, &terr, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "%s: bad answer", t->what);
	if (terr > 0)
		return tsig_failure(t, rcode, terr, e);
	if (terr < 0) {
		/* An unsigned refusal is still worth reporting; an unsigned success is not
		 * to be believed. */
		if (rcode == LDNS_RCODE_NOERROR)
			return fail_at(t, e, ACMERA_ERR_PROTO,
			               "the answer is not signed: not trusted");
		return fail_at(t, e, ACMERA_ERR_REFUSED, "%s (answer not signed)",
		               rcode_show(rcode, 1, rb, sizeof(rb)));
	}
	rc = tsig_verify_response(req, reqlen, w, n, t->key, (uint64_t)time(NULL), e);
	if (rc)
		return acmera_fail_wrap(e, rc == ACMERA_ERR_NOTFOUND ? ACMERA_ERR_PROTO : rc, "%s",
		                        t->what);
	if (rcode != LDNS_RCODE_NOERROR)
		return fail_at(t, e, ACMERA_ERR_REFUSED, "%s",
		               rcode_show(rcode, 1, rb, sizeof(rb)));
	return 0;
}

int dns_update_send(const struct dns_server *srv, const struct tsig_key *key, const char *zone,
                    enum dns_update_op op, const struct dns_txt *recs, size_t n, uint32_t ttl,
                    struct acmera_errmsg *e)
{
	struct target t;
	uint8_t *plain = NULL, *req = NULL, *ans = NULL;
	size_t plain_len = 0, req_len = 0, ans_len = 0;
	ldns_buffer *qb = NULL;
	uint16_t id;
	int rc;

	if (!srv || !key || !zone || (!recs && n > 0))
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_update_send");
	if (n == 0)
		return 0;
	describe(&t, srv, key, zone);
	if (RAND_bytes((unsigned char *)&id, sizeof(id)) != 1)
		return fail_at(&t, e, ACMERA_ERR_NOMEM, "no random bytes for the message id");
	rc = dns_update_build(zone, op, recs, n, ttl, id, &plain, &plain_len, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "%s", t.what);
	rc = tsig_sign(plain, plain_len, key, (uint64_t)time(NULL), &req, &req_len, e);
	if (rc) {
		rc = acmera_fail_wrap(e, rc, "%s: cannot sign", t.what);
		goto out;
	}
	/* ldns sends the bytes before the buffer's position. */
	qb = ldns_buffer_new(req_len);
	if (!qb) {
		rc = fail_at(&t, e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	ldns_buffer_write(qb, req, req_len);
	rc = exchange(&t, srv, qb, id, &ans, &ans_len, e);
	if (rc)
		goto out;
	rc = check_answer(&t, req, req_len, ans, ans_len, e);
out:
	free(plain);
	free(req);
	free(ans);
	if (qb)
		ldns_buffer_free(qb);
	return rc;
}
