/* TSIG (RFC 8945) with HMAC-SHA256, -SHA384 and -SHA512 over OpenSSL: signs a request
 * and verifies the answer to it. ldns 1.8.3 cannot sign with hmac-sha384, hence our own. */
#ifndef ACMERA_DNS_TSIG_H
#define ACMERA_DNS_TSIG_H

#include "base/err.h"
#include "dns/tsig_key.h"

#include <stddef.h>
#include <stdint.h>

#define TSIG_FUDGE 300  /* seconds of clock skew allowed (RFC 8945 section 5.2.3) */
#define TSIG_MAC_MAX 64 /* HMAC-SHA512 */

/* TSIG error codes (RFC 8945 section 3). */
#define TSIG_BADSIG 16
#define TSIG_BADKEY 17
#define TSIG_BADTIME 18
#define TSIG_BADTRUNC 22

/* Signs the DNS message wire[0..len) (no TSIG in it yet) with key at time now (seconds
 * since the epoch), fudge TSIG_FUDGE: returns the message with the TSIG RR appended
 * and ARCOUNT one higher in *out (free()). */
int tsig_sign(const uint8_t *wire, size_t len, const struct tsig_key *key, uint64_t now,
              uint8_t **out, size_t *outlen, struct acmera_errmsg *e);

/* Verifies the TSIG of resp, the answer to req (the request as tsig_sign returned it):
 * the TSIG is the last record, names key's name and algorithm, carries a full-length
 * MAC over the request's MAC and the answer (with its original id) that matches, and
 * was signed within its fudge of now. Returns 0; ACMERA_ERR_NOTFOUND when resp has no
 * TSIG; ACMERA_ERR_REFUSED when its TSIG error is not zero; ACMERA_ERR_PROTO for
 * anything else (malformed, another key, bad MAC, time). */
int tsig_verify_response(const uint8_t *req, size_t reqlen, const uint8_t *resp, size_t resplen,
                         const struct tsig_key *key, uint64_t now, struct acmera_errmsg *e);

#endif
