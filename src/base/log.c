#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_LVL_INFO;
static int use_syslog;

/* Longer event names are cut (they are literals of this program). */
#define LOG_EVENT_MAX 64
/* "ts=... level=... event=NAME " */
#define LOG_PREFIX_MAX (128 + LOG_EVENT_MAX)
/* With its NUL: a body is cut at 2047 bytes, as it always was. */
#define LOG_BODY_MAX 2048

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_init(const char *dest, enum log_level level)
{
	min_level = level;
	if (!dest || strcmp(dest, "stderr") == 0) {
		use_syslog = 0;
		return 0;
	}
	if (strcmp(dest, "syslog") == 0) {
		openlog("acmera", LOG_PID, LOG_DAEMON);
		use_syslog = 1;
		return 0;
	}
	return -1;
}

void log_set_level(enum log_level level)
{
	min_level = level;
}
enum log_level log_get_level(void)
{
	return min_level;
}

int log_level_parse(const char *name)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(name, level_names[i]) == 0)
			return i;
	return -1;
}

/* "YYYY-MM-DDTHH:MM:SS" of sec, formatted once a second per thread: a busy
 * server logs a line per request. */
static const char *utc_second(time_t sec)
{
	static _Thread_local time_t last = (time_t)-1;
	static _Thread_local char text[32];
	if (sec != last) {
		struct tm tm;
		gmtime_r(&sec, &tm);
		strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%S", &tm);
		last = sec;
	}
	return text;
}

/* The bytes snprintf put into cap: k, cut to cap - 1 (its NUL); 0 on an error. */
static size_t written(int k, size_t cap)
{
	return k < 0 ? 0 : (size_t)k < cap ? (size_t)k : cap - 1;
}

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char line[LOG_PREFIX_MAX + LOG_BODY_MAX + 1];
	va_list ap;

	if (use_syslog) {
		static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
		va_start(ap, fmt);
		vsnprintf(line, LOG_BODY_MAX, fmt, ap);
		va_end(ap);
		syslog(prio[level], "level=%s event=%s %s", level_names[level], event, line);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	size_t n = written(snprintf(line, LOG_PREFIX_MAX, "ts=%s.%03ldZ level=%s event=%.*s ",
	                            utc_second(ts.tv_sec), ts.tv_nsec / 1000000, level_names[level],
	                            LOG_EVENT_MAX, event),
	                   LOG_PREFIX_MAX);
	va_start(ap, fmt);
	n += written(vsnprintf(line + n, LOG_BODY_MAX, fmt, ap), LOG_BODY_MAX);
	va_end(ap);
	line[n++] = '\n';
	/* One write per line, straight to descriptor 2 (stderr is unbuffered anyway):
	 * lines of several threads do not interleave, and no stdio formatting pass
	 * is paid a second time. */
	for (size_t off = 0; off < n;) {
		ssize_t w = write(STDERR_FILENO, line + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

const char *log_quote(const char *v, char *buf, size_t len)
{
	if (len == 0)
		return buf;
	if (!v)
		v = "";
	int needs = (*v == '\0');
	for (const char *p = v; *p; p++)
		if (*p == ' ' || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
			needs = 1;
	size_t o = 0;
	if (needs && o + 1 < len)
		buf[o++] = '"';
	for (const char *p = v; *p && o + 2 < len; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\') {
			if (o + 3 >= len)
				break;
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else {
			buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
		}
	}
	if (needs && o + 1 < len)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *log_qv(const char *v)
{
	static _Thread_local char ring[4][1024];
	static _Thread_local unsigned next;
	char *buf = ring[next++ % 4];
	return log_quote(v, buf, sizeof(ring[0]));
}
