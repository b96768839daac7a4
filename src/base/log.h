/* Logging: one line per event, key=value pairs, with levels, to stderr or syslog.
 *
 *   log_event(LOG_LVL_INFO, "acme.order", "order=%s status=%s", url, status);
 *
 * prints `ts=2026-11-28T13:00:00Z level=info event=acme.order order=... status=...`.
 * Values that may hold spaces or quotes go through log_quote(). Secrets (keys, TSIG
 * secrets, passwords, nonces are fine) must never be passed here. */
#ifndef ACMERA_BASE_LOG_H
#define ACMERA_BASE_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

/* dest: "stderr" (default) or "syslog". Returns 0, or -1 for an unknown name. */
int log_init(const char *dest, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "debug", "info", "warn", "error"; returns -1 when unknown. */
int log_level_parse(const char *name);

void log_event(enum log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Quotes v for a key=value line when it holds spaces, quotes or '='; control
 * characters become '?'. Returns buf. */
const char *log_quote(const char *v, char *buf, size_t len);
/* log_quote into one of a few per-thread buffers (values up to 1 KiB), for use in
 * a log_event argument list: log_event(..., "error=%s", log_qv(e.text)). */
const char *log_qv(const char *v);

#endif
