/* Base64 (RFC 4648 section 4) and base64url (section 5). Our own code rather
 * than OpenSSL's EVP decoder, because RFC 8951 asks receivers to tolerate
 * whitespace anywhere and a missing final newline, which EVP_DecodeUpdate does
 * not.
 *
 * Liberal in one documented way: b64_decode accepts non-zero bits in the last
 * character before padding ("QR==" decodes like "QQ=="), as RFC 4648 section
 * 3.5 allows a decoder to. b64url_decode, used for JOSE where a second spelling
 * of a signature or key would be a malleability, rejects them. */
#include "base/b64.h"
#include "base/err.h"

#include <stdint.h>
#include <stdlib.h>

static const char alpha_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char alpha_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of each letter and digit (RFC 4648 table 1, values 0-61); -1 for any other
 * byte. The two alphabets differ only in values 62 and 63. */
/* clang-format off */
static const int8_t alnum_value[256] = {
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x00 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x10 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x20 */
	52, 53, 54, 55, 56, 57, 58, 59, 60, 61, -1, -1, -1, -1, -1, -1,  /* 0x30 */
	-1,  0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, 13, 14,  /* 0x40 */
	15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, -1, -1, -1, -1, -1,  /* 0x50 */
	-1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40,  /* 0x60 */
	41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1,  /* 0x70 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x80 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0x90 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xA0 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xB0 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xC0 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xD0 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xE0 */
	-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  /* 0xF0 */
};
/* clang-format on */

/* Value of an alphabet character, or -1. c62/c63 tell the two alphabets apart. */
static int sextet(unsigned char c, char c62, char c63)
{
	int v = alnum_value[c];
	if (v >= 0)
		return v;
	if (c == (unsigned char)c62)
		return 62;
	if (c == (unsigned char)c63)
		return 63;
	return -1;
}

static int is_b64_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Length of the encoding of n bytes, without line breaks or NUL; SIZE_MAX when
 * it would not fit. */
static size_t enc_len(size_t n, int pad)
{
	if (n / 3 >= SIZE_MAX / 4 - 1)
		return SIZE_MAX;
	size_t len = n / 3 * 4;
	if (n % 3)
		len += pad ? 4 : n % 3 + 1;
	return len;
}

/* Writes the encoding of p[0..n) to out, which has room for enc_len(n, pad). */
static void enc_raw(const uint8_t *p, size_t n, const char *alpha, int pad, char *out)
{
	size_t i = 0, o = 0;
	for (; n - i >= 3; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 0)
		return;
	uint32_t v = (uint32_t)p[i] << 16;
	if (n - i == 2)
		v |= (uint32_t)p[i + 1] << 8;
	out[o++] = alpha[v >> 18 & 63];
	out[o++] = alpha[v >> 12 & 63];
	if (n - i == 2)
		out[o++] = alpha[v >> 6 & 63];
	else if (pad)
		out[o++] = '=';
	if (pad)
		out[o++] = '=';
}

char *b64_encode(const uint8_t *p, size_t n, size_t line_len)
{
	size_t len = enc_len(n, 1);
	if (len == SIZE_MAX)
		return NULL;
	size_t lines = 0;
	if (line_len > 0)
		lines = len / line_len + (len % line_len != 0);
	if (lines > SIZE_MAX - 1 - len)
		return NULL;
	char *out = malloc(len + lines + 1);
	if (!out)
		return NULL;
	if (lines == 0) {
		enc_raw(p, n, alpha_std, 1, out);
		out[len] = '\0';
		return out;
	}
	/* Encode at the tail, then move lines forward and insert the breaks. */
	char *tmp = out + lines;
	enc_raw(p, n, alpha_std, 1, tmp);
	size_t o = 0;
	for (size_t i = 0; i < len; i += line_len) {
		size_t k = len - i < line_len ? len - i : line_len;
		for (size_t j = 0; j < k; j++)
			out[o++] = tmp[i + j];
		out[o++] = '\n';
	}
	out[o] = '\0';
	return out;
}

char *b64url_encode(const uint8_t *p, size_t n)
{
	size_t len = enc_len(n, 0);
	if (len == SIZE_MAX)
		return NULL;
	char *out = malloc(len + 1);
	if (!out)
		return NULL;
	enc_raw(p, n, alpha_url, 0, out);
	out[len] = '\0';
	return out;
}

int b64_decode(const char *s, size_t n, uint8_t **out, size_t *outlen, size_t *bad_at)
{
	*out = NULL;
	*outlen = 0;
	/* At most 3 bytes per 4 characters; +3 covers a final partial group and
	 * keeps malloc(0) away. */
	uint8_t *o = malloc(n / 4 * 3 + 3);
	if (!o)
		return ACMERA_ERR_NOMEM;
	size_t len = 0, quad = 0, pads = 0, bad = n, last_data = 0, first_pad = 0;
	uint32_t acc = 0;
	int rc = ACMERA_ERR_INVAL;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		int v = sextet(c, '+', '/');
		if (v >= 0 && pads == 0) { /* the common case first */
			acc = acc << 6 | (uint32_t)v;
			last_data = i;
			if (++quad == 4) {
				o[len++] = (uint8_t)(acc >> 16);
				o[len++] = (uint8_t)(acc >> 8);
				o[len++] = (uint8_t)acc;
				quad = 0;
				acc = 0;
			}
			continue;
		}
		if (is_b64_space(c))
			continue;
		if (c == '=') {
			/* Padding completes a group of 2 or 3 characters, and no more. */
			if (pads == 0 && quad < 2) {
				bad = i;
				goto out;
			}
			if (pads == 0)
				first_pad = i;
			if (quad + pads + 1 > 4) {
				bad = i;
				goto out;
			}
			pads++;
			continue;
		}
		bad = i; /* not base64, or data after the padding */
		goto out;
	}
	if (quad == 1) { /* six bits cannot make a byte */
		bad = last_data;
		goto out;
	}
	if (pads > 0 && quad + pads != 4) { /* "QQ=" : padding started, not finished */
		bad = first_pad;
		goto out;
	}
	if (quad == 2) {
		o[len++] = (uint8_t)(acc >> 4);
	} else if (quad == 3) {
		o[len++] = (uint8_t)(acc >> 10);
		o[len++] = (uint8_t)(acc >> 2);
	}
	*out = o;
	*outlen = len;
	o = NULL;
	rc = 0;
out:
	free(o);
	if (rc && bad_at)
		*bad_at = bad;
	return rc;
}

int b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	*out = NULL;
	*outlen = 0;
	if (n % 4 == 1)
		return ACMERA_ERR_INVAL;
	uint8_t *o = malloc(n / 4 * 3 + 3);
	if (!o)
		return ACMERA_ERR_NOMEM;
	size_t len = 0;
	uint32_t acc = 0;
	for (size_t i = 0; i < n; i++) {
		int v = sextet((unsigned char)s[i], '-', '_');
		if (v < 0) {
			free(o);
			return ACMERA_ERR_INVAL;
		}
		acc = acc << 6 | (uint32_t)v;
		if (i % 4 == 3) {
			o[len++] = (uint8_t)(acc >> 16);
			o[len++] = (uint8_t)(acc >> 8);
			o[len++] = (uint8_t)acc;
			acc = 0;
		}
	}
	/* The unused low bits of the last character must be zero (canonical). */
	if ((n % 4 == 2 && (acc & 0xf)) || (n % 4 == 3 && (acc & 0x3))) {
		free(o);
		return ACMERA_ERR_INVAL;
	}
	if (n % 4 == 2) {
		o[len++] = (uint8_t)(acc >> 4);
	} else if (n % 4 == 3) {
		o[len++] = (uint8_t)(acc >> 10);
		o[len++] = (uint8_t)(acc >> 2);
	}
	*out = o;
	*outlen = len;
	return 0;
}
