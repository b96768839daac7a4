/* RFC 2136 dynamic update of _acme-challenge TXT records, signed with TSIG
 * (RFC 8945): ldns builds and sends the messages, tsig.h signs and checks them.
 * Only TXT records under the zone are ever touched: names outside the configured
 * zones, or not starting with "_acme-challenge.", are refused before anything is
 * sent. */
#ifndef ACMERA_DNS_UPDATE_H
#define ACMERA_DNS_UPDATE_H

#include "base/err.h"
#include "dns/tsig_key.h"

#include <stddef.h>
#include <stdint.h>

struct dns_txt {
	const char *name;  /* owner, e.g. "_acme-challenge.dev1.example.com" (dot optional) */
	const char *value; /* TXT value, e.g. a dns-01 key authorization digest */
};

struct dns_server {
	char host[256]; /* IP address literal */
	uint16_t port;
	int timeout_ms; /* per attempt */
	int retries;    /* extra attempts after a timeout */
};

enum dns_update_op { DNS_UPDATE_ADD, DNS_UPDATE_DELETE };

/* Parses "HOST:PORT", "HOST" (port 53) or "[V6]:PORT". */
int dns_server_parse(const char *text, struct dns_server *out, struct acmera_errmsg *e);

/* 1 when name is "_acme-challenge." + something at or below zone, else 0. */
int dns_name_allowed(const char *name, const char *zone);

/* Builds the UPDATE message (unsigned) for n records in zone: ADD adds each TXT
 * value with the given ttl; DELETE deletes exactly these TXT values (RFC 2136
 * 2.5.4), never the whole RRset. Returns wire bytes in *wire (free()). */
int dns_update_build(const char *zone, enum dns_update_op op, const struct dns_txt *recs, size_t n,
                     uint32_t ttl, uint16_t id, uint8_t **wire, size_t *len,
                     struct acmera_errmsg *e);

/* Sends one signed UPDATE for all n records and checks the answer, including the
 * TSIG on the response. Errors name the key, the zone, the server and the cause:
 * REFUSED, NOTAUTH, BADSIG, BADKEY, BADTIME, NOTZONE, SERVFAIL or a timeout
 * (ACMERA_ERR_TIMEOUT; ACMERA_ERR_REFUSED for an rcode). */
int dns_update_send(const struct dns_server *srv, const struct tsig_key *key, const char *zone,
                    enum dns_update_op op, const struct dns_txt *recs, size_t n, uint32_t ttl,
                    struct acmera_errmsg *e);

/* Parses a DNS response (for fuzzing and tests): rcode, and the TSIG error if
 * a TSIG RR is present (-1 when there is none). Bounded; never trusts counts. */
int dns_response_parse(const uint8_t *wire, size_t len, int *rcode, int *tsig_error,
                       struct acmera_errmsg *e);

#endif
