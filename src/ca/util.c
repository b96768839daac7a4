/* Small helpers of the CA's handlers: random ids, times, URLs, Link values. */
#include "ca/internal.h"

#include "base/b64.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int random_b64url(size_t bytes, char *out, size_t out_len)
{
	uint8_t raw[32];
	if (bytes > sizeof(raw) || RAND_bytes(raw, (int)bytes) != 1)
		return ACMERA_ERR_IO;
	char *s = b64url_encode(raw, bytes);
	if (!s)
		return ACMERA_ERR_NOMEM;
	int rc = strlen(s) == out_len ? 0 : ACMERA_ERR_IO;
	if (!rc)
		memcpy(out, s, out_len + 1);
	free(s);
	return rc;
}

int ca_random_id(char out[CA_ID_LEN + 1])
{
	return random_b64url(16, out, CA_ID_LEN);
}

int ca_random_token(char out[CA_TOKEN_LEN + 1])
{
	return random_b64url(32, out, CA_TOKEN_LEN);
}

void ca_time_str(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!gmtime_r(&tt, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, 32, "1970-01-01T00:00:00Z");
}

int ca_url(const struct ca_service *s, char out[CA_URL_MAX], const char *fmt, ...)
{
	size_t n = strlen(s->base);
	va_list ap;
	if (n >= CA_URL_MAX)
		return -1;
	memcpy(out, s->base, n + 1);
	va_start(ap, fmt);
	int m = vsnprintf(out + n, CA_URL_MAX - n, fmt, ap);
	va_end(ap);
	return m < 0 || (size_t)m >= CA_URL_MAX - n ? -1 : 0;
}

void ca_link(struct ca_ctx *c, const char *url, const char *rel)
{
	if (c->links.len)
		buf_append_str(&c->links, ", ");
	buf_printf(&c->links, "<%s>;rel=\"%s\"", url, rel);
}

static int is_b64url(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_';
}

int ca_path_id(const char *path, const char *prefix, const char *suffix, char id[CA_ID_LEN + 1])
{
	size_t p = strlen(prefix);
	if (strncmp(path, prefix, p) != 0)
		return 0;
	path += p;
	for (size_t i = 0; i < CA_ID_LEN; i++)
		if (!is_b64url(path[i]))
			return 0;
	if (strcmp(path + CA_ID_LEN, suffix) != 0)
		return 0;
	memcpy(id, path, CA_ID_LEN);
	id[CA_ID_LEN] = '\0';
	return 1;
}

int ca_json_set_str(json_t *o, const char *key, const char *value)
{
	return json_object_set_new(o, key, json_string(value));
}
