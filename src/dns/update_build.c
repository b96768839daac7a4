/* The RFC 2136 UPDATE message for a batch of _acme-challenge TXT records. */
#include "dns/update.h"

#include <ldns/ldns.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 4096
#define TXT_MAX 255
#define TTL_MAX 0x7fffffffu /* RFC 2181 section 8 */
#define WIRE_MAX 65000      /* room for the TSIG RR within 65535 */

/* A TXT value goes on the wire as one character-string; printable ASCII keeps it exact
 * in logs, in the hook's argv and in dig output. */
static int value_ok(const char *v)
{
	size_t n = v ? strnlen(v, TXT_MAX + 1) : 0;
	if (n == 0 || n > TXT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return 0;
	return 1;
}

/* One TXT RR: class IN with ttl to add, class NONE with ttl 0 to delete this value only
 * (RFC 2136 2.5.4). */
static ldns_rr *txt_rr(const struct dns_txt *r, enum dns_update_op op, uint32_t ttl)
{
	uint8_t data[TXT_MAX + 1];
	size_t n = strlen(r->value);
	ldns_rr *rr = ldns_rr_new();
	ldns_rdf *owner = ldns_dname_new_frm_str(r->name);
	ldns_rdf *txt;
	if (!rr || !owner)
		goto fail;
	data[0] = (uint8_t)n;
	memcpy(data + 1, r->value, n);
	txt = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, n + 1, data);
	if (!txt)
		goto fail;
	if (!ldns_rr_push_rdf(rr, txt)) {
		ldns_rdf_deep_free(txt);
		goto fail;
	}
	ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
	ldns_rr_set_owner(rr, owner);
	if (op == DNS_UPDATE_ADD) {
		ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
		ldns_rr_set_ttl(rr, ttl);
	} else {
		ldns_rr_set_class(rr, LDNS_RR_CLASS_NONE);
		ldns_rr_set_ttl(rr, 0);
	}
	return rr;
fail:
	if (owner)
		ldns_rdf_deep_free(owner);
	if (rr)
		ldns_rr_free(rr);
	return NULL;
}

int dns_update_build(const char *zone, enum dns_update_op op, const struct dns_txt *recs, size_t n,
                     uint32_t ttl, uint16_t id, uint8_t **wire, size_t *len,
                     struct acmera_errmsg *e)
{
	ldns_rr_list *ups = NULL;
	ldns_pkt *pkt = NULL;
	ldns_rdf *zone_rdf = NULL;
	uint8_t *w = NULL;
	size_t wlen = 0;
	int rc;

	if (!zone || !recs || !wire || !len || (op != DNS_UPDATE_ADD && op != DNS_UPDATE_DELETE))
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_update_build");
	if (n == 0 || n > MAX_RECORDS)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%zu records: want 1 to %d per UPDATE", n,
		                   MAX_RECORDS);
	if (op == DNS_UPDATE_ADD && ttl > TTL_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "ttl %u is too large", ttl);
	/* Check everything before building anything: one bad name refuses the whole batch. */
	for (size_t i = 0; i < n; i++) {
		if (!recs[i].name || !dns_name_allowed(recs[i].name, zone))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "refusing %.260s: not an _acme-challenge name in zone "
			                   "%.260s",
			                   recs[i].name ? recs[i].name : "(null)", zone);
		if (!value_ok(recs[i].value))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "refusing TXT value for %.260s: want 1 to %d printable "
			                   "ASCII characters",
			                   recs[i].name, TXT_MAX);
	}
	ups = ldns_rr_list_new();
	zone_rdf = ldns_dname_new_frm_str(zone);
	if (!ups || !zone_rdf) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = txt_rr(&recs[i], op, ttl);
		if (!rr || !ldns_rr_list_push_rr(ups, rr)) {
			if (rr)
				ldns_rr_free(rr);
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	/* Zone section: the zone's SOA in class IN; ldns takes zone_rdf. */
	pkt = ldns_update_pkt_new(zone_rdf, LDNS_RR_CLASS_IN, NULL, ups, NULL);
	zone_rdf = NULL;
	if (!pkt) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	ldns_pkt_set_id(pkt, id);
	ldns_pkt_set_rd(pkt, false); /* the header's Z bits must be zero in an UPDATE */
	if (ldns_pkt2wire(&w, pkt, &wlen) != LDNS_STATUS_OK || !w) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "cannot write the UPDATE message");
		goto out;
	}
	if (wlen > WIRE_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "UPDATE of %zu records is %zu bytes, more than one message holds: "
		                 "send fewer at once",
		                 n, wlen);
		goto out;
	}
	*wire = w;
	*len = wlen;
	w = NULL;
	rc = 0;
out:
	free(w);
	if (pkt)
		ldns_pkt_free(pkt);
	if (zone_rdf)
		ldns_rdf_deep_free(zone_rdf);
	if (ups)
		ldns_rr_list_deep_free(ups);
	return rc;
}
