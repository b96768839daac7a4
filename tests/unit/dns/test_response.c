/* dns_response_parse on crafted answers: rcodes, the TSIG error field, the extended
 * rcode, and malformed or truncated messages. */
#include "dns/update.h"

#include <ldns/ldns.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* A TSIG RR as a server sends it with an error: no MAC (RFC 8945 5.3.2). */
static ldns_rr *tsig_rr(uint16_t error, uint16_t orig_id)
{
	uint8_t when[6] = {0, 0, 0x65, 0x00, 0x00, 0x00};
	ldns_rr *rr = ldns_rr_new();
	ldns_rr_set_owner(rr, ldns_dname_new_frm_str("acmera."));
	ldns_rr_set_type(rr, LDNS_RR_TYPE_TSIG);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(rr, 0);
	ldns_rr_push_rdf(rr, ldns_dname_new_frm_str("hmac-sha256."));
	ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_TSIGTIME, 6, when));
	ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 300));
	ldns_rr_push_rdf(rr, ldns_native2rdf_int16_data(0, NULL));
	ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, orig_id));
	ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, error));
	ldns_rr_push_rdf(rr, ldns_native2rdf_int16_data(0, NULL));
	return rr;
}

/* An answer to an UPDATE of example.test with rcode; tsig_error >= 0 adds a TSIG RR. */
static uint8_t *answer(int rcode, int tsig_error, size_t *len)
{
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("example.test."), LDNS_RR_TYPE_SOA,
	                                 LDNS_RR_CLASS_IN, 0);
	uint8_t *w = NULL;
	ldns_pkt_set_id(p, 4242);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_opcode(p, LDNS_PACKET_UPDATE);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	if (tsig_error >= 0)
		ldns_pkt_set_tsig(p, tsig_rr((uint16_t)tsig_error, 4242));
	assert_int_equal(ldns_pkt2wire(&w, p, len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	return w;
}

static void parse_ok(const uint8_t *w, size_t len, int want_rcode, int want_tsig)
{
	int rcode = -99, terr = -99;
	struct acmera_errmsg e = {{0}};
	int rc = dns_response_parse(w, len, &rcode, &terr, &e);
	if (rc)
		fail_msg("dns_response_parse: %s", e.text);
	assert_int_equal(rcode, want_rcode);
	assert_int_equal(terr, want_tsig);
}

static void parse_fails(const uint8_t *w, size_t len, const char *want)
{
	int rcode = -99, terr = -99;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_response_parse(w, len, &rcode, &terr, &e), ACMERA_ERR_PROTO);
	if (want && !strstr(e.text, want))
		fail_msg("error \"%s\" lacks \"%s\"", e.text, want);
}

static void response_noerror_without_tsig(void **state)
{
	(void)state;
	size_t len;
	uint8_t *w = answer(LDNS_RCODE_NOERROR, -1, &len);
	parse_ok(w, len, 0, -1);
	free(w);
}

static void response_refused(void **state)
{
	(void)state;
	size_t len;
	uint8_t *w = answer(LDNS_RCODE_REFUSED, -1, &len);
	parse_ok(w, len, 5, -1);
	free(w);
}

static void response_notauth_with_tsig_badsig_and_badkey(void **state)
{
	(void)state;
	size_t len;
	uint8_t *w = answer(LDNS_RCODE_NOTAUTH, 16, &len);
	parse_ok(w, len, 9, 16);
	free(w);
	w = answer(LDNS_RCODE_NOTAUTH, 17, &len);
	parse_ok(w, len, 9, 17);
	free(w);
	w = answer(LDNS_RCODE_NOERROR, 0, &len);
	parse_ok(w, len, 0, 0);
	free(w);
}

static void response_reads_extended_rcode_from_opt(void **state)
{
	(void)state;
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("example.test."), LDNS_RR_TYPE_SOA,
	                                 LDNS_RR_CLASS_IN, 0);
	uint8_t *w = NULL;
	size_t len;
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, 0);
	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_extended_rcode(p, 1); /* BADVERS = 16 */
	assert_int_equal(ldns_pkt2wire(&w, p, &len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	parse_ok(w, len, 16, -1);
	free(w);
}

static void response_refuses_every_truncation(void **state)
{
	(void)state;
	size_t len;
	uint8_t *w = answer(LDNS_RCODE_NOTAUTH, 16, &len);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1); /* exact size: ASan sees overreads */
		memcpy(copy, w, cut);
		parse_fails(copy, cut, NULL);
		free(copy);
	}
	free(w);
}

static void response_refuses_lying_counts_and_queries(void **state)
{
	(void)state;
	uint8_t hdr[12] = {0x12, 0x34, 0x80, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
	parse_fails(hdr, sizeof(hdr), "malformed answer record 1 of 65535");
	size_t len;
	uint8_t *w = answer(LDNS_RCODE_NOERROR, -1, &len);
	w[2] &= 0x7f; /* QR off */
	parse_fails(w, len, "not an answer");
	free(w);
	parse_fails(hdr, 11, "shorter than a DNS header");
}

static void response_refuses_tsig_that_is_not_last(void **state)
{
	(void)state;
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("example.test."), LDNS_RR_TYPE_SOA,
	                                 LDNS_RR_CLASS_IN, 0);
	uint8_t *w = NULL;
	size_t len;
	ldns_pkt_set_qr(p, true);
	ldns_pkt_push_rr(p, LDNS_SECTION_ADDITIONAL, tsig_rr(16, 1));
	ldns_pkt_set_tsig(p, tsig_rr(0, 1));
	assert_int_equal(ldns_pkt2wire(&w, p, &len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	parse_fails(w, len, "TSIG record is not the last");
	free(w);
}

static void response_refuses_tsig_without_error_field(void **state)
{
	(void)state;
	ldns_pkt *p = ldns_pkt_query_new(ldns_dname_new_frm_str("example.test."), LDNS_RR_TYPE_SOA,
	                                 LDNS_RR_CLASS_IN, 0);
	ldns_rr *t = ldns_rr_new();
	uint8_t *w = NULL;
	size_t len;
	ldns_pkt_set_qr(p, true);
	ldns_rr_set_owner(t, ldns_dname_new_frm_str("acmera."));
	ldns_rr_set_type(t, LDNS_RR_TYPE_TSIG);
	ldns_rr_set_class(t, LDNS_RR_CLASS_ANY);
	ldns_rr_push_rdf(t, ldns_dname_new_frm_str("hmac-sha256."));
	ldns_pkt_set_tsig(p, t);
	assert_int_equal(ldns_pkt2wire(&w, p, &len), LDNS_STATUS_OK);
	ldns_pkt_free(p);
	parse_fails(w, len, "malformed TSIG record");
	free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(response_noerror_without_tsig),
	    cmocka_unit_test(response_refused),
	    cmocka_unit_test(response_notauth_with_tsig_badsig_and_badkey),
	    cmocka_unit_test(response_reads_extended_rcode_from_opt),
	    cmocka_unit_test(response_refuses_every_truncation),
	    cmocka_unit_test(response_refuses_lying_counts_and_queries),
	    cmocka_unit_test(response_refuses_tsig_that_is_not_last),
	    cmocka_unit_test(response_refuses_tsig_without_error_field),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
