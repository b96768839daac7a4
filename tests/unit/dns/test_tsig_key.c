/* BIND key files: the grammar tsig-keygen writes and what people write by hand,
 * refusals with file and line, weak algorithms, bad base64, file permissions. */
#include "dns/tsig_key.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

/* 32 bytes, as tsig-keygen -a hmac-sha256 makes them. */
#define SECRET32 "jdaIPOFuVovPUkWMYt3ORvwxG7NTeFcWld+7Y1Iu7t8="
/* 64 bytes, as for hmac-sha512. */
#define SECRET64                                                                                   \
	"Mj8zTqGZ2QJxR3i7ThcZ2qjVYxwWmVnVb1XhsXBuZ0YaLzYt0QxCDNwRrbgpW8G0CBC2JbiAp2zKr2W4F0Av7A=="

static int parse(const char *text, struct tsig_key *k, struct acmera_errmsg *e)
{
	memset(k, 0x55, sizeof(*k));
	return tsig_key_parse(text, strlen(text), "test.key", k, e);
}

static void expect_refused(const char *text, const char *want_in_error)
{
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(parse(text, &k, &e), ACMERA_ERR_INVAL);
	if (!strstr(e.text, want_in_error))
		fail_msg("error \"%s\" lacks \"%s\"", e.text, want_in_error);
}

static void tsig_key_parses_tsig_keygen_output(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *text = "key \"acmera-test\" {\n"
	                   "\talgorithm hmac-sha256;\n"
	                   "\tsecret \"" SECRET32 "\";\n"
	                   "};\n";
	assert_int_equal(parse(text, &k, &e), 0);
	assert_string_equal(k.name, "acmera-test.");
	assert_string_equal(k.algorithm, "hmac-sha256.");
	assert_string_equal(k.secret_b64, SECRET32);
}

static void tsig_key_accepts_each_strong_algorithm(void **state)
{
	(void)state;
	static const char *const algs[] = {"hmac-sha256", "HMAC-SHA384", "hmac-sha512."};
	static const char *const want[] = {"hmac-sha256.", "hmac-sha384.", "hmac-sha512."};
	for (int i = 0; i < 3; i++) {
		char text[512];
		struct tsig_key k;
		struct acmera_errmsg e = {{0}};
		snprintf(text, sizeof(text), "key k%d { algorithm %s; secret \"%s\"; };", i,
		         algs[i], SECRET64);
		assert_int_equal(parse(text, &k, &e), 0);
		assert_string_equal(k.algorithm, want[i]);
		assert_string_equal(k.secret_b64, SECRET64);
	}
}

static void tsig_key_reads_comments_quotes_and_any_clause_order(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *text = "# made by hand\n"
	                   "// for acmera\n"
	                   "/* a comment\n   over lines */ key\n"
	                   "  ddns.example.com.   # absolute name, unquoted\n"
	                   "{ secret\n\"" SECRET32 "\" ; // the secret\n"
	                   "  algorithm \"hmac-sha512\";\n"
	                   "} ;\n"
	                   "key second { algorithm hmac-sha256; secret \"" SECRET32 "\"; };\n";
	assert_int_equal(parse(text, &k, &e), 0);
	assert_string_equal(k.name, "ddns.example.com.");
	assert_string_equal(k.algorithm, "hmac-sha512.");
	assert_string_equal(k.secret_b64, SECRET32);
}

static void tsig_key_normalises_secret_split_by_whitespace(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *text = "key a { algorithm hmac-sha256; secret \"jdaIPOFuVovPUkWM "
	                   "Yt3ORvwxG7NTeFcWld+7Y1Iu7t8\"; };";
	assert_int_equal(parse(text, &k, &e), 0);
	assert_string_equal(k.secret_b64, SECRET32); /* padding restored, blanks gone */
}

static void tsig_key_refuses_weak_algorithms(void **state)
{
	(void)state;
	expect_refused("key a {\n algorithm hmac-md5;\n secret \"" SECRET32 "\"; };",
	               "test.key:2: algorithm hmac-md5 is refused as weak");
	expect_refused("key a { algorithm hmac-sha1; secret \"" SECRET32 "\"; };",
	               "hmac-sha1 is refused as weak");
	expect_refused("key a { algorithm hmac-md5.sig-alg.reg.int; secret \"" SECRET32 "\"; };",
	               "refused as weak");
	expect_refused("key a { algorithm hmac-sha224; secret \"" SECRET32 "\"; };",
	               "hmac-sha224 is not supported");
	expect_refused("key a { algorithm hmac-sha256-128; secret \"" SECRET32 "\"; };",
	               "truncated");
}

static void tsig_key_refuses_bad_base64_with_line(void **state)
{
	(void)state;
	expect_refused("key a {\n algorithm hmac-sha256;\n\n secret \"abc$def\";\n};",
	               "test.key:4: secret is not base64 (bad character at offset 3)");
	expect_refused("key a { algorithm hmac-sha256; secret \"c2hvcnQ=\"; };",
	               "secret is too short: 5 bytes");
	expect_refused("key a { algorithm hmac-sha256; secret \"\"; };", "too short");
}

static void tsig_key_names_line_of_grammar_errors(void **state)
{
	(void)state;
	expect_refused("", "test.key:1: no key statement");
	expect_refused("# only a comment\n", "test.key:2: no key statement");
	expect_refused("options { };", "test.key:1: expected 'key', found 'options'");
	expect_refused("key a {\n algorithm hmac-sha256\n secret \"" SECRET32 "\";\n};",
	               "test.key:3: expected ';', found 'secret'");
	expect_refused("key a {\n algorithm hmac-sha256;\n};", "test.key:1: key a. has no secret");
	expect_refused("key a { secret \"" SECRET32 "\"; };", "key a. has no algorithm");
	expect_refused("key a {\n algorithm hmac-sha256;\n secret \"" SECRET32 "\";\n}",
	               "test.key:4: expected ';' after '}', found 'end of file'");
	expect_refused("key a {\n algorithm hmac-sha256;\n", "test.key:1: key statement is not "
	                                                     "closed");
	expect_refused("key a {\n\n flavour vanilla;\n};", "test.key:3: unknown clause 'flavour'");
	expect_refused("key a { algorithm hmac-sha256; algorithm hmac-sha512; };",
	               "second 'algorithm'");
	expect_refused("key \"a\n\" { };", "test.key:1: unterminated quoted string");
	expect_refused("/* open\n\n comment", "test.key:1: unterminated /* comment");
	expect_refused("key { algorithm hmac-sha256; };", "expected a key name, found '{'");
	expect_refused("key \"bad name!\" { };", "character other than");
	expect_refused("key a..b { };", "empty label");
	expect_refused("key a {\n secret ;\n};", "test.key:2: expected a value after 'secret'");
}

static void tsig_key_refuses_nul_byte(void **state)
{
	(void)state;
	static const char text[] = "key a\0 { algorithm hmac-sha256; };";
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(tsig_key_parse(text, sizeof(text) - 1, "nul.key", &k, &e),
	                 ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "nul.key:1: NUL byte"));
}

static void tsig_key_refuses_overlong_token(void **state)
{
	(void)state;
	char *text = malloc(5000);
	assert_non_null(text);
	memcpy(text, "key ", 4);
	memset(text + 4, 'a', 4000);
	strcpy(text + 4004, " { };");
	expect_refused(text, "longer than 1024");
	free(text);
}

/* Writes text to a fresh file with mode; returns its path (static buffer). */
static const char *write_key_file(const char *text, mode_t mode)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/acmera-tsig-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static const char *const good_file = "key \"acmera\" {\n\talgorithm hmac-sha256;\n"
                                     "\tsecret \"" SECRET32 "\";\n};\n";

static void tsig_key_load_reads_private_file(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *path = write_key_file(good_file, 0600);
	assert_int_equal(tsig_key_load(path, 0, &k, &e), 0);
	assert_string_equal(k.name, "acmera.");
	assert_string_equal(k.secret_b64, SECRET32);
	tsig_key_wipe(&k);
	for (size_t i = 0; i < sizeof(k.secret_b64); i++)
		assert_int_equal(k.secret_b64[i], 0);
	unlink(path);
}

/* hmac-sha384 included: it is signed by dns/tsig.c, not by ldns, which cannot. */
static void tsig_key_load_accepts_each_strong_algorithm(void **state)
{
	(void)state;
	static const char *const algs[] = {"hmac-sha256", "hmac-sha384", "hmac-sha512"};
	for (int i = 0; i < 3; i++) {
		char text[256], want[32];
		struct tsig_key k;
		struct acmera_errmsg e = {{0}};
		snprintf(text, sizeof(text), "key \"k\" { algorithm %s; secret \"%s\"; };\n",
		         algs[i], SECRET64);
		const char *path = write_key_file(text, 0600);
		int rc = tsig_key_load(path, 0, &k, &e);
		unlink(path);
		if (rc)
			fail_msg("%s: %s", algs[i], e.text);
		snprintf(want, sizeof(want), "%s.", algs[i]);
		assert_string_equal(k.algorithm, want);
		tsig_key_wipe(&k);
	}
}

static void tsig_key_load_refuses_group_readable_file(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *path = write_key_file(good_file, 0640);
	assert_int_equal(tsig_key_load(path, 0, &k, &e), ACMERA_ERR_CONFIG);
	assert_non_null(strstr(e.text, path));
	assert_non_null(strstr(e.text, "mode 0640"));
	assert_non_null(strstr(e.text, "chmod 600"));
	/* ... unless the caller allows it. */
	assert_int_equal(tsig_key_load(path, 1, &k, &e), 0);
	unlink(path);
}

static void tsig_key_load_names_file_and_line(void **state)
{
	(void)state;
	struct tsig_key k;
	struct acmera_errmsg e = {{0}};
	const char *path = write_key_file("key a {\n algorithm hmac-sha1;\n};\n", 0600);
	char want[96];
	snprintf(want, sizeof(want), "%s:2: algorithm hmac-sha1 is refused", path);
	assert_int_equal(tsig_key_load(path, 0, &k, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, want));
	unlink(path);
	assert_int_equal(tsig_key_load(path, 0, &k, &e), ACMERA_ERR_IO);
	assert_non_null(strstr(e.text, "No such file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(tsig_key_parses_tsig_keygen_output),
	    cmocka_unit_test(tsig_key_accepts_each_strong_algorithm),
	    cmocka_unit_test(tsig_key_reads_comments_quotes_and_any_clause_order),
	    cmocka_unit_test(tsig_key_normalises_secret_split_by_whitespace),
	    cmocka_unit_test(tsig_key_refuses_weak_algorithms),
	    cmocka_unit_test(tsig_key_refuses_bad_base64_with_line),
	    cmocka_unit_test(tsig_key_names_line_of_grammar_errors),
	    cmocka_unit_test(tsig_key_refuses_nul_byte),
	    cmocka_unit_test(tsig_key_refuses_overlong_token),
	    cmocka_unit_test(tsig_key_load_reads_private_file),
	    cmocka_unit_test(tsig_key_load_accepts_each_strong_algorithm),
	    cmocka_unit_test(tsig_key_load_refuses_group_readable_file),
	    cmocka_unit_test(tsig_key_load_names_file_and_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
