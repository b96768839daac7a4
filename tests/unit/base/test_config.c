/* The configuration file: defaults, every key, repeatable keys, and the exact
 * error messages a user sees. */
#include "base/config.h"
#include "base/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
	char path[64];
	struct config c;
	struct acmera_errmsg e;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->path[0] = '\0';
	if (config_init(&f->c) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	if (f->path[0])
		unlink(f->path);
	config_free(&f->c);
	free(f);
	return 0;
}

/* Creates a fresh temporary file (removing the previous one); returns its fd. */
static int make_temp(struct fixture *f)
{
	static const char tmpl[] = "/tmp/acmera-test-config-XXXXXX";
	if (f->path[0])
		unlink(f->path);
	memcpy(f->path, tmpl, sizeof(tmpl));
	int fd = mkstemp(f->path);
	assert_true(fd >= 0);
	return fd;
}

/* Writes text to a fresh temporary file and loads it; returns config_load's rc. */
static int load_text(struct fixture *f, const char *text)
{
	int fd = make_temp(f);
	size_t n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	memset(f->e.text, 0, sizeof(f->e.text));
	return config_load(&f->c, f->path, &f->e);
}

/* Loads text, expects ACMERA_ERR_CONFIG and the message "PATH:<line>: <rest>". */
static void expect_error(struct fixture *f, const char *text, int line, const char *rest)
{
	assert_int_equal(load_text(f, text), ACMERA_ERR_CONFIG);
	char want[ACMERA_ERRMSG_LEN];
	snprintf(want, sizeof(want), "%s:%d: %s", f->path, line, rest);
	assert_string_equal(f->e.text, want);
}

static void init_fills_documented_defaults(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	assert_null(c->acme.directory);
	assert_null(c->acme.ca_bundle);
	assert_string_equal(c->acme.account_key_type, "p256");
	assert_null(c->acme.contact);
	assert_int_equal(c->acme.n_preauthorize, 0);
	assert_int_equal(c->acme.timeout, 30);
	assert_int_equal(c->acme.poll_max, 30);
	assert_null(c->dns.server);
	assert_int_equal(c->dns.n_zones, 0);
	assert_int_equal(c->dns.ttl, 60);
	assert_int_equal(c->dns.timeout, 3000);
	assert_int_equal(c->dns.propagation_check, 0);
	assert_int_equal(c->dns.propagation_timeout, 60);
	assert_int_equal(c->issuer.parallel, 256);
	assert_int_equal(c->issuer.lease, 60);
	assert_int_equal(c->issuer.batch_wait, 200);
	assert_int_equal(c->issuer.max_attempts, 10);
	assert_string_equal(c->store.path, "acmera.db");
	assert_string_equal(c->log.level, "info");
	assert_string_equal(c->log.destination, "stderr");
}

static void load_sets_every_key(void **state)
{
	struct fixture *f = *state;
	struct config *c = &f->c;
	assert_int_equal(load_text(f, "; acmera test\n"
	                              "[acme]\n"
	                              "directory = https://127.0.0.1:14000/dir\n"
	                              "ca_bundle = /etc/acmera/pebble.pem\n"
	                              "account_key_type = rsa3072\n"
	                              "contact = mailto:ops@example.com\n"
	                              "eab_kid = kid-1\n"
	                              "eab_hmac_key_file = /etc/acmera/eab.key\n"
	                              "preauthorize = iot.example.com\n"
	                              "alternate_chain = Pebble Root\n"
	                              "timeout = 10\n"
	                              "poll_max = 5\n"
	                              "[dns]\n"
	                              "server = 127.0.0.1:53\n"
	                              "tsig_keyfile = /etc/acmera/tsig.key\n"
	                              "zone = example.com\n"
	                              "hook = /usr/local/bin/dns-hook\n"
	                              "ttl = 0\n"
	                              "timeout = 500\n"
	                              "propagation_check = yes\n"
	                              "propagation_timeout = 90\n"
	                              "[issuer]\n"
	                              "parallel = 8\n"
	                              "lease = 60\n"
	                              "batch_wait = 0\n"
	                              "max_attempts = 3\n"
	                              "[store]\n"
	                              "path = /var/lib/acmera/acmera.db\n"
	                              "[log]\n"
	                              "level = debug\n"
	                              "destination = syslog\n"),
	                 0);
	assert_string_equal(c->acme.directory, "https://127.0.0.1:14000/dir");
	assert_string_equal(c->acme.ca_bundle, "/etc/acmera/pebble.pem");
	assert_string_equal(c->acme.account_key_type, "rsa3072");
	assert_string_equal(c->acme.contact, "mailto:ops@example.com");
	assert_string_equal(c->acme.eab_kid, "kid-1");
	assert_string_equal(c->acme.eab_hmac_key_file, "/etc/acmera/eab.key");
	assert_int_equal(c->acme.n_preauthorize, 1);
	assert_string_equal(c->acme.preauthorize[0], "iot.example.com");
	assert_string_equal(c->acme.alternate_chain, "Pebble Root");
	assert_int_equal(c->acme.timeout, 10);
	assert_int_equal(c->acme.poll_max, 5);
	assert_string_equal(c->dns.server, "127.0.0.1:53");
	assert_string_equal(c->dns.tsig_keyfile, "/etc/acmera/tsig.key");
	assert_int_equal(c->dns.n_zones, 1);
	assert_string_equal(c->dns.zones[0], "example.com");
	assert_string_equal(c->dns.hook, "/usr/local/bin/dns-hook");
	assert_int_equal(c->dns.ttl, 0);
	assert_int_equal(c->dns.timeout, 500);
	assert_int_equal(c->dns.propagation_check, 1);
	assert_int_equal(c->dns.propagation_timeout, 90);
	assert_int_equal(c->issuer.parallel, 8);
	assert_int_equal(c->issuer.lease, 60);
	assert_int_equal(c->issuer.batch_wait, 0);
	assert_int_equal(c->issuer.max_attempts, 3);
	assert_string_equal(c->store.path, "/var/lib/acmera/acmera.db");
	assert_string_equal(c->log.level, "debug");
	assert_string_equal(c->log.destination, "syslog");
}

static void keys_not_in_file_keep_defaults(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, "[dns]\nttl = 120\n"), 0);
	assert_int_equal(f->c.dns.ttl, 120);
	assert_int_equal(f->c.dns.timeout, 3000);
	assert_string_equal(f->c.store.path, "acmera.db");
	assert_string_equal(f->c.log.level, "info");
}

static void repeatable_keys_collect_every_value(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, "[dns]\nzone = example.com\nzone = example.net.\n"
	                              "[acme]\npreauthorize = a.example.com\n"
	                              "[dns]\nzone = _sub.example.org\n"
	                              "[acme]\npreauthorize = b.example.com\n"),
	                 0);
	assert_int_equal(f->c.dns.n_zones, 3);
	assert_string_equal(f->c.dns.zones[0], "example.com");
	assert_string_equal(f->c.dns.zones[1], "example.net.");
	assert_string_equal(f->c.dns.zones[2], "_sub.example.org");
	assert_int_equal(f->c.acme.n_preauthorize, 2);
	assert_string_equal(f->c.acme.preauthorize[0], "a.example.com");
	assert_string_equal(f->c.acme.preauthorize[1], "b.example.com");
}

static void repeatable_key_refuses_a_65th_value(void **state)
{
	struct fixture *f = *state;
	char text[4096] = "[dns]\n";
	for (int i = 0; i <= CONFIG_MAX_LIST; i++) {
		char line[64];
		snprintf(line, sizeof(line), "zone = z%d.example\n", i);
		strcat(text, line);
	}
	expect_error(f, text, CONFIG_MAX_LIST + 2, "[dns] zone: more than 64 values");
}

static void syntax_accepts_comments_indent_crlf_bom_and_inline_comments(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, "\xef\xbb\xbf[dns] ; the DNS side\r\n"
	                              "# a comment\r\n"
	                              "; another\r\n"
	                              "\r\n"
	                              "    ttl = 61 ; inline comment\r\n"
	                              "\tzone=example.com\r\n"
	                              "  [ log ]\r\n"),
	                 ACMERA_ERR_CONFIG);
	/* "[ log ]" is not a header we accept: spaces inside the brackets. */
	char want[ACMERA_ERRMSG_LEN];
	snprintf(want, sizeof(want), "%s:7: malformed section header [ log ]", f->path);
	assert_string_equal(f->e.text, want);
	assert_int_equal(f->c.dns.ttl, 61);
	assert_string_equal(f->c.dns.zones[0], "example.com");

	assert_int_equal(load_text(f, "\xef\xbb\xbf[log]\r\n  level = warn\r\n"
	                              "\tdestination = stderr"),
	                 0);
	assert_string_equal(f->c.log.level, "warn");
}

static void booleans_accept_true_false_yes_no_1_0(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *text;
		int want;
	} cases[] = {{"true", 1}, {"false", 0}, {"yes", 1},  {"no", 0},
	             {"1", 1},    {"0", 0},     {"TRUE", 1}, {"No", 0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[128];
		snprintf(text, sizeof(text), "[dns]\npropagation_check = %s\n", cases[i].text);
		f->c.dns.propagation_check = -1;
		assert_int_equal(load_text(f, text), 0);
		assert_int_equal(f->c.dns.propagation_check, cases[i].want);
	}
}

static void unknown_key_names_file_line_key_and_section(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\nttl = 5\nbogus = 1\n", 3, "unknown key 'bogus' in section [dns]");
	/* a key valid in another section is still unknown here */
	expect_error(f, "[store]\n\nlevel = debug\n", 3, "unknown key 'level' in section [store]");
}

static void bad_number_names_key_and_range(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\nttl = abc\n", 2,
	             "[dns] ttl: 'abc' is not a number from 0 to 86400");
	expect_error(f, "[dns]\nttl = -1\n", 2, "[dns] ttl: '-1' is not a number from 0 to 86400");
	expect_error(f, "[dns]\nttl = 86401\n", 2,
	             "[dns] ttl: '86401' is not a number from 0 to 86400");
	expect_error(f, "[dns]\nttl = 12x\n", 2,
	             "[dns] ttl: '12x' is not a number from 0 to 86400");
	expect_error(f, "[dns]\nttl = +5\n", 2, "[dns] ttl: '+5' is not a number from 0 to 86400");
	expect_error(f, "[issuer]\nparallel = 99999999999999999999\n", 2,
	             "[issuer] parallel: '99999999999999999999' is not a number from 1 to 10000");
	expect_error(f, "[issuer]\nparallel = 0\n", 2,
	             "[issuer] parallel: '0' is not a number from 1 to 10000");
	expect_error(f, "[acme]\ntimeout = 3601\n", 2,
	             "[acme] timeout: '3601' is not a number from 1 to 3600");
}

static void bad_boolean_is_refused(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\npropagation_check = maybe\n", 2,
	             "[dns] propagation_check: 'maybe' is not a boolean (true/false, yes/no, 1/0)");
	expect_error(f, "[dns]\npropagation_check = 2\n", 2,
	             "[dns] propagation_check: '2' is not a boolean (true/false, yes/no, 1/0)");
}

static void bad_choice_url_and_domain_are_refused(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[log]\nlevel = loud\n", 2,
	             "[log] level: 'loud' is not one of debug, info, warn, error");
	expect_error(f, "[log]\ndestination = file\n", 2,
	             "[log] destination: 'file' is not one of stderr, syslog");
	expect_error(f, "[acme]\naccount_key_type = dsa\n", 2,
	             "[acme] account_key_type: 'dsa' is not one of p256, ec256, p384, ec384, "
	             "rsa2048, rsa3072, rsa4096");
	expect_error(f, "[acme]\ndirectory = http://127.0.0.1:14000/dir\n", 2,
	             "[acme] directory: 'http://127.0.0.1:14000/dir' is not an https:// URL");
	expect_error(f, "[dns]\nzone = exa mple.com\n", 2,
	             "[dns] zone: 'exa mple.com' is not a domain name");
	expect_error(f, "[dns]\nzone = a..b\n", 2, "[dns] zone: 'a..b' is not a domain name");
	expect_error(f, "[acme]\npreauthorize = *.example.com\n", 2,
	             "[acme] preauthorize: '*.example.com' is not a domain name");
}

static void unknown_section_is_named_even_without_keys(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\nttl = 5\n[foo]\nbar = 1\n", 3, "unknown section [foo]");
	expect_error(f, "[dns]\n[profile]\n", 2, "unknown section [profile]");
	expect_error(f, "[DNS]\n", 1, "unknown section [DNS]");
}

static void subsection_only_for_profiles(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[acme]\n[acme \"staging\"]\ntimeout = 5\n", 2,
	             "unknown section [acme \"staging\"]");
	expect_error(f, "[profile]\nauth = cert\n", 1, "unknown section [profile]");
	expect_error(f, "[profile \"iot \\\"x\\\"\"]\n", 1,
	             "[profile \"iot \\\"x\\\"\"]: a label is 1 to 63 letters, digits, '-' or '_'");
	expect_error(f, "[profile \"iot\"]\ncolour = red\n", 2,
	             "unknown key 'colour' in section [profile \"iot\"]");
	expect_error(f, "[profile \"iot\"]\nkey_types = p256,dsa\n", 2,
	             "[profile \"iot\"] key_types: 'p256,dsa' is not a comma list of p256, p384, "
	             "ed25519, rsa");
	expect_error(f, "[profile \"iot\"]\nauth = cert\n[profile \"iot\"]\nauth = basic\n", 4,
	             "[profile \"iot\"] auth: given twice (first on line 2)");
	expect_error(f, "[acme \"x]\n", 1, "malformed section header [acme \"x]");
	expect_error(f, "[acme x]\n", 1, "malformed section header [acme x]");
	expect_error(f, "[acme \"x\" y]\n", 1, "malformed section header [acme \"x\" y]");
	expect_error(f, "[]\n", 1, "malformed section header []");
	expect_error(f, "[acme\n", 1, "malformed section header: no ']'");
	expect_error(f, "[acme] x\n", 1, "text after section header [acme]");
}

static void profiles_and_est_are_read(void **state)
{
	struct fixture *f = *state;
	int rc = load_text(f, "[est]\nlisten = 127.0.0.1:9443\nwait = 500\n"
	                      "[profile \"default\"]\nname_template = {user}.dev.example.test\n"
	                      "[profile \"iot\"]\nname_template = {serialNumber}.iot.example.test\n"
	                      "auth = cert\nkey_types = p256, ed25519\nchannel_binding = yes\n");
	assert_int_equal(rc, 0);
	assert_string_equal(f->c.est.listen, "127.0.0.1:9443");
	assert_int_equal(f->c.est.wait, 500);
	assert_int_equal(f->c.est.retry_after, 5);
	assert_int_equal(f->c.n_profiles, 2);
	const struct config_profile *p = config_profile_find(&f->c, "iot");
	assert_non_null(p);
	assert_string_equal(p->name_template, "{serialNumber}.iot.example.test");
	assert_string_equal(p->auth, "cert");
	assert_string_equal(p->key_types, "p256, ed25519");
	assert_int_equal(p->channel_binding, 1);
	assert_int_equal(p->rsa_min_bits, 2048);
	p = config_profile_find(&f->c, "default");
	assert_non_null(p);
	assert_string_equal(p->auth, "cert,basic");
	assert_null(config_profile_find(&f->c, "other"));
}

static void key_outside_section_is_refused(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "; top\nttl = 5\n[dns]\n", 2, "key 'ttl' outside any section");
}

static void repeated_single_key_is_refused(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\nttl = 5\n\nttl = 6\n", 4,
	             "[dns] ttl: given twice (first on line 2)");
}

static void empty_value_is_refused(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[acme]\ncontact =\n", 2, "[acme] contact: empty value");
	expect_error(f, "[acme]\ncontact = ; nothing\n", 2, "[acme] contact: empty value");
}

static void line_without_equals_is_a_syntax_error(void **state)
{
	struct fixture *f = *state;
	expect_error(f, "[dns]\nttl = 5\nzone example.com\n", 3,
	             "expected 'key = value', '[section]' or a comment");
	/* the first error wins, even when a later line is also wrong */
	expect_error(f, "[dns]\njunk\nbogus = 1\n", 2,
	             "expected 'key = value', '[section]' or a comment");
	/* an indented line is a key of its own, never a continuation */
	expect_error(f, "[dns]\nhook = /bin/true\n   more words\n", 3,
	             "expected 'key = value', '[section]' or a comment");
}

static void overlong_line_and_nul_byte_are_refused(void **state)
{
	struct fixture *f = *state;
	char text[512] = "[acme]\ncontact = mailto:";
	size_t n = strlen(text);
	memset(text + n, 'a', 300);
	strcpy(text + n + 300, "@example.com\n");
	expect_error(f, text, 2, "line longer than 199 characters");

	/* a NUL byte cannot be written through load_text's strlen: write it by hand */
	int fd = make_temp(f);
	static const char nul[] = "[dns]\nserver = 127.0.0.1\0:53\n";
	assert_int_equal(write(fd, nul, sizeof(nul) - 1), (ssize_t)sizeof(nul) - 1);
	close(fd);
	assert_int_equal(config_load(&f->c, f->path, &f->e), ACMERA_ERR_CONFIG);
	char want[ACMERA_ERRMSG_LEN];
	snprintf(want, sizeof(want), "%s:2: NUL byte in line", f->path);
	assert_string_equal(f->e.text, want);
}

static void missing_file_names_file_and_reason(void **state)
{
	struct fixture *f = *state;
	const char *path = "/tmp/acmera-test-config-does-not-exist";
	unlink(path);
	assert_int_equal(config_load(&f->c, path, &f->e), ACMERA_ERR_IO);
	assert_string_equal(f->e.text, "/tmp/acmera-test-config-does-not-exist: cannot open: "
	                               "No such file or directory");
	/* the defaults are untouched */
	assert_string_equal(f->c.store.path, "acmera.db");
}

static void empty_file_is_fine(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, ""), 0);
	assert_int_equal(f->c.dns.ttl, 60);
}

static void set_str_replaces_and_clears(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, "[store]\npath = /a.db\n"), 0);
	assert_int_equal(config_set_str(&f->c.store.path, "/b.db"), 0);
	assert_string_equal(f->c.store.path, "/b.db");
	assert_int_equal(config_set_str(&f->c.acme.directory, "https://127.0.0.1:14000/dir"), 0);
	assert_string_equal(f->c.acme.directory, "https://127.0.0.1:14000/dir");
	assert_int_equal(config_set_str(&f->c.acme.directory, NULL), 0);
	assert_null(f->c.acme.directory);
}

static void list_add_appends_and_stops_at_the_limit(void **state)
{
	struct fixture *f = *state;
	struct acmera_errmsg e = {""};
	for (size_t i = 0; i < CONFIG_MAX_LIST; i++)
		assert_int_equal(
		    config_list_add(f->c.dns.zones, &f->c.dns.n_zones, "example.com", &e), 0);
	assert_int_equal(f->c.dns.n_zones, CONFIG_MAX_LIST);
	assert_int_equal(config_list_add(f->c.dns.zones, &f->c.dns.n_zones, "x.example", &e),
	                 ACMERA_ERR_CONFIG);
	assert_string_equal(e.text, "more than 64 values");
	assert_int_equal(f->c.dns.n_zones, CONFIG_MAX_LIST);
	assert_int_equal(config_list_add(f->c.dns.zones, &f->c.dns.n_zones, "x", NULL),
	                 ACMERA_ERR_CONFIG);
}

static void free_is_safe_twice(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load_text(f, "[dns]\nzone = example.com\n"), 0);
	config_free(&f->c);
	assert_null(f->c.store.path);
	assert_int_equal(f->c.dns.n_zones, 0);
	config_free(&f->c); /* teardown frees again */
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(init_fills_documented_defaults),
	    T(load_sets_every_key),
	    T(keys_not_in_file_keep_defaults),
	    T(repeatable_keys_collect_every_value),
	    T(repeatable_key_refuses_a_65th_value),
	    T(syntax_accepts_comments_indent_crlf_bom_and_inline_comments),
	    T(booleans_accept_true_false_yes_no_1_0),
	    T(unknown_key_names_file_line_key_and_section),
	    T(bad_number_names_key_and_range),
	    T(bad_boolean_is_refused),
	    T(bad_choice_url_and_domain_are_refused),
	    T(unknown_section_is_named_even_without_keys),
	    T(subsection_only_for_profiles),
	    T(profiles_and_est_are_read),
	    T(key_outside_section_is_refused),
	    T(repeated_single_key_is_refused),
	    T(empty_value_is_refused),
	    T(line_without_equals_is_a_syntax_error),
	    T(overlong_line_and_nul_byte_are_refused),
	    T(missing_file_names_file_and_reason),
	    T(empty_file_is_fine),
	    T(set_str_replaces_and_clears),
	    T(list_add_appends_and_stops_at_the_limit),
	    T(free_is_safe_twice),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
