/* The configuration file, parsed by inih. inih's handler does not get the line
 * number in Debian's build, so we feed inih through our own line reader, which
 * counts lines, strips indentation (so no line is ever taken as an inih
 * continuation line), and checks section headers itself: inih never tells the
 * handler about a section without keys, and git-config-like `[name "sub"]`
 * headers need checking anyway. Keys are described by one table. */
#include "base/config.h"

#include <ini.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONFIG_MAX_FILE (1024 * 1024) /* a config file is small; refuse anything big */

enum section { SEC_ACME, SEC_DNS, SEC_ISSUER, SEC_STORE, SEC_LOG, SEC_EST, SEC_PROFILE, SEC_CA };
static const char *const section_names[] = {"acme", "dns", "issuer",  "store",
                                            "log",  "est", "profile", "ca"};
#define N_SECTIONS (sizeof(section_names) / sizeof(section_names[0]))

enum key_type {
	KEY_STR,         /* any non-empty text */
	KEY_HTTPS,       /* an https:// URL */
	KEY_CHOICE,      /* one of key.choices */
	KEY_INT,         /* decimal from key.min to key.max */
	KEY_BOOL,        /* true/false, yes/no, 1/0 */
	KEY_DOMAINS,     /* repeatable domain name, into a list */
	KEY_DOMAIN_WORDS /* domain names separated by spaces or commas, repeatable, a list */
};

struct key {
	enum section sec;
	const char *name;
	enum key_type type;
	size_t off;                 /* the field in struct config */
	size_t n_off;               /* KEY_DOMAINS: its count */
	int min, max;               /* KEY_INT */
	const char *const *choices; /* KEY_CHOICE, NULL-terminated */
};

/* The names acme_key_type_parse() (acme/jws.h) knows; base cannot call it. */
static const char *const key_types[] = {"p256",    "ec256",   "p384",    "ec384",
                                        "rsa2048", "rsa3072", "rsa4096", NULL};
static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
static const char *const log_dests[] = {"stderr", "syslog", NULL};

#define F(f) offsetof(struct config, f)
#define STR(s, n, f)                                                                               \
	{                                                                                          \
		s, n, KEY_STR, F(f), 0, 0, 0, NULL                                                 \
	}
#define INT(s, n, f, lo, hi)                                                                       \
	{                                                                                          \
		s, n, KEY_INT, F(f), 0, lo, hi, NULL                                               \
	}
#define CHOICE(s, n, f, c)                                                                         \
	{                                                                                          \
		s, n, KEY_CHOICE, F(f), 0, 0, 0, c                                                 \
	}

/* Ranges are documented in docs/acmera.conf.5; keep both in step. */
static const struct key keys[] = {
    {SEC_ACME, "directory", KEY_HTTPS, F(acme.directory), 0, 0, 0, NULL},
    STR(SEC_ACME, "ca_bundle", acme.ca_bundle),
    CHOICE(SEC_ACME, "account_key_type", acme.account_key_type, key_types),
    STR(SEC_ACME, "contact", acme.contact),
    STR(SEC_ACME, "eab_kid", acme.eab_kid),
    STR(SEC_ACME, "eab_hmac_key_file", acme.eab_hmac_key_file),
    {SEC_ACME, "preauthorize", KEY_DOMAINS, F(acme.preauthorize), F(acme.n_preauthorize), 0, 0,
     NULL},
    STR(SEC_ACME, "alternate_chain", acme.alternate_chain),
    INT(SEC_ACME, "timeout", acme.timeout, 1, 3600),
    INT(SEC_ACME, "poll_max", acme.poll_max, 1, 3600),
    STR(SEC_DNS, "server", dns.server),
    STR(SEC_DNS, "tsig_keyfile", dns.tsig_keyfile),
    {SEC_DNS, "zone", KEY_DOMAINS, F(dns.zones), F(dns.n_zones), 0, 0, NULL},
    STR(SEC_DNS, "hook", dns.hook),
    INT(SEC_DNS, "ttl", dns.ttl, 0, 86400),
    INT(SEC_DNS, "timeout", dns.timeout, 100, 60000),
    {SEC_DNS, "propagation_check", KEY_BOOL, F(dns.propagation_check), 0, 0, 1, NULL},
    INT(SEC_DNS, "propagation_timeout", dns.propagation_timeout, 1, 3600),
    INT(SEC_ISSUER, "parallel", issuer.parallel, 1, 10000),
    INT(SEC_ISSUER, "lease", issuer.lease, 3, 86400),
    INT(SEC_ISSUER, "batch_wait", issuer.batch_wait, 0, 60000),
    INT(SEC_ISSUER, "max_attempts", issuer.max_attempts, 1, 1000),
    STR(SEC_STORE, "path", store.path),
    CHOICE(SEC_LOG, "level", log.level, log_levels),
    CHOICE(SEC_LOG, "destination", log.destination, log_dests),
    STR(SEC_EST, "listen", est.listen),
    STR(SEC_EST, "cert", est.cert),
    STR(SEC_EST, "key", est.key),
    INT(SEC_EST, "workers", est.workers, 1, 64),
    INT(SEC_EST, "wait", est.wait, 0, 60000),
    INT(SEC_EST, "retry_after", est.retry_after, 1, 86400),
    INT(SEC_EST, "max_body", est.max_body, 1024, 1048576),
    INT(SEC_EST, "max_connections", est.max_connections, 1, 1000000),
    INT(SEC_EST, "handshake_timeout", est.handshake_timeout, 100, 600000),
    INT(SEC_EST, "header_timeout", est.header_timeout, 100, 600000),
    INT(SEC_EST, "idle_timeout", est.idle_timeout, 100, 3600000),
    STR(SEC_EST, "passwd_file", est.passwd_file),
    INT(SEC_EST, "auth_cache", est.auth_cache, 0, 86400),
    STR(SEC_EST, "client_ca", est.client_ca),
    STR(SEC_EST, "ca_chain", est.ca_chain),
    STR(SEC_CA, "listen", ca.listen),
    {SEC_CA, "url", KEY_HTTPS, F(ca.url), 0, 0, 0, NULL},
    STR(SEC_CA, "cert", ca.cert),
    STR(SEC_CA, "key", ca.key),
    STR(SEC_CA, "dir", ca.dir),
    STR(SEC_CA, "issuer_cert", ca.issuer_cert),
    STR(SEC_CA, "issuer_key", ca.issuer_key),
    STR(SEC_CA, "name", ca.name),
    {SEC_CA, "domains", KEY_DOMAIN_WORDS, F(ca.domains), F(ca.n_domains), 0, 0, NULL},
    STR(SEC_CA, "key_types", ca.key_types),
    INT(SEC_CA, "lifetime", ca.lifetime, 3600, 398 * 86400),
    INT(SEC_CA, "authz_lifetime", ca.authz_lifetime, 60, 398 * 86400),
    INT(SEC_CA, "order_lifetime", ca.order_lifetime, 60, 398 * 86400),
    STR(SEC_CA, "resolver", ca.resolver),
    INT(SEC_CA, "http_port", ca.http_port, 1, 65535),
    INT(SEC_CA, "challenge_timeout", ca.challenge_timeout, 100, 60000),
    INT(SEC_CA, "workers", ca.workers, 1, 64),
    INT(SEC_CA, "validators", ca.validators, 1, 64),
    {SEC_CA, "eab_required", KEY_BOOL, F(ca.eab_required), 0, 0, 1, NULL},
    STR(SEC_CA, "eab_file", ca.eab_file),
    STR(SEC_CA, "terms_of_service", ca.terms_of_service),
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

/* Keys of [profile "LABEL"] sections, relative to struct config_profile. */
static const char *const auth_choices[] = {"cert", "basic", "cert,basic", "basic,cert", NULL};
#define PF(f) offsetof(struct config_profile, f)
static const struct key profile_keys[] = {
    {SEC_PROFILE, "name_template", KEY_STR, PF(name_template), 0, 0, 0, NULL},
    {SEC_PROFILE, "trust_anchors", KEY_STR, PF(trust_anchors), 0, 0, 0, NULL},
    {SEC_PROFILE, "auth", KEY_CHOICE, PF(auth), 0, 0, 0, auth_choices},
    {SEC_PROFILE, "key_types", KEY_STR, PF(key_types), 0, 0, 0, NULL},
    {SEC_PROFILE, "rsa_min_bits", KEY_INT, PF(rsa_min_bits), 0, 2048, 16384, NULL},
    {SEC_PROFILE, "channel_binding", KEY_BOOL, PF(channel_binding), 0, 0, 1, NULL},
};
#define N_PROFILE_KEYS (sizeof(profile_keys) / sizeof(profile_keys[0]))

struct parse {
	struct config *c;
	const char *path;
	const char *p, *end; /* the unread part of the file */
	int lineno;          /* of the line inih is working on */
	int fail_line;       /* first line we failed on, 0 for none */
	int fail_rc;
	int seen[N_KEYS]; /* line where a single-valued key was set */
	int pseen[CONFIG_MAX_PROFILES][N_PROFILE_KEYS];
	struct acmera_errmsg *e;
};

/* Records the first failure as "FILE:LINE: reason". */
__attribute__((format(printf, 3, 4))) static int fail_at(struct parse *ps, int code,
                                                         const char *fmt, ...)
{
	char reason[ACMERA_ERRMSG_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ps->fail_line = ps->lineno;
	ps->fail_rc = code;
	return acmera_fail(ps->e, code, "%s:%d: %s", ps->path, ps->lineno, reason);
}

static int section_find(const char *name)
{
	for (size_t i = 0; i < N_SECTIONS; i++)
		if (strcmp(name, section_names[i]) == 0)
			return (int)i;
	return -1;
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.';
}

/* The quoted part of `profile "LABEL"` between p and close: plain label characters. */
static int profile_label_ok(const char *p, const char *close)
{
	const char *q = memchr(p, '"', (size_t)(close - p));
	if (!q)
		return 0;
	size_t n = 0;
	for (q++; q < close && *q != '"'; q++, n++)
		if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
		      (*q >= '0' && *q <= '9') || *q == '-' || *q == '_'))
			return 0;
	return n >= 1 && n <= 63;
}

/* Checks a header line "[name]" or `[name "sub"]` (git-config style; in sub, \"
 * and \\ are escapes). Every header with a subsection is unknown for now; a
 * later profile section will accept some. */
static int check_section(struct parse *ps, const char *line)
{
	const char *close = strchr(line, ']');
	if (!close)
		return fail_at(ps, ACMERA_ERR_CONFIG, "malformed section header: no ']'");
	const char *s = line + 1;
	size_t name_len = 0;
	while (s + name_len < close && is_name_char(s[name_len]))
		name_len++;
	const char *q = s + name_len;
	int has_sub = 0;
	if (q < close && (*q == ' ' || *q == '\t')) {
		while (q < close && (*q == ' ' || *q == '\t'))
			q++;
		if (q == close || *q != '"')
			goto malformed;
		for (q++; q < close && *q != '"'; q++)
			if (*q == '\\' && q + 1 < close)
				q++;
		if (q == close)
			goto malformed;
		has_sub = 1;
		q++;
		while (q < close && (*q == ' ' || *q == '\t'))
			q++;
	}
	if (name_len == 0 || q != close)
		goto malformed;
	/* inih ignores what follows ']'; allow only a comment there. */
	for (const char *t = close + 1; *t && *t != ';' && *t != '#'; t++)
		if (*t != ' ' && *t != '\t')
			return fail_at(ps, ACMERA_ERR_CONFIG, "text after section header [%.*s]",
			               (int)(close - s), s);
	char name[64];
	if (name_len < sizeof(name)) {
		memcpy(name, s, name_len);
		name[name_len] = '\0';
		int sec = section_find(name);
		/* Only [profile "LABEL"] has (and needs) a subsection. */
		if (sec >= 0 && has_sub == (sec == SEC_PROFILE)) {
			if (sec == SEC_PROFILE && !profile_label_ok(s + name_len, close))
				return fail_at(
				    ps, ACMERA_ERR_CONFIG,
				    "[%.*s]: a label is 1 to 63 letters, digits, '-' or '_'",
				    (int)(close - s), s);
			return 0;
		}
	}
	return fail_at(ps, ACMERA_ERR_CONFIG, "unknown section [%.*s]", (int)(close - s), s);
malformed:
	return fail_at(ps, ACMERA_ERR_CONFIG, "malformed section header [%.*s]", (int)(close - s),
	               s);
}

/* inih's reader: hands over one line at a time, as fgets would, without its
 * indentation or line end. Returns NULL at the end or after a failure, which
 * stops inih. */
static char *read_line(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	if (ps->fail_line || ps->p >= ps->end)
		return NULL;
	const char *b = ps->p;
	const char *nl = memchr(b, '\n', (size_t)(ps->end - b));
	const char *eol = nl ? nl : ps->end;
	ps->p = nl ? nl + 1 : ps->end;
	ps->lineno++;
	if (ps->lineno == 1 && eol - b >= 3 && memcmp(b, "\xef\xbb\xbf", 3) == 0)
		b += 3; /* UTF-8 byte order mark */
	if (memchr(b, '\0', (size_t)(eol - b))) {
		fail_at(ps, ACMERA_ERR_CONFIG, "NUL byte in line");
		return NULL;
	}
	while (b < eol && (*b == ' ' || *b == '\t' || *b == '\r' || *b == '\v' || *b == '\f'))
		b++;
	if (eol > b && eol[-1] == '\r')
		eol--;
	size_t len = (size_t)(eol - b);
	if (num < 2 || len > (size_t)num - 1) {
		fail_at(ps, ACMERA_ERR_CONFIG, "line longer than %d characters",
		        num > 0 ? num - 1 : 0);
		return NULL;
	}
	memcpy(str, b, len);
	str[len] = '\0';
	if (str[0] == '[' && check_section(ps, str) != 0)
		return NULL;
	return str;
}

static int parse_int(const char *v, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	/* strtol skips leading space and takes a '+'; a config value is plain digits. */
	if (errno || end == v || *end != '\0' || v[0] == ' ' || v[0] == '+' || n < min || n > max)
		return -1;
	*out = (int)n;
	return 0;
}

static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = {"true", "yes", "1"};
	static const char *const no[] = {"false", "no", "0"};
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(v, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(v, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* A DNS name in presentation form: labels of 1 to 63 letters, digits, '-' or
 * '_', at most 253 characters, an optional final dot. */
static int is_domain(const char *v)
{
	size_t len = strlen(v);
	if (len > 0 && v[len - 1] == '.')
		len--;
	if (len == 0 || len > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		char c = v[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!is_name_char(c) || ++label > 63)
			return 0;
	}
	return label > 0;
}

static int is_choice(const char *v, const char *const *choices)
{
	for (; *choices; choices++)
		if (strcmp(v, *choices) == 0)
			return 1;
	return 0;
}

static int set_value(struct parse *ps, const struct key *k, void *base, const char *sec,
                     const char *value)
{
	void *field = (char *)base + k->off;
	const char *name = k->name;
	int rc;

	switch (k->type) {
	case KEY_HTTPS:
		if (strncasecmp(value, "https://", 8) != 0 || value[8] == '\0')
			return fail_at(ps, ACMERA_ERR_CONFIG,
			               "[%s] %s: '%s' is not an https:// URL", sec, name, value);
		break;
	case KEY_CHOICE:
		if (!is_choice(value, k->choices)) {
			char list[128] = "";
			for (const char *const *c = k->choices; *c; c++) {
				if (c != k->choices)
					strncat(list, ", ", sizeof(list) - strlen(list) - 1);
				strncat(list, *c, sizeof(list) - strlen(list) - 1);
			}
			return fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: '%s' is not one of %s", sec,
			               name, value, list);
		}
		break;
	case KEY_INT:
		if (parse_int(value, k->min, k->max, field) != 0)
			return fail_at(ps, ACMERA_ERR_CONFIG,
			               "[%s] %s: '%s' is not a number from %d to %d", sec, name,
			               value, k->min, k->max);
		return 0;
	case KEY_BOOL:
		if (parse_bool(value, field) != 0)
			return fail_at(ps, ACMERA_ERR_CONFIG,
			               "[%s] %s: '%s' is not a boolean (true/false, yes/no, 1/0)",
			               sec, name, value);
		return 0;
	case KEY_DOMAINS: {
		if (!is_domain(value))
			return fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: '%s' is not a domain name",
			               sec, name, value);
		struct acmera_errmsg why = {""};
		rc = config_list_add(field, (size_t *)((char *)ps->c + k->n_off), value, &why);
		if (rc)
			return fail_at(ps, rc, "[%s] %s: %s", sec, name, why.text);
		return 0;
	}
	case KEY_DOMAIN_WORDS: {
		char words[1024];
		char *save = NULL;
		int n = 0;
		if (strlen(value) >= sizeof(words))
			return fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: value too long", sec, name);
		strcpy(words, value);
		for (char *t = strtok_r(words, ", \t", &save); t;
		     t = strtok_r(NULL, ", \t", &save)) {
			struct acmera_errmsg why = {""};
			if (!is_domain(t))
				return fail_at(ps, ACMERA_ERR_CONFIG,
				               "[%s] %s: '%s' is not a domain name", sec, name, t);
			rc = config_list_add(field, (size_t *)((char *)ps->c + k->n_off), t, &why);
			if (rc)
				return fail_at(ps, rc, "[%s] %s: %s", sec, name, why.text);
			n++;
		}
		if (n == 0)
			return fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: no domain name", sec, name);
		return 0;
	}
	case KEY_STR:
		break;
	}
	if (config_set_str(field, value) != 0)
		return fail_at(ps, ACMERA_ERR_NOMEM, "out of memory");
	return 0;
}

static int key_types_valid(const char *v)
{
	static const char *const kinds[] = {"p256", "p384", "ed25519", "rsa", NULL};
	char buf[128];
	if (strlen(v) >= sizeof(buf))
		return 0;
	strcpy(buf, v);
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save), n++)
		if (!is_choice(t, kinds))
			return 0;
	return n > 0;
}

static int on_profile_value(struct parse *ps, const char *section, const char *name,
                            const char *value);

/* inih's handler: 1 to go on, 0 on error. */
static int on_value(void *user, const char *section, const char *name, const char *value)
{
	struct parse *ps = user;
	if (section[0] == '\0') {
		fail_at(ps, ACMERA_ERR_CONFIG, "key '%s' outside any section", name);
		return 0;
	}
	if (strncmp(section, "profile", 7) == 0 && (section[7] == ' ' || section[7] == '\t'))
		return on_profile_value(ps, section, name, value);
	int sec = section_find(section);
	if (sec < 0) { /* check_section already refused it; kept for safety */
		fail_at(ps, ACMERA_ERR_CONFIG, "unknown section [%s]", section);
		return 0;
	}
	const struct key *k = NULL;
	for (size_t i = 0; i < N_KEYS && !k; i++)
		if (keys[i].sec == (enum section)sec && strcmp(keys[i].name, name) == 0)
			k = &keys[i];
	if (!k) {
		fail_at(ps, ACMERA_ERR_CONFIG, "unknown key '%s' in section [%s]", name, section);
		return 0;
	}
	size_t ki = (size_t)(k - keys);
	if (k->type != KEY_DOMAINS && k->type != KEY_DOMAIN_WORDS && ps->seen[ki]) {
		fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: given twice (first on line %d)", section,
		        name, ps->seen[ki]);
		return 0;
	}
	if (!value || value[0] == '\0') {
		fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: empty value", section, name);
		return 0;
	}
	if (k->sec == SEC_CA && strcmp(name, "key_types") == 0 && !key_types_valid(value)) {
		fail_at(ps, ACMERA_ERR_CONFIG,
		        "[ca] key_types: '%s' is not a list of p256, p384, ed25519, rsa", value);
		return 0;
	}
	if (set_value(ps, k, ps->c, section, value) != 0)
		return 0;
	ps->seen[ki] = ps->lineno;
	return 1;
}

/* A label is what appears in /.well-known/est/LABEL/: letters, digits, '-', '_'. */
static int is_label(const char *v)
{
	size_t n = strlen(v);
	if (n == 0 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || v[i] == '-' || v[i] == '_'))
			return 0;
	return 1;
}

/* [profile "LABEL"] keys: the profile is created at its first key. */
static int on_profile_value(struct parse *ps, const char *section, const char *name,
                            const char *value)
{
	/* section is `profile "LABEL"` as written; escapes are not allowed in labels. */
	const char *q = strchr(section, '"');
	const char *q2 = q ? strchr(q + 1, '"') : NULL;
	char label[64];
	if (!q || !q2 || (size_t)(q2 - q - 1) >= sizeof(label)) {
		fail_at(ps, ACMERA_ERR_CONFIG, "[%s]: malformed profile label", section);
		return 0;
	}
	memcpy(label, q + 1, (size_t)(q2 - q - 1));
	label[q2 - q - 1] = '\0';
	if (!is_label(label)) {
		fail_at(ps, ACMERA_ERR_CONFIG,
		        "[%s]: a label is 1 to 63 letters, digits, '-' or '_'", section);
		return 0;
	}
	size_t pi = 0;
	while (pi < ps->c->n_profiles && strcmp(ps->c->profiles[pi].label, label) != 0)
		pi++;
	if (pi == ps->c->n_profiles) {
		if (pi == CONFIG_MAX_PROFILES) {
			fail_at(ps, ACMERA_ERR_CONFIG, "more than %d profiles",
			        CONFIG_MAX_PROFILES);
			return 0;
		}
		struct config_profile *p = &ps->c->profiles[pi];
		p->rsa_min_bits = 2048;
		if (config_set_str(&p->label, label) || config_set_str(&p->auth, "cert,basic") ||
		    config_set_str(&p->key_types, "p256,p384,rsa")) {
			fail_at(ps, ACMERA_ERR_NOMEM, "out of memory");
			return 0;
		}
		ps->c->n_profiles++;
	}
	const struct key *k = NULL;
	for (size_t i = 0; i < N_PROFILE_KEYS && !k; i++)
		if (strcmp(profile_keys[i].name, name) == 0)
			k = &profile_keys[i];
	if (!k) {
		fail_at(ps, ACMERA_ERR_CONFIG, "unknown key '%s' in section [%s]", name, section);
		return 0;
	}
	size_t ki = (size_t)(k - profile_keys);
	if (ps->pseen[pi][ki]) {
		fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: given twice (first on line %d)", section,
		        name, ps->pseen[pi][ki]);
		return 0;
	}
	if (!value || value[0] == '\0') {
		fail_at(ps, ACMERA_ERR_CONFIG, "[%s] %s: empty value", section, name);
		return 0;
	}
	if (strcmp(name, "key_types") == 0 && !key_types_valid(value)) {
		fail_at(ps, ACMERA_ERR_CONFIG,
		        "[%s] key_types: '%s' is not a comma list of p256, p384, ed25519, rsa",
		        section, value);
		return 0;
	}
	if (set_value(ps, k, &ps->c->profiles[pi], section, value) != 0)
		return 0;
	ps->pseen[pi][ki] = ps->lineno;
	return 1;
}

/* Reads the whole file, at most CONFIG_MAX_FILE bytes, into a NUL-terminated
 * heap buffer. */
static int read_file(const char *path, char **out, size_t *len, struct acmera_errmsg *e)
{
	int rc = 0;
	char *data = NULL;
	FILE *f = fopen(path, "re");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	data = malloc(CONFIG_MAX_FILE + 2);
	if (!data) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "%s: out of memory", path);
		goto out;
	}
	/* One byte more than allowed tells a too-large file apart. */
	size_t n = fread(data, 1, CONFIG_MAX_FILE + 1, f);
	if (ferror(f)) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
		goto out;
	}
	if (n > CONFIG_MAX_FILE) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %d bytes", path,
		                 CONFIG_MAX_FILE);
		goto out;
	}
	data[n] = '\0';
	*out = data;
	*len = n;
	data = NULL;
out:
	free(data);
	fclose(f);
	return rc;
}

int config_load(struct config *c, const char *path, struct acmera_errmsg *e)
{
	char *text = NULL;
	size_t len = 0;
	if (!path)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no configuration file given");
	int rc = read_file(path, &text, &len, e);
	if (rc)
		return rc;
	struct parse ps = {.c = c, .path = path, .p = text, .end = text + len, .e = e};
	int line = ini_parse_stream(read_line, &ps, on_value, &ps);
	if (line == -2) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "%s: out of memory", path);
	} else if (line > 0 && (ps.fail_line == 0 || line < ps.fail_line)) {
		/* inih's own complaint: a line that is neither comment, section nor key. */
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "%s:%d: expected 'key = value', '[section]' or a comment", path,
		                 line);
	} else if (ps.fail_line) {
		rc = ps.fail_rc;
	} else if (line != 0) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: cannot parse", path);
	}
	free(text);
	return rc;
}

int config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->acme.timeout = 30;
	c->acme.poll_max = 30;
	c->dns.ttl = 60;
	c->dns.timeout = 3000;
	c->dns.propagation_check = 0;
	c->dns.propagation_timeout = 60;
	c->issuer.parallel = 256;
	c->issuer.lease = 60;
	c->issuer.batch_wait = 200;
	c->issuer.max_attempts = 10;
	c->est.workers = 1;
	c->est.wait = 2000;
	c->est.retry_after = 5;
	c->est.auth_cache = 300;
	c->est.max_body = 65536;
	c->est.max_connections = 1000;
	c->est.handshake_timeout = 10000;
	c->est.header_timeout = 10000;
	c->est.idle_timeout = 60000;
	c->ca.lifetime = 7776000;
	c->ca.authz_lifetime = 2592000;
	c->ca.order_lifetime = 604800;
	c->ca.http_port = 80;
	c->ca.challenge_timeout = 5000;
	c->ca.workers = 1;
	c->ca.validators = 2;
	if (config_set_str(&c->ca.listen, "127.0.0.1:14000") ||
	    config_set_str(&c->ca.dir, "acmera-ca") ||
	    config_set_str(&c->ca.name, "acmera private") ||
	    config_set_str(&c->ca.key_types, "p256 p384 rsa ed25519") ||
	    config_set_str(&c->ca.resolver, "127.0.0.1:53") ||
	    config_set_str(&c->acme.account_key_type, "p256") ||
	    config_set_str(&c->est.listen, "127.0.0.1:8443") ||
	    config_set_str(&c->store.path, "acmera.db") || config_set_str(&c->log.level, "info") ||
	    config_set_str(&c->log.destination, "stderr")) {
		config_free(c);
		return ACMERA_ERR_NOMEM;
	}
	return 0;
}

int config_set_str(char **field, const char *value)
{
	char *v = NULL;
	if (value && !(v = strdup(value)))
		return ACMERA_ERR_NOMEM;
	free(*field);
	*field = v;
	return 0;
}

int config_list_add(char **list, size_t *n, const char *value, struct acmera_errmsg *e)
{
	if (*n >= CONFIG_MAX_LIST)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "more than %d values", CONFIG_MAX_LIST);
	char *v = strdup(value);
	if (!v)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	list[(*n)++] = v;
	return 0;
}

static void free_list(char **list, size_t n)
{
	for (size_t i = 0; i < n && i < CONFIG_MAX_LIST; i++)
		free(list[i]);
}

void config_free(struct config *c)
{
	char **strs[] = {
	    &c->acme.directory,
	    &c->acme.ca_bundle,
	    &c->acme.account_key_type,
	    &c->acme.contact,
	    &c->acme.eab_kid,
	    &c->acme.eab_hmac_key_file,
	    &c->acme.alternate_chain,
	    &c->dns.server,
	    &c->dns.tsig_keyfile,
	    &c->dns.hook,
	    &c->store.path,
	    &c->log.level,
	    &c->log.destination,
	    &c->est.listen,
	    &c->est.cert,
	    &c->est.key,
	    &c->est.passwd_file,
	    &c->est.client_ca,
	    &c->est.ca_chain,
	    &c->ca.listen,
	    &c->ca.url,
	    &c->ca.cert,
	    &c->ca.key,
	    &c->ca.dir,
	    &c->ca.issuer_cert,
	    &c->ca.issuer_key,
	    &c->ca.name,
	    &c->ca.key_types,
	    &c->ca.resolver,
	    &c->ca.eab_file,
	    &c->ca.terms_of_service,
	};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	free_list(c->acme.preauthorize, c->acme.n_preauthorize);
	free_list(c->dns.zones, c->dns.n_zones);
	free_list(c->ca.domains, c->ca.n_domains);
	for (size_t i = 0; i < c->n_profiles && i < CONFIG_MAX_PROFILES; i++) {
		struct config_profile *p = &c->profiles[i];
		free(p->label);
		free(p->name_template);
		free(p->trust_anchors);
		free(p->auth);
		free(p->key_types);
	}
	memset(c, 0, sizeof(*c));
}

const struct config_profile *config_profile_find(const struct config *c, const char *label)
{
	for (size_t i = 0; i < c->n_profiles; i++)
		if (strcmp(c->profiles[i].label, label) == 0)
			return &c->profiles[i];
	return NULL;
}
