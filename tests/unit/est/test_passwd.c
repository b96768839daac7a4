/* HTTP Basic against the yescrypt password file: parsing of the header, the
 * file's rules, reloading, and `acmera passwd`'s writer est_passwd_set. */
#include "est/auth.h"
#include "base/b64.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* crypt("dummy") at yescrypt's lowest cost, so tests stay quick. */
#define CHEAP_HASH "$y$j75$rpMS.6wzlsCfGgkcj.4Yo.$nA/aliH2.v/KT8L.G/ZbgmuoLoEodnSa7aAM9DBHq04"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/acmera-est-passwd-XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	struct dirent *de;
	char p[512];
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(d);
	rmdir(dir);
	return 0;
}

static char *path_of(const char *name)
{
	static char p[256];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return p;
}

static const char *write_file(const char *name, const char *text, mode_t mode)
{
	const char *p = path_of(name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	assert_int_equal(close(fd), 0);
	return p;
}

static char *read_text(const char *p)
{
	static char buf[8192];
	FILE *f = fopen(p, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* "Basic " + base64(cred) for cred of n bytes. */
static char *basic_n(const char *cred, size_t n)
{
	static char h[4096];
	char *b = b64_encode((const uint8_t *)cred, n, 0);
	assert_non_null(b);
	snprintf(h, sizeof(h), "Basic %s", b);
	free(b);
	return h;
}

static char *basic(const char *cred)
{
	return basic_n(cred, strlen(cred));
}

static struct est_passwd *load_ok(const char *p)
{
	struct est_passwd *pw = NULL;
	struct acmera_errmsg e = {""};
	int rc = est_passwd_load(p, &pw, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
	return pw;
}

static void load_fails(const char *p, int code, const char *want)
{
	struct est_passwd *pw = NULL;
	struct acmera_errmsg e = {""};
	assert_int_equal(est_passwd_load(p, &pw, &e), code);
	assert_null(pw);
	if (!strstr(e.text, want))
		print_error("message: %s\n", e.text);
	assert_non_null(strstr(e.text, want));
}

static void set_ok(const char *p, const char *user, const char *pass)
{
	struct acmera_errmsg e = {""};
	int rc = est_passwd_set(p, user, pass, &e);
	if (rc)
		print_error("%s\n", e.text);
	assert_int_equal(rc, 0);
}

static int check(struct est_passwd *pw, const char *hdr, char *user, struct acmera_errmsg *e)
{
	return est_passwd_check(pw, hdr, user, 128, e);
}

static void basic_with_right_password_names_the_user(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	set_ok(p, "alice", "s3cret pass");
	set_ok(p, "bob", "other");
	struct est_passwd *pw = load_ok(p);
	char user[128] = "";
	struct acmera_errmsg e = {""};
	assert_int_equal(check(pw, basic("alice:s3cret pass"), user, &e), 0);
	assert_string_equal(user, "alice");
	assert_int_equal(check(pw, basic("bob:other"), user, &e), 0);
	assert_string_equal(user, "bob");
	est_passwd_free(pw);
}

static void basic_scheme_is_case_insensitive_and_padding_optional(void **state)
{
	(void)state;
	const char *p = write_file("pw", "dev:" CHEAP_HASH "\n", 0600);
	struct est_passwd *pw = load_ok(p);
	char user[128] = "";
	struct acmera_errmsg e = {""};
	/* base64("dev:dummy") = "ZGV2OmR1bW15" needs no padding; "dev1:dummy" would. */
	assert_int_equal(check(pw, "bAsIc   ZGV2OmR1bW15  ", user, &e), 0);
	assert_string_equal(user, "dev");
	est_passwd_free(pw);
	p = write_file("pw", "dev1:" CHEAP_HASH "\n", 0600);
	pw = load_ok(p);
	assert_int_equal(check(pw, "Basic ZGV2MTpkdW1teQ==", user, &e), 0);
	assert_int_equal(check(pw, "Basic ZGV2MTpkdW1teQ", user, &e), 0);
	assert_string_equal(user, "dev1");
	est_passwd_free(pw);
}

static void password_splits_at_the_first_colon(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	set_ok(p, "carol", "a:b:c");
	struct est_passwd *pw = load_ok(p);
	char user[128] = "";
	struct acmera_errmsg e = {""};
	assert_int_equal(check(pw, basic("carol:a:b:c"), user, &e), 0);
	assert_string_equal(user, "carol");
	assert_int_equal(check(pw, basic("carol:a"), user, &e), ACMERA_ERR_REFUSED);
	est_passwd_free(pw);
}

static void wrong_password_and_unknown_user_get_the_same_refusal(void **state)
{
	(void)state;
	const char *p = write_file("pw", "dev:" CHEAP_HASH "\n", 0600);
	struct est_passwd *pw = load_ok(p);
	char user[128] = "untouched";
	struct acmera_errmsg e1 = {""}, e2 = {""};
	assert_int_equal(check(pw, basic("dev:dummY"), user, &e1), ACMERA_ERR_REFUSED);
	/* An unknown user with the password of a known one is still refused. */
	assert_int_equal(check(pw, basic("nobody:dummy"), user, &e2), ACMERA_ERR_REFUSED);
	assert_string_equal(e1.text, "wrong user name or password");
	assert_string_equal(e1.text, e2.text);
	assert_string_equal(user, "untouched");
	/* Case matters in user names. */
	assert_int_equal(check(pw, basic("DEV:dummy"), user, &e1), ACMERA_ERR_REFUSED);
	est_passwd_free(pw);
}

static double seconds_of(struct est_passwd *pw, const char *hdr)
{
	char user[128];
	struct timespec a, b;
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(check(pw, hdr, user, NULL), ACMERA_ERR_REFUSED);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
		if (s < best)
			best = s;
	}
	return best;
}

static void unknown_user_costs_a_yescrypt_run_like_a_known_one(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	set_ok(p, "alice", "right"); /* default cost: tens of milliseconds */
	struct est_passwd *pw = load_ok(p);
	double known = seconds_of(pw, basic("alice:wrong"));
	double unknown = seconds_of(pw, basic("mallory:wrong"));
	/* Without the dummy run a miss would take microseconds. */
	if (unknown < known / 3)
		print_error("known %.6f s, unknown %.6f s\n", known, unknown);
	assert_true(unknown >= known / 3);
	est_passwd_free(pw);

	/* An empty file still costs one run at the default cost. */
	p = write_file("empty", "# nobody yet\n", 0600);
	pw = load_ok(p);
	unknown = seconds_of(pw, basic("mallory:wrong"));
	assert_true(unknown >= known / 3);
	est_passwd_free(pw);
}

static void malformed(struct est_passwd *pw, const char *hdr, const char *want)
{
	char user[128] = "";
	struct acmera_errmsg e = {""};
	assert_int_equal(check(pw, hdr, user, &e), ACMERA_ERR_INVAL);
	if (!strstr(e.text, want))
		print_error("header \"%s\": %s\n", hdr ? hdr : "(null)", e.text);
	assert_non_null(strstr(e.text, want));
}

static void malformed_authorization_is_invalid_not_refused(void **state)
{
	(void)state;
	const char *p = write_file("pw", "dev:" CHEAP_HASH "\n", 0600);
	struct est_passwd *pw = load_ok(p);
	char big[2000];
	malformed(pw, NULL, "no Authorization header");
	malformed(pw, "Bearer ZGV2OmR1bW15", "not Basic");
	malformed(pw, "BasicZGV2OmR1bW15", "not Basic");
	malformed(pw, "Basic", "not Basic");
	malformed(pw, "Basic   ", "empty or too long");
	malformed(pw, "Basic ZGV2Om*1bW15", "not base64");
	malformed(pw, "Basic ZGV2 OmR1bW15", "not base64");
	malformed(pw, "Basic ZGV2MTpkdW1teQ=", "not base64");
	malformed(pw, "Basic ZGV2MTpkdW1te===", "not base64");
	malformed(pw, "Basic =ZGV2MTpkdW1teQ", "not base64");
	malformed(pw, "Basic ZGV2OmR1bW15A", "not base64");
	malformed(pw, basic("devdummy"), "no ':'");
	malformed(pw, basic(":dummy"), "user name is empty");
	malformed(pw, basic("de\tv:dummy"), "control characters");
	malformed(pw, basic("de\x7fv:dummy"), "control characters");
	malformed(pw, basic_n("dev:dum\0my", 10), "NUL");
	memset(big, 'u', 128);
	strcpy(big + 128, ":x");
	malformed(pw, basic(big), "longer than 127");
	memset(big, 'A', 1600);
	big[1600] = '\0';
	char hdr[1700];
	snprintf(hdr, sizeof(hdr), "Basic %s", big);
	malformed(pw, hdr, "too long");
	est_passwd_free(pw);
}

static void password_length_bound_is_511_bytes(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	char pass[1026], cred[1100];
	memset(pass, 'p', 511);
	pass[511] = '\0';
	set_ok(p, "u", pass);
	struct est_passwd *pw = load_ok(p);
	char user[128] = "";
	struct acmera_errmsg e = {""};
	snprintf(cred, sizeof(cred), "u:%s", pass);
	assert_int_equal(check(pw, basic(cred), user, &e), 0);
	strcat(cred, "p");
	malformed(pw, basic(cred), "password longer than 511");
	strcat(pass, "p");
	assert_int_equal(est_passwd_set(p, "u", pass, &e), ACMERA_ERR_INVAL);
	assert_string_equal(e.text, "password must be 1 to 511 bytes");
	assert_int_equal(est_passwd_set(p, "u", "", &e), ACMERA_ERR_INVAL);
	est_passwd_free(pw);
}

static void small_user_buffer_is_an_error(void **state)
{
	(void)state;
	const char *p = write_file("pw", "dev:" CHEAP_HASH "\n", 0600);
	struct est_passwd *pw = load_ok(p);
	char user[4] = "";
	struct acmera_errmsg e = {""};
	assert_int_equal(est_passwd_check(pw, basic("dev:dummy"), user, 3, &e), ACMERA_ERR_INVAL);
	assert_string_equal(e.text, "user name buffer too small");
	assert_int_equal(est_passwd_check(pw, basic("dev:dummy"), user, sizeof(user), &e), 0);
	assert_string_equal(user, "dev");
	est_passwd_free(pw);
}

static void file_with_comments_blanks_and_crlf_loads(void **state)
{
	(void)state;
	const char *p = write_file("pw",
	                           "# devices of site A\n"
	                           "\n"
	                           "   \t\n"
	                           "  # indented comment\r\n"
	                           "dev one:" CHEAP_HASH "\r\n"
	                           "d\xc3\xa9v:" CHEAP_HASH "   \n"
	                           "last:" CHEAP_HASH,
	                           0600);
	struct est_passwd *pw = load_ok(p);
	char user[128] = "";
	struct acmera_errmsg e = {""};
	assert_int_equal(check(pw, basic("dev one:dummy"), user, &e), 0);
	assert_string_equal(user, "dev one");
	assert_int_equal(check(pw, basic("d\xc3\xa9v:dummy"), user, &e), 0);
	assert_int_equal(check(pw, basic("last:dummy"), user, &e), 0);
	est_passwd_free(pw);
}

static void file_open_to_group_or_others_is_refused(void **state)
{
	(void)state;
	load_fails(write_file("pw", "dev:" CHEAP_HASH "\n", 0640), ACMERA_ERR_CONFIG,
	           "group or others have access (mode 640); chmod 600 it");
	load_fails(write_file("pw", "dev:" CHEAP_HASH "\n", 0604), ACMERA_ERR_CONFIG, "(mode 604)");
	load_fails(write_file("pw", "dev:" CHEAP_HASH "\n", 0620), ACMERA_ERR_CONFIG, "(mode 620)");
	struct est_passwd *pw = load_ok(write_file("pw", "dev:" CHEAP_HASH "\n", 0400));
	est_passwd_free(pw);
}

static void file_errors_name_file_and_line(void **state)
{
	(void)state;
	char want[300];
	const char *p = write_file("pw",
	                           "# ok\n"
	                           "dev:" CHEAP_HASH "\n"
	                           "old:$6$saltsalt$Vh4GS0ZdZLmqwvAkR1wJmH2tzSpL2ibVYdwv4kiHCt7\n",
	                           0600);
	snprintf(want, sizeof(want),
	         "%s:3: user \"old\" has scheme $6$; only yescrypt ($y$) is accepted", p);
	load_fails(p, ACMERA_ERR_CONFIG, want);

	p = write_file("pw", "bc:$2b$12$abcdefghijklmnopqrstuv\n", 0600);
	snprintf(want, sizeof(want), "%s:1: user \"bc\" has scheme $2b$", p);
	load_fails(p, ACMERA_ERR_CONFIG, want);

	p = write_file("pw", "des:abJnggxhB/yWI\n", 0600);
	load_fails(p, ACMERA_ERR_CONFIG, "has an unknown or DES scheme");

	p = write_file("pw", "\n\nbad:$y$j9T$salt\n", 0600);
	snprintf(want, sizeof(want), "%s:3: user \"bad\" has a malformed yescrypt hash", p);
	load_fails(p, ACMERA_ERR_CONFIG, want);

	p = write_file("pw", "bad:$y$j9T$salt$h$\n", 0600);
	load_fails(p, ACMERA_ERR_CONFIG, "malformed yescrypt hash");

	p = write_file("pw", "bad:$y$j9T$sa lt$hash\n", 0600);
	load_fails(p, ACMERA_ERR_CONFIG, "malformed yescrypt hash");

	p = write_file("pw", "# ok\nno colon here\n", 0600);
	snprintf(want, sizeof(want), "%s:2: not \"user:hash\"", p);
	load_fails(p, ACMERA_ERR_CONFIG, want);

	p = write_file("pw", ":" CHEAP_HASH "\n", 0600);
	load_fails(p, ACMERA_ERR_CONFIG, ":1: user name is empty");

	p = write_file("pw",
	               "a\x01"
	               "b:" CHEAP_HASH "\n",
	               0600);
	load_fails(p, ACMERA_ERR_CONFIG, ":1: user name is empty, longer than 127 bytes or has");

	p = write_file("pw", "dup:" CHEAP_HASH "\nother:" CHEAP_HASH "\ndup:" CHEAP_HASH "\n",
	               0600);
	snprintf(want, sizeof(want), "%s: user \"dup\" appears twice (lines 1 and 3)", p);
	load_fails(p, ACMERA_ERR_CONFIG, want);

	char line[1200];
	memset(line, '#', 1100);
	strcpy(line + 1100, "\n");
	load_fails(write_file("pw", line, 0600), ACMERA_ERR_CONFIG, ":1: longer than 1024 bytes");

	load_fails(path_of("missing"), ACMERA_ERR_NOTFOUND, "No such file");
	load_fails(dir, ACMERA_ERR_CONFIG, "not a regular file");
}

static void file_with_nul_byte_is_refused(void **state)
{
	(void)state;
	const char *p = path_of("nul");
	static const char text[] = "a:" CHEAP_HASH "\n\0b:" CHEAP_HASH "\n";
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	load_fails(p, ACMERA_ERR_CONFIG, "holds a NUL byte");
}

static void changed_file_is_reloaded_and_a_broken_one_ignored(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	char user[128] = "";
	struct acmera_errmsg e = {""};
	set_ok(p, "alice", "one");
	struct est_passwd *pw = load_ok(p);
	assert_int_equal(check(pw, basic("bob:two"), user, &e), ACMERA_ERR_REFUSED);
	set_ok(p, "bob", "two");
	assert_int_equal(check(pw, basic("bob:two"), user, &e), 0);
	assert_string_equal(user, "bob");
	set_ok(p, "alice", "three");
	assert_int_equal(check(pw, basic("alice:one"), user, &e), ACMERA_ERR_REFUSED);
	assert_int_equal(check(pw, basic("alice:three"), user, &e), 0);

	/* A bad edit keeps what was loaded, rather than locking everyone out. */
	write_file("pw", "alice:$6$x$y\n", 0600);
	assert_int_equal(check(pw, basic("alice:three"), user, &e), 0);
	write_file("pw", "carol:" CHEAP_HASH "\n", 0644);
	assert_int_equal(check(pw, basic("carol:dummy"), user, &e), ACMERA_ERR_REFUSED);
	assert_int_equal(check(pw, basic("bob:two"), user, &e), 0);
	/* Fixed again: taken. */
	assert_int_equal(chmod(p, 0600), 0);
	struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	assert_int_equal(check(pw, basic("carol:dummy"), user, &e), 0);
	assert_int_equal(check(pw, basic("bob:two"), user, &e), ACMERA_ERR_REFUSED);
	est_passwd_free(pw);
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cache_skips_the_hash_but_never_a_change(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	char user[128] = "";
	struct acmera_errmsg e = {""};
	set_ok(p, "alice", "one");
	set_ok(p, "bob", "two");
	struct est_passwd *pw = load_ok(p);
	assert_int_equal(est_passwd_cache(pw, 300, &e), 0);
	double t0 = cpu_seconds();
	assert_int_equal(check(pw, basic("alice:one"), user, &e), 0);
	double miss = cpu_seconds() - t0;
	t0 = cpu_seconds();
	for (int i = 0; i < 50; i++) {
		user[0] = '\0';
		assert_int_equal(check(pw, basic("alice:one"), user, &e), 0);
		assert_string_equal(user, "alice");
	}
	double hits = cpu_seconds() - t0;
	/* yescrypt costs milliseconds; 50 hits cost microseconds. */
	assert_true(hits < miss);
	/* Another password for a cached user is still checked, and refused. */
	assert_int_equal(check(pw, basic("alice:One"), user, &e), ACMERA_ERR_REFUSED);
	assert_int_equal(check(pw, basic("bob:one"), user, &e), ACMERA_ERR_REFUSED);
	/* A changed password: the remembered one no longer works. */
	set_ok(p, "alice", "three");
	assert_int_equal(check(pw, basic("alice:one"), user, &e), ACMERA_ERR_REFUSED);
	assert_int_equal(check(pw, basic("alice:three"), user, &e), 0);
	/* A removed user: refused at once. */
	write_file("pw", read_text(p), 0600); /* same content, new mtime: reloaded */
	assert_int_equal(check(pw, basic("alice:three"), user, &e), 0);
	char *text = read_text(p);
	/* The file holds alice's line and bob's, in either order: keep bob's alone. */
	char keep[8192];
	const char *bob = strstr(text, "bob:");
	assert_non_null(bob);
	size_t n = strcspn(bob, "\n");
	assert_true(n + 2 < sizeof(keep));
	memcpy(keep, bob, n);
	keep[n] = '\n';
	keep[n + 1] = '\0';
	write_file("pw", keep, 0600);
	assert_int_equal(check(pw, basic("alice:three"), user, &e), ACMERA_ERR_REFUSED);
	assert_int_equal(check(pw, basic("bob:two"), user, &e), 0);
	est_passwd_free(pw);
}

static void cache_entries_expire(void **state)
{
	(void)state;
	const char *p = path_of("pw");
	char user[128] = "";
	struct acmera_errmsg e = {""};
	set_ok(p, "alice", "one");
	struct est_passwd *pw = load_ok(p);
	assert_int_equal(est_passwd_cache(pw, 1, &e), 0);
	double t0 = cpu_seconds();
	assert_int_equal(check(pw, basic("alice:one"), user, &e), 0);
	double miss = cpu_seconds() - t0;
	sleep(2);
	t0 = cpu_seconds();
	assert_int_equal(check(pw, basic("alice:one"), user, &e), 0);
	double again = cpu_seconds() - t0;
	/* Hashed again: comparable to the first check, far above a hit. */
	assert_true(again > miss / 4);
	est_passwd_free(pw);
}

static void set_creates_a_private_file_and_keeps_other_lines(void **state)
{
	(void)state;
	const char *p = path_of("new");
	struct stat st;
	set_ok(p, "alice", "pw");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(strncmp(read_text(p), "alice:$y$", 9), 0);

	p = write_file("pw",
	               "# header comment\n"
	               "bob:" CHEAP_HASH "\n"
	               "\n"
	               "alice:" CHEAP_HASH "\n"
	               "carol:" CHEAP_HASH "\n",
	               0644);
	set_ok(p, "alice", "new");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	const char *t = read_text(p);
	const char *head = "# header comment\nbob:" CHEAP_HASH "\n\nalice:$y$j9T$";
	assert_int_equal(strncmp(t, head, strlen(head)), 0);
	assert_non_null(strstr(t, "\ncarol:" CHEAP_HASH "\n"));
	assert_null(strstr(t, "alice:" CHEAP_HASH));
	set_ok(p, "dave", "d");
	assert_non_null(strstr(read_text(p), "\ncarol:" CHEAP_HASH "\ndave:$y$"));

	/* No temporary file is left behind. */
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	while ((de = readdir(d)) != NULL)
		n += de->d_name[0] != '.';
	closedir(d);
	assert_int_equal(n, 2);

	struct est_passwd *pw = load_ok(p);
	char user[128];
	assert_int_equal(check(pw, basic("alice:new"), user, NULL), 0);
	assert_int_equal(check(pw, basic("bob:dummy"), user, NULL), 0);
	assert_int_equal(check(pw, basic("dave:d"), user, NULL), 0);
	est_passwd_free(pw);
}

static void set_appends_after_a_last_line_without_newline(void **state)
{
	(void)state;
	const char *p = write_file("pw", "bob:" CHEAP_HASH, 0600);
	set_ok(p, "eve", "e");
	assert_int_equal(
	    strncmp(read_text(p), "bob:" CHEAP_HASH "\neve:$y$", 4 + strlen(CHEAP_HASH) + 8), 0);
}

static void set_refuses_bad_user_names(void **state)
{
	(void)state;
	char long_user[129];
	memset(long_user, 'x', 128);
	long_user[128] = '\0';
	const char *bad[] = {"", "a:b", " lead", "trail ", "tab\there", "nl\n", long_user};
	struct acmera_errmsg e = {""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(est_passwd_set(path_of("pw"), bad[i], "pw", &e), ACMERA_ERR_INVAL);
		assert_non_null(strstr(e.text, "user name must be 1 to 127 bytes"));
	}
	assert_int_equal(access(path_of("pw"), F_OK), -1);
	long_user[127] = '\0';
	set_ok(path_of("pw"), long_user, "pw");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(basic_with_right_password_names_the_user, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(basic_scheme_is_case_insensitive_and_padding_optional,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(password_splits_at_the_first_colon, setup, teardown),
	    cmocka_unit_test_setup_teardown(wrong_password_and_unknown_user_get_the_same_refusal,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(unknown_user_costs_a_yescrypt_run_like_a_known_one,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(malformed_authorization_is_invalid_not_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(password_length_bound_is_511_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(small_user_buffer_is_an_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(file_with_comments_blanks_and_crlf_loads, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(file_open_to_group_or_others_is_refused, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(file_errors_name_file_and_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(file_with_nul_byte_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(changed_file_is_reloaded_and_a_broken_one_ignored,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(cache_skips_the_hash_but_never_a_change, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(cache_entries_expire, setup, teardown),
	    cmocka_unit_test_setup_teardown(set_creates_a_private_file_and_keeps_other_lines, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(set_appends_after_a_last_line_without_newline, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(set_refuses_bad_user_names, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
