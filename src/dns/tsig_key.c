/* BIND key files (named.conf `key` statement grammar), as tsig-keygen writes them.
 * The lexer knows //, # and C comments, quoted strings and bare words; the parser
 * reads the first `key` statement and stops there. */
#include "dns/tsig_key.h"

#include "base/b64.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_MAX 1024
#define KEYFILE_MAX (64 * 1024)
#define SECRET_MIN_BYTES 16 /* RFC 8945 section 6: no shorter than the MAC is wise */

enum tok_type { TOK_EOF, TOK_WORD, TOK_STRING, TOK_LBRACE, TOK_RBRACE, TOK_SEMI };

struct token {
	enum tok_type type;
	int line;
	size_t len;
	char text[TOKEN_MAX + 1];
};

struct lexer {
	const char *p, *end;
	const char *origin;
	int line;
	struct acmera_errmsg *e;
};

static int lex_fail(struct lexer *lx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int lex_fail(struct lexer *lx, int line, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return acmera_fail(lx->e, ACMERA_ERR_INVAL, "%s:%d: %s", lx->origin, line, why);
}

/* Skips blanks and comments; fails on an unterminated C comment or a NUL byte. */
static int skip_space(struct lexer *lx)
{
	while (lx->p < lx->end) {
		char c = *lx->p;
		size_t left = (size_t)(lx->end - lx->p);
		if (c == '\n') {
			lx->line++;
			lx->p++;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			lx->p++;
		} else if (c == '#' || (c == '/' && left > 1 && lx->p[1] == '/')) {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
		} else if (c == '/' && left > 1 && lx->p[1] == '*') {
			int start = lx->line;
			lx->p += 2;
			for (;;) {
				if (lx->end - lx->p < 2) {
					lx->p = lx->end;
					return lex_fail(lx, start, "unterminated /* comment");
				}
				if (lx->p[0] == '*' && lx->p[1] == '/')
					break;
				if (*lx->p == '\n')
					lx->line++;
				lx->p++;
			}
			lx->p += 2;
		} else if (c == '\0') {
			return lex_fail(lx, lx->line, "NUL byte in key file");
		} else {
			break;
		}
	}
	return 0;
}

static int lex_string(struct lexer *lx, struct token *t)
{
	lx->p++; /* opening quote */
	for (;;) {
		if (lx->p >= lx->end || *lx->p == '\n')
			return lex_fail(lx, t->line, "unterminated quoted string");
		char c = *lx->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (lx->p >= lx->end || *lx->p == '\n')
				return lex_fail(lx, t->line, "unterminated quoted string");
			c = *lx->p++;
		}
		if (c == '\0')
			return lex_fail(lx, t->line, "NUL byte in key file");
		if (t->len >= TOKEN_MAX)
			return lex_fail(lx, t->line, "string longer than %d characters", TOKEN_MAX);
		t->text[t->len++] = c;
	}
	t->type = TOK_STRING;
	return 0;
}

static int is_word_char(char c)
{
	return c != '\0' && !strchr(" \t\r\n\f\v{};\"", c);
}

static int next_token(struct lexer *lx, struct token *t)
{
	int rc = skip_space(lx);
	if (rc)
		return rc;
	t->line = lx->line;
	t->len = 0;
	t->text[0] = '\0';
	if (lx->p >= lx->end) {
		t->type = TOK_EOF;
		return 0;
	}
	char c = *lx->p;
	if (c == '{' || c == '}' || c == ';') {
		t->type = c == '{' ? TOK_LBRACE : c == '}' ? TOK_RBRACE : TOK_SEMI;
		t->text[0] = c;
		t->len = 1;
		lx->p++;
	} else if (c == '"') {
		rc = lex_string(lx, t);
		if (rc)
			return rc;
	} else {
		while (lx->p < lx->end && is_word_char(*lx->p)) {
			if (t->len >= TOKEN_MAX)
				return lex_fail(lx, t->line, "word longer than %d characters",
				                TOKEN_MAX);
			t->text[t->len++] = *lx->p++;
		}
		t->type = TOK_WORD;
	}
	t->text[t->len] = '\0';
	return 0;
}

/* A printable form of a token for messages (never used for the secret). */
static const char *tok_show(const struct token *t)
{
	return t->type == TOK_EOF ? "end of file" : t->text;
}

static int expect(struct lexer *lx, struct token *t, enum tok_type type, const char *what)
{
	int rc = next_token(lx, t);
	if (rc)
		return rc;
	if (t->type != type)
		return lex_fail(lx, t->line, "expected %s, found '%.40s'", what, tok_show(t));
	return 0;
}

/* Labels of letters, digits, '-', '_', each 1..63 long; stores it absolute. */
static int set_name(struct lexer *lx, const struct token *t, struct tsig_key *out)
{
	size_t n = t->len, label = 0;
	if (n > 0 && t->text[n - 1] == '.')
		n--;
	if (n == 0 || n > 253)
		return lex_fail(lx, t->line, "bad key name '%.40s'", t->text);
	for (size_t i = 0; i < n; i++) {
		char c = t->text[i];
		if (c == '.') {
			if (label == 0)
				return lex_fail(lx, t->line, "empty label in key name '%.80s'",
				                t->text);
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		           (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return lex_fail(lx, t->line, "label longer than 63 in key name");
		} else {
			return lex_fail(lx, t->line,
			                "key name '%.80s' has a character other than letters, "
			                "digits, '-', '_' and '.'",
			                t->text);
		}
	}
	if (label == 0)
		return lex_fail(lx, t->line, "empty label in key name '%.80s'", t->text);
	memcpy(out->name, t->text, n);
	out->name[n] = '.';
	out->name[n + 1] = '\0';
	return 0;
}

static int set_algorithm(struct lexer *lx, const struct token *t, struct tsig_key *out)
{
	static const char *const good[] = {"hmac-sha256", "hmac-sha384", "hmac-sha512"};
	static const char *const weak[] = {"hmac-md5", "hmac-md5.sig-alg.reg.int", "hmac-sha1"};
	char a[64];
	size_t n = t->len;
	if (n > 0 && t->text[n - 1] == '.')
		n--;
	if (n == 0 || n >= sizeof(a))
		return lex_fail(lx, t->line, "unknown algorithm '%.40s'", t->text);
	memcpy(a, t->text, n);
	a[n] = '\0';
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (strcasecmp(a, good[i]) == 0) {
			snprintf(out->algorithm, sizeof(out->algorithm), "%s.", good[i]);
			return 0;
		}
	}
	for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++) {
		if (strcasecmp(a, weak[i]) == 0)
			return lex_fail(lx, t->line,
			                "algorithm %s is refused as weak: make a new key with "
			                "tsig-keygen -a hmac-sha256",
			                a);
	}
	if (strncasecmp(a, "hmac-sha", 8) == 0 && strchr(a + 8, '-'))
		return lex_fail(lx, t->line,
		                "truncated MAC algorithm %s is not supported: use hmac-sha256, "
		                "hmac-sha384 or hmac-sha512",
		                a);
	return lex_fail(lx, t->line,
	                "algorithm %s is not supported: use hmac-sha256, hmac-sha384 or "
	                "hmac-sha512",
	                a);
}

/* Checks the base64 and stores it re-encoded (one line, padded). */
static int set_secret(struct lexer *lx, const struct token *t, struct tsig_key *out)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0, bad = 0;
	char *canon = NULL;
	int rc;
	if (b64_decode(t->text, t->len, &raw, &rawlen, &bad) != 0) {
		rc = lex_fail(lx, t->line, "secret is not base64 (bad character at offset %zu)",
		              bad);
		goto out;
	}
	if (rawlen < SECRET_MIN_BYTES) {
		rc = lex_fail(lx, t->line, "secret is too short: %zu bytes, want at least %d",
		              rawlen, SECRET_MIN_BYTES);
		goto out;
	}
	canon = b64_encode(raw, rawlen, 0);
	if (!canon) {
		rc = acmera_fail(lx->e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	size_t clen = strlen(canon);
	if (clen >= sizeof(out->secret_b64)) {
		rc = lex_fail(lx, t->line, "secret is too long: %zu bytes", rawlen);
		goto out;
	}
	memcpy(out->secret_b64, canon, clen + 1);
	rc = 0;
out:
	if (raw) {
		OPENSSL_cleanse(raw, rawlen);
		free(raw);
	}
	if (canon) {
		OPENSSL_cleanse(canon, strlen(canon));
		free(canon);
	}
	return rc;
}

/* The body of `key NAME { ... };` after the opening brace. */
static int parse_clauses(struct lexer *lx, struct token *t, struct tsig_key *out, int key_line)
{
	int have_alg = 0, have_secret = 0, rc;
	for (;;) {
		rc = next_token(lx, t);
		if (rc)
			return rc;
		if (t->type == TOK_RBRACE)
			break;
		if (t->type == TOK_EOF)
			return lex_fail(lx, key_line, "key statement is not closed with '};'");
		if (t->type != TOK_WORD)
			return lex_fail(lx, t->line,
			                "expected 'algorithm' or 'secret', found '%.40s'",
			                tok_show(t));
		int is_alg = strcasecmp(t->text, "algorithm") == 0;
		if (!is_alg && strcasecmp(t->text, "secret") != 0)
			return lex_fail(lx, t->line, "unknown clause '%.40s' in key %s", t->text,
			                out->name);
		if (is_alg ? have_alg : have_secret)
			return lex_fail(lx, t->line, "second '%s' in key %s", t->text, out->name);
		rc = next_token(lx, t);
		if (rc)
			return rc;
		if (t->type != TOK_WORD && t->type != TOK_STRING)
			return lex_fail(lx, t->line, "expected a value after '%s', found '%.40s'",
			                is_alg ? "algorithm" : "secret", tok_show(t));
		rc = is_alg ? set_algorithm(lx, t, out) : set_secret(lx, t, out);
		if (rc)
			return rc;
		if (is_alg)
			have_alg = 1;
		else
			have_secret = 1;
		rc = expect(lx, t, TOK_SEMI, "';'");
		if (rc)
			return rc;
	}
	if (!have_alg)
		return lex_fail(lx, key_line, "key %s has no algorithm", out->name);
	if (!have_secret)
		return lex_fail(lx, key_line, "key %s has no secret", out->name);
	return expect(lx, t, TOK_SEMI, "';' after '}'");
}

int tsig_key_parse(const char *text, size_t len, const char *origin, struct tsig_key *out,
                   struct acmera_errmsg *e)
{
	struct lexer lx = {text, text ? text + len : NULL, origin ? origin : "key", 1, e};
	struct token *t;
	struct tsig_key k;
	int key_line, rc;

	if (!text || !out)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no key text");
	t = malloc(sizeof(*t));
	if (!t)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	memset(&k, 0, sizeof(k));
	rc = next_token(&lx, t);
	if (rc)
		goto out;
	if (t->type == TOK_EOF) {
		rc = lex_fail(&lx, t->line, "no key statement");
		goto out;
	}
	if (t->type != TOK_WORD || strcasecmp(t->text, "key") != 0) {
		rc = lex_fail(&lx, t->line, "expected 'key', found '%.40s'", tok_show(t));
		goto out;
	}
	key_line = t->line;
	rc = next_token(&lx, t);
	if (rc)
		goto out;
	if (t->type != TOK_WORD && t->type != TOK_STRING) {
		rc = lex_fail(&lx, t->line, "expected a key name, found '%.40s'", tok_show(t));
		goto out;
	}
	rc = set_name(&lx, t, &k);
	if (rc)
		goto out;
	rc = expect(&lx, t, TOK_LBRACE, "'{'");
	if (rc)
		goto out;
	rc = parse_clauses(&lx, t, &k, key_line);
	if (rc)
		goto out;
	*out = k;
out:
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
	tsig_key_wipe(&k);
	return rc;
}

int tsig_key_load(const char *path, int allow_open_mode, struct tsig_key *out,
                  struct acmera_errmsg *e)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	int fd = -1, rc;

	if (!path || !out)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no key file given");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: not a regular file", path);
		goto out;
	}
	if ((st.st_mode & 077) && !allow_open_mode) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "%s: mode %04o lets group or others read the TSIG secret: "
		                 "chmod 600 %s",
		                 path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size > KEYFILE_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %d bytes", path,
		                 KEYFILE_MAX);
		goto out;
	}
	text = malloc(KEYFILE_MAX + 1);
	if (!text) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (;;) {
		ssize_t r = read(fd, text + len, KEYFILE_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > KEYFILE_MAX) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %d bytes", path,
			                 KEYFILE_MAX);
			goto out;
		}
	}
	rc = tsig_key_parse(text, len, path, out, e);
out:
	if (text) {
		OPENSSL_cleanse(text, len);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

void tsig_key_wipe(struct tsig_key *k)
{
	if (k)
		OPENSSL_cleanse(k->secret_b64, sizeof(k->secret_b64));
}
