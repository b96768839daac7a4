/* dns_hook_run with small hook scripts: argv without a shell, exit status and the first
 * stderr line in errors, the timeout, and refusals that run nothing. */
#include "dns/hook.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

struct dir {
	char path[64];
	char log[128];
};

static int make_dir(void **state)
{
	struct dir *d = calloc(1, sizeof(*d));
	assert_non_null(d);
	snprintf(d->path, sizeof(d->path), "/tmp/acmera-hook-XXXXXX");
	assert_non_null(mkdtemp(d->path));
	snprintf(d->log, sizeof(d->log), "%s/calls", d->path);
	*state = d;
	return 0;
}

static int remove_dir(void **state)
{
	struct dir *d = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->path);
	if (system(cmd) != 0)
		return -1;
	free(d);
	return 0;
}

/* Writes an executable /bin/sh script; CALLS in body is replaced by the log path. */
static const char *script(struct dir *d, const char *name, const char *body)
{
	static char path[160];
	snprintf(path, sizeof(path), "%s/%s", d->path, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\nCALLS='%s'\n%s\n", d->log, body);
	fclose(f);
	assert_int_equal(chmod(path, 0700), 0);
	return path;
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1 when pid no longer runs (gone, or a zombie nobody has reaped yet). */
static int gone(pid_t pid)
{
	char path[64], st[512];
	if (kill(pid, 0) != 0)
		return 1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 1;
	size_t n = fread(st, 1, sizeof(st) - 1, f);
	fclose(f);
	st[n] = '\0';
	const char *close = strrchr(st, ')');
	return close && close[1] == ' ' && close[2] == 'Z';
}

static const struct dns_txt two[] = {
    {"_acme-challenge.dev1.example.test", "a b $(id) `id` ;|&"},
    {"_acme-challenge.dev2.example.test", "-second"},
};

static void hook_gets_exact_argv_without_shell(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "ok",
	                       "for a in \"$@\"; do printf '[%s]' \"$a\" >>\"$CALLS\"; done\n"
	                       "echo >>\"$CALLS\"");
	struct acmera_errmsg e = {{0}};
	int rc = dns_hook_run(h, DNS_UPDATE_ADD, two, 2, 5000, &e);
	if (rc)
		fail_msg("%s", e.text);
	assert_string_equal(slurp(d->log),
	                    "[add][_acme-challenge.dev1.example.test][a b $(id) `id` ;|&]\n"
	                    "[add][_acme-challenge.dev2.example.test][-second]\n");
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_DELETE, two, 1, 5000, &e), 0);
	assert_non_null(strstr(slurp(d->log), "[delete][_acme-challenge.dev1.example.test]"));
}

static void hook_failure_names_exit_status_and_first_stderr_line(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "fails",
	                       "echo out\necho 'zone not found' >&2\n"
	                       "echo 'second line' >&2\nexit 3");
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, two, 2, 5000, &e), ACMERA_ERR_REFUSED);
	assert_non_null(strstr(e.text, h));
	assert_non_null(strstr(e.text, "add _acme-challenge.dev1.example.test: exit status 3: "
	                               "zone not found"));
	assert_null(strstr(e.text, "second line"));
}

static void hook_stops_at_first_failure(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "second-fails",
	                       "echo \"$2\" >>\"$CALLS\"\n"
	                       "case \"$2\" in *dev1*) exit 0;; esac\nexit 1");
	const struct dns_txt three[] = {two[0], two[1], two[0]};
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, three, 3, 5000, &e), ACMERA_ERR_REFUSED);
	assert_string_equal(slurp(d->log), "_acme-challenge.dev1.example.test\n"
	                                   "_acme-challenge.dev2.example.test\n");
	assert_non_null(strstr(e.text, "exit status 1"));
}

static void hook_is_killed_at_timeout(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "slow", "sleep 30 &\necho $! >\"$CALLS\"\nwait");
	struct acmera_errmsg e = {{0}};
	long long t0 = now_ms();
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, two, 1, 300, &e), ACMERA_ERR_TIMEOUT);
	assert_true(now_ms() - t0 < 3000);
	assert_non_null(strstr(e.text, "no exit after 300 ms, killed"));
	/* The whole process group went, the hook's own child included. */
	const char *pid = slurp(d->log);
	assert_non_null(pid);
	pid_t p = (pid_t)atoi(pid);
	assert_true(p > 0);
	for (int i = 0; i < 50 && !gone(p); i++)
		usleep(20 * 1000);
	assert_true(gone(p));
}

static void hook_that_talks_then_hangs_is_killed_at_timeout(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "talks", "echo working\necho 'still working' >&2\nexec sleep 30");
	struct acmera_errmsg e = {{0}};
	long long t0 = now_ms();
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, two, 1, 300, &e), ACMERA_ERR_TIMEOUT);
	assert_true(now_ms() - t0 < 3000);
}

static void hook_returns_when_it_exits_though_a_child_keeps_its_output(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "daemonizes", "sleep 20 &\necho $! >\"$CALLS\"\nexit 0");
	struct acmera_errmsg e = {{0}};
	long long t0 = now_ms();
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, two, 1, 10000, &e), 0);
	assert_true(now_ms() - t0 < 3000);
	const char *pid = slurp(d->log);
	assert_non_null(pid);
	kill((pid_t)atoi(pid), SIGKILL); /* the test started it; stop it by PID */
}

static void hook_output_is_bounded(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "chatty", "head -c 2000000 /dev/zero | tr '\\0' x >&2\nexit 4");
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, two, 1, 10000, &e), ACMERA_ERR_REFUSED);
	assert_non_null(strstr(e.text, "exit status 4: xxxx"));
	assert_true(strlen(e.text) < ACMERA_ERRMSG_LEN);
}

static void hook_that_cannot_run_is_a_config_error(void **state)
{
	struct dir *d = *state;
	char path[160];
	struct acmera_errmsg e = {{0}};
	snprintf(path, sizeof(path), "%s/missing", d->path);
	assert_int_equal(dns_hook_run(path, DNS_UPDATE_ADD, two, 1, 1000, &e), ACMERA_ERR_CONFIG);
	assert_non_null(strstr(e.text, "cannot run it: No such file"));
}

static void hook_refuses_other_names_before_running(void **state)
{
	struct dir *d = *state;
	const char *h = script(d, "log", "echo \"$2\" >>\"$CALLS\"");
	const struct dns_txt bad[] = {two[0], {"www.example.test", "v"}};
	const struct dns_txt ctl[] = {{"_acme-challenge.example.test", "a\nb"}};
	struct acmera_errmsg e = {{0}};
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, bad, 2, 1000, &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, "refusing record 2 (www.example.test)"));
	assert_int_equal(dns_hook_run(h, DNS_UPDATE_ADD, ctl, 1, 1000, &e), ACMERA_ERR_INVAL);
	assert_null(slurp(d->log)); /* never ran */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, make_dir, remove_dir)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(hook_gets_exact_argv_without_shell),
	    T(hook_failure_names_exit_status_and_first_stderr_line),
	    T(hook_stops_at_first_failure),
	    T(hook_is_killed_at_timeout),
	    T(hook_that_talks_then_hangs_is_killed_at_timeout),
	    T(hook_returns_when_it_exits_though_a_child_keeps_its_output),
	    T(hook_output_is_bounded),
	    T(hook_that_cannot_run_is_a_config_error),
	    T(hook_refuses_other_names_before_running),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
