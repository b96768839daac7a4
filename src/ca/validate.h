/* Challenge validation for `acmera ca`: dns-01 (RFC 8555 8.4) and http-01 (8.3), done
 * for real against the network. Blocking, for a worker thread; every call is bounded in
 * time by timeout_ms (DNS: per attempt, two attempts over UDP, two more over TCP when the
 * answer is truncated; http-01: the whole exchange including redirects and the DNS
 * questions it asks).
 *
 * On failure *problem names the ACME problem type (without the
 * "urn:ietf:params:acme:error:" prefix) and *detail (heap, free(); NULL only when out of
 * memory) says what was found, escaped to printable ASCII, for the problem document; e
 * carries the same for the log. Bad arguments give ACMERA_ERR_INVAL with problem
 * "malformed" and nothing sent. On success *problem and *detail are NULL.
 *
 * Names are resolved by asking the configured resolver (as Pebble's -dnsserver), for
 * dns-01 and for http-01 alike, never the system resolver. */
#ifndef ACMERA_CA_VALIDATE_H
#define ACMERA_CA_VALIDATE_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

struct ca_validate_config {
	const char *resolver; /* IP address of the DNS server to ask, e.g. "127.0.0.1" */
	int resolver_port;    /* e.g. 53, or a test port */
	int http_port;        /* port for http-01, 80 normally, a test port in tests */
	int timeout_ms;       /* per attempt, e.g. 5000 */
};

/* dns-01: TXT records at _acme-challenge.<domain> (domain without "*."; a leading "*."
 * is dropped), asked over UDP (TCP when truncated) with recursion desired; success when
 * one record's text equals expected (base64url SHA-256 of the key authorization).
 * Multiple strings in one TXT record are concatenated. CNAMEs are followed by the
 * resolver; the answer's CNAME chain (at most 16 links) leads to the TXT owner.
 * Returns 0, or ACMERA_ERR_REFUSED with problem "incorrectResponse" (NXDOMAIN, no TXT,
 * no matching TXT) or "dns" (no answer, SERVFAIL/REFUSED/other rcode, an answer that is
 * not for the question). */
int ca_validate_dns01(const struct ca_validate_config *c, const char *domain, const char *expected,
                      const char **problem, char **detail, struct acmera_errmsg *e);

/* The check of ca_validate_dns01 on one DNS answer in wire form, as received for the
 * question qname/TXT (for fuzzing and tests). Bounded; never trusts counts. */
int ca_validate_dns01_answer(const uint8_t *wire, size_t len, const char *qname,
                             const char *expected, const char **problem, char **detail,
                             struct acmera_errmsg *e);

/* The addresses of domain for an http-01 request to port (RFC 8555 8.3: the server
 * resolves the name): A and AAAA records asked of c->resolver like the TXT records of
 * ca_validate_dns01 (UDP, TCP when truncated, the answer's CNAME chain followed, at most
 * 16 links; timeout_ms per attempt). On success *entry (heap, free()) is the curl
 * CURLOPT_RESOLVE entry "domain:port:addr[,addr...]", A records first, IPv6 addresses in
 * brackets, at most 8 of each family. Returns 0, or ACMERA_ERR_REFUSED with problem "dns"
 * (no such name, no A or AAAA record, no answer, an error rcode, an answer that is not
 * for the question). An answer for one family is enough when the other fails. */
int ca_validate_resolve(const struct ca_validate_config *c, const char *domain, int port,
                        char **entry, const char **problem, char **detail, struct acmera_errmsg *e);

/* http-01: GET http://<domain>:<http_port>/.well-known/acme-challenge/<token> (libcurl),
 * no proxy, redirects followed up to 10 only to http/https URLs on ports 80/443 (or
 * http_port) whose host is a name, not an IP literal; certificates of an https redirect
 * target are not checked (the key authorization is the proof). Body at most 8 KiB,
 * trailing whitespace trimmed, must equal key_authz. token must be base64url characters
 * only (refused before any request). Problem "connection" (no connection, timeout),
 * "unauthorized" (an HTTP status other than 200), "incorrectResponse" (wrong or
 * oversized body, a redirect that is not allowed, more than 10 redirects) or "dns"
 * (see ca_validate_resolve). The domain and every redirect target are resolved by
 * ca_validate_resolve, within the same timeout_ms as the whole exchange; curl never asks
 * the system resolver. resolve_override (tests): NULL, or a curl CURLOPT_RESOLVE entry
 * "host:port:127.0.0.1" used instead, with the system resolver for any other name; with
 * resolve_override NULL and no c->resolver the system resolver is used too. */
int ca_validate_http01(const struct ca_validate_config *c, const char *domain, const char *token,
                       const char *key_authz, const char *resolve_override, const char **problem,
                       char **detail, struct acmera_errmsg *e);

#endif
