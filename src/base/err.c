#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int acmera_fail(struct acmera_errmsg *e, int code, const char *fmt, ...)
{
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->text, sizeof(e->text), fmt, ap);
		va_end(ap);
	}
	return code;
}

int acmera_fail_wrap(struct acmera_errmsg *e, int code, const char *fmt, ...)
{
	if (e) {
		char prefix[ACMERA_ERRMSG_LEN];
		char old[ACMERA_ERRMSG_LEN];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(prefix, sizeof(prefix), fmt, ap);
		va_end(ap);
		memcpy(old, e->text, sizeof(old));
		old[sizeof(old) - 1] = '\0';
		/* Truncation is fine: the reason is for people. */
		size_t n = strnlen(prefix, sizeof(prefix) - 1);
		memcpy(e->text, prefix, n);
		size_t o = n;
		if (o + 2 < sizeof(e->text)) {
			e->text[o++] = ':';
			e->text[o++] = ' ';
		}
		size_t m = strnlen(old, sizeof(old));
		if (m > sizeof(e->text) - 1 - o)
			m = sizeof(e->text) - 1 - o;
		memcpy(e->text + o, old, m);
		e->text[o + m] = '\0';
	}
	return code;
}

const char *acmera_strerror(int code)
{
	switch (code) {
	case ACMERA_OK:
		return "ok";
	case ACMERA_ERR_NOMEM:
		return "out of memory";
	case ACMERA_ERR_INVAL:
		return "invalid input";
	case ACMERA_ERR_IO:
		return "i/o error";
	case ACMERA_ERR_CONFIG:
		return "configuration error";
	case ACMERA_ERR_PROTO:
		return "protocol error";
	case ACMERA_ERR_TIMEOUT:
		return "timeout";
	case ACMERA_ERR_REFUSED:
		return "refused";
	case ACMERA_ERR_AGAIN:
		return "temporary failure";
	case ACMERA_ERR_STORE:
		return "store error";
	case ACMERA_ERR_NOTFOUND:
		return "not found";
	default:
		return "unknown error";
	}
}
