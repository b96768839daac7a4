/* Which names the publisher may touch, which zone holds a name, and server addresses. */
#include "dns/update.h"
#include "dns/zone.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void name_allowed_only_acme_challenge_in_zone(void **state)
{
	(void)state;
	assert_true(dns_name_allowed("_acme-challenge.example.com", "example.com"));
	assert_true(dns_name_allowed("_acme-challenge.dev1.iot.example.com.", "example.com"));
	assert_true(dns_name_allowed("_ACME-Challenge.Dev1.Example.COM", "example.com."));
	assert_true(dns_name_allowed("_acme-challenge.a.example.com", "a.example.com"));

	/* not _acme-challenge */
	assert_false(dns_name_allowed("www.example.com", "example.com"));
	assert_false(dns_name_allowed("x._acme-challenge.example.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challengex.example.com", "example.com"));
	assert_false(dns_name_allowed("acme-challenge.example.com", "example.com"));
	/* outside the zone, or only a suffix match inside a label */
	assert_false(dns_name_allowed("_acme-challenge.example.org", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.badexample.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.example.com.evil", "example.com"));
	/* malformed names and zones */
	assert_false(dns_name_allowed("_acme-challenge..example.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.*.example.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.a b.example.com", "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.example.com", ""));
	assert_false(dns_name_allowed("_acme-challenge.example.com", "."));
	assert_false(dns_name_allowed("_acme-challenge", "example.com"));
	assert_false(dns_name_allowed(NULL, "example.com"));
	assert_false(dns_name_allowed("_acme-challenge.example.com", NULL));
}

static void name_allowed_refuses_overlong_labels_and_names(void **state)
{
	(void)state;
	char name[400];
	/* a 64-character label */
	snprintf(name, sizeof(name), "_acme-challenge.%064d.example.com", 0);
	assert_false(dns_name_allowed(name, "example.com"));
	snprintf(name, sizeof(name), "_acme-challenge.%063d.example.com", 0);
	assert_true(dns_name_allowed(name, "example.com"));
	/* more than 253 characters in all */
	snprintf(name, sizeof(name), "_acme-challenge.%063d.%063d.%063d.%040d.example.com", 0, 0, 0,
	         0);
	assert_true(strlen(name) > 253);
	assert_false(dns_name_allowed(name, "example.com"));
}

static void zone_for_name_takes_longest_suffix(void **state)
{
	(void)state;
	const char *const zones[] = {"example.com", "iot.example.com.", "example.org"};
	assert_ptr_equal(dns_zone_for_name("dev1.iot.example.com", zones, 3), zones[1]);
	assert_ptr_equal(dns_zone_for_name("_acme-challenge.DEV1.IOT.example.com.", zones, 3),
	                 zones[1]);
	assert_ptr_equal(dns_zone_for_name("www.example.com", zones, 3), zones[0]);
	assert_ptr_equal(dns_zone_for_name("example.com", zones, 3), zones[0]);
	assert_ptr_equal(dns_zone_for_name("a.example.org", zones, 3), zones[2]);
	assert_null(dns_zone_for_name("notexample.com", zones, 3));
	assert_null(dns_zone_for_name("example.net", zones, 3));
	assert_null(dns_zone_for_name("com", zones, 3));
	assert_null(dns_zone_for_name("www.example.com", zones, 0));
}

static void server_parse_accepts_ipv4_ipv6_and_ports(void **state)
{
	(void)state;
	struct dns_server s;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_server_parse("127.0.0.1:5353", &s, &e), 0);
	assert_string_equal(s.host, "127.0.0.1");
	assert_int_equal(s.port, 5353);
	assert_int_equal(s.timeout_ms, 3000);
	assert_int_equal(s.retries, 2);
	assert_int_equal(dns_server_parse("192.0.2.1", &s, &e), 0);
	assert_string_equal(s.host, "192.0.2.1");
	assert_int_equal(s.port, 53);
	assert_int_equal(dns_server_parse("[::1]:5300", &s, &e), 0);
	assert_string_equal(s.host, "::1");
	assert_int_equal(s.port, 5300);
	assert_int_equal(dns_server_parse("[2001:db8::53]", &s, &e), 0);
	assert_string_equal(s.host, "2001:db8::53");
	assert_int_equal(s.port, 53);
	assert_int_equal(dns_server_parse("2001:db8::53", &s, &e), 0);
	assert_int_equal(s.port, 53);
}

static void server_parse_refuses_names_and_bad_ports(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "ns1.example.com:53",
	    "127.0.0.1:",
	    "127.0.0.1:0",
	    "127.0.0.1:65536",
	    "127.0.0.1:53x",
	    "127.0.0.1:-1",
	    "[::1",
	    "[::1]53",
	    "[]:53",
	    "256.1.1.1",
	    "127.0.0.1:123456",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct dns_server s;
		struct acmera_errmsg e = {{0}};
		if (dns_server_parse(bad[i], &s, &e) != ACMERA_ERR_INVAL)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(e.text[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(name_allowed_only_acme_challenge_in_zone),
	    cmocka_unit_test(name_allowed_refuses_overlong_labels_and_names),
	    cmocka_unit_test(zone_for_name_takes_longest_suffix),
	    cmocka_unit_test(server_parse_accepts_ipv4_ipv6_and_ports),
	    cmocka_unit_test(server_parse_refuses_names_and_bad_ports),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
