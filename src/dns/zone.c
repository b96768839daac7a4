/* Zone discovery by SOA and the propagation check, by plain queries through ldns. */
#include "dns/zone.h"

#include "base/clock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_DEPTH 128  /* labels walked up at most */
#define MAX_NS 8       /* NS names of a zone looked at */
#define MAX_SERVERS 16 /* addresses polled */
#define DEFAULT_INTERVAL_MS 500

struct addr {
	char ip[INET6_ADDRSTRLEN];
};

static void sleep_ms(long long ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* One query of name/type to ip:port, answered or not within attempts * timeout_ms. A fresh
 * resolver each time: ldns marks a server that timed out as unusable for good. */
static int query(const char *ip, uint16_t port, int timeout_ms, int attempts, const ldns_rdf *name,
                 ldns_rr_type type, ldns_pkt **out, struct acmera_errmsg *e)
{
	ldns_resolver *r = ldns_resolver_new();
	ldns_rdf *ns =
	    ldns_rdf_new_frm_str(strchr(ip, ':') ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A, ip);
	ldns_pkt *q = NULL, *a = NULL;
	char *qname = NULL, *qtype = NULL;
	int rc = 0;

	*out = NULL;
	if (!r || !ns || ldns_resolver_push_nameserver(r, ns) != LDNS_STATUS_OK) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot set up a query to %s", ip);
		goto out;
	}
	if (timeout_ms < 1)
		timeout_ms = 1;
	if (attempts < 1)
		attempts = 1;
	if (attempts > 10)
		attempts = 10;
	ldns_resolver_set_port(r, port);
	ldns_resolver_set_timeout(r,
	                          (struct timeval){timeout_ms / 1000, (timeout_ms % 1000) * 1000});
	ldns_resolver_set_retry(r, (uint8_t)attempts);
	ldns_resolver_set_retrans(r, 0);
	ldns_resolver_set_random(r, false);
	ldns_resolver_set_recursive(r, false);
	ldns_resolver_set_fallback(r, true); /* TCP when the answer is truncated */
	ldns_resolver_set_dnsrch(r, false);
	if (ldns_resolver_prepare_query_pkt(&q, r, name, type, LDNS_RR_CLASS_IN, 0) !=
	    LDNS_STATUS_OK) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot build a query");
		goto out;
	}
	ldns_status st = ldns_resolver_send_pkt(&a, r, q);
	if (st != LDNS_STATUS_OK || !a) {
		qname = ldns_rdf2str(name);
		qtype = ldns_rr_type2str(type);
		rc = acmera_fail(
		    e, st == LDNS_STATUS_NETWORK_ERR ? ACMERA_ERR_TIMEOUT : ACMERA_ERR_IO,
		    "no answer from %s port %u to %s %s after %d attempts of %d ms (%s)", ip, port,
		    qname ? qname : "?", qtype ? qtype : "?", attempts, timeout_ms,
		    ldns_get_errorstr_by_id(st));
		goto out;
	}
	/* The answer must be to our question (ldns does not check the id). */
	if (ldns_pkt_id(a) != ldns_pkt_id(q) || !ldns_pkt_qr(a)) {
		rc = acmera_fail(e, ACMERA_ERR_PROTO, "answer from %s is not for our query", ip);
		goto out;
	}
	*out = a;
	a = NULL;
out:
	free(qname);
	free(qtype);
	ldns_pkt_free(a);
	ldns_pkt_free(q);
	if (ns)
		ldns_rdf_deep_free(ns);
	if (r)
		ldns_resolver_deep_free(r);
	return rc;
}

/* The apex named by an SOA in the answer (owner cur) or authority section (owner at or
 * above cur), or NULL. Borrowed from p. */
static const ldns_rdf *soa_apex(const ldns_pkt *p, const ldns_rdf *cur)
{
	ldns_pkt_rcode rc = ldns_pkt_get_rcode(p);
	if (rc != LDNS_RCODE_NOERROR && rc != LDNS_RCODE_NXDOMAIN)
		return NULL;
	const ldns_rr_list *an = ldns_pkt_answer(p), *ns = ldns_pkt_authority(p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
		    ldns_dname_compare(ldns_rr_owner(rr), cur) == 0)
			return ldns_rr_owner(rr);
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(ns); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(ns, i);
		const ldns_rdf *o = ldns_rr_owner(rr);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
		    (ldns_dname_compare(o, cur) == 0 || ldns_dname_is_subdomain(cur, o)))
			return o;
	}
	return NULL;
}

/* Writes a name lower case without the trailing dot. */
static int write_zone(const ldns_rdf *apex, char *out, size_t outlen, struct acmera_errmsg *e)
{
	char *s = ldns_rdf2str(apex);
	int rc = 0;
	if (!s)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	size_t n = strlen(s);
	if (n > 0 && s[n - 1] == '.')
		s[--n] = '\0';
	if (n == 0)
		rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "the only SOA found is the root's");
	else if (n >= outlen)
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "zone name %s is too long", s);
	else
		for (size_t i = 0; i <= n; i++)
			out[i] = (char)tolower((unsigned char)s[i]);
	free(s);
	return rc;
}

int dns_zone_find_soa(const struct dns_server *srv, const char *name, char *out, size_t outlen,
                      struct acmera_errmsg *e)
{
	ldns_rdf *cur = NULL;
	ldns_pkt *p = NULL;
	int rc;

	if (!srv || !name || !out || outlen == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_zone_find_soa");
	if (strnlen(name, 256) > 254 || !(cur = ldns_dname_new_frm_str(name)))
		return acmera_fail(e, ACMERA_ERR_INVAL, "'%.80s' is not a domain name", name);
	for (int depth = 0; depth < MAX_DEPTH && ldns_dname_label_count(cur) > 0; depth++) {
		rc = query(srv->host, srv->port, srv->timeout_ms, 1 + srv->retries, cur,
		           LDNS_RR_TYPE_SOA, &p, e);
		if (rc) {
			acmera_fail_wrap(e, rc, "zone of %s", name);
			goto out;
		}
		const ldns_rdf *apex = soa_apex(p, cur);
		if (apex) {
			rc = write_zone(apex, out, outlen, e);
			goto out;
		}
		ldns_pkt_free(p);
		p = NULL;
		ldns_rdf *up = ldns_dname_left_chop(cur);
		ldns_rdf_deep_free(cur);
		cur = up;
		if (!cur) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "no SOA for %s or a parent of it at %s port %u",
	                 name, srv->host, srv->port);
out:
	ldns_pkt_free(p);
	if (cur)
		ldns_rdf_deep_free(cur);
	return rc;
}

static void add_addr(struct addr *v, size_t *n, const ldns_rdf *rd)
{
	char *s = ldns_rdf2str(rd);
	if (!s)
		return;
	for (size_t i = 0; i < *n; i++)
		if (strcmp(v[i].ip, s) == 0)
			goto out;
	if (*n < MAX_SERVERS && strlen(s) < sizeof(v[0].ip))
		snprintf(v[(*n)++].ip, sizeof(v[0].ip), "%s", s);
out:
	free(s);
}

/* Addresses of the zone's NS names as srv resolves them; srv itself when none do. */
static size_t auth_servers(const struct dns_server *srv, const ldns_rdf *zone, struct addr *v)
{
	ldns_pkt *p = NULL;
	size_t n = 0;
	if (query(srv->host, srv->port, srv->timeout_ms, 1 + srv->retries, zone, LDNS_RR_TYPE_NS,
	          &p, NULL) == 0) {
		const ldns_rr_list *an = ldns_pkt_answer(p);
		size_t seen = 0;
		for (size_t i = 0; i < ldns_rr_list_rr_count(an) && seen < MAX_NS; i++) {
			const ldns_rr *ns = ldns_rr_list_rr(an, i);
			if (ldns_rr_get_type(ns) != LDNS_RR_TYPE_NS || !ldns_rr_rdf(ns, 0))
				continue;
			seen++;
			static const ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
			for (int t = 0; t < 2; t++) {
				ldns_pkt *a = NULL;
				if (query(srv->host, srv->port, srv->timeout_ms, 1,
				          ldns_rr_rdf(ns, 0), types[t], &a, NULL) != 0)
					continue;
				const ldns_rr_list *aa = ldns_pkt_answer(a);
				for (size_t j = 0; j < ldns_rr_list_rr_count(aa); j++) {
					const ldns_rr *rr = ldns_rr_list_rr(aa, j);
					if (ldns_rr_get_type(rr) == types[t] && ldns_rr_rdf(rr, 0))
						add_addr(v, &n, ldns_rr_rdf(rr, 0));
				}
				ldns_pkt_free(a);
			}
		}
	}
	ldns_pkt_free(p);
	if (n == 0)
		snprintf(v[n++].ip, sizeof(v[0].ip), "%.*s", (int)sizeof(v[0].ip) - 1, srv->host);
	return n;
}

/* 1 when the answer holds a TXT RR at name whose strings, joined, are value. */
static int has_txt(const ldns_pkt *p, const ldns_rdf *name, const char *value)
{
	const ldns_rr_list *an = ldns_pkt_answer(p);
	size_t vlen = strlen(value);
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(an, i);
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT ||
		    ldns_dname_compare(ldns_rr_owner(rr), name) != 0)
			continue;
		size_t off = 0;
		int same = 1;
		for (size_t k = 0; k < ldns_rr_rd_count(rr) && same; k++) {
			const ldns_rdf *s = ldns_rr_rdf(rr, k);
			const uint8_t *d = ldns_rdf_data(s);
			size_t sz = ldns_rdf_size(s);
			if (sz < 1 || (size_t)d[0] + 1 != sz || off + d[0] > vlen ||
			    memcmp(value + off, d + 1, d[0]) != 0)
				same = 0;
			else
				off += d[0];
		}
		if (same && off == vlen)
			return 1;
	}
	return 0;
}

int dns_wait_visible(const struct dns_server *srv, const char *zone, const struct dns_txt *recs,
                     size_t n, int timeout_ms, int interval_ms, struct acmera_errmsg *e)
{
	struct addr servers[MAX_SERVERS];
	ldns_rdf *zone_rdf = NULL, **names = NULL;
	unsigned char *seen = NULL;
	size_t ns = 0;
	int rc;

	if (!srv || !zone || (!recs && n > 0))
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_wait_visible");
	if (n == 0)
		return 0;
	if (interval_ms <= 0)
		interval_ms = DEFAULT_INTERVAL_MS;
	long long deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	names = calloc(n, sizeof(*names));
	zone_rdf = ldns_dname_new_frm_str(zone);
	if (!names || !zone_rdf) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "bad zone '%.80s' or out of memory", zone);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!recs[i].name || !recs[i].value ||
		    !(names[i] = ldns_dname_new_frm_str(recs[i].name))) {
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "record %zu has a bad name", i + 1);
			goto out;
		}
	}
	ns = auth_servers(srv, zone_rdf, servers);
	seen = calloc(ns * n, 1);
	if (!seen) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		size_t missing = 0, ms = 0, mr = 0;
		for (size_t s = 0; s < ns; s++) {
			for (size_t r = 0; r < n; r++) {
				ldns_pkt *p = NULL;
				if (seen[s * n + r])
					continue;
				long long left = deadline - mono_ms();
				int t = srv->timeout_ms > 0 ? srv->timeout_ms : 1000;
				if (left < t)
					t = left > 1 ? (int)left : 1;
				if (query(servers[s].ip, srv->port, t, 1, names[r],
				          LDNS_RR_TYPE_TXT, &p, NULL) == 0 &&
				    has_txt(p, names[r], recs[r].value))
					seen[s * n + r] = 1;
				else if (missing++ == 0)
					ms = s, mr = r;
				ldns_pkt_free(p);
			}
		}
		if (missing == 0) {
			rc = 0;
			goto out;
		}
		long long left = deadline - mono_ms();
		if (left <= 0) {
			rc = acmera_fail(e, ACMERA_ERR_TIMEOUT,
			                 "TXT %s \"%s\" not visible at %s port %u after %d ms "
			                 "(%zu of %zu checks missing)",
			                 recs[mr].name, recs[mr].value, servers[ms].ip, srv->port,
			                 timeout_ms, missing, ns * n);
			goto out;
		}
		sleep_ms(left < interval_ms ? left : interval_ms);
	}
out:
	if (names) {
		for (size_t i = 0; i < n; i++)
			if (names[i])
				ldns_rdf_deep_free(names[i]);
		free(names);
	}
	if (zone_rdf)
		ldns_rdf_deep_free(zone_rdf);
	free(seen);
	return rc;
}
