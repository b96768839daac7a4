/* TSIG (RFC 8945): the MAC of section 4.3.3 with OpenSSL's HMAC, the TSIG RR of section
 * 4.2 appended to a request, and the checks of section 5.3 on the answer. ldns walks the
 * records before the TSIG (bounded, compression-aware); the TSIG RR itself is read here,
 * field by field, against its RDLENGTH and the message end. */
#include "dns/tsig.h"

#include "base/b64.h"

#include <ldns/ldns.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HEADER_LEN 12
#define NAME_MAX_WIRE 255
#define SECRET_MAX 192 /* what 256 base64 characters hold */
#define CLASS_ANY 255
#define MSG_MAX 65535

static const struct alg {
	const char *name;   /* as in struct tsig_key */
	const char *digest; /* OpenSSL's name */
	size_t mac_len;
} algs[] = {
    {"hmac-sha256.", "SHA256", 32},
    {"hmac-sha384.", "SHA384", 48},
    {"hmac-sha512.", "SHA512", 64},
};

/* What a key contributes to every MAC: the algorithm, the raw secret and both names in
 * canonical wire form (RFC 4034 6.2: uncompressed, lower case). */
struct signer {
	const struct alg *alg;
	uint8_t secret[SECRET_MAX];
	size_t secret_len;
	uint8_t kname[NAME_MAX_WIRE];
	size_t kname_len;
	uint8_t aname[NAME_MAX_WIRE];
	size_t aname_len;
};

/* The fields of a TSIG RR as read from a message. */
struct tsig_rr {
	size_t start; /* offset of the RR: the MAC covers the message before it */
	uint8_t owner[NAME_MAX_WIRE];
	size_t owner_len;
	uint8_t aname[NAME_MAX_WIRE];
	size_t aname_len;
	uint64_t time_signed;
	uint16_t fudge, mac_len, orig_id, error, other_len;
	const uint8_t *mac, *other;
};

/* The TSIG variables and message of section 4.3.3, plus the request MAC of an answer. */
struct mac_input {
	const uint8_t *prior; /* NULL for a request */
	size_t prior_len;
	const uint8_t *msg; /* without the TSIG RR; the header is rewritten below */
	size_t msg_len;
	uint16_t id, arcount; /* the header's as they were when signed */
	uint64_t time_signed;
	uint16_t fudge, error, other_len;
	const uint8_t *other;
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint8_t *put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return p + 2;
}

static uint8_t *put48(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 6; i++)
		p[i] = (uint8_t)(v >> (8 * (5 - i)));
	return p + 6;
}

/* Lower-cases a wire-form name in place: length octets are at most 63, below 'A'. */
static void lower(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] >= 'A' && p[i] <= 'Z')
			p[i] = (uint8_t)(p[i] - 'A' + 'a');
}

/* Presentation name to canonical wire form, through ldns. */
static int name_wire(const char *text, uint8_t *out, size_t *len)
{
	ldns_rdf *d = ldns_dname_new_frm_str(text);
	if (!d)
		return -1;
	size_t n = ldns_rdf_size(d);
	int rc = -1;
	if (n > 0 && n <= NAME_MAX_WIRE) {
		memcpy(out, ldns_rdf_data(d), n);
		lower(out, n);
		*len = n;
		rc = 0;
	}
	ldns_rdf_deep_free(d);
	return rc;
}

static void signer_wipe(struct signer *s)
{
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
}

static int signer_init(const struct tsig_key *key, struct signer *s, struct acmera_errmsg *e)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcasecmp(key->algorithm, algs[i].name) == 0)
			s->alg = &algs[i];
	if (!s->alg)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "TSIG algorithm '%.40s' is not supported",
		                   key->algorithm);
	if (name_wire(key->name, s->kname, &s->kname_len) != 0 ||
	    name_wire(s->alg->name, s->aname, &s->aname_len) != 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "bad TSIG key name '%.255s'", key->name);
	size_t b64len = strnlen(key->secret_b64, sizeof(key->secret_b64));
	if (b64_decode(key->secret_b64, b64len, &raw, &rawlen, NULL) != 0 || rawlen == 0 ||
	    rawlen > SECRET_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "TSIG key %.255s has a bad secret",
		                 key->name);
		goto out;
	}
	memcpy(s->secret, raw, rawlen);
	s->secret_len = rawlen;
out:
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	return rc;
}

/* HMAC over section 4.3.3's digest components; writes alg->mac_len bytes to mac. */
static int compute_mac(const struct signer *s, const struct mac_input *in, uint8_t *mac)
{
	/* CLASS, TTL | time signed, fudge, error, other len: either side of the algorithm. */
	uint8_t hdr[HEADER_LEN], vars[2 + 4 + 6 + 2 + 2 + 2], pl[2];
	size_t outl = 0;
	int ok = 0;

	/* Header with the original id and the ARCOUNT before the TSIG was added. */
	memcpy(hdr, in->msg, HEADER_LEN);
	put16(hdr, in->id);
	put16(hdr + 10, in->arcount);
	uint8_t *p = put16(vars, CLASS_ANY);
	memset(p, 0, 4); /* TTL */
	p = put48(p + 4, in->time_signed);
	p = put16(p, in->fudge);
	p = put16(p, in->error);
	put16(p, in->other_len);

	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)s->alg->digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	if (!c || !EVP_MAC_init(c, s->secret, s->secret_len, params))
		goto out;
	if (in->prior) {
		put16(pl, (uint16_t)in->prior_len);
		if (!EVP_MAC_update(c, pl, 2) || !EVP_MAC_update(c, in->prior, in->prior_len))
			goto out;
	}
	ok = EVP_MAC_update(c, hdr, HEADER_LEN) &&
	     EVP_MAC_update(c, in->msg + HEADER_LEN, in->msg_len - HEADER_LEN) &&
	     EVP_MAC_update(c, s->kname, s->kname_len) && EVP_MAC_update(c, vars, 6) &&
	     EVP_MAC_update(c, s->aname, s->aname_len) && EVP_MAC_update(c, vars + 6, 12) &&
	     (in->other_len == 0 || EVP_MAC_update(c, in->other, in->other_len)) &&
	     EVP_MAC_final(c, mac, &outl, TSIG_MAC_MAX) && outl == s->alg->mac_len;
out:
	EVP_MAC_CTX_free(c);
	EVP_MAC_free(m);
	return ok ? 0 : -1;
}

int tsig_sign(const uint8_t *wire, size_t len, const struct tsig_key *key, uint64_t now,
              uint8_t **out, size_t *outlen, struct acmera_errmsg *e)
{
	struct signer s;
	uint8_t mac[TSIG_MAC_MAX];
	uint8_t *w = NULL;
	int rc;

	if (!wire || !key || !out || !outlen)
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to tsig_sign");
	if (len < HEADER_LEN || len > MSG_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "message of %zu bytes cannot be signed",
		                   len);
	uint16_t id = get16(wire), arcount = get16(wire + 10);
	if (arcount == 0xffff)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no room for a TSIG record");
	rc = signer_init(key, &s, e);
	if (rc)
		return rc;
	size_t mac_len = s.alg->mac_len;
	size_t rdlen = s.aname_len + 6 + 2 + 2 + mac_len + 2 + 2 + 2;
	size_t total = len + s.kname_len + 10 + rdlen;
	if (total > MSG_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "message of %zu bytes leaves no room for the TSIG record", len);
		goto out;
	}
	struct mac_input in = {.msg = wire,
	                       .msg_len = len,
	                       .id = id,
	                       .arcount = arcount,
	                       .time_signed = now & 0xffffffffffffULL,
	                       .fudge = TSIG_FUDGE};
	if (compute_mac(&s, &in, mac) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "HMAC-%s failed", s.alg->digest);
		goto out;
	}
	w = malloc(total);
	if (!w) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	uint8_t *p = w;
	memcpy(p, wire, len);
	put16(w + 10, (uint16_t)(arcount + 1));
	p += len;
	memcpy(p, s.kname, s.kname_len);
	p += s.kname_len;
	p = put16(p, LDNS_RR_TYPE_TSIG);
	p = put16(p, CLASS_ANY);
	memset(p, 0, 4);
	p += 4;
	p = put16(p, (uint16_t)rdlen);
	memcpy(p, s.aname, s.aname_len);
	p += s.aname_len;
	p = put48(p, in.time_signed);
	p = put16(p, TSIG_FUDGE);
	p = put16(p, (uint16_t)mac_len);
	memcpy(p, mac, mac_len);
	p += mac_len;
	p = put16(p, id);
	p = put16(p, 0); /* error */
	p = put16(p, 0); /* other len */
	*out = w;
	*outlen = total;
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	signer_wipe(&s);
	return rc;
}

/* An uncompressed name inside [*pos, end) (RFC 8945 4.2: the algorithm name is never
 * compressed); copied to out in lower case. */
static int read_plain_name(const uint8_t *w, size_t end, size_t *pos, uint8_t *out, size_t *len)
{
	size_t p = *pos, n = 0;
	for (;;) {
		if (p >= end)
			return -1;
		uint8_t l = w[p];
		if (l > 63 || n + 1 + l > NAME_MAX_WIRE || end - p < 1u + l)
			return -1;
		memcpy(out + n, w + p, 1u + l);
		n += 1u + l;
		p += 1u + l;
		if (l == 0)
			break;
	}
	lower(out, n);
	*pos = p;
	*len = n;
	return 0;
}

/* The RDATA of a TSIG RR in w[pos, end), which it must fill exactly. */
static int read_tsig_rdata(const uint8_t *w, size_t pos, size_t end, struct tsig_rr *t)
{
	if (read_plain_name(w, end, &pos, t->aname, &t->aname_len) != 0 || end - pos < 10)
		return -1;
	t->time_signed = 0;
	for (int i = 0; i < 6; i++)
		t->time_signed = t->time_signed << 8 | w[pos + i];
	t->fudge = get16(w + pos + 6);
	t->mac_len = get16(w + pos + 8);
	pos += 10;
	if (end - pos < (size_t)t->mac_len + 6)
		return -1;
	t->mac = w + pos;
	pos += t->mac_len;
	t->orig_id = get16(w + pos);
	t->error = get16(w + pos + 2);
	t->other_len = get16(w + pos + 4);
	pos += 6;
	if (end - pos != t->other_len)
		return -1;
	t->other = w + pos;
	return 0;
}

/* Finds the TSIG RR, which must be the last record and end the message. Returns 0,
 * ACMERA_ERR_NOTFOUND when the last record is not a TSIG, or ACMERA_ERR_PROTO. */
static int find_tsig(const uint8_t *w, size_t len, const char *what, struct tsig_rr *t,
                     struct acmera_errmsg *e)
{
	size_t pos = HEADER_LEN;
	unsigned count[4];

	memset(t, 0, sizeof(*t));
	if (len < HEADER_LEN || len > MSG_MAX)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s of %zu bytes is not a DNS message",
		                   what, len);
	for (int s = 0; s < 4; s++)
		count[s] = get16(w + 4 + 2 * s);
	if (count[3] == 0)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "%s has no TSIG record", what);
	/* Every record before the last; each consumes bytes or fails. */
	for (int s = 0; s < 4; s++) {
		unsigned n = s == 3 ? count[s] - 1 : count[s];
		for (unsigned i = 0; i < n; i++) {
			ldns_rr *rr = NULL;
			if (ldns_wire2rr(&rr, w, len, &pos, (ldns_pkt_section)s) != LDNS_STATUS_OK)
				return acmera_fail(e, ACMERA_ERR_PROTO, "%s is malformed", what);
			int is_tsig = ldns_rr_get_type(rr) == LDNS_RR_TYPE_TSIG;
			ldns_rr_free(rr);
			if (is_tsig)
				return acmera_fail(e, ACMERA_ERR_PROTO,
				                   "%s has a TSIG record that is not the last",
				                   what);
		}
	}
	t->start = pos;
	ldns_rdf *owner = NULL;
	if (ldns_wire2dname(&owner, w, len, &pos) != LDNS_STATUS_OK || !owner)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s is malformed", what);
	t->owner_len = ldns_rdf_size(owner);
	int long_name = t->owner_len > NAME_MAX_WIRE;
	if (!long_name) {
		memcpy(t->owner, ldns_rdf_data(owner), t->owner_len);
		lower(t->owner, t->owner_len);
	}
	ldns_rdf_deep_free(owner);
	if (long_name || len - pos < 10)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s is malformed", what);
	if (get16(w + pos) != LDNS_RR_TYPE_TSIG)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "%s has no TSIG record", what);
	uint16_t rclass = get16(w + pos + 2), rdlen = get16(w + pos + 8);
	int ttl_zero = !(w[pos + 4] | w[pos + 5] | w[pos + 6] | w[pos + 7]);
	pos += 10;
	if (rclass != CLASS_ANY || !ttl_zero || len - pos != rdlen ||
	    read_tsig_rdata(w, pos, len, t) != 0)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s has a malformed TSIG record", what);
	return 0;
}

static const char *tsig_error_name(unsigned err)
{
	switch (err) {
	case TSIG_BADSIG:
		return "BADSIG";
	case TSIG_BADKEY:
		return "BADKEY";
	case TSIG_BADTIME:
		return "BADTIME";
	case TSIG_BADTRUNC:
		return "BADTRUNC";
	default:
		return "unknown";
	}
}

/* Names are shown without the trailing dot. */
static int shown_len(const char *s)
{
	size_t n = strnlen(s, 255);
	return (int)(n > 0 && s[n - 1] == '.' ? n - 1 : n);
}

int tsig_verify_response(const uint8_t *req, size_t reqlen, const uint8_t *resp, size_t resplen,
                         const struct tsig_key *key, uint64_t now, struct acmera_errmsg *e)
{
	struct signer s;
	struct tsig_rr *rq = NULL, *rs = NULL;
	uint8_t mac[TSIG_MAC_MAX];
	int rc;

	if (!req || !resp || !key)
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to tsig_verify_response");
	rc = signer_init(key, &s, e);
	if (rc)
		return rc;
	rq = malloc(sizeof(*rq));
	rs = malloc(sizeof(*rs));
	if (!rq || !rs) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = find_tsig(req, reqlen, "the request", rq, e);
	if (rc) {
		rc = acmera_fail_wrap(e, ACMERA_ERR_INVAL, "cannot verify the answer");
		goto out;
	}
	rc = find_tsig(resp, resplen, "the answer", rs, e);
	if (rc)
		goto out;
	const char *kn = key->name, *an = s.alg->name;
	if (rs->owner_len != s.kname_len || memcmp(rs->owner, s.kname, s.kname_len) != 0) {
		rc =
		    acmera_fail(e, ACMERA_ERR_PROTO,
		                "answer is signed with another key, not '%.*s'", shown_len(kn), kn);
		goto out;
	}
	if (rs->aname_len != s.aname_len || memcmp(rs->aname, s.aname, s.aname_len) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "answer is signed with another algorithm, not %.*s", shown_len(an),
		                 an);
		goto out;
	}
	if (rs->error != 0) {
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "answer's TSIG reports error %u (%s)",
		                 rs->error, tsig_error_name(rs->error));
		goto out;
	}
	/* RFC 8945 5.2.2.1 lets a MAC be truncated by agreement; we never agree to it. */
	if (rs->mac_len != s.alg->mac_len) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "answer's TSIG MAC has %u bytes; %.*s needs all %zu", rs->mac_len,
		                 shown_len(an), an, s.alg->mac_len);
		goto out;
	}
	struct mac_input in = {
	    .prior = rq->mac,
	    .prior_len = rq->mac_len,
	    .msg = resp,
	    .msg_len = rs->start,
	    .id = rs->orig_id,
	    .arcount = (uint16_t)(get16(resp + 10) - 1),
	    .time_signed = rs->time_signed,
	    .fudge = rs->fudge,
	    .error = rs->error,
	    .other_len = rs->other_len,
	    .other = rs->other,
	};
	if (compute_mac(&s, &in, mac) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "HMAC-%s failed", s.alg->digest);
		goto out;
	}
	if (CRYPTO_memcmp(mac, rs->mac, s.alg->mac_len) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "answer's TSIG does not verify with key '%.*s': not trusted",
		                 shown_len(kn), kn);
		goto out;
	}
	/* Only now is the time the server's own (RFC 8945 5.2.3 checks it after the MAC). */
	uint64_t skew = now > rs->time_signed ? now - rs->time_signed : rs->time_signed - now;
	if (skew > rs->fudge) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO,
		                 "answer's TSIG time is %llu s away from this host's clock "
		                 "(fudge %u s)",
		                 (unsigned long long)skew, rs->fudge);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	signer_wipe(&s);
	free(rq);
	free(rs);
	return rc;
}
