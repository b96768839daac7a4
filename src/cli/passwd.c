/* acmera passwd --file FILE USER: sets USER's password for EST HTTP Basic. The
 * password comes from stdin, never from argv (other users can read argv). */
#include "cli/cli.h"

#include "est/auth.h"

#include <crypt.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* As est_passwd_set: what crypt(3) takes. */
#define PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)

static const char usage[] =
    "usage: acmera passwd --file FILE USER\n"
    "\n"
    "Sets USER's password in the EST password file FILE (created 0600 if absent),\n"
    "as a yescrypt hash. The password is read from standard input: twice, without\n"
    "echo, on a terminal; else its first line.\n"
    "  --file FILE   the password file of an EST profile\n"
    "  --help        this text\n";

enum { OPT_FILE = 1, OPT_HELP };

static const struct option options[] = {
    {"file", required_argument, NULL, OPT_FILE},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* The terminal as found, restored on exit and on a signal while echo is off. */
static struct termios saved_tty;
static volatile sig_atomic_t tty_changed;

static void restore_tty(void)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	tty_changed = 0;
}

static void on_signal(int sig)
{
	if (tty_changed)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tty);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int echo_off(void)
{
	struct termios t;
	if (tcgetattr(STDIN_FILENO, &saved_tty) != 0)
		return -1;
	t = saved_tty;
	t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	t.c_lflag |= ICANON;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGQUIT, on_signal);
	tty_changed = 1;
	if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) != 0) {
		tty_changed = 0;
		return -1;
	}
	return 0;
}

/* Reads one line of stdin into buf (without its "\n" or "\r\n"). Returns 0, or
 * -1 at EOF before any byte, a NUL byte, or a line longer than PASSWORD_MAX. */
static int read_line(char buf[PASSWORD_MAX + 1], const char **why)
{
	size_t n = 0;
	int c, any = 0;
	while ((c = getchar()) != EOF) {
		any = 1;
		if (c == '\n')
			break;
		if (c == '\0') {
			*why = "the password has a NUL byte";
			return -1;
		}
		if (n == PASSWORD_MAX) {
			*why = "the password is longer than 511 bytes";
			return -1;
		}
		buf[n++] = (char)c;
	}
	if (!any) {
		*why = "no password on standard input";
		return -1;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return 0;
}

/* One prompt on a terminal, echo off; the newline the user typed is not echoed. */
static int prompt(const char *text, char buf[PASSWORD_MAX + 1], const char **why)
{
	fputs(text, stderr);
	fflush(stderr);
	int rc = read_line(buf, why);
	fputs("\n", stderr);
	return rc;
}

static int read_password(char pw[PASSWORD_MAX + 1], const char **why)
{
	char again[PASSWORD_MAX + 1];
	int rc = 0;
	if (!isatty(STDIN_FILENO))
		return read_line(pw, why);
	/* No buffered copy of the password left in stdio after we are done. */
	setvbuf(stdin, NULL, _IONBF, 0);
	if (echo_off() != 0) {
		*why = "cannot turn off terminal echo";
		return -1;
	}
	rc = prompt("Password: ", pw, why);
	if (!rc)
		rc = prompt("Password again: ", again, why);
	restore_tty();
	if (!rc && strcmp(pw, again) != 0) {
		*why = "the passwords differ";
		rc = -1;
	}
	OPENSSL_cleanse(again, sizeof(again));
	return rc;
}

int cli_passwd(int argc, char **argv)
{
	const char *file = NULL, *why = NULL;
	char pw[PASSWORD_MAX + 1];
	struct acmera_errmsg e = {""};
	int opt;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (opt == OPT_FILE) {
			file = optarg;
		} else if (opt == OPT_HELP) {
			fputs(usage, stdout);
			return 0;
		} else {
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!file || optind + 1 != argc) {
		fprintf(stderr, "acmera passwd: %s\n%s",
		        !file ? "--file is required" : "exactly one USER is required", usage);
		return 2;
	}
	const char *user = argv[optind];
	if (read_password(pw, &why) != 0) {
		fprintf(stderr, "acmera passwd: %s\n", why);
		OPENSSL_cleanse(pw, sizeof(pw));
		return 1;
	}
	int rc = est_passwd_set(file, user, pw, &e);
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc) {
		fprintf(stderr, "acmera passwd: %s\n", e.text);
		return 1;
	}
	fprintf(stderr, "acmera passwd: password of \"%s\" set in %s\n", user, file);
	return 0;
}
