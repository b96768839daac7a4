/* Parsers of ACME server objects (RFC 8555 7.1, RFC 9444, RFC 9773). Input is
 * untrusted: the body is size-bounded, duplicate keys are refused, every field is
 * type-checked and bounded, lists are counted. Nesting depth is bounded by jansson
 * itself (JSON_PARSER_MAX_DEPTH, 2048 in jansson 2.14). */
#include "acme/resources.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_MAX 2048     /* longest URL accepted from a server */
#define TYPE_MAX 256     /* problem/challenge/identifier types */
#define NAME_MAX_LEN 255 /* identifier values: DNS names, IP addresses */
#define TOKEN_MAX 256    /* challenge tokens (Pebble and Let's Encrypt send 43) */
#define CONTACT_MAX 1024 /* one account contact URL */
#define DETAIL_MAX 4096  /* problem detail text */

static const char ACME_ERR_PREFIX[] = "urn:ietf:params:acme:error:";

enum { OPTIONAL = 0, REQUIRED = 1 };

static int load(const char *json, size_t len, const char *what, json_t **root,
                struct acmera_errmsg *e)
{
	json_error_t jerr;
	if (!json)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%s: no body", what);
	if (len > ACME_MAX_BODY)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: body of %zu bytes exceeds %u", what,
		                   len, ACME_MAX_BODY);
	json_t *r = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: bad JSON at line %d column %d: %s",
		                   what, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(r)) {
		json_decref(r);
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: not a JSON object", what);
	}
	*root = r;
	return 0;
}

/* obj[name], or NULL when absent or null; fails when required and absent. */
static int field(json_t *obj, const char *what, const char *name, int required, json_t **v,
                 struct acmera_errmsg *e)
{
	json_t *x = json_object_get(obj, name);
	*v = NULL;
	if (!x || json_is_null(x)) {
		if (required)
			return acmera_fail(e, ACMERA_ERR_PROTO, "%s: missing field \"%s\"", what,
			                   name);
		return 0;
	}
	*v = x;
	return 0;
}

/* A non-empty string of at most max bytes with no NUL inside. */
static int check_str(json_t *v, const char *what, const char *name, size_t max,
                     struct acmera_errmsg *e)
{
	if (!json_is_string(v))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not a string", what,
		                   name);
	size_t n = json_string_length(v);
	if (n == 0 || n > max || strlen(json_string_value(v)) != n)
		return acmera_fail(e, ACMERA_ERR_PROTO,
		                   "%s: field \"%s\" is empty or longer than %zu bytes", what, name,
		                   max);
	return 0;
}

static int dup_str(json_t *v, char **out, struct acmera_errmsg *e)
{
	*out = strdup(json_string_value(v));
	return *out ? 0 : acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
}

static int get_str(json_t *obj, const char *what, const char *name, int required, size_t max,
                   char **out, struct acmera_errmsg *e)
{
	json_t *v;
	int rc = field(obj, what, name, required, &v, e);
	if (rc || !v)
		return rc;
	rc = check_str(v, what, name, max, e);
	return rc ? rc : dup_str(v, out, e);
}

/* An absolute http(s) URL of printable ASCII without spaces. */
static int check_url(json_t *v, const char *what, const char *name, struct acmera_errmsg *e)
{
	int rc = check_str(v, what, name, URL_MAX, e);
	if (rc)
		return rc;
	const char *s = json_string_value(v);
	if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not an http(s) URL",
		                   what, name);
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return acmera_fail(e, ACMERA_ERR_PROTO,
			                   "%s: field \"%s\" has a bad character in its URL", what,
			                   name);
	return 0;
}

static int get_url(json_t *obj, const char *what, const char *name, int required, char **out,
                   struct acmera_errmsg *e)
{
	json_t *v;
	int rc = field(obj, what, name, required, &v, e);
	if (rc || !v)
		return rc;
	rc = check_url(v, what, name, e);
	return rc ? rc : dup_str(v, out, e);
}

/* Optional boolean; absent is false. */
static int get_bool(json_t *obj, const char *what, const char *name, int *out,
                    struct acmera_errmsg *e)
{
	json_t *v;
	int rc = field(obj, what, name, OPTIONAL, &v, e);
	*out = 0;
	if (rc || !v)
		return rc;
	if (!json_is_boolean(v))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not a boolean", what,
		                   name);
	*out = json_is_true(v);
	return 0;
}

/* Optional RFC 3339 time; absent is 0. */
static int get_time(json_t *obj, const char *what, const char *name, int64_t *out,
                    struct acmera_errmsg *e)
{
	json_t *v;
	int rc = field(obj, what, name, OPTIONAL, &v, e);
	*out = 0;
	if (rc || !v)
		return rc;
	rc = check_str(v, what, name, 64, e);
	if (rc)
		return rc;
	if (acme_time_parse(json_string_value(v), out) != 0)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not an RFC 3339 time",
		                   what, name);
	return 0;
}

/* Required status, one of the values RFC 8555 7.1.6 allows for this object. */
static int get_status(json_t *obj, const char *what, const char *const *allowed, char **out,
                      struct acmera_errmsg *e)
{
	json_t *v;
	int rc = field(obj, what, "status", REQUIRED, &v, e);
	if (rc)
		return rc;
	rc = check_str(v, what, "status", 32, e);
	if (rc)
		return rc;
	const char *s = json_string_value(v);
	for (size_t i = 0; allowed[i]; i++)
		if (strcmp(s, allowed[i]) == 0)
			return dup_str(v, out, e);
	return acmera_fail(e, ACMERA_ERR_PROTO, "%s: unknown status \"%.32s\"", what, s);
}

/* Optional (or required) array of at most ACME_MAX_LIST elements. */
static int get_array(json_t *obj, const char *what, const char *name, int required, json_t **arr,
                     struct acmera_errmsg *e)
{
	int rc = field(obj, what, name, required, arr, e);
	if (rc || !*arr)
		return rc;
	if (!json_is_array(*arr))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not an array", what,
		                   name);
	if (json_array_size(*arr) > ACME_MAX_LIST)
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" has more than %d entries",
		                   what, name, ACME_MAX_LIST);
	return 0;
}

static int get_object(json_t *obj, const char *what, const char *name, int required, json_t **out,
                      struct acmera_errmsg *e)
{
	int rc = field(obj, what, name, required, out, e);
	if (rc || !*out)
		return rc;
	if (!json_is_object(*out))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: field \"%s\" is not an object", what,
		                   name);
	return 0;
}

static int is_b64url(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

/* ---- problem documents (RFC 7807, RFC 8555 6.7) ---- */

static void problem_clear(struct acme_problem *p)
{
	free(p->type);
	free(p->detail);
	for (size_t i = 0; i < p->n_sub; i++) {
		free(p->sub[i].type);
		free(p->sub[i].detail);
		free(p->sub[i].identifier);
	}
	free(p->sub);
	memset(p, 0, sizeof(*p));
}

void acme_problem_free(struct acme_problem *p)
{
	if (p)
		problem_clear(p);
}

/* type defaults to "about:blank" (RFC 7807 3.1). */
static int problem_type(json_t *obj, const char *what, char **out, struct acmera_errmsg *e)
{
	int rc = get_str(obj, what, "type", OPTIONAL, TYPE_MAX, out, e);
	if (rc || *out)
		return rc;
	*out = strdup("about:blank");
	return *out ? 0 : acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
}

static int subproblem_from_json(json_t *v, const char *what, struct acme_subproblem *s,
                                struct acmera_errmsg *e)
{
	json_t *id;
	if (!json_is_object(v))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: not an object", what);
	int rc = problem_type(v, what, &s->type, e);
	if (!rc)
		rc = get_str(v, what, "detail", OPTIONAL, DETAIL_MAX, &s->detail, e);
	if (!rc)
		rc = get_object(v, what, "identifier", OPTIONAL, &id, e);
	if (rc || !id)
		return rc;
	char *idtype = NULL;
	rc = get_str(id, what, "type", REQUIRED, TYPE_MAX, &idtype, e);
	free(idtype);
	if (!rc)
		rc = get_str(id, what, "value", REQUIRED, NAME_MAX_LEN, &s->identifier, e);
	return rc;
}

static int problem_from_json(json_t *obj, const char *what, struct acme_problem *p,
                             struct acmera_errmsg *e)
{
	json_t *v, *subs;
	char ctx[64];
	memset(p, 0, sizeof(*p));
	int rc = problem_type(obj, what, &p->type, e);
	if (!rc)
		rc = get_str(obj, what, "detail", OPTIONAL, DETAIL_MAX, &p->detail, e);
	if (!rc)
		rc = field(obj, what, "status", OPTIONAL, &v, e);
	if (rc)
		goto out;
	if (v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 999) {
			rc = acmera_fail(e, ACMERA_ERR_PROTO,
			                 "%s: field \"status\" is not an HTTP status", what);
			goto out;
		}
		p->status = (int)json_integer_value(v);
	}
	rc = get_array(obj, what, "subproblems", OPTIONAL, &subs, e);
	if (rc || !subs || json_array_size(subs) == 0)
		goto out;
	p->sub = calloc(json_array_size(subs), sizeof(*p->sub));
	if (!p->sub) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(subs); i++) {
		p->n_sub = i + 1;
		snprintf(ctx, sizeof(ctx), "%s subproblems[%zu]", what, i);
		rc = subproblem_from_json(json_array_get(subs, i), ctx, &p->sub[i], e);
		if (rc)
			goto out;
	}
out:
	if (rc)
		problem_clear(p);
	return rc;
}

int acme_problem_parse(const char *json, size_t len, struct acme_problem *out,
                       struct acmera_errmsg *e)
{
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, "problem", &root, e);
	if (rc)
		return rc;
	rc = problem_from_json(root, "problem", out, e);
	json_decref(root);
	return rc;
}

/* An optional embedded "error" problem, as a new heap object. */
static int get_problem(json_t *obj, const char *what, struct acme_problem **out,
                       struct acmera_errmsg *e)
{
	json_t *v;
	char ctx[64];
	*out = NULL;
	int rc = get_object(obj, what, "error", OPTIONAL, &v, e);
	if (rc || !v)
		return rc;
	struct acme_problem *p = calloc(1, sizeof(*p));
	if (!p)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	snprintf(ctx, sizeof(ctx), "%s error", what);
	rc = problem_from_json(v, ctx, p, e);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int acme_problem_is(const struct acme_problem *p, const char *short_type)
{
	size_t n = sizeof(ACME_ERR_PREFIX) - 1;
	if (!p || !p->type || !short_type)
		return 0;
	return strncmp(p->type, ACME_ERR_PREFIX, n) == 0 && strcmp(p->type + n, short_type) == 0;
}

/* Bounded appender for describe(); control characters from the server become '?'. */
struct out {
	char *p;
	size_t len, pos;
};

static void put(struct out *o, const char *s)
{
	for (; s && *s && o->pos + 1 < o->len; s++)
		o->p[o->pos++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
	o->p[o->pos] = '\0';
}

static const char *short_type(const char *t)
{
	size_t n = sizeof(ACME_ERR_PREFIX) - 1;
	return t && strncmp(t, ACME_ERR_PREFIX, n) == 0 ? t + n : t;
}

void acme_problem_describe(const struct acme_problem *p, char *out, size_t len)
{
	struct out o = {out, len, 0};
	char num[16];
	if (!out || len == 0)
		return;
	out[0] = '\0';
	if (!p)
		return;
	put(&o, "type=");
	put(&o, short_type(p->type));
	if (p->status) {
		snprintf(num, sizeof(num), " status=%d", p->status);
		put(&o, num);
	}
	if (p->detail) {
		put(&o, " detail=\"");
		put(&o, p->detail);
		put(&o, "\"");
	}
	if (p->n_sub == 0)
		return;
	put(&o, " sub=[");
	for (size_t i = 0; i < p->n_sub; i++) {
		if (i)
			put(&o, "; ");
		if (p->sub[i].identifier) {
			put(&o, p->sub[i].identifier);
			put(&o, ": ");
		}
		put(&o, short_type(p->sub[i].type));
		if (p->sub[i].detail) {
			put(&o, " \"");
			put(&o, p->sub[i].detail);
			put(&o, "\"");
		}
	}
	put(&o, "]");
}

/* ---- directory (RFC 8555 7.1.1) ---- */

void acme_directory_free(struct acme_directory *d)
{
	if (!d)
		return;
	free(d->new_nonce);
	free(d->new_account);
	free(d->new_order);
	free(d->new_authz);
	free(d->revoke_cert);
	free(d->key_change);
	free(d->renewal_info);
	free(d->terms_of_service);
	free(d->website);
	memset(d, 0, sizeof(*d));
}

int acme_directory_parse(const char *json, size_t len, struct acme_directory *out,
                         struct acmera_errmsg *e)
{
	static const char W[] = "directory";
	json_t *root = NULL, *meta;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, W, &root, e);
	if (rc)
		return rc;
	if ((rc = get_url(root, W, "newNonce", REQUIRED, &out->new_nonce, e)) ||
	    (rc = get_url(root, W, "newAccount", REQUIRED, &out->new_account, e)) ||
	    (rc = get_url(root, W, "newOrder", REQUIRED, &out->new_order, e)) ||
	    (rc = get_url(root, W, "newAuthz", OPTIONAL, &out->new_authz, e)) ||
	    (rc = get_url(root, W, "revokeCert", OPTIONAL, &out->revoke_cert, e)) ||
	    (rc = get_url(root, W, "keyChange", OPTIONAL, &out->key_change, e)) ||
	    (rc = get_url(root, W, "renewalInfo", OPTIONAL, &out->renewal_info, e)) ||
	    (rc = get_object(root, W, "meta", OPTIONAL, &meta, e)))
		goto out;
	if (!meta)
		goto out;
	/* Shown to people, never fetched; Pebble's is a data: URL, so any bounded string. */
	if ((rc = get_str(meta, "directory meta", "termsOfService", OPTIONAL, URL_MAX,
	                  &out->terms_of_service, e)) ||
	    (rc =
	         get_str(meta, "directory meta", "website", OPTIONAL, URL_MAX, &out->website, e)) ||
	    (rc = get_bool(meta, "directory meta", "externalAccountRequired",
	                   &out->external_account_required, e)) ||
	    (rc = get_bool(meta, "directory meta", "subdomainAuthAllowed",
	                   &out->subdomain_auth_allowed, e)))
		goto out;
out:
	json_decref(root);
	if (rc)
		acme_directory_free(out);
	return rc;
}

/* ---- identifiers ---- */

static void identifier_clear(struct acme_identifier *id)
{
	free(id->type);
	free(id->value);
	free(id->ancestor_domain);
	memset(id, 0, sizeof(*id));
}

static int identifier_from_json(json_t *v, const char *what, struct acme_identifier *id,
                                struct acmera_errmsg *e)
{
	if (!json_is_object(v))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: identifier is not an object", what);
	int rc = get_str(v, what, "type", REQUIRED, TYPE_MAX, &id->type, e);
	if (!rc)
		rc = get_str(v, what, "value", REQUIRED, NAME_MAX_LEN, &id->value, e);
	if (!rc)
		rc = get_str(v, what, "ancestorDomain", OPTIONAL, NAME_MAX_LEN,
		             &id->ancestor_domain, e);
	return rc;
}

/* ---- orders (RFC 8555 7.1.3) ---- */

void acme_order_free(struct acme_order *o)
{
	if (!o)
		return;
	free(o->status);
	for (size_t i = 0; i < o->n_identifiers; i++)
		identifier_clear(&o->identifiers[i]);
	free(o->identifiers);
	for (size_t i = 0; i < o->n_authorizations; i++)
		free(o->authorizations[i]);
	free(o->authorizations);
	free(o->finalize);
	free(o->certificate);
	acme_problem_free(o->error);
	free(o->error);
	memset(o, 0, sizeof(*o));
}

static int order_lists(json_t *root, struct acme_order *out, struct acmera_errmsg *e)
{
	static const char W[] = "order";
	json_t *ids, *authz;
	char ctx[64];
	int rc = get_array(root, W, "identifiers", OPTIONAL, &ids, e);
	if (rc)
		return rc;
	if (ids && json_array_size(ids)) {
		out->identifiers = calloc(json_array_size(ids), sizeof(*out->identifiers));
		if (!out->identifiers)
			return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		for (size_t i = 0; i < json_array_size(ids); i++) {
			out->n_identifiers = i + 1;
			snprintf(ctx, sizeof(ctx), "order identifiers[%zu]", i);
			rc = identifier_from_json(json_array_get(ids, i), ctx, &out->identifiers[i],
			                          e);
			if (rc)
				return rc;
		}
	}
	rc = get_array(root, W, "authorizations", REQUIRED, &authz, e);
	if (rc || json_array_size(authz) == 0)
		return rc;
	out->authorizations = calloc(json_array_size(authz), sizeof(char *));
	if (!out->authorizations)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(authz); i++) {
		json_t *v = json_array_get(authz, i);
		snprintf(ctx, sizeof(ctx), "authorizations[%zu]", i);
		rc = check_url(v, W, ctx, e);
		if (rc)
			return rc;
		rc = dup_str(v, &out->authorizations[i], e);
		if (rc)
			return rc;
		out->n_authorizations = i + 1;
	}
	return 0;
}

int acme_order_parse(const char *json, size_t len, struct acme_order *out, struct acmera_errmsg *e)
{
	static const char W[] = "order";
	static const char *const statuses[] = {"pending", "ready",   "processing",
	                                       "valid",   "invalid", NULL};
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, W, &root, e);
	if (rc)
		return rc;
	if ((rc = get_status(root, W, statuses, &out->status, e)) ||
	    (rc = get_time(root, W, "expires", &out->expires, e)) ||
	    (rc = order_lists(root, out, e)) ||
	    (rc = get_url(root, W, "finalize", REQUIRED, &out->finalize, e)) ||
	    (rc = get_url(root, W, "certificate", OPTIONAL, &out->certificate, e)) ||
	    (rc = get_problem(root, W, &out->error, e)))
		goto out;
out:
	json_decref(root);
	if (rc)
		acme_order_free(out);
	return rc;
}

/* ---- challenges (RFC 8555 7.1.5, 8) ---- */

void acme_challenge_free(struct acme_challenge *c)
{
	if (!c)
		return;
	free(c->type);
	free(c->url);
	free(c->status);
	free(c->token);
	acme_problem_free(c->error);
	free(c->error);
	memset(c, 0, sizeof(*c));
}

static int challenge_from_json(json_t *v, const char *what, struct acme_challenge *c,
                               struct acmera_errmsg *e)
{
	static const char *const statuses[] = {"pending", "processing", "valid", "invalid", NULL};
	if (!json_is_object(v))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: not an object", what);
	int rc;
	if ((rc = get_str(v, what, "type", REQUIRED, TYPE_MAX, &c->type, e)) ||
	    (rc = get_url(v, what, "url", REQUIRED, &c->url, e)) ||
	    (rc = get_status(v, what, statuses, &c->status, e)))
		return rc;
	/* The token goes into a DNS name's TXT value or an HTTP path, so for the
	 * types that use it, it must be there and be base64url (RFC 8555 8.3, 8.4). */
	int needs_token = strcmp(c->type, "dns-01") == 0 || strcmp(c->type, "http-01") == 0;
	rc = get_str(v, what, "token", needs_token, TOKEN_MAX, &c->token, e);
	if (rc)
		return rc;
	if (needs_token && !is_b64url(c->token))
		return acmera_fail(e, ACMERA_ERR_PROTO, "%s: token is not base64url", what);
	return get_problem(v, what, &c->error, e);
}

int acme_challenge_parse(const char *json, size_t len, struct acme_challenge *out,
                         struct acmera_errmsg *e)
{
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, "challenge", &root, e);
	if (rc)
		return rc;
	rc = challenge_from_json(root, "challenge", out, e);
	json_decref(root);
	if (rc)
		acme_challenge_free(out);
	return rc;
}

/* ---- authorizations (RFC 8555 7.1.4, RFC 9444 4.1) ---- */

void acme_authz_free(struct acme_authz *a)
{
	if (!a)
		return;
	identifier_clear(&a->identifier);
	free(a->status);
	for (size_t i = 0; i < a->n_challenges; i++)
		acme_challenge_free(&a->challenges[i]);
	free(a->challenges);
	memset(a, 0, sizeof(*a));
}

static int authz_challenges(json_t *root, struct acme_authz *out, struct acmera_errmsg *e)
{
	json_t *arr;
	char ctx[64];
	int rc = get_array(root, "authz", "challenges", REQUIRED, &arr, e);
	if (rc || json_array_size(arr) == 0)
		return rc;
	out->challenges = calloc(json_array_size(arr), sizeof(*out->challenges));
	if (!out->challenges)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		out->n_challenges = i + 1;
		snprintf(ctx, sizeof(ctx), "authz challenges[%zu]", i);
		rc = challenge_from_json(json_array_get(arr, i), ctx, &out->challenges[i], e);
		if (rc)
			return rc;
	}
	return 0;
}

int acme_authz_parse(const char *json, size_t len, struct acme_authz *out, struct acmera_errmsg *e)
{
	static const char W[] = "authz";
	static const char *const statuses[] = {"pending", "valid",   "invalid", "deactivated",
	                                       "expired", "revoked", NULL};
	json_t *root = NULL, *id;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, W, &root, e);
	if (rc)
		return rc;
	if ((rc = get_object(root, W, "identifier", REQUIRED, &id, e)) ||
	    (rc = identifier_from_json(id, "authz identifier", &out->identifier, e)) ||
	    (rc = get_status(root, W, statuses, &out->status, e)) ||
	    (rc = get_time(root, W, "expires", &out->expires, e)) ||
	    (rc = get_bool(root, W, "wildcard", &out->wildcard, e)) ||
	    (rc = get_bool(root, W, "subdomainAuthAllowed", &out->subdomain_auth_allowed, e)) ||
	    (rc = authz_challenges(root, out, e)))
		goto out;
out:
	json_decref(root);
	if (rc)
		acme_authz_free(out);
	return rc;
}

const struct acme_challenge *acme_authz_challenge(const struct acme_authz *a, const char *type)
{
	if (!a || !type)
		return NULL;
	for (size_t i = 0; i < a->n_challenges; i++)
		if (a->challenges[i].type && strcmp(a->challenges[i].type, type) == 0)
			return &a->challenges[i];
	return NULL;
}

/* ---- accounts (RFC 8555 7.1.2) ---- */

void acme_account_free(struct acme_account *a)
{
	if (!a)
		return;
	free(a->status);
	for (size_t i = 0; i < a->n_contact; i++)
		free(a->contact[i]);
	free(a->contact);
	free(a->orders);
	memset(a, 0, sizeof(*a));
}

static int account_contacts(json_t *root, struct acme_account *out, struct acmera_errmsg *e)
{
	json_t *arr;
	char ctx[32];
	int rc = get_array(root, "account", "contact", OPTIONAL, &arr, e);
	if (rc || !arr || json_array_size(arr) == 0)
		return rc;
	out->contact = calloc(json_array_size(arr), sizeof(char *));
	if (!out->contact)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *v = json_array_get(arr, i);
		snprintf(ctx, sizeof(ctx), "contact[%zu]", i);
		rc = check_str(v, "account", ctx, CONTACT_MAX, e);
		if (rc)
			return rc;
		rc = dup_str(v, &out->contact[i], e);
		if (rc)
			return rc;
		out->n_contact = i + 1;
	}
	return 0;
}

int acme_account_parse(const char *json, size_t len, struct acme_account *out,
                       struct acmera_errmsg *e)
{
	static const char W[] = "account";
	static const char *const statuses[] = {"valid", "deactivated", "revoked", NULL};
	json_t *root = NULL;
	memset(out, 0, sizeof(*out));
	int rc = load(json, len, W, &root, e);
	if (rc)
		return rc;
	/* "orders" is required by RFC 8555 but Let's Encrypt omits it. */
	if ((rc = get_status(root, W, statuses, &out->status, e)) ||
	    (rc = account_contacts(root, out, e)) ||
	    (rc = get_url(root, W, "orders", OPTIONAL, &out->orders, e)))
		goto out;
out:
	json_decref(root);
	if (rc)
		acme_account_free(out);
	return rc;
}

/* ---- RFC 3339 timestamps ---- */

/* n decimal digits at s, or -1. */
static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t days_from_civil(int y, int m, int d)
{
	static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	/* Whole years since 1970 plus the leap days of years 1970..y-1 (y >= 1). */
	int64_t yy = y - 1;
	int64_t leaps = (yy / 4 - yy / 100 + yy / 400) - (1969 / 4 - 1969 / 100 + 1969 / 400);
	int64_t days = (int64_t)(y - 1970) * 365 + leaps;
	return days + before[m - 1] + (m > 2 && is_leap(y)) + (d - 1);
}

int acme_time_parse(const char *s, int64_t *out)
{
	static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (!s || !out || strnlen(s, 20) < 20)
		return ACMERA_ERR_INVAL;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
	int h = digits(s + 11, 2), mi = digits(s + 14, 2), sec = digits(s + 17, 2);
	if (s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
	    s[16] != ':')
		return ACMERA_ERR_INVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !is_leap(y)) || h < 0 || h > 23 || mi < 0 || mi > 59 ||
	    sec < 0 || sec > 60)
		return ACMERA_ERR_INVAL;
	const char *p = s + 19;
	if (*p == '.') {
		/* time-secfrac: at least one digit; the fraction is dropped. */
		int n = 0;
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (++n > 18)
				return ACMERA_ERR_INVAL;
		if (n == 0)
			return ACMERA_ERR_INVAL;
	}
	int64_t off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		if (strnlen(p, 6) != 6 || p[3] != ':')
			return ACMERA_ERR_INVAL;
		int oh = digits(p + 1, 2), om = digits(p + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return ACMERA_ERR_INVAL;
		off = (int64_t)oh * 3600 + om * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	} else {
		return ACMERA_ERR_INVAL;
	}
	if (*p != '\0')
		return ACMERA_ERR_INVAL;
	/* A leap second (:60) counts as the first second of the next minute. */
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off;
	return 0;
}
