/* External account binding keys of `acmera ca` (RFC 8555 7.3.4): a file of
 * "kid base64url-hmac-key" lines that only its owner may read. */
#include "ca/internal.h"

#include "base/b64.h"
#include "base/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EAB_FILE_MAX 65536
#define EAB_MAX_KEYS 1024
#define EAB_KID_MAX 128
#define EAB_KEY_MIN 16 /* bytes: HS256 wants at least 128 bits of key */
#define EAB_KEY_MAX 256

struct eab_key {
	char kid[EAB_KID_MAX + 1];
	uint8_t *key;
	size_t len;
};

struct ca_eab {
	struct eab_key keys[EAB_MAX_KEYS];
	size_t n;
};

static int read_file(const char *path, char **out, struct acmera_errmsg *e)
{
	struct stat sb;
	char *text = NULL;
	ssize_t got = 0;
	int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	*out = NULL;
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: not a regular file", path);
		goto out;
	}
	if (sb.st_mode & 077) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: readable by others (chmod 600)", path);
		goto out;
	}
	text = malloc(EAB_FILE_MAX + 1);
	if (!text) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t len = 0;
	while (len <= EAB_FILE_MAX && (got = read(fd, text + len, EAB_FILE_MAX + 1 - len)) > 0)
		len += (size_t)got;
	if (got < 0 || len > EAB_FILE_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: unreadable or larger than %d bytes", path,
		                 EAB_FILE_MAX);
		goto out;
	}
	text[len] = '\0';
	*out = text;
	text = NULL;
out:
	if (text) {
		OPENSSL_cleanse(text, EAB_FILE_MAX + 1);
		free(text);
	}
	close(fd);
	return rc;
}

static int kid_ok(const char *kid)
{
	size_t n = strlen(kid);
	if (n == 0 || n > EAB_KID_MAX)
		return 0;
	for (const char *p = kid; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return 0;
	return 1;
}

static int parse(struct ca_eab *eab, char *text, const char *path, struct acmera_errmsg *e)
{
	char *save = NULL;
	int line = 0;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *kid, *key, *rest, *ws = NULL;
		line++;
		kid = strtok_r(l, " \t\r", &ws);
		if (!kid || kid[0] == '#')
			continue;
		key = strtok_r(NULL, " \t\r", &ws);
		rest = strtok_r(NULL, " \t\r", &ws);
		if (!key || rest || !kid_ok(kid))
			return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: entry %d: expected 'KID KEY'",
			                   path, line);
		if (eab->n == EAB_MAX_KEYS)
			return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: more than %d keys", path,
			                   EAB_MAX_KEYS);
		struct eab_key *k = &eab->keys[eab->n];
		if (b64url_decode(key, strlen(key), &k->key, &k->len) != 0 ||
		    k->len < EAB_KEY_MIN || k->len > EAB_KEY_MAX) {
			if (k->key)
				OPENSSL_cleanse(k->key, k->len);
			free(k->key);
			k->key = NULL;
			return acmera_fail(
			    e, ACMERA_ERR_CONFIG,
			    "%s: entry %d: the key is not base64url of %d to %d bytes", path, line,
			    EAB_KEY_MIN, EAB_KEY_MAX);
		}
		snprintf(k->kid, sizeof(k->kid), "%s", kid);
		eab->n++;
	}
	return 0;
}

int ca_eab_load(const char *path, struct ca_eab **out, struct acmera_errmsg *e)
{
	struct ca_eab *eab = calloc(1, sizeof(*eab));
	char *text = NULL;
	int rc;
	*out = NULL;
	if (!eab)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	rc = read_file(path, &text, e);
	if (!rc)
		rc = parse(eab, text, path, e);
	secret_free(text);
	if (rc) {
		ca_eab_free(eab);
		return rc;
	}
	*out = eab;
	return 0;
}

const uint8_t *ca_eab_key(const struct ca_eab *eab, const char *kid, size_t *len)
{
	for (size_t i = 0; eab && kid && i < eab->n; i++)
		if (strcmp(eab->keys[i].kid, kid) == 0) {
			*len = eab->keys[i].len;
			return eab->keys[i].key;
		}
	return NULL;
}

void ca_eab_free(struct ca_eab *eab)
{
	if (!eab)
		return;
	for (size_t i = 0; i < eab->n; i++) {
		OPENSSL_cleanse(eab->keys[i].key, eab->keys[i].len);
		free(eab->keys[i].key);
	}
	free(eab);
}
