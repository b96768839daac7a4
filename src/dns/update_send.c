/* Sends one TSIG-signed UPDATE and judges the answer. The exchange is ldns's
 * (ldns_udp_send / ldns_tcp_send with our timeout); the loop adds retries on
 * timeout, TCP for messages too big for UDP or answers with TC set, and checks
 * that the answer is the one to our message and is signed by our key. */
#include "dns/update.h"

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

#define FUDGE 300   /* seconds of clock skew TSIG tolerates (RFC 8945 5.2.3) */
#define UDP_MAX 512 /* larger UPDATEs go over TCP (RFC 2136 3.8 leaves it to us) */
#define TSIG_BADSIG 16
#define TSIG_BADKEY 17
#define TSIG_BADTIME 18
#define TSIG_BADTRUNC 22

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
		               rc, FUDGE);
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

/* ldns_pkt_tsig_verify forgets to put the TSIG RR back when it fails early; keep it. */
static int tsig_verifies(ldns_pkt *p, const uint8_t *w, size_t n, const struct tsig_key *k,
                         const ldns_rdf *req_mac)
{
	ldns_rr *tsig = ldns_pkt_tsig(p);
	uint16_t id = ldns_pkt_id(p);
	bool ok = ldns_pkt_tsig_verify(p, w, n, k->name, k->secret_b64, req_mac);
	if (ldns_pkt_tsig(p) != tsig) {
		ldns_pkt_set_tsig(p, tsig);
		ldns_pkt_set_id(p, id);
	}
	return ok;
}

/* Key name and algorithm ours, time within the fudge, MAC good. */
static int check_tsig(const struct target *t, ldns_pkt *p, const uint8_t *w, size_t n,
                      const ldns_rdf *req_mac, struct acmera_errmsg *e)
{
	const ldns_rr *tsig = ldns_pkt_tsig(p);
	const struct tsig_key *k = t->key;
	ldns_rdf *name = ldns_dname_new_frm_str(k->name);
	ldns_rdf *alg = ldns_dname_new_frm_str(k->algorithm);
	int rc = 0;
	if (!name || !alg) {
		rc = fail_at(t, e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	const ldns_rdf *r_alg = ldns_rr_rdf(tsig, 0);
	const ldns_rdf *r_time = ldns_rr_rdf(tsig, 1);
	const ldns_rdf *r_fudge = ldns_rr_rdf(tsig, 2);
	if (ldns_dname_compare(ldns_rr_owner(tsig), name) != 0 || !r_alg ||
	    ldns_rdf_get_type(r_alg) != LDNS_RDF_TYPE_DNAME ||
	    ldns_dname_compare(r_alg, alg) != 0) {
		rc = fail_at(t, e, ACMERA_ERR_PROTO, "answer is signed with another key");
		goto out;
	}
	if (!r_time || ldns_rdf_size(r_time) != 6 || !r_fudge || ldns_rdf_size(r_fudge) != 2) {
		rc = fail_at(t, e, ACMERA_ERR_PROTO, "malformed TSIG in the answer");
		goto out;
	}
	const uint8_t *d = ldns_rdf_data(r_time);
	int64_t signed_at = 0;
	for (int i = 0; i < 6; i++)
		signed_at = (signed_at << 8) | d[i];
	int64_t skew = (int64_t)time(NULL) - signed_at;
	if (skew < 0)
		skew = -skew;
	if (skew > ldns_rdf2native_int16(r_fudge)) {
		rc = fail_at(t, e, ACMERA_ERR_PROTO,
		             "answer's TSIG time is %lld s away from this host's clock",
		             (long long)skew);
		goto out;
	}
	if (!tsig_verifies(p, w, n, k, req_mac))
		rc = fail_at(t, e, ACMERA_ERR_PROTO,
		             "answer's TSIG does not verify with key '%.*s': not trusted",
		             shown_len(k->name), k->name);
out:
	if (name)
		ldns_rdf_deep_free(name);
	if (alg)
		ldns_rdf_deep_free(alg);
	return rc;
}

/* Judges the answer: a TSIG error, an unsigned or badly signed answer, then the rcode. */
static int check_answer(const struct target *t, const uint8_t *w, size_t n, const ldns_rdf *req_mac,
                        struct acmera_errmsg *e)
{
	ldns_pkt *p = NULL;
	int rcode, terr, rc;
	char rb[128];

	rc = dns_response_parse(w, n, &rcode, &terr, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "%s: bad answer", t->what);
	if (terr > 0)
		return tsig_failure(t, rcode, terr, e);
	if (ldns_wire2pkt(&p, w, n) != LDNS_STATUS_OK || !p)
		return fail_at(t, e, ACMERA_ERR_PROTO, "bad answer");
	if (!ldns_pkt_tsig(p)) {
		/* An unsigned refusal is still worth reporting; an unsigned success is not
		 * to be believed. */
		if (rcode == LDNS_RCODE_NOERROR)
			rc = fail_at(t, e, ACMERA_ERR_PROTO,
			             "the answer is not signed: not trusted");
		else
			rc = fail_at(t, e, ACMERA_ERR_REFUSED, "%s (answer not signed)",
			             rcode_show(rcode, 1, rb, sizeof(rb)));
		goto out;
	}
	rc = check_tsig(t, p, w, n, req_mac, e);
	if (rc)
		goto out;
	if (rcode != LDNS_RCODE_NOERROR)
		rc = fail_at(t, e, ACMERA_ERR_REFUSED, "%s", rcode_show(rcode, 1, rb, sizeof(rb)));
out:
	ldns_pkt_free(p);
	return rc;
}

int dns_update_send(const struct dns_server *srv, const struct tsig_key *key, const char *zone,
                    enum dns_update_op op, const struct dns_txt *recs, size_t n, uint32_t ttl,
                    struct acmera_errmsg *e)
{
	struct target t;
	uint8_t *plain = NULL, *ans = NULL;
	size_t plain_len = 0, ans_len = 0;
	ldns_pkt *req = NULL;
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
	if (ldns_wire2pkt(&req, plain, plain_len) != LDNS_STATUS_OK) {
		rc = fail_at(&t, e, ACMERA_ERR_NOMEM, "cannot read back the message");
		goto out;
	}
	ldns_status st =
	    ldns_pkt_tsig_sign(req, key->name, key->secret_b64, FUDGE, key->algorithm, NULL);
	if (st != LDNS_STATUS_OK) {
		rc = fail_at(&t, e, ACMERA_ERR_CONFIG, "cannot sign with %s: %s", key->algorithm,
		             ldns_get_errorstr_by_id(st));
		goto out;
	}
	qb = ldns_buffer_new(plain_len + 512);
	if (!qb || ldns_pkt2buffer_wire(qb, req) != LDNS_STATUS_OK) {
		rc = fail_at(&t, e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = exchange(&t, srv, qb, id, &ans, &ans_len, e);
	if (rc)
		goto out;
	rc = check_answer(&t, ans, ans_len, ldns_rr_rdf(ldns_pkt_tsig(req), 3), e);
out:
	free(plain);
	free(ans);
	if (qb)
		ldns_buffer_free(qb);
	if (req)
		ldns_pkt_free(req);
	return rc;
}
