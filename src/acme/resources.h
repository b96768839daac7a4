/* Parsers of what an ACME server sends (RFC 8555 section 7.1): the directory,
 * accounts, orders, authorizations, challenges, problem documents. Every field is
 * checked for type and bounded in size; unknown fields are ignored. All these
 * parse untrusted bytes and have fuzz targets. Strings are heap copies. */
#ifndef ACMERA_ACME_RESOURCES_H
#define ACMERA_ACME_RESOURCES_H

#include "base/err.h"

#include <stddef.h>
#include <stdint.h>

#define ACME_MAX_BODY (1u << 20) /* largest JSON response accepted */
#define ACME_MAX_LIST 1000       /* identifiers, authorizations, challenges */

struct acme_directory {
	char *new_nonce, *new_account, *new_order, *new_authz, *revoke_cert, *key_change;
	char *renewal_info; /* RFC 9773, may be NULL */
	char *terms_of_service, *website;
	int external_account_required;
	int subdomain_auth_allowed; /* RFC 9444 meta.subdomainAuthAllowed */
};
int acme_directory_parse(const char *json, size_t len, struct acme_directory *out,
                         struct acmera_errmsg *e);
void acme_directory_free(struct acme_directory *d);

/* A subproblem (RFC 8555 6.7.1). */
struct acme_subproblem {
	char *type, *detail, *identifier;
};
struct acme_problem {
	char *type; /* full URN, e.g. urn:ietf:params:acme:error:badNonce */
	char *detail;
	int status;
	struct acme_subproblem *sub;
	size_t n_sub;
};
/* Parses an application/problem+json body. */
int acme_problem_parse(const char *json, size_t len, struct acme_problem *out,
                       struct acmera_errmsg *e);
/* 1 if p->type is "urn:ietf:params:acme:error:" + short (e.g. "badNonce"). */
int acme_problem_is(const struct acme_problem *p, const char *short_type);
/* "type=badNonce detail=... sub=[...]" for logs and error messages. */
void acme_problem_describe(const struct acme_problem *p, char *out, size_t len);
void acme_problem_free(struct acme_problem *p);

struct acme_identifier {
	char *type, *value;
	char *ancestor_domain; /* RFC 9444, may be NULL */
};

struct acme_order {
	char *status; /* pending, ready, processing, valid, invalid */
	int64_t expires;
	struct acme_identifier *identifiers;
	size_t n_identifiers;
	char **authorizations;
	size_t n_authorizations;
	char *finalize;
	char *certificate;          /* NULL until valid */
	struct acme_problem *error; /* NULL unless present */
};
int acme_order_parse(const char *json, size_t len, struct acme_order *out, struct acmera_errmsg *e);
void acme_order_free(struct acme_order *o);

struct acme_challenge {
	char *type, *url, *status, *token;
	struct acme_problem *error;
};
struct acme_authz {
	struct acme_identifier identifier;
	char *status; /* pending, valid, invalid, deactivated, expired, revoked */
	int64_t expires;
	int wildcard;
	int subdomain_auth_allowed; /* RFC 9444 */
	struct acme_challenge *challenges;
	size_t n_challenges;
};
int acme_authz_parse(const char *json, size_t len, struct acme_authz *out, struct acmera_errmsg *e);
/* The challenge of this type, or NULL. */
const struct acme_challenge *acme_authz_challenge(const struct acme_authz *a, const char *type);
void acme_authz_free(struct acme_authz *a);

int acme_challenge_parse(const char *json, size_t len, struct acme_challenge *out,
                         struct acmera_errmsg *e);
void acme_challenge_free(struct acme_challenge *c);

struct acme_account {
	char *status; /* valid, deactivated, revoked */
	char **contact;
	size_t n_contact;
	char *orders;
};
int acme_account_parse(const char *json, size_t len, struct acme_account *out,
                       struct acmera_errmsg *e);
void acme_account_free(struct acme_account *a);

/* RFC 3339 time ("2026-11-28T13:00:00Z", fractions and offsets allowed) to Unix
 * seconds. */
int acme_time_parse(const char *s, int64_t *out);

/* HTTP header helpers, for untrusted header values:
 * Retry-After as delta-seconds or HTTP-date, relative to now; clamped to
 * [0, 86400]. Returns 0 and seconds, or -1 when unparsable. */
int http_retry_after_parse(const char *value, int64_t now, int64_t *seconds);
/* Link header: every URL with rel=<rel> (e.g. "alternate", "up", "index"), in
 * order. Heap strings in *urls (free each and the array). */
int http_link_parse(const char *value, const char *rel, char ***urls, size_t *n);

#endif
