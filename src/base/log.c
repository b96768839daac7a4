#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static enum log_level min_level = LOG_LVL_INFO;
static int use_syslog;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

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

void log_event(enum log_level level, const char *event, const char *fmt, ...)
{
	if (level < min_level)
		return;
	char body[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);

	if (use_syslog) {
		static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
		syslog(prio[level], "level=%s event=%s %s", level_names[level], event, body);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char when[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "ts=%s.%03ldZ level=%s event=%s %s\n", when, ts.tv_nsec / 1000000,
	        level_names[level], event, body);
	pthread_mutex_unlock(&log_lock);
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
