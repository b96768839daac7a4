/* base64 / base64url: RFC 4648 vectors, round trips, and the RFC 8951 receiver
 * rules (whitespace anywhere, optional final newline, optional padding). */
#include "base/b64.h"
#include "base/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct vector {
	const char *plain;
	const char *std;
	const char *url;
};

/* RFC 4648 section 10. */
static const struct vector rfc4648[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};
#define N_VECTORS (sizeof(rfc4648) / sizeof(rfc4648[0]))

/* Decodes s with b64_decode and checks the bytes. */
static void expect_decode(const char *s, const void *want, size_t want_len)
{
	uint8_t *out = NULL;
	size_t len = 99, bad = 12345;
	assert_int_equal(b64_decode(s, strlen(s), &out, &len, &bad), 0);
	assert_non_null(out);
	assert_int_equal(len, want_len);
	if (want_len)
		assert_memory_equal(out, want, want_len);
	assert_int_equal(bad, 12345); /* untouched on success */
	free(out);
}

static void expect_decode_error(const char *s, size_t n, size_t want_bad)
{
	uint8_t *out = (uint8_t *)"sentinel";
	size_t len = 99, bad = 12345;
	assert_int_equal(b64_decode(s, n, &out, &len, &bad), ACMERA_ERR_INVAL);
	assert_null(out);
	assert_int_equal(len, 0);
	assert_int_equal(bad, want_bad);
}

static void expect_url_error(const char *s)
{
	uint8_t *out = (uint8_t *)"sentinel";
	size_t len = 99;
	assert_int_equal(b64url_decode(s, strlen(s), &out, &len), ACMERA_ERR_INVAL);
	assert_null(out);
}

static void b64_encode_matches_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_VECTORS; i++) {
		const struct vector *v = &rfc4648[i];
		char *s = b64_encode((const uint8_t *)v->plain, strlen(v->plain), 0);
		assert_non_null(s);
		assert_string_equal(s, v->std);
		free(s);
	}
}

static void b64_decode_matches_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_VECTORS; i++)
		expect_decode(rfc4648[i].std, rfc4648[i].plain, strlen(rfc4648[i].plain));
}

static void b64url_matches_rfc4648_vectors_without_padding(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_VECTORS; i++) {
		const struct vector *v = &rfc4648[i];
		char *s = b64url_encode((const uint8_t *)v->plain, strlen(v->plain));
		assert_non_null(s);
		assert_string_equal(s, v->url);
		free(s);
		uint8_t *out = NULL;
		size_t len = 99;
		assert_int_equal(b64url_decode(v->url, strlen(v->url), &out, &len), 0);
		assert_non_null(out);
		assert_int_equal(len, strlen(v->plain));
		if (len)
			assert_memory_equal(out, v->plain, len);
		free(out);
	}
}

static void b64_and_b64url_differ_in_characters_62_and_63(void **state)
{
	(void)state;
	static const uint8_t in[] = {0xfb, 0xef, 0xff};
	char *s = b64_encode(in, sizeof(in), 0);
	char *u = b64url_encode(in, sizeof(in));
	assert_string_equal(s, "++//");
	assert_string_equal(u, "--__");
	free(s);
	free(u);
	expect_decode("++//", in, sizeof(in));
	expect_decode_error("--__", 4, 0);
	expect_url_error("++//");
}

static void round_trip_every_length_and_line_width(void **state)
{
	(void)state;
	uint8_t data[300];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 131 + 7);
	static const size_t widths[] = {0, 1, 3, 4, 64, 76};
	for (size_t n = 0; n <= sizeof(data); n++) {
		for (size_t w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
			char *s = b64_encode(data, n, widths[w]);
			assert_non_null(s);
			expect_decode(s, data, n);
			free(s);
		}
		char *u = b64url_encode(data, n);
		assert_non_null(u);
		assert_null(strchr(u, '='));
		uint8_t *out = NULL;
		size_t len = 0;
		assert_int_equal(b64url_decode(u, strlen(u), &out, &len), 0);
		assert_int_equal(len, n);
		if (n)
			assert_memory_equal(out, data, n);
		free(out);
		free(u);
	}
}

static void encode_breaks_lines_and_ends_each_with_newline(void **state)
{
	(void)state;
	uint8_t data[49];
	memset(data, 0, sizeof(data));
	/* 48 bytes are exactly 64 characters: one line. */
	char *s = b64_encode(data, 48, 64);
	assert_non_null(s);
	assert_int_equal(strlen(s), 65);
	assert_int_equal(s[64], '\n');
	assert_null(memchr(s, '\n', 64));
	free(s);
	/* 49 bytes: a full line and "AA==". */
	s = b64_encode(data, 49, 64);
	assert_non_null(s);
	assert_int_equal(strlen(s), 70);
	assert_int_equal(s[64], '\n');
	assert_string_equal(s + 65, "AA==\n");
	free(s);
	s = b64_encode((const uint8_t *)"foobar", 6, 3);
	assert_string_equal(s, "Zm9\nvYm\nFy\n");
	free(s);
	s = b64_encode(NULL, 0, 64);
	assert_string_equal(s, "");
	free(s);
}

/* An EST body as RFC 8951 senders write it: CRLF line breaks, with and without
 * the final line break. */
static void decode_accepts_crlf_lines_with_and_without_final_newline(void **state)
{
	(void)state;
	uint8_t data[100];
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(255 - i);
	char *lf = b64_encode(data, sizeof(data), 64);
	assert_non_null(lf);
	/* Turn "\n" into "\r\n". */
	char crlf[256];
	size_t o = 0;
	for (const char *p = lf; *p; p++) {
		if (*p == '\n')
			crlf[o++] = '\r';
		crlf[o++] = *p;
	}
	crlf[o] = '\0';
	free(lf);
	assert_non_null(strstr(crlf, "\r\n"));
	expect_decode(crlf, data, sizeof(data));
	crlf[o - 2] = '\0'; /* no final CRLF */
	expect_decode(crlf, data, sizeof(data));
}

static void decode_ignores_spaces_and_tabs_anywhere(void **state)
{
	(void)state;
	expect_decode(" \tZm9v\r\n YmFy \t\r\n\r\n", "foobar", 6);
	expect_decode("Z m 9 v Y g", "foob", 4);
	expect_decode("Zm9vYg= =\n", "foob", 4);
	expect_decode(" \r\n\t", "", 0);
	expect_decode("", "", 0);
}

static void decode_accepts_missing_padding(void **state)
{
	(void)state;
	expect_decode("Zg", "f", 1);
	expect_decode("Zm8", "fo", 2);
	expect_decode("Zm9vYmE\r\n", "fooba", 5);
}

static void decode_accepts_nonzero_trailing_bits(void **state)
{
	(void)state;
	/* 'h' carries bits past the last byte: liberal, as documented in b64.c. */
	expect_decode("Zh==", "f", 1);
	expect_decode("Zm9=", "fo", 2);
}

static void decode_reports_offset_of_bad_character(void **state)
{
	(void)state;
	expect_decode_error("Zm9v!mFy", 8, 4);
	expect_decode_error("Zm9v\r\nYm-y", 10, 8);
	expect_decode_error("Zm9v\vYmFy", 9, 4); /* vertical tab is not RFC 8951 whitespace */
	expect_decode_error("Zm9v\0YmFy", 9, 4);
	expect_decode_error("Zm9vYmF\xc3\xa9", 9, 7);
	/* the length given is honoured: a bad byte past n is not read */
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(b64_decode("Zm9v!", 4, &out, &len, NULL), 0);
	assert_int_equal(len, 3);
	free(out);
}

static void decode_rejects_wrong_padding_at_its_offset(void **state)
{
	(void)state;
	expect_decode_error("Zm8==", 5, 4); /* one '=' too many */
	expect_decode_error("Zg===", 5, 4);
	expect_decode_error("Zg=", 3, 2);   /* padding begun, not finished */
	expect_decode_error("Zm9v=", 5, 4); /* nothing to pad */
	expect_decode_error("=", 1, 0);
	expect_decode_error("Z===", 4, 1);     /* one character cannot be padded */
	expect_decode_error("Zg==Zg==", 8, 4); /* data after padding */
	expect_decode_error("Zg==\r\nZg", 8, 6);
}

static void decode_rejects_lone_final_character(void **state)
{
	(void)state;
	expect_decode_error("Z", 1, 0);
	expect_decode_error("Zm9vY\r\n", 7, 4);
}

static void decode_without_bad_at_still_fails(void **state)
{
	(void)state;
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(b64_decode("Zm9v*", 5, &out, &len, NULL), ACMERA_ERR_INVAL);
	assert_null(out);
}

static void b64url_decode_is_strict(void **state)
{
	(void)state;
	expect_url_error("Zg==");   /* padding */
	expect_url_error("Zm9v\n"); /* whitespace */
	expect_url_error("Zm 9v");
	expect_url_error("Z");  /* lone character */
	expect_url_error("Zh"); /* non-zero trailing bits */
	expect_url_error("Zm9");
	expect_url_error("Zm9v+A");
	uint8_t *out = NULL;
	size_t len = 0;
	assert_int_equal(b64url_decode("Zg", 2, &out, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(out[0], 'f');
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(b64_encode_matches_rfc4648_vectors),
	    cmocka_unit_test(b64_decode_matches_rfc4648_vectors),
	    cmocka_unit_test(b64url_matches_rfc4648_vectors_without_padding),
	    cmocka_unit_test(b64_and_b64url_differ_in_characters_62_and_63),
	    cmocka_unit_test(round_trip_every_length_and_line_width),
	    cmocka_unit_test(encode_breaks_lines_and_ends_each_with_newline),
	    cmocka_unit_test(decode_accepts_crlf_lines_with_and_without_final_newline),
	    cmocka_unit_test(decode_ignores_spaces_and_tabs_anywhere),
	    cmocka_unit_test(decode_accepts_missing_padding),
	    cmocka_unit_test(decode_accepts_nonzero_trailing_bits),
	    cmocka_unit_test(decode_reports_offset_of_bad_character),
	    cmocka_unit_test(decode_rejects_wrong_padding_at_its_offset),
	    cmocka_unit_test(decode_rejects_lone_final_character),
	    cmocka_unit_test(decode_without_bad_at_still_fails),
	    cmocka_unit_test(b64url_decode_is_strict),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
