/* A growable byte buffer. The bytes are always followed by a '\0' that is not
 * counted in len, so text can be used as a C string. */
#ifndef ACMERA_BASE_BUF_H
#define ACMERA_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *data; /* owned; NULL until the first append */
	size_t len;
	size_t cap;
};

#define BUF_INIT                                                                                   \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Appends; returns 0 or ACMERA_ERR_NOMEM. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_append_str(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes. */
int buf_reserve(struct buf *b, size_t n);
/* Empties without freeing. */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hands the bytes (NUL-terminated, never NULL on success) to the caller, who frees them. */
char *buf_steal(struct buf *b);
/* A C string view, "" for an empty buffer. */
const char *buf_str(const struct buf *b);

#endif
