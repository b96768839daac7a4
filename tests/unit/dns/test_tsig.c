/* TSIG (RFC 8945) signing and answer verification against MACs computed here with
 * OpenSSL's one-shot HMAC() over messages assembled byte by byte, for hmac-sha256,
 * -sha384 and -sha512; ldns as a second implementation where it can (not sha384). */
#include "dns/tsig.h"

#include <ldns/ldns.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define NOW 1700000000ULL /* 0x6553f100 */
#define REQ_ID 0x1234

/* A growing byte string. */
struct bytes {
	uint8_t b[2048];
	size_t n;
};

static void put(struct bytes *s, const void *p, size_t n)
{
	assert_true(s->n + n <= sizeof(s->b));
	memcpy(s->b + s->n, p, n);
	s->n += n;
}

static void put16(struct bytes *s, unsigned v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(s, b, 2);
}

static void put48(struct bytes *s, uint64_t v)
{
	uint8_t b[6] = {(uint8_t)(v >> 40), (uint8_t)(v >> 32), (uint8_t)(v >> 24),
	                (uint8_t)(v >> 16), (uint8_t)(v >> 8),  (uint8_t)v};
	put(s, b, 6);
}

/* put(s, "literal") without its NUL. Wire bytes are octal escapes: "\6acmera" is the
 * label of length 6 (a hex escape would swallow the 'a'). */
#define PUTS(s, lit) put((s), (lit), sizeof(lit) - 1)

#define KNAME_WIRE "\6acmera\4test\0"

struct alg {
	const char *name; /* as in key files */
	const char *wire; /* algorithm name in wire form */
	size_t wire_len;
	const EVP_MD *(*md)(void);
	size_t mac_len;
};

static const struct alg algs[] = {
    {"hmac-sha256", "\13hmac-sha256\0", 13, EVP_sha256, 32},
    {"hmac-sha384", "\13hmac-sha384\0", 13, EVP_sha384, 48},
    {"hmac-sha512", "\13hmac-sha512\0", 13, EVP_sha512, 64},
};

static uint8_t secret[32];

/* A key named name with the test secret, for algorithm a. */
static void make_key(const char *name, const struct alg *a, struct tsig_key *k)
{
	char b64[64], text[256];
	struct acmera_errmsg e = {{0}};
	EVP_EncodeBlock((unsigned char *)b64, secret, sizeof(secret));
	snprintf(text, sizeof(text), "key \"%s\" { algorithm %s; secret \"%s\"; };", name, a->name,
	         b64);
	if (tsig_key_parse(text, strlen(text), "test", k, &e) != 0)
		fail_msg("%s", e.text);
}

/* An UPDATE of zone acmera.test adding one TXT record; arcount as given. */
static void update_message(struct bytes *m, unsigned id, unsigned arcount)
{
	m->n = 0;
	put16(m, id);
	put16(m, 0x2800); /* opcode UPDATE */
	put16(m, 1);
	put16(m, 0);
	put16(m, 1);
	put16(m, arcount);
	PUTS(m, "\6acmera\4test\0\0\6\0\1"); /* SOA IN */
	PUTS(m, "\17_acme-challenge\300\14\0\20\0\1\0\0\0\74\0\6\5hello");
}

/* The answer to it, NOERROR; arcount as given. */
static void answer_message(struct bytes *m, unsigned id, unsigned arcount)
{
	m->n = 0;
	put16(m, id);
	put16(m, 0xa800); /* QR, opcode UPDATE, NOERROR */
	put16(m, 1);
	put16(m, 0);
	put16(m, 0);
	put16(m, arcount);
	PUTS(m, "\6acmera\4test\0\0\6\0\1");
}

/* The TSIG variables of RFC 8945 4.3.3 after the message. */
static void tsig_vars(struct bytes *s, const void *kname, size_t kname_len, const struct alg *a,
                      uint64_t t, unsigned fudge, unsigned error)
{
	put(s, kname, kname_len);
	put16(s, 255); /* class ANY */
	PUTS(s, "\0\0\0\0");
	put(s, a->wire, a->wire_len);
	put48(s, t);
	put16(s, fudge);
	put16(s, error);
	put16(s, 0); /* other len */
}

static void tsig_rr(struct bytes *s, const void *kname, size_t kname_len, const struct alg *a,
                    uint64_t t, unsigned fudge, const uint8_t *mac, size_t mac_len, unsigned id,
                    unsigned error)
{
	put(s, kname, kname_len);
	put16(s, 250);
	put16(s, 255);
	PUTS(s, "\0\0\0\0");
	put16(s, a->wire_len + 16 + mac_len);
	put(s, a->wire, a->wire_len);
	put48(s, t);
	put16(s, fudge);
	put16(s, mac_len);
	put(s, mac, mac_len);
	put16(s, id);
	put16(s, error);
	put16(s, 0);
}

static void hmac(const struct alg *a, const struct bytes *in, uint8_t *mac)
{
	unsigned len = 0;
	assert_non_null(HMAC(a->md(), secret, sizeof(secret), in->b, in->n, mac, &len));
	assert_int_equal(len, a->mac_len);
}

static void sign_request(const struct tsig_key *k, uint8_t **req, size_t *len)
{
	struct bytes m;
	struct acmera_errmsg e = {{0}};
	update_message(&m, REQ_ID, 0);
	if (tsig_sign(m.b, m.n, k, NOW, req, len, &e) != 0)
		fail_msg("%s", e.text);
}

/* How an answer is to be made (all zero: a good one). */
struct answer_opts {
	const char *kname; /* owner, wire form; default KNAME_WIRE */
	size_t kname_len;
	const struct alg *alg;  /* default: the key's */
	int64_t time_delta;     /* time signed = NOW + delta */
	unsigned header_id;     /* default REQ_ID */
	int mac_over_header_id; /* MAC over the header id instead of the original id */
	size_t mac_len;         /* a truncated MAC */
	const uint8_t *prior;   /* the request MAC it answers; default req's */
	unsigned error;
	int no_mac;
};

/* An answer to req signed as o says, MAC computed here. */
static void make_answer(const struct alg *a, const uint8_t *req, size_t reqlen,
                        const struct answer_opts *o, struct bytes *out)
{
	struct bytes in = {.n = 0}, msg;
	uint8_t mac[64];
	const struct alg *sa = o->alg ? o->alg : a;
	const char *kname = o->kname ? o->kname : KNAME_WIRE;
	size_t kname_len = o->kname ? o->kname_len : sizeof(KNAME_WIRE) - 1;
	unsigned hid = o->header_id ? o->header_id : REQ_ID;
	uint64_t t = NOW + (uint64_t)o->time_delta;

	/* The request's MAC sits just before its original id, error and other len. */
	put16(&in, a->mac_len);
	put(&in, o->prior ? o->prior : req + reqlen - 6 - a->mac_len, a->mac_len);
	answer_message(&msg, o->mac_over_header_id ? hid : REQ_ID, 0);
	put(&in, msg.b, msg.n);
	/* The MAC uses the canonical (lower-case) key name whatever the owner's case. */
	tsig_vars(&in, KNAME_WIRE, sizeof(KNAME_WIRE) - 1, sa, t, 300, o->error);
	hmac(sa, &in, mac);
	answer_message(out, hid, 1);
	size_t mac_len = o->mac_len ? o->mac_len : sa->mac_len;
	if (o->no_mac)
		mac_len = 0;
	tsig_rr(out, kname, kname_len, sa, t, 300, mac, mac_len, REQ_ID, o->error);
}

static int verify(const struct tsig_key *k, const uint8_t *req, size_t reqlen,
                  const struct bytes *ans, uint64_t now, struct acmera_errmsg *e)
{
	return tsig_verify_response(req, reqlen, ans->b, ans->n, k, now, e);
}

static void expect(int got, int want, const struct acmera_errmsg *e, const char *text)
{
	if (got != want)
		fail_msg("got %d (%s), want %d", got, e->text, want);
	if (text && !strstr(e->text, text))
		fail_msg("error \"%s\" lacks \"%s\"", e->text, text);
}

static void tsig_sign_matches_hand_computed_mac_for_each_algorithm(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		const struct alg *a = &algs[i];
		struct tsig_key k;
		struct bytes m, in = {.n = 0}, want;
		uint8_t mac[64], *got = NULL;
		size_t got_len = 0;
		struct acmera_errmsg e = {{0}};

		make_key("acmera.test", a, &k);
		update_message(&m, REQ_ID, 0);
		put(&in, m.b, m.n);
		tsig_vars(&in, KNAME_WIRE, sizeof(KNAME_WIRE) - 1, a, NOW, 300, 0);
		hmac(a, &in, mac);
		update_message(&want, REQ_ID, 1);
		tsig_rr(&want, KNAME_WIRE, sizeof(KNAME_WIRE) - 1, a, NOW, 300, mac, a->mac_len,
		        REQ_ID, 0);

		assert_int_equal(tsig_sign(m.b, m.n, &k, NOW, &got, &got_len, &e), 0);
		assert_int_equal(got_len, want.n);
		assert_memory_equal(got, want.b, want.n);
		free(got);
	}
}

static void tsig_sign_writes_48_bit_time(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *got = NULL;
	size_t len = 0;
	struct bytes m;
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[0], &k);
	update_message(&m, REQ_ID, 0);
	/* Past 2106, where a 32-bit time would wrap. */
	assert_int_equal(tsig_sign(m.b, m.n, &k, 0x0123456789abULL, &got, &len, &e), 0);
	assert_memory_equal(got + m.n + sizeof(KNAME_WIRE) - 1 + 10 + 13,
	                    "\x01\x23\x45\x67\x89\xab", 6);
	free(got);
}

static void tsig_sign_uses_canonical_lower_case_key_name(void **state)
{
	(void)state;
	struct tsig_key lower, upper;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct bytes m;
	make_key("acmera.test", &algs[1], &lower);
	make_key("ACMERA.Test", &algs[1], &upper);
	update_message(&m, REQ_ID, 0);
	assert_int_equal(tsig_sign(m.b, m.n, &lower, NOW, &a, &alen, NULL), 0);
	assert_int_equal(tsig_sign(m.b, m.n, &upper, NOW, &b, &blen, NULL), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
}

static void tsig_sign_refuses_what_is_not_a_message(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *out = NULL;
	size_t len = 0;
	struct acmera_errmsg e = {{0}};
	static const uint8_t short_msg[11];
	make_key("acmera.test", &algs[0], &k);
	expect(tsig_sign(short_msg, sizeof(short_msg), &k, NOW, &out, &len, &e), ACMERA_ERR_INVAL,
	       &e, "cannot be signed");
	assert_null(out);
}

/* ldns verifies our requests where it can sign at all (not hmac-sha384). */
static void tsig_sign_output_verifies_with_ldns(void **state)
{
	(void)state;
	const struct alg *both[] = {&algs[0], &algs[2]};
	for (int i = 0; i < 2; i++) {
		struct tsig_key k;
		uint8_t *req = NULL;
		size_t len = 0;
		ldns_pkt *p = NULL;
		struct bytes m;
		make_key("acmera.test", both[i], &k);
		update_message(&m, REQ_ID, 0);
		assert_int_equal(tsig_sign(m.b, m.n, &k, (uint64_t)time(NULL), &req, &len, NULL),
		                 0);
		assert_int_equal(ldns_wire2pkt(&p, req, len), LDNS_STATUS_OK);
		assert_true(ldns_pkt_tsig_verify(p, req, len, k.name, k.secret_b64, NULL));
		/* And ldns notices a changed secret. */
		ldns_pkt_free(p);
		p = NULL;
		req[len - 7] ^= 1; /* last MAC byte */
		assert_int_equal(ldns_wire2pkt(&p, req, len), LDNS_STATUS_OK);
		assert_false(ldns_pkt_tsig_verify(p, req, len, k.name, k.secret_b64, NULL));
		ldns_pkt_free(p);
		free(req);
	}
}

static void tsig_verify_accepts_answer_signed_over_request_mac(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct tsig_key k;
		uint8_t *req = NULL;
		size_t len = 0;
		struct bytes ans;
		struct acmera_errmsg e = {{0}};
		struct answer_opts o = {0};
		make_key("acmera.test", &algs[i], &k);
		sign_request(&k, &req, &len);
		make_answer(&algs[i], req, len, &o, &ans);
		expect(verify(&k, req, len, &ans, NOW, &e), 0, &e, NULL);
		free(req);
	}
}

static void tsig_verify_refuses_tampered_answer(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct tsig_key k;
		uint8_t *req = NULL;
		size_t len = 0;
		struct bytes ans, bad;
		struct answer_opts o = {0};
		make_key("acmera.test", &algs[i], &k);
		sign_request(&k, &req, &len);
		make_answer(&algs[i], req, len, &o, &ans);
		/* The rcode, a byte of the question, the time, a byte of the MAC. */
		size_t at[] = {3, 14, ans.n - algs[i].mac_len - 11, ans.n - algs[i].mac_len - 6};
		for (size_t j = 0; j < sizeof(at) / sizeof(at[0]); j++) {
			struct acmera_errmsg e = {{0}};
			bad = ans;
			bad.b[at[j]] ^= 0x01;
			expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e,
			       "answer's TSIG does not verify with key 'acmera.test': not "
			       "trusted");
		}
		free(req);
	}
}

static void tsig_verify_refuses_answer_signed_with_other_secret(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct answer_opts o = {0};
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[1], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[1], req, len, &o, &ans);
	secret[0] ^= 0x80; /* the key we verify with */
	make_key("acmera.test", &algs[1], &k);
	secret[0] ^= 0x80;
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e, "does not verify");
	free(req);
}

static void tsig_verify_refuses_answer_to_another_request(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL, other[64];
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	memset(other, 0x5a, sizeof(other));
	struct answer_opts o = {.prior = other};
	make_key("acmera.test", &algs[2], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[2], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e, "does not verify");
	free(req);
}

static void tsig_verify_refuses_other_key_name(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	static const char other[] = "\5other\4test\0";
	struct answer_opts o = {.kname = other, .kname_len = sizeof(other) - 1};
	make_key("acmera.test", &algs[0], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[0], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e,
	       "answer is signed with another key, not 'acmera.test'");
	free(req);
}

static void tsig_verify_refuses_other_algorithm(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	struct answer_opts o = {.alg = &algs[2]};
	make_key("acmera.test", &algs[1], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[1], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e,
	       "answer is signed with another algorithm, not hmac-sha384");
	free(req);
}

static void tsig_verify_accepts_owner_name_in_other_case(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	static const char upper[] = "\6ACMERA\4Test\0";
	struct answer_opts o = {.kname = upper, .kname_len = sizeof(upper) - 1};
	make_key("acmera.test", &algs[0], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[0], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), 0, &e, NULL);
	free(req);
}

static void tsig_verify_refuses_time_outside_fudge(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct answer_opts o = {0};
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[2], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[2], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW + 300, &e), 0, &e, NULL);
	expect(verify(&k, req, len, &ans, NOW - 300, &e), 0, &e, NULL);
	expect(verify(&k, req, len, &ans, NOW + 301, &e), ACMERA_ERR_PROTO, &e,
	       "answer's TSIG time is 301 s away from this host's clock (fudge 300 s)");
	expect(verify(&k, req, len, &ans, NOW - 1000, &e), ACMERA_ERR_PROTO, &e, "is 1000 s away");
	/* A server's clock far off is the same thing. */
	o.time_delta = -400;
	make_answer(&algs[2], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e, "400 s away");
	free(req);
}

static void tsig_verify_restores_original_id(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	struct answer_opts o = {.header_id = 0xbeef};
	make_key("acmera.test", &algs[1], &k);
	sign_request(&k, &req, &len);
	/* Id rewritten in transit after signing: the MAC is over the original id. */
	make_answer(&algs[1], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), 0, &e, NULL);
	/* A MAC over the id in the header, not the original one, is wrong. */
	o.mac_over_header_id = 1;
	make_answer(&algs[1], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e, "does not verify");
	free(req);
}

static void tsig_verify_refuses_truncated_mac(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct tsig_key k;
		uint8_t *req = NULL;
		size_t len = 0;
		struct bytes ans;
		struct acmera_errmsg e = {{0}};
		/* RFC 8945 5.2.2.1 would allow half the MAC; we require all of it. */
		struct answer_opts o = {.mac_len = algs[i].mac_len / 2};
		char want[64];
		make_key("acmera.test", &algs[i], &k);
		sign_request(&k, &req, &len);
		make_answer(&algs[i], req, len, &o, &ans);
		snprintf(want, sizeof(want), "MAC has %zu bytes; %s needs all %zu",
		         algs[i].mac_len / 2, algs[i].name, algs[i].mac_len);
		expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_PROTO, &e, want);
		free(req);
	}
}

static void tsig_verify_reports_tsig_error(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	struct answer_opts o = {.error = 16, .no_mac = 1};
	make_key("acmera.test", &algs[0], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[0], req, len, &o, &ans);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_REFUSED, &e,
	       "answer's TSIG reports error 16 (BADSIG)");
	free(req);
}

static void tsig_verify_reports_unsigned_answer(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans;
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[0], &k);
	sign_request(&k, &req, &len);
	answer_message(&ans, REQ_ID, 0);
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_NOTFOUND, &e,
	       "the answer has no TSIG record");
	/* An additional record that is not a TSIG. */
	answer_message(&ans, REQ_ID, 1);
	PUTS(&ans, "\0\0\51\4\320\0\0\0\0\0\0"); /* OPT */
	expect(verify(&k, req, len, &ans, NOW, &e), ACMERA_ERR_NOTFOUND, &e, "no TSIG record");
	free(req);
}

static void tsig_verify_refuses_malformed_tsig(void **state)
{
	(void)state;
	struct tsig_key k;
	uint8_t *req = NULL;
	size_t len = 0;
	struct bytes ans, bad;
	struct answer_opts o = {0};
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[0], &k);
	sign_request(&k, &req, &len);
	make_answer(&algs[0], req, len, &o, &ans);
	size_t rr = ans.n - (sizeof(KNAME_WIRE) - 1 + 10 + 13 + 16 + 32);

	/* Cut anywhere: never read past the end. */
	for (size_t cut = 0; cut < ans.n; cut++) {
		int rc = tsig_verify_response(req, len, ans.b, cut, &k, NOW, &e);
		assert_true(rc == ACMERA_ERR_PROTO || rc == ACMERA_ERR_NOTFOUND);
	}
	/* A byte after the TSIG. */
	bad = ans;
	bad.b[bad.n++] = 0;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	/* RDLENGTH one short, one long. */
	size_t rdlen_at = rr + sizeof(KNAME_WIRE) - 1 + 8;
	bad = ans;
	bad.b[rdlen_at + 1]--;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	bad.b[rdlen_at + 1] += 2;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	/* MAC size past the RDATA. */
	bad = ans;
	bad.b[rdlen_at + 2 + 13 + 8 + 1] = 0xff;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	/* Class IN instead of ANY; a TTL. */
	bad = ans;
	bad.b[rdlen_at - 5] = 1;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	bad = ans;
	bad.b[rdlen_at - 1] = 1;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	/* A compressed algorithm name (a pointer to the question's name). */
	bad = ans;
	bad.n = rdlen_at;
	put16(&bad, 2 + 16 + 32);
	PUTS(&bad, "\300\14");
	put(&bad, ans.b + rdlen_at + 2 + 13, ans.n - (rdlen_at + 2 + 13));
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, "malformed TSIG");
	/* A TSIG followed by another record. */
	bad = ans;
	bad.b[11] = 2;
	PUTS(&bad, "\0\0\51\4\320\0\0\0\0\0\0");
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e,
	       "TSIG record that is not the last");
	/* Counts larger than the message. */
	bad = ans;
	bad.b[4] = 0xff;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, NULL);
	bad = ans;
	bad.b[10] = 0xff;
	expect(verify(&k, req, len, &bad, NOW, &e), ACMERA_ERR_PROTO, &e, NULL);
	free(req);
}

static void tsig_verify_refuses_unsigned_request(void **state)
{
	(void)state;
	struct tsig_key k;
	struct bytes req, ans;
	struct acmera_errmsg e = {{0}};
	make_key("acmera.test", &algs[0], &k);
	update_message(&req, REQ_ID, 0);
	answer_message(&ans, REQ_ID, 0);
	expect(tsig_verify_response(req.b, req.n, ans.b, ans.n, &k, NOW, &e), ACMERA_ERR_INVAL, &e,
	       "cannot verify the answer: the request has no TSIG record");
}

int main(void)
{
	for (size_t i = 0; i < sizeof(secret); i++)
		secret[i] = (uint8_t)(0xa0 + i);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tsig_sign_matches_hand_computed_mac_for_each_algorithm),
	    cmocka_unit_test(tsig_sign_writes_48_bit_time),
	    cmocka_unit_test(tsig_sign_uses_canonical_lower_case_key_name),
	    cmocka_unit_test(tsig_sign_refuses_what_is_not_a_message),
	    cmocka_unit_test(tsig_sign_output_verifies_with_ldns),
	    cmocka_unit_test(tsig_verify_accepts_answer_signed_over_request_mac),
	    cmocka_unit_test(tsig_verify_refuses_tampered_answer),
	    cmocka_unit_test(tsig_verify_refuses_answer_signed_with_other_secret),
	    cmocka_unit_test(tsig_verify_refuses_answer_to_another_request),
	    cmocka_unit_test(tsig_verify_refuses_other_key_name),
	    cmocka_unit_test(tsig_verify_refuses_other_algorithm),
	    cmocka_unit_test(tsig_verify_accepts_owner_name_in_other_case),
	    cmocka_unit_test(tsig_verify_refuses_time_outside_fudge),
	    cmocka_unit_test(tsig_verify_restores_original_id),
	    cmocka_unit_test(tsig_verify_refuses_truncated_mac),
	    cmocka_unit_test(tsig_verify_reports_tsig_error),
	    cmocka_unit_test(tsig_verify_reports_unsigned_answer),
	    cmocka_unit_test(tsig_verify_refuses_malformed_tsig),
	    cmocka_unit_test(tsig_verify_refuses_unsigned_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
