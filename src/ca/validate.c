/* dns-01 and http-01 validation for `acmera ca` (RFC 8555 8.3, 8.4): ldns asks the
 * resolver, libcurl fetches the resource. Everything the applicant controls (TXT text,
 * bodies, redirect targets) is bounded, and quoted with escapes in the detail. */
#include "ca/validate.h"

#include "base/clock.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <ldns/ldns.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ACME_LABEL "_acme-challenge."
#define NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63
#define VALUE_MAX_LEN 255     /* expected TXT value, token */
#define KEY_AUTHZ_MAX_LEN 512 /* token "." thumbprint */
#define DNS_ATTEMPTS 2
#define DNS_EDNS_SIZE 1232 /* larger answers come truncated, then over TCP */
#define CNAME_MAX 16
#define SHOW_RECORDS 4 /* TXT records quoted in a detail */
#define SHOW_CHARS 64  /* characters of one value quoted in a detail */
#define SHOW_URL 300   /* characters of a URL quoted in a detail */
#define BODY_MAX 8192
#define REDIRECTS_MAX 10
#define URL_MAX 2048
#define DEFAULT_TIMEOUT_MS 5000
#define DETAIL_LEN 640
#define ADDRS_MAX 8 /* per address family in one curl resolve entry */

/* A detail under construction; always NUL-terminated, silently cut at DETAIL_LEN. */
struct dtext {
	char s[DETAIL_LEN];
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void dt_add(struct dtext *d, const char *fmt, ...)
{
	va_list ap;
	if (d->n >= sizeof(d->s) - 1)
		return;
	va_start(ap, fmt);
	int w = vsnprintf(d->s + d->n, sizeof(d->s) - d->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		d->n += (size_t)w < sizeof(d->s) - d->n ? (size_t)w : sizeof(d->s) - 1 - d->n;
}

/* Appends up to *budget bytes of p escaped to printable ASCII; *budget shrinks. */
static void dt_escape(struct dtext *d, const uint8_t *p, size_t n, size_t *budget)
{
	for (size_t i = 0; i < n; i++) {
		if (*budget == 0)
			return;
		(*budget)--;
		if (p[i] == '"' || p[i] == '\\')
			dt_add(d, "\\%c", p[i]);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			dt_add(d, "%c", p[i]);
		else
			dt_add(d, "\\x%02x", p[i]);
	}
}

/* Appends "text" (quoted, escaped, cut at max bytes with "..."). */
static void dt_quote(struct dtext *d, const void *p, size_t n, size_t max)
{
	size_t budget = max;
	dt_add(d, "\"");
	dt_escape(d, p, n, &budget);
	dt_add(d, n > max ? "\"..." : "\"");
}

/* Ends a validation with a problem: fills *problem, *detail and e from d. */
static int fail_with(const char *type, int code, const struct dtext *d, const char **problem,
                     char **detail, struct acmera_errmsg *e)
{
	if (problem)
		*problem = type;
	if (detail)
		*detail = strdup(d->s);
	return acmera_fail(e, code, "%s: %s", type, d->s);
}

__attribute__((format(printf, 4, 5))) static int
refuse_args(const char **problem, char **detail, struct acmera_errmsg *e, const char *fmt, ...)
{
	struct dtext d = {.n = 0};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d.s, sizeof(d.s), fmt, ap);
	va_end(ap);
	return fail_with("malformed", ACMERA_ERR_INVAL, &d, problem, detail, e);
}

/* 1 when s is a host name of letters, digits and '-' labels (no trailing dot), at most
 * max long, and not an IPv4 literal. */
static int hostname_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1), label = 0;
	unsigned char a[4];
	if (n == 0 || n > max || inet_pton(AF_INET, s, a) == 1)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		int ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '-';
		if (!ldh || (label == 0 && c == '-') || ++label > LABEL_MAX_LEN)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* 1 when s is 1..max base64url characters (no padding). */
static int b64url_ok(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return 1;
}

/* ---- DNS questions (dns-01 TXT, http-01 A and AAAA) ---- */

static const char *type_name(ldns_rr_type type)
{
	return type == LDNS_RR_TYPE_TXT ? "TXT" : type == LDNS_RR_TYPE_A ? "A" : "AAAA";
}

/* 1 when the strings of the TXT record, joined, are exactly value. */
static int txt_equals(const ldns_rr *rr, const char *value, size_t vlen)
{
	size_t off = 0;
	for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, k);
		const uint8_t *p = ldns_rdf_data(f);
		size_t sz = ldns_rdf_size(f);
		if (sz < 1 || (size_t)p[0] + 1 != sz || p[0] > vlen - off ||
		    memcmp(value + off, p + 1, p[0]) != 0)
			return 0;
		off += p[0];
	}
	return off == vlen;
}

/* Appends the joined text of a TXT record, quoted and cut like dt_quote. */
static void dt_txt(struct dtext *d, const ldns_rr *rr)
{
	size_t budget = SHOW_CHARS, total = 0;
	dt_add(d, "\"");
	for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
		const ldns_rdf *f = ldns_rr_rdf(rr, k);
		const uint8_t *p = ldns_rdf_data(f);
		size_t sz = ldns_rdf_size(f);
		if (sz < 1 || (size_t)p[0] + 1 != sz)
			continue;
		dt_escape(d, p + 1, p[0], &budget);
		total += p[0];
	}
	dt_add(d, total > SHOW_CHARS ? "\"..." : "\"");
}

static void dt_name(struct dtext *d, const ldns_rdf *name)
{
	char *s = ldns_rdf2str(name);
	if (s)
		dt_quote(d, s, strlen(s), NAME_MAX_LEN + 1);
	free(s);
}

/* The end of the CNAME chain from qname in the answer section (borrowed), or NULL when it
 * is longer than CNAME_MAX (a loop, or an answer built to make us walk). */
static const ldns_rdf *cname_target(const ldns_rr_list *an, const ldns_rdf *qname, int *links)
{
	const ldns_rdf *cur = qname;
	for (*links = 0; *links <= CNAME_MAX; (*links)++) {
		const ldns_rdf *next = NULL;
		for (size_t i = 0; i < ldns_rr_list_rr_count(an) && !next; i++) {
			const ldns_rr *rr = ldns_rr_list_rr(an, i);
			if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_CNAME &&
			    ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN &&
			    ldns_rr_rd_count(rr) == 1 &&
			    ldns_rdf_get_type(ldns_rr_rdf(rr, 0)) == LDNS_RDF_TYPE_DNAME &&
			    ldns_dname_compare(ldns_rr_owner(rr), cur) == 0)
				next = ldns_rr_rdf(rr, 0);
		}
		if (!next)
			return cur;
		cur = next;
	}
	return NULL;
}

/* Checks that p answers the question qname/type with NOERROR or NXDOMAIN, and finds the
 * owner of the records asked for: the end of the answer's CNAME chain (borrowed from p
 * or qname). 0, or -1 with the reason in d. */
static int answer_owner(const ldns_pkt *p, const ldns_rdf *qname, ldns_rr_type type,
                        const ldns_rdf **owner, int *links, struct dtext *d)
{
	const ldns_rr_list *qd = ldns_pkt_question(p);
	ldns_pkt_rcode rcode = ldns_pkt_get_rcode(p);
	const char *tname = type_name(type);

	if (!ldns_pkt_qr(p) || ldns_rr_list_rr_count(qd) != 1 ||
	    ldns_rr_get_type(ldns_rr_list_rr(qd, 0)) != type ||
	    ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(qd, 0)), qname) != 0) {
		dt_add(d, "the DNS answer for %s ", tname);
		dt_name(d, qname);
		dt_add(d, " is not for that question");
		return -1;
	}
	if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) {
		const ldns_lookup_table *t = ldns_lookup_by_id(ldns_rcodes, (int)rcode);
		dt_add(d, "the DNS resolver answered %s for %s ", t ? t->name : "an error", tname);
		dt_name(d, qname);
		return -1;
	}
	*owner = cname_target(ldns_pkt_answer(p), qname, links);
	if (!*owner) {
		dt_add(d, "more than %d CNAMEs from ", CNAME_MAX);
		dt_name(d, qname);
		return -1;
	}
	return 0;
}

/* ---- dns-01 ---- */

/* The dns-01 verdict on a parsed answer to qname/TXT. */
static int check_answer(const ldns_pkt *p, const ldns_rdf *qname, const char *expected,
                        const char **problem, char **detail, struct acmera_errmsg *e)
{
	struct dtext d = {.n = 0};
	const ldns_rr_list *an = ldns_pkt_answer(p);
	ldns_pkt_rcode rcode = ldns_pkt_get_rcode(p);
	const ldns_rdf *owner = NULL;
	size_t vlen = strlen(expected), found = 0;
	int links = 0;

	if (answer_owner(p, qname, LDNS_RR_TYPE_TXT, &owner, &links, &d) != 0)
		return fail_with("dns", ACMERA_ERR_REFUSED, &d, problem, detail, e);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
		    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0)
			continue;
		if (txt_equals(rr, expected, vlen))
			return 0;
		if (found < SHOW_RECORDS) {
			dt_add(&d, "%s", found ? ", " : "");
			dt_txt(&d, rr);
		}
		found++;
	}
	/* The found values go first in d; the sentence is built around them. */
	struct dtext out = {.n = 0};
	if (rcode == LDNS_RCODE_NXDOMAIN)
		dt_add(&out, "no such name: ");
	else if (found == 0)
		dt_add(&out, "no TXT record at ");
	else
		dt_add(&out, "%zu TXT record%s, none the expected value, at ", found,
		       found == 1 ? "" : "s");
	dt_name(&out, qname);
	if (links > 0) {
		dt_add(&out, " (CNAME to ");
		dt_name(&out, owner);
		dt_add(&out, ")");
	}
	if (found > 0)
		dt_add(&out, ": %s%s", d.s, found > SHOW_RECORDS ? ", ..." : "");
	return fail_with("incorrectResponse", ACMERA_ERR_REFUSED, &out, problem, detail, e);
}

int ca_validate_dns01_answer(const uint8_t *wire, size_t len, const char *qname,
                             const char *expected, const char **problem, char **detail,
                             struct acmera_errmsg *e)
{
	ldns_pkt *p = NULL;
	ldns_rdf *q = NULL;
	int rc;

	if (problem)
		*problem = NULL;
	if (detail)
		*detail = NULL;
	if (!wire || !qname || !expected || !b64url_ok(expected, VALUE_MAX_LEN) ||
	    strnlen(qname, NAME_MAX_LEN + 2) > NAME_MAX_LEN + 1 ||
	    !(q = ldns_dname_new_frm_str(qname)))
		return refuse_args(problem, detail, e, "bad arguments to the dns-01 check");
	ldns_status st = len <= LDNS_MAX_PACKETLEN ? ldns_wire2pkt(&p, wire, len) : LDNS_STATUS_ERR;
	if (st != LDNS_STATUS_OK) {
		struct dtext d = {.n = 0};
		dt_add(&d, "malformed DNS answer of %zu bytes for TXT ", len);
		dt_name(&d, q);
		dt_add(&d, " (%s)", ldns_get_errorstr_by_id(st));
		rc = fail_with("dns", ACMERA_ERR_REFUSED, &d, problem, detail, e);
		goto out;
	}
	rc = check_answer(p, q, expected, problem, detail, e);
out:
	ldns_pkt_free(p);
	ldns_rdf_deep_free(q);
	return rc;
}

/* Asks the resolver for qname/type with RD set; NULL in *out and a detail in d when no
 * answer came. ldns reasks over TCP when the UDP answer is truncated. */
static void ask(const struct ca_validate_config *c, int timeout_ms, const ldns_rdf *qname,
                ldns_rr_type type, ldns_pkt **out, struct dtext *d)
{
	ldns_resolver *r = ldns_resolver_new();
	ldns_rdf *ns = ldns_rdf_new_frm_str(
	    strchr(c->resolver, ':') ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, c->resolver);
	ldns_pkt *q = NULL, *a = NULL;
	ldns_status st = LDNS_STATUS_MEM_ERR;
	int wrong_id = 0;

	*out = NULL;
	if (!r || !ns || ldns_resolver_push_nameserver(r, ns) != LDNS_STATUS_OK)
		goto out;
	ldns_resolver_set_port(r, (uint16_t)c->resolver_port);
	ldns_resolver_set_timeout(r,
	                          (struct timeval){timeout_ms / 1000, (timeout_ms % 1000) * 1000});
	ldns_resolver_set_retry(r, DNS_ATTEMPTS);
	ldns_resolver_set_retrans(r, 0);
	ldns_resolver_set_random(r, false);
	ldns_resolver_set_recursive(r, true);
	ldns_resolver_set_fallback(r, true);
	ldns_resolver_set_dnsrch(r, false);
	ldns_resolver_set_defnames(r, false);
	ldns_resolver_set_edns_udp_size(r, DNS_EDNS_SIZE);
	st = ldns_resolver_prepare_query_pkt(&q, r, qname, type, LDNS_RR_CLASS_IN, LDNS_RD);
	if (st != LDNS_STATUS_OK)
		goto out;
	st = ldns_resolver_send_pkt(&a, r, q);
	if (st == LDNS_STATUS_OK && !a)
		st = LDNS_STATUS_NETWORK_ERR;
	/* ldns does not match the id; an answer to another query is no answer. */
	if (st == LDNS_STATUS_OK && ldns_pkt_id(a) != ldns_pkt_id(q)) {
		dt_add(d, "the DNS answer from %s port %d has the wrong id", c->resolver,
		       c->resolver_port);
		wrong_id = 1;
		goto out;
	}
out:
	if (st != LDNS_STATUS_OK) {
		dt_add(d, "no answer from the DNS resolver %s port %d for %s ", c->resolver,
		       c->resolver_port, type_name(type));
		dt_name(d, qname);
		dt_add(d, " after %d attempts of %d ms (%s)", DNS_ATTEMPTS, timeout_ms,
		       ldns_get_errorstr_by_id(st));
	} else if (!wrong_id) {
		*out = a;
		a = NULL;
	}
	ldns_pkt_free(a);
	ldns_pkt_free(q);
	if (ns)
		ldns_rdf_deep_free(ns);
	if (r)
		ldns_resolver_deep_free(r);
}

/* The resolver is an address: names are not resolved to find it. */
static int resolver_ok(const struct ca_validate_config *c)
{
	unsigned char a[sizeof(struct in6_addr)];
	return c && c->resolver && c->resolver_port > 0 && c->resolver_port <= 65535 &&
	       (inet_pton(AF_INET, c->resolver, a) == 1 ||
	        inet_pton(AF_INET6, c->resolver, a) == 1);
}

int ca_validate_dns01(const struct ca_validate_config *c, const char *domain, const char *expected,
                      const char **problem, char **detail, struct acmera_errmsg *e)
{
	char qname[sizeof(ACME_LABEL) + NAME_MAX_LEN];
	ldns_rdf *q = NULL;
	ldns_pkt *p = NULL;
	int rc;

	if (problem)
		*problem = NULL;
	if (detail)
		*detail = NULL;
	if (!resolver_ok(c))
		return refuse_args(problem, detail, e, "bad DNS resolver in the configuration");
	if (!domain || !expected)
		return refuse_args(problem, detail, e, "no domain or value to validate");
	if (strncmp(domain, "*.", 2) == 0)
		domain += 2;
	if (!hostname_ok(domain, NAME_MAX_LEN - (sizeof(ACME_LABEL) - 1)))
		return refuse_args(problem, detail, e, "'%.80s' is not a domain name", domain);
	if (!b64url_ok(expected, VALUE_MAX_LEN))
		return refuse_args(problem, detail, e, "the expected TXT value is not base64url");
	snprintf(qname, sizeof(qname), ACME_LABEL "%s", domain);
	if (!(q = ldns_dname_new_frm_str(qname)))
		return refuse_args(problem, detail, e, "'%s' is not a domain name", qname);

	struct dtext d = {.n = 0};
	ask(c, c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS, q, LDNS_RR_TYPE_TXT, &p, &d);
	if (!p)
		rc = fail_with("dns", ACMERA_ERR_REFUSED, &d, problem, detail, e);
	else
		rc = check_answer(p, q, expected, problem, detail, e);
	ldns_pkt_free(p);
	ldns_rdf_deep_free(q);
	return rc;
}

/* ---- http-01: addresses from the resolver ---- */

/* "host:port:" and the addresses, comma-separated, IPv6 in brackets (curl's syntax). */
struct entry {
	char s[NAME_MAX_LEN + 8 + 2 * ADDRS_MAX * (INET6_ADDRSTRLEN + 3)];
	size_t n;
	size_t addrs;
};

/* Appends the addresses of type (A or AAAA) that the answer gives owner, at most
 * ADDRS_MAX of them; records of another shape are skipped. */
static void entry_add(struct entry *en, const ldns_rr_list *an, const ldns_rdf *owner,
                      ldns_rr_type type)
{
	int v4 = type == LDNS_RR_TYPE_A;
	size_t added = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(an) && added < ADDRS_MAX; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		const ldns_rdf *f = ldns_rr_rd_count(rr) == 1 ? ldns_rr_rdf(rr, 0) : NULL;
		char txt[INET6_ADDRSTRLEN];
		if (!f || ldns_rr_get_type(rr) != type ||
		    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
		    ldns_rdf_get_type(f) != (v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA) ||
		    ldns_rdf_size(f) != (v4 ? 4 : 16) ||
		    ldns_dname_compare(ldns_rr_owner(rr), owner) != 0 ||
		    !inet_ntop(v4 ? AF_INET : AF_INET6, ldns_rdf_data(f), txt, sizeof(txt)))
			continue;
		int w = snprintf(en->s + en->n, sizeof(en->s) - en->n, v4 ? "%s%s" : "%s[%s]",
		                 en->addrs ? "," : "", txt);
		if (w < 0 || (size_t)w >= sizeof(en->s) - en->n)
			return; /* the size above leaves room for all; never cut an address */
		en->n += (size_t)w;
		en->addrs++;
		added++;
	}
}

/* The resolve entry of host:port, A then AAAA asked with timeout_ms per attempt: 0 and
 * *out (heap), or ACMERA_ERR_REFUSED or ACMERA_ERR_NOMEM with the reason in d. host is
 * a checked host name. */
static int resolve_entry(const struct ca_validate_config *c, int timeout_ms, const char *host,
                         long port, char **out, struct dtext *d)
{
	static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
	struct entry en = {.n = 0, .addrs = 0};
	struct dtext why = {.n = 0}, cname = {.n = 0};
	ldns_rdf *q = ldns_dname_new_frm_str(host);
	int nxdomain = 0, rc = ACMERA_ERR_REFUSED;

	*out = NULL;
	if (!q) {
		dt_add(d, "cannot build a DNS question for ");
		dt_quote(d, host, strlen(host), NAME_MAX_LEN);
		return ACMERA_ERR_NOMEM;
	}
	en.n = (size_t)snprintf(en.s, sizeof(en.s), "%s:%ld:", host, port);
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]) && !nxdomain; t++) {
		struct dtext one = {.n = 0};
		const ldns_rdf *owner = NULL;
		ldns_pkt *p = NULL;
		int links = 0;
		ask(c, timeout_ms, q, types[t], &p, &one);
		if (p && answer_owner(p, q, types[t], &owner, &links, &one) == 0) {
			nxdomain = ldns_pkt_get_rcode(p) == LDNS_RCODE_NXDOMAIN;
			entry_add(&en, ldns_pkt_answer(p), owner, types[t]);
			if (links > 0 && cname.n == 0) {
				dt_add(&cname, " (CNAME to ");
				dt_name(&cname, owner);
				dt_add(&cname, ")");
			}
		} else if (why.n == 0) {
			why = one;
		}
		int silent = !p;
		ldns_pkt_free(p);
		/* A resolver that does not answer A would make AAAA wait as long again. */
		if (silent)
			break;
	}
	if (en.addrs > 0) {
		rc = (*out = strdup(en.s)) ? 0 : ACMERA_ERR_NOMEM;
		if (rc)
			dt_add(d, "out of memory");
	} else if (nxdomain) {
		dt_add(d, "no such name: ");
		dt_name(d, q);
		dt_add(d, "%s", cname.s);
	} else if (why.n > 0) {
		dt_add(d, "%s", why.s);
	} else {
		dt_add(d, "no A or AAAA record for ");
		dt_name(d, q);
		dt_add(d, "%s", cname.s);
	}
	ldns_rdf_deep_free(q);
	return rc;
}

int ca_validate_resolve(const struct ca_validate_config *c, const char *domain, int port,
                        char **entry, const char **problem, char **detail, struct acmera_errmsg *e)
{
	struct dtext d = {.n = 0};

	if (problem)
		*problem = NULL;
	if (detail)
		*detail = NULL;
	if (entry)
		*entry = NULL;
	if (!resolver_ok(c))
		return refuse_args(problem, detail, e, "bad DNS resolver in the configuration");
	if (!entry || port < 1 || port > 65535)
		return refuse_args(problem, detail, e, "bad port or no place for the addresses");
	if (!domain || !hostname_ok(domain, NAME_MAX_LEN))
		return refuse_args(problem, detail, e, "'%.80s' is not a domain name",
		                   domain ? domain : "");
	int rc = resolve_entry(c, c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS, domain,
	                       port, entry, &d);
	if (rc)
		return fail_with(rc == ACMERA_ERR_NOMEM ? "serverInternal" : "dns", rc, &d, problem,
		                 detail, e);
	return 0;
}

/* ---- http-01 ---- */

struct body {
	char data[BODY_MAX];
	size_t len;
	int overflow;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	if (n > sizeof(b->data) - b->len) {
		b->overflow = 1;
		return 0; /* curl stops with CURLE_WRITE_ERROR */
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	return n;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* 1 when a redirect may go to url: http or https, port 80, 443 or the http-01 port, and a
 * host name (not an address literal), copied to host (NAME_MAX_LEN + 1 bytes) with the
 * port in *port_out. Otherwise 0 and the reason in d. */
static int redirect_ok(const char *url, int http_port, char *host_out, long *port_out,
                       struct dtext *d)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	int ok = 0;

	if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		dt_add(d, "a redirect to a URL that does not parse: ");
		goto out;
	}
	long pn = strtol(port, NULL, 10);
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		dt_add(d, "a redirect to a scheme other than http and https: ");
	else if (pn != 80 && pn != 443 && pn != http_port)
		dt_add(d, "a redirect to port %ld (only 80 and 443 are allowed): ", pn);
	else if (!hostname_ok(host, NAME_MAX_LEN))
		dt_add(d, "a redirect to a host that is not a domain name: ");
	else
		ok = 1;
	if (ok) {
		memcpy(host_out, host, strlen(host) + 1);
		*port_out = pn;
	}
out:
	if (!ok)
		dt_quote(d, url, strlen(url), SHOW_URL);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return ok;
}

/* Called by curl when a name is not among the resolve entries: when the resolver's
 * answers are in use, that is refused rather than asking the system resolver. */
static int no_system_resolver(void *resolver_state, void *reserved, void *arg)
{
	(void)resolver_state;
	(void)reserved;
	(void)arg;
	return 1;
}

/* 1 when the resolve entries already hold host:port. */
static int resolved(const struct curl_slist *l, const char *host, long port)
{
	char key[NAME_MAX_LEN + 9];
	int n = snprintf(key, sizeof(key), "%s:%ld:", host, port);
	for (; l; l = l->next)
		if (n > 0 && strncasecmp(l->data, key, (size_t)n) == 0)
			return 1;
	return 0;
}

/* Asks the resolver for host and adds its entry to *resolve and to curl, within the time
 * left. 0, or ACMERA_ERR_REFUSED / ACMERA_ERR_NOMEM with the reason in d. */
static int resolve_hop(const struct ca_validate_config *c, CURL *h, const char *host, long port,
                       long long left, struct curl_slist **resolve, struct dtext *d)
{
	char *en = NULL;
	struct curl_slist *l;
	if (resolved(*resolve, host, port))
		return 0;
	/* A and AAAA, each at most DNS_ATTEMPTS over UDP: all within the time left. */
	long long per = left / (2 * DNS_ATTEMPTS);
	int rc = resolve_entry(c, per > 1 ? (int)per : 1, host, port, &en, d);
	if (rc)
		return rc;
	l = curl_slist_append(*resolve, en);
	free(en);
	if (l)
		*resolve = l;
	/* curl reads the whole list again at the next transfer. */
	if (!l || curl_easy_setopt(h, CURLOPT_RESOLVE, l) != CURLE_OK) {
		dt_add(d, "out of memory");
		return ACMERA_ERR_NOMEM;
	}
	return 0;
}

/* Options of every request of one validation. */
static int http_setup(CURL *h, struct body *b, char *errbuf, struct curl_slist *resolve,
                      int by_resolver)
{
	int cc = 0;
	cc |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	cc |= curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	cc |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	cc |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	cc |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	cc |= curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* each hop is checked here */
	cc |= curl_easy_setopt(h, CURLOPT_PROXY, "");
	cc |= curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	cc |= curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	cc |= curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)BODY_MAX);
	cc |= curl_easy_setopt(h, CURLOPT_USERAGENT, "acmera-ca/0.1 (http-01 validation)");
	/* The body proves control; a redirect target's certificate adds nothing (as
	 * public CAs do). */
	cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
	cc |= curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	if (resolve)
		cc |= curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
	if (by_resolver)
		cc |= curl_easy_setopt(h, CURLOPT_RESOLVER_START_FUNCTION, no_system_resolver);
	return cc == 0 ? 0 : -1;
}

/* 1 when the body, trailing whitespace trimmed, is key_authz. */
static int body_matches(const struct body *b, const char *key_authz)
{
	size_t n = b->len, klen = strlen(key_authz);
	while (n > 0 && (b->data[n - 1] == ' ' || b->data[n - 1] == '\t' ||
	                 b->data[n - 1] == '\r' || b->data[n - 1] == '\n'))
		n--;
	return n == klen && memcmp(b->data, key_authz, n) == 0;
}

int ca_validate_http01(const struct ca_validate_config *c, const char *domain, const char *token,
                       const char *key_authz, const char *resolve_override, const char **problem,
                       char **detail, struct acmera_errmsg *e)
{
	char url[URL_MAX], errbuf[CURL_ERROR_SIZE], host[NAME_MAX_LEN + 1];
	struct body *b = NULL;
	struct curl_slist *resolve = NULL;
	struct dtext d = {.n = 0};
	const char *type = "connection";
	CURL *h = NULL;
	int rc, code = ACMERA_ERR_REFUSED;

	if (problem)
		*problem = NULL;
	if (detail)
		*detail = NULL;
	if (!c || c->http_port <= 0 || c->http_port > 65535)
		return refuse_args(problem, detail, e, "bad http-01 port in the configuration");
	int by_resolver = !resolve_override && c->resolver;
	if (by_resolver && !resolver_ok(c))
		return refuse_args(problem, detail, e, "bad DNS resolver in the configuration");
	if (!domain || !hostname_ok(domain, NAME_MAX_LEN))
		return refuse_args(problem, detail, e, "'%.80s' is not a domain name",
		                   domain ? domain : "");
	if (!token || !b64url_ok(token, VALUE_MAX_LEN))
		return refuse_args(problem, detail, e, "the token is not base64url");
	if (!key_authz || strnlen(key_authz, KEY_AUTHZ_MAX_LEN + 1) > KEY_AUTHZ_MAX_LEN)
		return refuse_args(problem, detail, e, "no key authorization or a too long one");
	if (c->http_port == 80)
		snprintf(url, sizeof(url), "http://%s/.well-known/acme-challenge/%s", domain,
		         token);
	else
		snprintf(url, sizeof(url), "http://%s:%d/.well-known/acme-challenge/%s", domain,
		         c->http_port, token);
	memcpy(host, domain, strlen(domain) + 1);
	long port = c->http_port;

	pthread_once(&curl_once, curl_init);
	b = malloc(sizeof(*b));
	h = curl_init_rc == CURLE_OK ? curl_easy_init() : NULL;
	if (resolve_override && !(resolve = curl_slist_append(NULL, resolve_override)))
		goto nomem;
	if (!b || !h || http_setup(h, b, errbuf, resolve, by_resolver) != 0)
		goto nomem;

	long long deadline = mono_ms() + (c->timeout_ms > 0 ? c->timeout_ms : DEFAULT_TIMEOUT_MS);
	for (int hops = 0;; hops++) {
		long long left = deadline - mono_ms();
		long status = 0;
		char *next = NULL;
		int dr =
		    by_resolver && left > 0 ? resolve_hop(c, h, host, port, left, &resolve, &d) : 0;
		if (dr) {
			type = dr == ACMERA_ERR_NOMEM ? "serverInternal" : "dns";
			code = dr;
			goto fail;
		}
		left = deadline - mono_ms();
		b->len = 0;
		b->overflow = 0;
		errbuf[0] = '\0';
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left > 1 ? (long)left : 1L);
		CURLcode cr = left > 0 ? curl_easy_perform(h) : CURLE_OPERATION_TIMEDOUT;
		if (b->overflow || cr == CURLE_FILESIZE_EXCEEDED) {
			type = "incorrectResponse";
			dt_add(&d, "the body is larger than %d bytes at ", BODY_MAX);
			dt_quote(&d, url, strlen(url), SHOW_URL);
			goto fail;
		}
		if (cr != CURLE_OK) {
			type = cr == CURLE_COULDNT_RESOLVE_HOST ? "dns" : "connection";
			dt_add(&d, "fetching ");
			dt_quote(&d, url, strlen(url), SHOW_URL);
			dt_add(&d, ": ");
			const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cr);
			size_t budget = sizeof(errbuf);
			dt_escape(&d, (const uint8_t *)why, strlen(why), &budget);
			goto fail;
		}
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &next);
		if (status >= 300 && status < 400 && next) {
			type = "incorrectResponse";
			if (hops == REDIRECTS_MAX) {
				dt_add(&d, "more than %d redirects from ", REDIRECTS_MAX);
				dt_quote(&d, url, strlen(url), SHOW_URL);
				goto fail;
			}
			if (strlen(next) >= sizeof(url)) {
				dt_add(&d, "a redirect to a URL longer than %d bytes", URL_MAX - 1);
				goto fail;
			}
			if (!redirect_ok(next, c->http_port, host, &port, &d))
				goto fail;
			memmove(url, next, strlen(next) + 1);
			continue;
		}
		if (status != 200) {
			type = "unauthorized";
			dt_quote(&d, url, strlen(url), SHOW_URL);
			dt_add(&d, " answered HTTP %ld", status);
			goto fail;
		}
		if (!body_matches(b, key_authz)) {
			type = "incorrectResponse";
			dt_quote(&d, url, strlen(url), SHOW_URL);
			dt_add(&d, " answered ");
			dt_quote(&d, b->data, b->len, SHOW_CHARS);
			dt_add(&d, ", not the key authorization");
			goto fail;
		}
		rc = 0;
		goto out;
	}
nomem:
	type = "serverInternal";
	code = ACMERA_ERR_NOMEM;
	dt_add(&d, "cannot set up the http-01 request (out of memory, or libcurl failed)");
fail:
	rc = fail_with(type, code, &d, problem, detail, e);
out:
	curl_easy_cleanup(h);
	curl_slist_free_all(resolve);
	free(b);
	return rc;
}
