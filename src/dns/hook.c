/* Runs the dns.hook command: posix_spawn, no shell, stdin from /dev/null, stdout and
 * stderr captured (bounded), a deadline after which its process group is killed. */
#include "dns/hook.h"

#include "base/clock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ACME_PREFIX "_acme-challenge."
#define CAPTURE_MAX 4096 /* bytes kept of each stream; the rest is read and dropped */
#define LINE_SHOWN 200
#define TXT_MAX 255

extern char **environ;

struct capture {
	int fd;
	size_t len;
	char buf[CAPTURE_MAX];
};

/* Reads what is there; closes the fd at end of file or error. */
static void drain(struct capture *c)
{
	char tmp[4096];
	while (c->fd >= 0) {
		ssize_t r = read(c->fd, tmp, sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			close(c->fd);
			c->fd = -1;
			return;
		}
		size_t keep = CAPTURE_MAX - c->len;
		if (keep > (size_t)r)
			keep = (size_t)r;
		memcpy(c->buf + c->len, tmp, keep);
		c->len += keep;
	}
}

/* The first non-empty line of a capture, control characters shown as '?'. */
static void first_line(const struct capture *c, char *out, size_t outlen)
{
	size_t i = 0, o = 0;
	while (i < c->len && (c->buf[i] == '\n' || c->buf[i] == '\r'))
		i++;
	for (; i < c->len && c->buf[i] != '\n' && o + 1 < outlen && o < LINE_SHOWN; i++) {
		unsigned char ch = (unsigned char)c->buf[i];
		if (ch == '\r')
			continue;
		out[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	out[o] = '\0';
}

/* Waits for the child, reading its output, until it exits or the deadline passes. Returns
 * 0 with *status, -1 on timeout (the process group is killed and reaped), -2 when the
 * child cannot be waited for. */
static int wait_child(pid_t pid, struct capture *out, struct capture *err, long long deadline,
                      int *status)
{
	for (;;) {
		struct pollfd p[2];
		nfds_t np = 0;
		long long left = deadline - mono_ms();
		if (left <= 0)
			break;
		if (out->fd >= 0)
			p[np++] = (struct pollfd){.fd = out->fd, .events = POLLIN};
		if (err->fd >= 0)
			p[np++] = (struct pollfd){.fd = err->fd, .events = POLLIN};
		/* Short slices: a hook may exit while a child of its own keeps the pipes. */
		int slice = left < 50 ? (int)left : 50;
		if (np == 0)
			usleep((useconds_t)slice * 1000);
		else if (poll(p, np, slice) > 0)
			for (nfds_t i = 0; i < np; i++)
				if (p[i].revents)
					drain(p[i].fd == out->fd ? out : err);
		pid_t w = waitpid(pid, status, WNOHANG);
		if (w == pid) {
			/* Take what is left; pipes a grandchild holds stay open, reads do not
			 * wait for it. */
			drain(out);
			drain(err);
			return 0;
		}
		if (w < 0 && errno != EINTR)
			return -2; /* e.g. SIGCHLD ignored: the exit status is lost */
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

static int run_one(const char *hook, const char *verb, const struct dns_txt *r, int timeout_ms,
                   struct acmera_errmsg *e)
{
	struct capture out = {.fd = -1}, err = {.fd = -1};
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	pid_t pid;
	int status = 0, rc;
	char line[LINE_SHOWN + 1];
	char *argv[] = {(char *)hook, (char *)verb, (char *)r->name, (char *)r->value, NULL};

	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "hook %s: pipe: %s", hook, strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setpgroup(&at, 0); /* its own group, so a timeout kills all of it */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
	                                  POSIX_SPAWN_SETPGROUP);
	int serr = posix_spawn(&pid, hook, &fa, &at, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(po[1]);
	close(pe[1]);
	po[1] = pe[1] = -1;
	if (serr != 0) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "hook %s: cannot run it: %s", hook,
		                 strerror(serr));
		goto out;
	}
	out.fd = po[0];
	err.fd = pe[0];
	po[0] = pe[0] = -1;
	/* Reads must never block: the deadline is kept by poll alone. */
	fcntl(out.fd, F_SETFL, O_NONBLOCK);
	fcntl(err.fd, F_SETFL, O_NONBLOCK);
	int w = wait_child(pid, &out, &err, mono_ms() + timeout_ms, &status);
	if (w == -1) {
		rc =
		    acmera_fail(e, ACMERA_ERR_TIMEOUT, "hook %s %s %s: no exit after %d ms, killed",
		                hook, verb, r->name, timeout_ms);
		goto out;
	}
	if (w != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "hook %s %s %s: cannot wait for it: %s", hook,
		                 verb, r->name, strerror(errno));
		goto out;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
		goto out;
	}
	first_line(err.len ? &err : &out, line, sizeof(line));
	if (WIFSIGNALED(status))
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "hook %s %s %s: killed by signal %d%s%s",
		                 hook, verb, r->name, WTERMSIG(status), line[0] ? ": " : "", line);
	else
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "hook %s %s %s: exit status %d%s%s", hook,
		                 verb, r->name, WEXITSTATUS(status), line[0] ? ": " : "", line);
out:
	for (int i = 0; i < 2; i++) {
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	if (out.fd >= 0)
		close(out.fd);
	if (err.fd >= 0)
		close(err.fd);
	return rc;
}

/* The same rule as for UPDATE: only _acme-challenge names, printable values. */
static int record_ok(const struct dns_txt *r)
{
	size_t p = sizeof(ACME_PREFIX) - 1;
	if (!r->name || !r->value || strncasecmp(r->name, ACME_PREFIX, p) != 0 ||
	    !dns_name_allowed(r->name, r->name + p))
		return 0;
	size_t n = strnlen(r->value, TXT_MAX + 1);
	if (n == 0 || n > TXT_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r->value[i] < 0x20 || (unsigned char)r->value[i] > 0x7e)
			return 0;
	return 1;
}

int dns_hook_run(const char *hook, enum dns_update_op op, const struct dns_txt *recs, size_t n,
                 int timeout_ms, struct acmera_errmsg *e)
{
	if (!hook || !*hook || (!recs && n > 0) || timeout_ms <= 0 ||
	    (op != DNS_UPDATE_ADD && op != DNS_UPDATE_DELETE))
		return acmera_fail(e, ACMERA_ERR_INVAL, "bad arguments to dns_hook_run");
	for (size_t i = 0; i < n; i++)
		if (!record_ok(&recs[i]))
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "hook %s: refusing record %zu (%.260s): not an "
			                   "_acme-challenge name with a printable TXT value",
			                   hook, i + 1, recs[i].name ? recs[i].name : "(null)");
	const char *verb = op == DNS_UPDATE_ADD ? "add" : "delete";
	for (size_t i = 0; i < n; i++) {
		int rc = run_one(hook, verb, &recs[i], timeout_ms, e);
		if (rc)
			return rc;
	}
	return 0;
}
