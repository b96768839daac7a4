/* The UPDATE message on the wire, read back with ldns: zone section, ADD and DELETE
 * records (RFC 2136 2.5.1 and 2.5.4), and the refusals that send nothing. */
#include "dns/update.h"

#include <ldns/ldns.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const struct dns_txt two[] = {
    {"_acme-challenge.dev1.example.test", "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"},
    {"_acme-challenge.example.test.", "second value"},
};

static ldns_pkt *build_and_read(enum dns_update_op op, const struct dns_txt *recs, size_t n,
                                uint32_t ttl, uint16_t id)
{
	uint8_t *wire = NULL;
	size_t len = 0;
	ldns_pkt *p = NULL;
	struct acmera_errmsg e = {{0}};
	int rc = dns_update_build("example.test", op, recs, n, ttl, id, &wire, &len, &e);
	if (rc)
		fail_msg("dns_update_build: %s", e.text);
	assert_int_equal(ldns_wire2pkt(&p, wire, len), LDNS_STATUS_OK);
	free(wire);
	return p;
}

static void assert_dname(const ldns_rdf *rd, const char *want)
{
	char *s = ldns_rdf2str(rd);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

/* The TXT RR's single string. */
static void assert_txt(const ldns_rr *rr, const char *want)
{
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_TXT);
	assert_int_equal(ldns_rr_rd_count(rr), 1);
	const ldns_rdf *s = ldns_rr_rdf(rr, 0);
	assert_int_equal(ldns_rdf_size(s), strlen(want) + 1);
	assert_int_equal(ldns_rdf_data(s)[0], strlen(want));
	assert_memory_equal(ldns_rdf_data(s) + 1, want, strlen(want));
}

static void assert_zone_section(const ldns_pkt *p, uint16_t id)
{
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_UPDATE);
	assert_int_equal(ldns_pkt_id(p), id);
	assert_false(ldns_pkt_qr(p));
	assert_false(ldns_pkt_rd(p));
	assert_int_equal(ldns_update_zocount(p), 1);
	assert_int_equal(ldns_update_prcount(p), 0);
	assert_int_equal(ldns_update_ad(p), 0);
	assert_null(ldns_pkt_tsig(p));
	const ldns_rr *z = ldns_rr_list_rr(ldns_pkt_question(p), 0);
	assert_dname(ldns_rr_owner(z), "example.test.");
	assert_int_equal(ldns_rr_get_type(z), LDNS_RR_TYPE_SOA);
	assert_int_equal(ldns_rr_get_class(z), LDNS_RR_CLASS_IN);
}

static void update_add_puts_txt_in_class_in_with_ttl(void **state)
{
	(void)state;
	ldns_pkt *p = build_and_read(DNS_UPDATE_ADD, two, 2, 60, 0x1234);
	assert_zone_section(p, 0x1234);
	assert_int_equal(ldns_update_upcount(p), 2);
	const ldns_rr_list *up = ldns_pkt_authority(p);
	assert_int_equal(ldns_rr_list_rr_count(up), 2);
	for (size_t i = 0; i < 2; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(up, i);
		assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
		assert_int_equal(ldns_rr_ttl(rr), 60);
		assert_txt(rr, two[i].value);
	}
	assert_dname(ldns_rr_owner(ldns_rr_list_rr(up, 0)), "_acme-challenge.dev1.example.test.");
	assert_dname(ldns_rr_owner(ldns_rr_list_rr(up, 1)), "_acme-challenge.example.test.");
	ldns_pkt_free(p);
}

static void update_delete_removes_exact_values_with_class_none(void **state)
{
	(void)state;
	ldns_pkt *p = build_and_read(DNS_UPDATE_DELETE, two, 2, 60, 7);
	assert_zone_section(p, 7);
	const ldns_rr_list *up = ldns_pkt_authority(p);
	assert_int_equal(ldns_rr_list_rr_count(up), 2);
	for (size_t i = 0; i < 2; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(up, i);
		/* class NONE, ttl 0, with the value: delete this RR only, not the RRset
		 * (which would be class ANY and no rdata). */
		assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_NONE);
		assert_int_equal(ldns_rr_ttl(rr), 0);
		assert_txt(rr, two[i].value);
	}
	ldns_pkt_free(p);
}

static void update_build_holds_many_records_in_one_message(void **state)
{
	(void)state;
	enum { N = 300 };
	static struct dns_txt recs[N];
	static char names[N][64];
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "_acme-challenge.host%d.example.test", i);
		recs[i].name = names[i];
		recs[i].value = "v0123456789012345678901234567890123456789012";
	}
	ldns_pkt *p = build_and_read(DNS_UPDATE_ADD, recs, N, 30, 1);
	assert_int_equal(ldns_update_upcount(p), N);
	assert_int_equal(ldns_rr_list_rr_count(ldns_pkt_authority(p)), N);
	assert_dname(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_authority(p), N - 1)),
	             "_acme-challenge.host299.example.test.");
	ldns_pkt_free(p);
}

static void expect_refusal(const struct dns_txt *recs, size_t n, const char *want)
{
	uint8_t *wire = (uint8_t *)"untouched";
	size_t len = 12345;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(
	    dns_update_build("example.test", DNS_UPDATE_ADD, recs, n, 60, 1, &wire, &len, &e),
	    ACMERA_ERR_INVAL);
	assert_string_equal((const char *)wire, "untouched");
	assert_int_equal(len, 12345);
	if (!strstr(e.text, want))
		fail_msg("error \"%s\" lacks \"%s\"", e.text, want);
}

static void update_build_refuses_whole_batch_for_one_bad_name(void **state)
{
	(void)state;
	const struct dns_txt outside[] = {
	    {"_acme-challenge.a.example.test", "ok"},
	    {"_acme-challenge.example.org", "v"},
	};
	expect_refusal(outside, 2, "refusing _acme-challenge.example.org");
	const struct dns_txt not_acme[] = {
	    {"_acme-challenge.a.example.test", "ok"},
	    {"www.example.test", "v"},
	};
	expect_refusal(not_acme, 2, "refusing www.example.test");
	const struct dns_txt null_name[] = {{NULL, "v"}};
	expect_refusal(null_name, 1, "refusing (null)");
}

static void update_build_refuses_bad_values(void **state)
{
	(void)state;
	char long_value[300];
	memset(long_value, 'a', 256);
	long_value[256] = '\0';
	const struct dns_txt too_long[] = {{"_acme-challenge.example.test", long_value}};
	expect_refusal(too_long, 1, "1 to 255 printable");
	const struct dns_txt empty[] = {{"_acme-challenge.example.test", ""}};
	expect_refusal(empty, 1, "1 to 255 printable");
	const struct dns_txt ctl[] = {{"_acme-challenge.example.test", "a\nb"}};
	expect_refusal(ctl, 1, "1 to 255 printable");
	const struct dns_txt none[] = {{"_acme-challenge.example.test", NULL}};
	expect_refusal(none, 1, "1 to 255 printable");
	long_value[255] = '\0';
	uint8_t *wire = NULL;
	size_t len = 0;
	const struct dns_txt max[] = {{"_acme-challenge.example.test", long_value}};
	assert_int_equal(
	    dns_update_build("example.test", DNS_UPDATE_ADD, max, 1, 60, 1, &wire, &len, NULL), 0);
	free(wire);
}

static void update_build_refuses_empty_and_oversized_batches(void **state)
{
	(void)state;
	expect_refusal(two, 0, "0 records");
	/* 300 values of 255 characters do not fit one message of 64 KiB. */
	enum { N = 300 };
	static struct dns_txt recs[N];
	static char names[N][64];
	static char value[256];
	memset(value, 'x', 255);
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "_acme-challenge.h%d.example.test", i);
		recs[i].name = names[i];
		recs[i].value = value;
	}
	expect_refusal(recs, N, "more than one message holds");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(update_add_puts_txt_in_class_in_with_ttl),
	    cmocka_unit_test(update_delete_removes_exact_values_with_class_none),
	    cmocka_unit_test(update_build_holds_many_records_in_one_message),
	    cmocka_unit_test(update_build_refuses_whole_batch_for_one_bad_name),
	    cmocka_unit_test(update_build_refuses_bad_values),
	    cmocka_unit_test(update_build_refuses_empty_and_oversized_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
