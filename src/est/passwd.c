/* HTTP Basic (RFC 7617) against a file of yescrypt hashes.
 *
 * The file is a secret like the TSIG key: it is refused when group or others
 * have any permission on it, so a copy of the hashes cannot leak to other local
 * users for offline guessing. Only yescrypt ("$y$") hashes are accepted; an
 * older scheme is an error naming file:line, never a silent weaker check. */
#include "est/auth.h"

#include "base/b64.h"
#include "base/buf.h"
#include "base/file_watch.h"
#include "base/log.h"
#include "est/cred_cache.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PASSWD_MAX_USERS 100000
#define PASSWD_MAX_LINE 1024
#define PASSWD_MAX_FILE (64 * 1024 * 1024)
#define USER_MAX 127
/* crypt(3) takes no longer passphrase (ERANGE). */
#define PASSWORD_MAX (CRYPT_MAX_PASSPHRASE_SIZE - 1)
/* base64 of USER_MAX + ':' + PASSWORD_MAX bytes. */
#define TOKEN_MAX ((USER_MAX + 1 + PASSWORD_MAX + 2) / 3 * 4)

/* Verified against for an unknown user in an empty file, so a miss costs one
 * yescrypt run like a hit (default cost, as crypt_gensalt gives). */
static const char dummy_hash[] =
    "$y$j9T$DudLtZmO5Dj4c.y3cNzIs0$lypY1.b5F7M46t4NDy1U/s.RLUoAC41/cgEmr/Jg6T1";

struct pw_entry {
	char *user;
	char *hash;
	size_t line;
};

struct pw_table {
	struct pw_entry *v; /* sorted by user */
	size_t n;
	char *dummy; /* setting used for unknown users */
};

struct est_passwd {
	char *path;
	pthread_mutex_t lock;
	struct pw_table *table;
	/* The file as last seen (loaded or failed), to reload only on change. */
	struct timespec mtime;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct cred_cache *cache; /* or NULL (est_passwd_cache) */
	struct file_watch *watch; /* or NULL: stat on every check */
};

/* 1..USER_MAX bytes, no control characters, no ':', no surrounding blanks. */
static int user_valid(const char *u, size_t n)
{
	if (n == 0 || n > USER_MAX || u[0] == ' ' || u[n - 1] == ' ')
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c < 0x20 || c == 0x7f || c == ':')
			return 0;
	}
	return 1;
}

/* "$y$" then the crypt alphabet, with exactly the four '$' of
 * $y$params$salt$hash and no empty part. */
static int yescrypt_valid(const char *h, size_t n)
{
	if (n < 4 || n >= CRYPT_OUTPUT_SIZE || strncmp(h, "$y$", 3) != 0)
		return 0;
	size_t dollars = 0;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];
		if (c == '$') {
			if (i > 0 && h[i - 1] == '$')
				return 0;
			dollars++;
			continue;
		}
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		         (c >= '0' && c <= '9') || c == '.' || c == '/';
		if (!ok)
			return 0;
	}
	return dollars == 4 && h[n - 1] != '$';
}

static void table_free(struct pw_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++) {
		free(t->v[i].user);
		free(t->v[i].hash);
	}
	free(t->v);
	free(t->dummy);
	free(t);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct pw_entry *)a)->user, ((const struct pw_entry *)b)->user);
}

/* Reads all of fd (at most max bytes); struct buf keeps a NUL after the bytes. */
static int read_all(int fd, const char *path, size_t max, struct buf *b, struct acmera_errmsg *e)
{
	for (;;) {
		char chunk[8192];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
		if (n == 0)
			break;
		if (b->len + (size_t)n > max)
			return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %zu bytes", path,
			                   max);
		if (buf_append(b, chunk, (size_t)n))
			return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* Opens path and checks it is a regular file only its owner may use. */
static int open_private(const char *path, struct stat *st, struct acmera_errmsg *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return acmera_fail(e, errno == ENOENT ? ACMERA_ERR_NOTFOUND : ACMERA_ERR_IO,
		                   "%s: %s", path, strerror(errno));
	if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: not a regular file", path);
	}
	if (st->st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "%s: group or others have access (mode %03o); chmod 600 it",
		                   path, (unsigned)(st->st_mode & 0777));
	}
	return fd;
}

/* The scheme of a hash that is not yescrypt, for the error message. */
static void scheme_of(const char *h, char *out, size_t outlen)
{
	size_t n = 0;
	if (h[0] == '$') {
		const char *end = strchr(h + 1, '$');
		n = end ? (size_t)(end - h) + 1 : 0;
	}
	if (n == 0 || n > 16) {
		snprintf(out, outlen, "an unknown or DES scheme");
		return;
	}
	snprintf(out, outlen, "scheme %.*s", (int)n, h);
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

static int add_entry(struct pw_table *t, size_t *cap, const char *path, size_t lineno, char *line,
                     struct acmera_errmsg *e)
{
	char *colon = strchr(line, ':');
	if (!colon)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s:%zu: not \"user:hash\"", path, lineno);
	*colon = '\0';
	const char *hash = colon + 1;
	if (!user_valid(line, strlen(line)))
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "%s:%zu: user name is empty, longer than %d bytes or has "
		                   "control characters",
		                   path, lineno, USER_MAX);
	if (!yescrypt_valid(hash, strlen(hash))) {
		char scheme[40];
		if (strncmp(hash, "$y$", 3) == 0)
			snprintf(scheme, sizeof(scheme), "a malformed yescrypt hash");
		else
			scheme_of(hash, scheme, sizeof(scheme));
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "%s:%zu: user \"%s\" has %s; only yescrypt ($y$) is accepted "
		                   "(set it again with acmera passwd)",
		                   path, lineno, line, scheme);
	}
	if (t->n == PASSWD_MAX_USERS)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: more than %d users", path,
		                   PASSWD_MAX_USERS);
	if (t->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pw_entry *v = realloc(t->v, ncap * sizeof(*v));
		if (!v)
			return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		t->v = v;
		*cap = ncap;
	}
	struct pw_entry *en = &t->v[t->n];
	en->user = strdup(line);
	en->hash = strdup(hash);
	en->line = lineno;
	if (!en->user || !en->hash) {
		free(en->user);
		free(en->hash);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	t->n++;
	return 0;
}

/* Parses the file text into a sorted table. text is modified. */
static int parse_table(const char *path, char *text, size_t len, struct pw_table **out,
                       struct acmera_errmsg *e)
{
	struct pw_table *t = calloc(1, sizeof(*t));
	size_t cap = 0, lineno = 0;
	int rc = 0;
	if (!t)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (memchr(text, '\0', len)) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: holds a NUL byte", path);
		goto out;
	}
	for (char *line = text; line < text + len;) {
		char *nl = strchr(line, '\n');
		char *next = nl ? nl + 1 : text + len;
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		lineno++;
		if (n > PASSWD_MAX_LINE) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s:%zu: longer than %d bytes", path,
			                 lineno, PASSWD_MAX_LINE);
			goto out;
		}
		line[n] = '\0';
		while (n > 0 && strchr(" \t\r", line[n - 1]))
			line[--n] = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line && *line != '#') {
			rc = add_entry(t, &cap, path, lineno, line, e);
			if (rc)
				goto out;
		}
		line = next;
	}
	if (t->n > 0)
		qsort(t->v, t->n, sizeof(*t->v), cmp_entry);
	for (size_t i = 1; i < t->n; i++)
		if (strcmp(t->v[i - 1].user, t->v[i].user) == 0) {
			size_t a = t->v[i - 1].line, b = t->v[i].line;
			rc = acmera_fail(e, ACMERA_ERR_CONFIG,
			                 "%s: user \"%s\" appears twice (lines %zu and %zu)", path,
			                 t->v[i].user, a < b ? a : b, a < b ? b : a);
			goto out;
		}
	/* An existing entry's setting makes a miss cost what a hit costs. */
	t->dummy = strdup(t->n > 0 ? t->v[0].hash : dummy_hash);
	if (!t->dummy)
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
out:
	if (rc)
		table_free(t);
	else
		*out = t;
	return rc;
}

static int load_table(const char *path, struct stat *st, struct pw_table **out,
                      struct acmera_errmsg *e)
{
	struct buf b = BUF_INIT;
	char empty[1] = "";
	int fd = open_private(path, st, e);
	if (fd < 0)
		return fd;
	int rc = read_all(fd, path, PASSWD_MAX_FILE, &b, e);
	close(fd);
	if (!rc)
		rc = parse_table(path, b.data ? (char *)b.data : empty, b.len, out, e);
	if (b.data)
		OPENSSL_cleanse(b.data, b.len);
	buf_free(&b);
	return rc;
}

static void remember(struct est_passwd *p, const struct stat *st)
{
	p->mtime = st->st_mtim;
	p->dev = st->st_dev;
	p->ino = st->st_ino;
	p->size = st->st_size;
}

int est_passwd_load(const char *path, struct est_passwd **out, struct acmera_errmsg *e)
{
	struct stat st;
	*out = NULL;
	struct est_passwd *p = calloc(1, sizeof(*p));
	if (!p)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	p->path = strdup(path);
	if (!p->path || pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p->path);
		free(p);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	int rc = load_table(path, &st, &p->table, e);
	if (rc) {
		est_passwd_free(p);
		return rc;
	}
	remember(p, &st);
	/* Its first answer is "maybe": a change since load_table is not missed. */
	p->watch = file_watch_new(path);
	*out = p;
	return 0;
}

void est_passwd_free(struct est_passwd *p)
{
	if (!p)
		return;
	table_free(p->table);
	cred_cache_free(p->cache);
	file_watch_free(p->watch);
	pthread_mutex_destroy(&p->lock);
	free(p->path);
	free(p);
}

/* Called with the lock held. A file that changed and no longer loads keeps the
 * previous table (logged once per change), so a bad edit locks nobody out. */
static void maybe_reload(struct est_passwd *p)
{
	struct stat st, loaded;
	struct acmera_errmsg e;
	struct pw_table *t = NULL;
	if (p->watch && !file_watch_maybe_changed(p->watch))
		return;
	if (stat(p->path, &st) != 0)
		return;
	if (st.st_mtim.tv_sec == p->mtime.tv_sec && st.st_mtim.tv_nsec == p->mtime.tv_nsec &&
	    st.st_ino == p->ino && st.st_dev == p->dev && st.st_size == p->size)
		return;
	if (load_table(p->path, &loaded, &t, &e) != 0) {
		remember(p, &st);
		log_event(LOG_LVL_WARN, "est.passwd", "reload=failed error=%s", log_qv(e.text));
		return;
	}
	remember(p, &loaded);
	table_free(p->table);
	p->table = t;
	if (p->cache)
		cred_cache_clear(p->cache);
	log_event(LOG_LVL_INFO, "est.passwd", "reload=ok users=%zu", t->n);
}

static int is_b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Splits "Basic <token68>" into user and password (NUL-terminated; the caller
 * wipes pass). */
static int parse_basic(const char *h, char user[USER_MAX + 1], char pass[PASSWORD_MAX + 1],
                       struct acmera_errmsg *e)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int rc = 0;
	if (!h)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no Authorization header");
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Basic", 5) != 0 || (h[5] != ' ' && h[5] != '\t'))
		return acmera_fail(e, ACMERA_ERR_INVAL, "Authorization is not Basic");
	h += 5;
	while (*h == ' ' || *h == '\t')
		h++;
	size_t n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if (n == 0 || n > TOKEN_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "Basic credentials are empty or too long");
	/* Strict base64: the alphabet, then at most two '=' that complete a group. */
	size_t data = 0;
	while (data < n && is_b64_char(h[data]))
		data++;
	size_t pads = n - data;
	if (pads > 2 || (pads > 0 && n % 4 != 0) || strspn(h + data, "=") < pads)
		return acmera_fail(e, ACMERA_ERR_INVAL, "Basic credentials are not base64");
	if (b64_decode(h, n, &raw, &rawlen, NULL) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "Basic credentials are not base64");
	uint8_t *colon = memchr(raw, ':', rawlen);
	if (!colon) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "Basic credentials have no ':'");
		goto out;
	}
	size_t ulen = (size_t)(colon - raw), plen = rawlen - ulen - 1;
	if (ulen == 0 || ulen > USER_MAX || plen > PASSWORD_MAX) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "Basic user name is empty or longer than %d bytes, or the "
		                 "password longer than %d",
		                 USER_MAX, PASSWORD_MAX);
		goto out;
	}
	for (size_t i = 0; i < ulen; i++)
		if (raw[i] < 0x20 || raw[i] == 0x7f) {
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 "Basic user name has control characters");
			goto out;
		}
	/* crypt(3) would stop at a NUL and check a shorter password. */
	if (memchr(colon + 1, '\0', plen)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "Basic password has a NUL byte");
		goto out;
	}
	memcpy(user, raw, ulen);
	user[ulen] = '\0';
	memcpy(pass, colon + 1, plen);
	pass[plen] = '\0';
out:
	OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return rc;
}

/* 1 when crypt(pass, setting) equals setting, the full hash string. */
static int hash_matches(const char *pass, const char *setting)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	int ok = 0;
	if (!cd)
		return 0;
	const char *h = crypt_rn(pass, setting, cd, (int)sizeof(*cd));
	size_t n = strlen(setting);
	if (h && h[0] != '*' && strlen(h) == n)
		ok = CRYPTO_memcmp(h, setting, n) == 0;
	OPENSSL_cleanse(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int est_passwd_cache(struct est_passwd *p, int ttl_s, struct acmera_errmsg *e)
{
	struct cred_cache *c = NULL;
	if (ttl_s > 0 && cred_cache_new(ttl_s, &c, e))
		return ACMERA_ERR_NOMEM;
	pthread_mutex_lock(&p->lock);
	cred_cache_free(p->cache);
	p->cache = c;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

int est_passwd_check(struct est_passwd *p, const char *authorization, char *user, size_t userlen,
                     struct acmera_errmsg *e)
{
	char u[USER_MAX + 1], pass[PASSWORD_MAX + 1], hash[CRYPT_OUTPUT_SIZE];
	uint8_t key[32];
	int found = 0, cached = 0;
	int64_t now = (int64_t)time(NULL);
	int rc = parse_basic(authorization, u, pass, e);
	if (rc)
		return rc;
	if (strlen(u) >= userlen) {
		OPENSSL_cleanse(pass, sizeof(pass));
		return acmera_fail(e, ACMERA_ERR_INVAL, "user name buffer too small");
	}
	pthread_mutex_lock(&p->lock);
	maybe_reload(p);
	struct pw_entry probe = {.user = u};
	const struct pw_table *t = p->table;
	const struct pw_entry *en =
	    t->n ? bsearch(&probe, t->v, t->n, sizeof(*t->v), cmp_entry) : NULL;
	found = en != NULL;
	if (found && p->cache) {
		cred_cache_key(p->cache, authorization, key);
		cached = cred_cache_hit(p->cache, key, en->hash, now);
	}
	/* Copied so that yescrypt runs outside the lock. */
	snprintf(hash, sizeof(hash), "%s", found ? en->hash : t->dummy);
	pthread_mutex_unlock(&p->lock);

	int match = cached || hash_matches(pass, hash);
	OPENSSL_cleanse(pass, sizeof(pass));
	if (!found || !match)
		return acmera_fail(e, ACMERA_ERR_REFUSED, "wrong user name or password");
	if (!cached && p->cache) {
		/* Recorded against the hash just verified: had the file changed meanwhile,
		 * the new entry would not match it. */
		pthread_mutex_lock(&p->lock);
		if (p->cache)
			cred_cache_put(p->cache, key, hash, now);
		pthread_mutex_unlock(&p->lock);
	}
	memcpy(user, u, strlen(u) + 1);
	return 0;
}

/* The user name of an entry line, or 0 when the line is blank or a comment. */
static size_t line_user(const char *line, size_t n, const char **user)
{
	while (n > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		n--;
	}
	if (n == 0 || *line == '#' || *line == '\r')
		return 0;
	const char *colon = memchr(line, ':', n);
	*user = line;
	return colon ? (size_t)(colon - line) : n;
}

/* The existing file with user's line replaced (or appended) by "user:hash". */
static int rewrite(const char *old, size_t oldlen, const char *user, const char *hash,
                   struct buf *b)
{
	size_t ulen = strlen(user);
	int done = 0;
	for (const char *line = old; line < old + oldlen;) {
		const char *nl = memchr(line, '\n', (size_t)(old + oldlen - line));
		size_t n = nl ? (size_t)(nl - line) : (size_t)(old + oldlen - line);
		const char *next = nl ? nl + 1 : old + oldlen;
		const char *lu = NULL;
		size_t lulen = line_user(line, n, &lu);
		if (lulen == ulen && memcmp(lu, user, ulen) == 0) {
			/* Later duplicates would make the file fail to load. */
			if (!done && (buf_append_str(b, user) || buf_append_str(b, ":") ||
			              buf_append_str(b, hash) || buf_append_str(b, "\n")))
				return ACMERA_ERR_NOMEM;
			done = 1;
		} else if (buf_append(b, line, n) || buf_append_str(b, "\n")) {
			return ACMERA_ERR_NOMEM;
		}
		line = next;
	}
	if (!done && (buf_append_str(b, user) || buf_append_str(b, ":") ||
	              buf_append_str(b, hash) || buf_append_str(b, "\n")))
		return ACMERA_ERR_NOMEM;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename durable. */
static void sync_dir(const char *path)
{
	char *copy = strdup(path);
	if (!copy)
		return;
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(copy);
}

/* Writes b to path through a 0600 temporary file and rename; keeps the owner of
 * an existing file (as root for a service account). */
static int replace_file(const char *path, const struct buf *b, const struct stat *old,
                        struct acmera_errmsg *e)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 8);
	int rc = 0;
	if (!tmp)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	/* mkostemp: O_EXCL and mode 0600, never through a planted link. */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: cannot create a temporary file: %s", path,
		                 strerror(errno));
		free(tmp);
		return rc;
	}
	if (old && (old->st_uid != geteuid() || old->st_gid != getegid()) &&
	    fchown(fd, old->st_uid, old->st_gid) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: cannot keep the owner %u:%u: %s", path,
		                 (unsigned)old->st_uid, (unsigned)old->st_gid, strerror(errno));
		goto out;
	}
	if (write_all(fd, (const char *)b->data, b->len) != 0 || fsync(fd) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
		goto out;
	}
	sync_dir(path);
out:
	if (fd >= 0)
		close(fd);
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

int est_passwd_set(const char *path, const char *user, const char *password,
                   struct acmera_errmsg *e)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct buf old = BUF_INIT, out = BUF_INIT;
	struct stat st;
	struct crypt_data *cd = NULL;
	int have_old = 0, rc = 0;
	if (!user_valid(user, strlen(user)))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "user name must be 1 to %d bytes without ':', control "
		                   "characters or surrounding spaces",
		                   USER_MAX);
	size_t plen = strlen(password);
	if (plen == 0 || plen > PASSWORD_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "password must be 1 to %d bytes",
		                   PASSWORD_MAX);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	if (fd >= 0) {
		have_old = 1;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return acmera_fail(e, ACMERA_ERR_IO, "%s: not a regular file", path);
		}
		rc = read_all(fd, path, PASSWD_MAX_FILE, &old, e);
		close(fd);
		if (rc)
			goto out;
	}
	cd = calloc(1, sizeof(*cd));
	if (!cd) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Count 0: libxcrypt's default cost; the random salt comes from getentropy. */
	if (!crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt))) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "crypt_gensalt: %s", strerror(errno));
		goto out;
	}
	const char *hash = crypt_rn(password, salt, cd, (int)sizeof(*cd));
	if (!hash || !yescrypt_valid(hash, strlen(hash))) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "crypt: yescrypt failed: %s", strerror(errno));
		goto out;
	}
	if (rewrite(have_old ? (const char *)old.data : "", old.len, user, hash, &out)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	rc = replace_file(path, &out, have_old ? &st : NULL, e);
out:
	if (cd) {
		OPENSSL_cleanse(cd, sizeof(*cd));
		free(cd);
	}
	if (old.data)
		OPENSSL_cleanse(old.data, old.len);
	if (out.data)
		OPENSSL_cleanse(out.data, out.len);
	buf_free(&old);
	buf_free(&out);
	return rc;
}
