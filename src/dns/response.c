/* A bounded walk over an untrusted DNS response: the rcode (with the EDNS extension)
 * and the error field of a TSIG RR. ldns parses each RR against the message bounds;
 * the walk adds the rules a response must keep (RFC 6891 6.1.1, RFC 8945 5.1). */
#include "dns/update.h"

#include <ldns/ldns.h>

#define HEADER_LEN 12
#define TSIG_ERROR_RDF 5

static const char *const section_name[] = {"question", "answer", "authority", "additional"};

/* The TSIG error field: the sixth field of the RDATA (algorithm, time signed, fudge,
 * MAC, original id, error, other data). */
static int tsig_error_of(const ldns_rr *rr, int *out)
{
	if (ldns_rr_rd_count(rr) < TSIG_ERROR_RDF + 2)
		return -1;
	const ldns_rdf *f = ldns_rr_rdf(rr, TSIG_ERROR_RDF);
	if (!f || ldns_rdf_size(f) != 2)
		return -1;
	*out = ldns_rdf2native_int16(f);
	return 0;
}

int dns_response_parse(const uint8_t *wire, size_t len, int *rcode, int *tsig_error,
                       struct acmera_errmsg *e)
{
	uint16_t count[4];
	size_t pos = HEADER_LEN;
	int have_opt = 0, ext_rcode = 0, terr = -1;

	if (!wire || !rcode || !tsig_error)
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_response_parse");
	if (len < HEADER_LEN)
		return acmera_fail(e, ACMERA_ERR_PROTO,
		                   "answer of %zu bytes is shorter than a "
		                   "DNS header",
		                   len);
	if (len > LDNS_MAX_PACKETLEN)
		return acmera_fail(e, ACMERA_ERR_PROTO, "answer of %zu bytes is too long", len);
	if (!LDNS_QR_WIRE(wire))
		return acmera_fail(e, ACMERA_ERR_PROTO, "message is a query, not an answer");
	count[0] = LDNS_QDCOUNT(wire);
	count[1] = LDNS_ANCOUNT(wire);
	count[2] = LDNS_NSCOUNT(wire);
	count[3] = LDNS_ARCOUNT(wire);

	/* Every RR consumes bytes or fails, so the loop is bounded by len. */
	for (int s = 0; s < 4; s++) {
		for (unsigned i = 0; i < count[s]; i++) {
			ldns_rr *rr = NULL;
			ldns_status st = ldns_wire2rr(&rr, wire, len, &pos, (ldns_pkt_section)s);
			if (st != LDNS_STATUS_OK)
				return acmera_fail(
				    e, ACMERA_ERR_PROTO, "malformed %s record %u of %u: %s",
				    section_name[s], i + 1, count[s], ldns_get_errorstr_by_id(st));
			ldns_rr_type type = ldns_rr_get_type(rr);
			int last = s == 3 && i + 1 == count[s];
			int bad = 0;
			if (type == LDNS_RR_TYPE_TSIG) {
				if (!last)
					bad = acmera_fail(e, ACMERA_ERR_PROTO,
					                  "TSIG record is not the last record");
				else if (tsig_error_of(rr, &terr) != 0)
					bad = acmera_fail(e, ACMERA_ERR_PROTO,
					                  "malformed TSIG record");
			} else if (type == LDNS_RR_TYPE_OPT && s != 0) {
				if (s != 3 || have_opt++)
					bad = acmera_fail(e, ACMERA_ERR_PROTO,
					                  "OPT record misplaced or repeated");
				/* The upper 8 bits of the extended rcode sit in the TTL. */
				ext_rcode = (int)(ldns_rr_ttl(rr) >> 24);
			}
			ldns_rr_free(rr);
			if (bad)
				return bad;
		}
	}
	*rcode = (ext_rcode << 4) | LDNS_RCODE_WIRE(wire);
	*tsig_error = terr;
	return 0;
}
