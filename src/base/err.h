/* Error codes and the message buffer that carries a human-readable reason up to
 * where it is logged or sent. Functions return 0 or a negative acmera_err. */
#ifndef ACMERA_BASE_ERR_H
#define ACMERA_BASE_ERR_H

#include <stddef.h>

enum acmera_err {
	ACMERA_OK = 0,
	ACMERA_ERR_NOMEM = -1,    /* allocation failed */
	ACMERA_ERR_INVAL = -2,    /* bad input: malformed, out of bounds, refused by policy */
	ACMERA_ERR_IO = -3,       /* file or socket error */
	ACMERA_ERR_CONFIG = -4,   /* configuration error */
	ACMERA_ERR_PROTO = -5,    /* peer spoke the protocol wrongly */
	ACMERA_ERR_TIMEOUT = -6,  /* peer did not answer in time */
	ACMERA_ERR_REFUSED = -7,  /* peer refused (DNS rcode, ACME problem) */
	ACMERA_ERR_AGAIN = -8,    /* temporary: retry later */
	ACMERA_ERR_STORE = -9,    /* the store failed */
	ACMERA_ERR_NOTFOUND = -10 /* no such record */
};

#define ACMERA_ERRMSG_LEN 512

/* A reason, filled by the function that failed. Callers may pass NULL. */
struct acmera_errmsg {
	char text[ACMERA_ERRMSG_LEN];
};

/* Sets the reason (printf format) and returns code, so that
 * `return acmera_fail(e, ACMERA_ERR_INVAL, "bad %s", x);` reads naturally. */
int acmera_fail(struct acmera_errmsg *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing reason with more context: "ctx: old reason". */
int acmera_fail_wrap(struct acmera_errmsg *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Short name of a code, e.g. "invalid input". */
const char *acmera_strerror(int code);

#endif
