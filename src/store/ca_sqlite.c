/* The SQLite implementation of ca_store.h: a store.h handle (which opens, hardens and
 * migrates the file) plus the CA's own prepared statements on its connection. */
#include "store/ca_store.h"
#include "store/sqlite_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCOUNT_COLS "id, jwk, thumbprint, status, contact, eab_kid, created"
#define AUTHZ_COLS "id, account, name, wildcard, subdomains, status, expires, created"
#define CHALL_COLS "id, authz, type, token, status, validated, error"
#define ORDER_COLS "id, account, status, expires, identifiers, cert, error, created"
#define CERT_COLS                                                                                  \
	"id, account, order_id, serial, chain_pem, not_after, issued, revoked, reason, revoked_at"

enum q {
	Q_ACCT_ADD,
	Q_ACCT_GET,
	Q_ACCT_BY_THUMB,
	Q_ACCT_CONTACT,
	Q_ACCT_STATUS,
	Q_ACCT_KEY,
	Q_ACCT_CANCEL_ORDERS,
	Q_ACCT_CANCEL_AUTHZS,
	Q_AUTHZ_ADD,
	Q_CHALL_ADD,
	Q_AUTHZ_GET,
	Q_CHALLS_OF,
	Q_CHALL_GET,
	Q_AUTHZ_COVER,
	Q_AUTHZ_PENDING,
	Q_AUTHZ_DEACT,
	Q_ORDERS_INVALIDATE,
	Q_CHALL_BEGIN,
	Q_CHALL_FINISH,
	Q_AUTHZ_VERDICT,
	Q_ORDERS_READY,
	Q_CHALLS_PROCESSING,
	Q_ORDER_ADD,
	Q_ORDER_LINK,
	Q_ORDER_GET,
	Q_ORDER_AUTHZS,
	Q_ORDER_LIST,
	Q_ORDER_CAS,
	Q_CERT_ADD,
	Q_CERT_GET,
	Q_CERT_BY_SERIAL,
	Q_CERT_REVOKE,
	Q_COUNT
};

static const char *const sql[Q_COUNT] = {
    [Q_ACCT_ADD] = "INSERT INTO ca_accounts (" ACCOUNT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_ACCT_GET] = "SELECT " ACCOUNT_COLS " FROM ca_accounts WHERE id = ?1",
    [Q_ACCT_BY_THUMB] = "SELECT " ACCOUNT_COLS " FROM ca_accounts WHERE thumbprint = ?1",
    [Q_ACCT_CONTACT] = "UPDATE ca_accounts SET contact = ?2 WHERE id = ?1",
    [Q_ACCT_STATUS] = "UPDATE ca_accounts SET status = ?2 WHERE id = ?1",
    [Q_ACCT_KEY] = "UPDATE ca_accounts SET jwk = ?2, thumbprint = ?3 WHERE id = ?1",
    [Q_ACCT_CANCEL_ORDERS] = "UPDATE ca_orders SET status = 'invalid', error = ?2 WHERE "
                             "account = ?1 AND status IN ('pending', 'ready')",
    [Q_ACCT_CANCEL_AUTHZS] = "UPDATE ca_authzs SET status = 'deactivated' WHERE account = ?1 "
                             "AND status IN ('pending', 'valid')",
    [Q_AUTHZ_ADD] =
        "INSERT INTO ca_authzs (" AUTHZ_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    /* rowid keeps the challenges in the order they were added */
    [Q_CHALL_ADD] =
        "INSERT INTO ca_challenges (" CHALL_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_AUTHZ_GET] = "SELECT " AUTHZ_COLS " FROM ca_authzs WHERE id = ?1",
    [Q_CHALLS_OF] = "SELECT " CHALL_COLS " FROM ca_challenges WHERE authz = ?1 ORDER BY rowid "
                    "LIMIT 2",
    [Q_CHALL_GET] = "SELECT " CHALL_COLS " FROM ca_challenges WHERE id = ?1",
    /* ?3: 0 the name itself (not wildcard), 1 a wildcard one for it, 2 any with
     * subdomains */
    [Q_AUTHZ_COVER] = "SELECT " AUTHZ_COLS " FROM ca_authzs WHERE account = ?1 AND name = ?2 "
                      "AND status = 'valid' AND expires > ?4 AND "
                      "((?3 = 0 AND wildcard = 0) OR (?3 = 1 AND wildcard = 1) OR "
                      "(?3 = 2 AND subdomains = 1)) ORDER BY expires DESC LIMIT 1",
    [Q_AUTHZ_PENDING] = "SELECT " AUTHZ_COLS " FROM ca_authzs WHERE account = ?1 AND name = ?2 "
                        "AND wildcard = ?3 AND subdomains = ?4 AND status = 'pending' "
                        "AND expires > ?5 ORDER BY expires DESC LIMIT 1",
    [Q_AUTHZ_DEACT] = "UPDATE ca_authzs SET status = 'deactivated' WHERE id = ?1 AND "
                      "status IN ('pending', 'valid')",
    [Q_ORDERS_INVALIDATE] = "UPDATE ca_orders SET status = 'invalid', error = ?2 WHERE "
                            "status = 'pending' AND id IN "
                            "(SELECT order_id FROM ca_order_authzs WHERE authz = ?1)",
    /* EXISTS looks the one authorization up; IN (SELECT ...) listed them all. */
    [Q_CHALL_BEGIN] = "UPDATE ca_challenges SET status = 'processing' WHERE id = ?1 AND "
                      "status = 'pending' AND EXISTS (SELECT 1 FROM ca_authzs a WHERE "
                      "a.id = ca_challenges.authz AND a.status = 'pending' AND a.expires > ?2)",
    [Q_CHALL_FINISH] = "UPDATE ca_challenges SET status = ?2, validated = ?3, error = ?4 "
                       "WHERE id = ?1 AND status = 'processing' RETURNING authz",
    [Q_AUTHZ_VERDICT] =
        "UPDATE ca_authzs SET status = ?2, "
        "expires = CASE WHEN ?2 = 'valid' THEN ?3 ELSE expires END WHERE id = ?1 AND "
        "status = 'pending'",
    [Q_ORDERS_READY] = "UPDATE ca_orders SET status = 'ready' WHERE status = 'pending' AND "
                       "id IN (SELECT order_id FROM ca_order_authzs WHERE authz = ?1) AND "
                       "NOT EXISTS (SELECT 1 FROM ca_order_authzs l JOIN ca_authzs a ON "
                       "a.id = l.authz WHERE l.order_id = ca_orders.id AND "
                       "a.status != 'valid')",
    /* ca_challenges_processing holds only these rows */
    [Q_CHALLS_PROCESSING] = "SELECT id FROM ca_challenges WHERE status = 'processing' "
                            "ORDER BY rowid LIMIT ?1",
    /* Orders are never deleted, so seq follows the rowid; MAX(rowid) is one
     * b-tree descent where MAX(seq) read the whole table. */
    [Q_ORDER_ADD] = "INSERT INTO ca_orders (" ORDER_COLS ", seq) VALUES "
                    "(?1, ?2, ?3, ?4, ?5, NULL, NULL, ?6, "
                    "(SELECT COALESCE(MAX(rowid), 0) + 1 FROM ca_orders))",
    [Q_ORDER_LINK] = "INSERT INTO ca_order_authzs (order_id, authz, pos) VALUES (?1, ?2, ?3) "
                     "ON CONFLICT DO NOTHING",
    [Q_ORDER_GET] = "SELECT " ORDER_COLS " FROM ca_orders WHERE id = ?1",
    [Q_ORDER_AUTHZS] = "SELECT authz FROM ca_order_authzs WHERE order_id = ?1 ORDER BY pos "
                       "LIMIT ?2",
    [Q_ORDER_LIST] = "SELECT id FROM ca_orders WHERE account = ?1 AND status != 'invalid' "
                     "ORDER BY seq LIMIT ?3 OFFSET ?2",
    [Q_ORDER_CAS] = "UPDATE ca_orders SET status = ?3, error = COALESCE(?4, error) "
                    "WHERE id = ?1 AND status = ?2",
    [Q_CERT_ADD] = "INSERT INTO ca_certs (" CERT_COLS ") VALUES "
                   "(?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 0)",
    [Q_CERT_GET] = "SELECT " CERT_COLS " FROM ca_certs WHERE id = ?1",
    [Q_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM ca_certs WHERE serial = ?1",
    [Q_CERT_REVOKE] = "UPDATE ca_certs SET revoked = 1, reason = ?2, revoked_at = ?3 "
                      "WHERE id = ?1 AND revoked = 0",
};

/* Set with a certificate's order moving to valid. */
static const char order_valid_sql[] =
    "UPDATE ca_orders SET status = 'valid', cert = ?2 WHERE id = ?1 AND status = 'ready'";

const char *ca_sqlite_statement(size_t i)
{
	return i < Q_COUNT ? sql[i] : i == Q_COUNT ? order_valid_sql : NULL;
}

struct ca_store {
	struct store *base;
	sqlite3 *db;
	sqlite3_stmt *st[Q_COUNT];
	sqlite3_stmt *order_valid;
};

/* ---- helpers ---- */

static int db_fail(struct ca_store *s, struct acmera_errmsg *e, const char *what)
{
	return acmera_fail(e, ACMERA_ERR_STORE, "ca store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int nomem(struct acmera_errmsg *e)
{
	return acmera_fail(e, ACMERA_ERR_NOMEM, "ca store: out of memory");
}

static sqlite3_stmt *prep_sql(struct ca_store *s, sqlite3_stmt **slot, const char *text,
                              struct acmera_errmsg *e)
{
	if (!*slot && sqlite3_prepare_v3(s->db, text, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) !=
	                  SQLITE_OK) {
		db_fail(s, e, "prepare");
		return NULL;
	}
	return *slot;
}

static sqlite3_stmt *prep(struct ca_store *s, enum q id, struct acmera_errmsg *e)
{
	return prep_sql(s, &s->st[id], sql[id], e);
}

static void done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

/* Runs a statement whose rows are not wanted; *changes gets the rows changed. */
static int step_done(struct ca_store *s, sqlite3_stmt *st, const char *what, int *changes,
                     struct acmera_errmsg *e)
{
	int r;
	while ((r = sqlite3_step(st)) == SQLITE_ROW)
		;
	if (r != SQLITE_DONE) {
		int ext = sqlite3_extended_errcode(s->db);
		if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
			return acmera_fail(e, ACMERA_ERR_REFUSED, "ca store: %s: already exists",
			                   what);
		return db_fail(s, e, what);
	}
	if (changes)
		*changes = sqlite3_changes(s->db);
	return 0;
}

/* The base store's transactions, so that a batch (ca_store_batch_begin) covers the
 * CA's changes too. */
static int tx_begin(struct ca_store *s, struct acmera_errmsg *e)
{
	return store_sqlite_tx_begin(s->base, e);
}

static int tx_end(struct ca_store *s, int rc, struct acmera_errmsg *e)
{
	return store_sqlite_tx_end(s->base, rc, e);
}

/* Copies a text column into a fixed buffer; a value that does not fit is a store
 * fault (never truncated). */
static int col_fixed(sqlite3_stmt *st, int i, char *out, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int n = sqlite3_column_bytes(st, i);
	out[0] = '\0';
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	if (!t || n < 0 || (size_t)n >= size)
		return ACMERA_ERR_STORE;
	memcpy(out, t, (size_t)n);
	out[n] = '\0';
	return 0;
}

/* Steps st for one row: 0 with a row, ACMERA_ERR_NOTFOUND without. */
static int step_row(struct ca_store *s, sqlite3_stmt *st, const char *what, struct acmera_errmsg *e)
{
	int r = sqlite3_step(st);
	if (r == SQLITE_ROW)
		return 0;
	if (r == SQLITE_DONE)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "ca store: no such %s", what);
	return db_fail(s, e, what);
}

static int bad_row(int rc, const char *what, struct acmera_errmsg *e)
{
	if (rc == ACMERA_ERR_NOMEM)
		return nomem(e);
	return acmera_fail(e, ACMERA_ERR_STORE, "ca store: bad %s row", what);
}

/* ---- open / close ---- */

int ca_store_open(const char *path, struct ca_store **out, struct acmera_errmsg *e)
{
	struct ca_store *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (!s)
		return nomem(e);
	rc = store_open(path, &s->base, e);
	if (rc) {
		free(s);
		return rc;
	}
	s->db = store_sqlite_db(s->base);
	*out = s;
	return 0;
}

void ca_store_close(struct ca_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_finalize(s->order_valid);
	store_close(s->base);
	free(s);
}

/* ---- accounts ---- */

static int read_account(sqlite3_stmt *st, struct ca_account *a)
{
	int rc = col_fixed(st, 0, a->id, sizeof(a->id));
	if (!rc)
		rc = col_str(st, 1, &a->jwk);
	if (!rc)
		rc = col_fixed(st, 2, a->thumbprint, sizeof(a->thumbprint));
	if (!rc)
		rc = col_fixed(st, 3, a->status, sizeof(a->status));
	if (!rc)
		rc = col_str(st, 4, &a->contact);
	if (!rc)
		rc = col_str(st, 5, &a->eab_kid);
	a->created = sqlite3_column_int64(st, 6);
	if (!rc && !a->jwk)
		rc = ACMERA_ERR_STORE;
	return rc;
}

int ca_store_account_add(struct ca_store *s, const struct ca_account *a, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_ACCT_ADD, e);
	int rc;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, a->id) || bind_text(st, 2, a->jwk) ||
	    bind_text(st, 3, a->thumbprint) || bind_text(st, 4, a->status) ||
	    bind_text(st, 5, a->contact) || bind_text(st, 6, a->eab_kid) ||
	    sqlite3_bind_int64(st, 7, a->created)) {
		rc = db_fail(s, e, "account add");
		goto out;
	}
	rc = step_done(s, st, "account add", NULL, e);
out:
	done(st);
	return rc;
}

static int account_by(struct ca_store *s, enum q q, const char *key, struct ca_account *out,
                      struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;
	memset(out, 0, sizeof(*out));
	if (!key)
		return acmera_fail(e, ACMERA_ERR_INVAL, "ca store: no account key");
	st = prep(s, q, e);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, key)) {
		rc = db_fail(s, e, "account get");
		goto out;
	}
	rc = step_row(s, st, "account", e);
	if (!rc && (rc = read_account(st, out)) != 0) {
		rc = bad_row(rc, "account", e);
		ca_account_free(out);
	}
out:
	done(st);
	return rc;
}

int ca_store_account_get(struct ca_store *s, const char *id, struct ca_account *out,
                         struct acmera_errmsg *e)
{
	return account_by(s, Q_ACCT_GET, id, out, e);
}

int ca_store_account_by_thumbprint(struct ca_store *s, const char *thumbprint,
                                   struct ca_account *out, struct acmera_errmsg *e)
{
	return account_by(s, Q_ACCT_BY_THUMB, thumbprint, out, e);
}

/* Runs q with text parameters ?1..?n; *changes gets the rows changed. */
static int run_texts(struct ca_store *s, enum q q, const char *const *v, int n, int *changes,
                     const char *what, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, q, e);
	int rc = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	for (int i = 0; i < n && !rc; i++)
		if (bind_text(st, i + 1, v[i]))
			rc = db_fail(s, e, what);
	if (!rc)
		rc = step_done(s, st, what, changes, e);
	done(st);
	return rc;
}

/* RFC 8555 7.3.6: the server SHOULD cancel what a deactivated account's key
 * authorized. Its orders not yet issued become invalid and its authorizations
 * deactivated, so that nothing it started can still be finished or reused. Issued
 * certificates stay valid (revocation is the client's to ask). */
static int cancel_account_work(struct ca_store *s, const char *id, struct acmera_errmsg *e)
{
	static const char problem[] =
	    "{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
	    "\"detail\":\"the account of this order was deactivated\",\"status\":403}";
	const char *orders[] = {id, problem}, *authzs[] = {id};
	int rc = run_texts(s, Q_ACCT_CANCEL_ORDERS, orders, 2, NULL, "account orders cancel", e);
	if (!rc)
		rc =
		    run_texts(s, Q_ACCT_CANCEL_AUTHZS, authzs, 1, NULL, "account authzs cancel", e);
	return rc;
}

int ca_store_account_update(struct ca_store *s, const char *id, const char *contact,
                            const char *status, struct acmera_errmsg *e)
{
	int rc = tx_begin(s, e), ch = 0;
	if (rc)
		return rc;
	if (contact) {
		const char *v[] = {id, contact};
		rc = run_texts(s, Q_ACCT_CONTACT, v, 2, &ch, "account contact", e);
	}
	if (!rc && status) {
		const char *v[] = {id, status};
		rc = run_texts(s, Q_ACCT_STATUS, v, 2, &ch, "account status", e);
	}
	if (!rc && ch == 0 && (contact || status))
		rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "ca store: no such account");
	if (!rc && status && strcmp(status, "deactivated") == 0)
		rc = cancel_account_work(s, id, e);
	return tx_end(s, rc, e);
}

int ca_store_account_set_key(struct ca_store *s, const char *id, const char *jwk,
                             const char *thumbprint, struct acmera_errmsg *e)
{
	const char *v[] = {id, jwk, thumbprint};
	int ch = 0;
	int rc = run_texts(s, Q_ACCT_KEY, v, 3, &ch, "account key", e);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "ca store: no such account");
	return rc;
}

void ca_account_free(struct ca_account *a)
{
	if (!a)
		return;
	free(a->jwk);
	free(a->contact);
	free(a->eab_kid);
	memset(a, 0, sizeof(*a));
}

/* ---- authorizations and challenges ---- */

static int read_authz(sqlite3_stmt *st, struct ca_authz *a)
{
	int rc = col_fixed(st, 0, a->id, sizeof(a->id));
	if (!rc)
		rc = col_fixed(st, 1, a->account, sizeof(a->account));
	if (!rc)
		rc = col_fixed(st, 2, a->name, sizeof(a->name));
	a->wildcard = sqlite3_column_int(st, 3);
	a->subdomains = sqlite3_column_int(st, 4);
	if (!rc)
		rc = col_fixed(st, 5, a->status, sizeof(a->status));
	a->expires = sqlite3_column_int64(st, 6);
	a->created = sqlite3_column_int64(st, 7);
	return rc;
}

static int read_chall(sqlite3_stmt *st, struct ca_challenge *c)
{
	int rc = col_fixed(st, 0, c->id, sizeof(c->id));
	if (!rc)
		rc = col_fixed(st, 1, c->authz, sizeof(c->authz));
	if (!rc)
		rc = col_fixed(st, 2, c->type, sizeof(c->type));
	if (!rc)
		rc = col_fixed(st, 3, c->token, sizeof(c->token));
	if (!rc)
		rc = col_fixed(st, 4, c->status, sizeof(c->status));
	c->validated = sqlite3_column_int64(st, 5);
	if (!rc)
		rc = col_str(st, 6, &c->error);
	return rc;
}

static int add_chall(struct ca_store *s, const struct ca_challenge *c, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALL_ADD, e);
	int rc;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, c->id) || bind_text(st, 2, c->authz) || bind_text(st, 3, c->type) ||
	    bind_text(st, 4, c->token) || bind_text(st, 5, c->status) ||
	    sqlite3_bind_int64(st, 6, c->validated) || bind_text(st, 7, c->error))
		rc = db_fail(s, e, "challenge add");
	else
		rc = step_done(s, st, "challenge add", NULL, e);
	done(st);
	return rc;
}

int ca_store_authz_add(struct ca_store *s, const struct ca_authz *a, const struct ca_challenge *ch,
                       size_t n, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;
	if (n < 1 || n > CA_MAX_CHALLENGES)
		return acmera_fail(e, ACMERA_ERR_INVAL, "ca store: %zu challenges", n);
	rc = tx_begin(s, e);
	if (rc)
		return rc;
	st = prep(s, Q_AUTHZ_ADD, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, a->id) || bind_text(st, 2, a->account) || bind_text(st, 3, a->name) ||
	    sqlite3_bind_int(st, 4, a->wildcard ? 1 : 0) ||
	    sqlite3_bind_int(st, 5, a->subdomains ? 1 : 0) || bind_text(st, 6, a->status) ||
	    sqlite3_bind_int64(st, 7, a->expires) || sqlite3_bind_int64(st, 8, a->created))
		rc = db_fail(s, e, "authz add");
	else
		rc = step_done(s, st, "authz add", NULL, e);
	done(st);
	for (size_t i = 0; i < n && !rc; i++) {
		if (strcmp(ch[i].authz, a->id) != 0)
			rc = acmera_fail(e, ACMERA_ERR_INVAL,
			                 "ca store: challenge of another authz");
		else
			rc = add_chall(s, &ch[i], e);
	}
out:
	return tx_end(s, rc, e);
}

static int authz_row(struct ca_store *s, sqlite3_stmt *st, struct ca_authz *out,
                     struct acmera_errmsg *e)
{
	int rc = step_row(s, st, "authorization", e);
	if (!rc && read_authz(st, out))
		rc = bad_row(ACMERA_ERR_STORE, "authorization", e);
	return rc;
}

int ca_store_authz_get(struct ca_store *s, const char *id, struct ca_authz *out,
                       struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_AUTHZ_GET, e);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return ACMERA_ERR_STORE;
	rc = bind_text(st, 1, id) ? db_fail(s, e, "authz get") : authz_row(s, st, out, e);
	done(st);
	return rc;
}

int ca_store_challenges_of(struct ca_store *s, const char *authz_id,
                           struct ca_challenge out[CA_MAX_CHALLENGES], size_t *n,
                           struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALLS_OF, e);
	int rc = 0, r;
	*n = 0;
	memset(out, 0, sizeof(*out) * CA_MAX_CHALLENGES);
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, authz_id)) {
		rc = db_fail(s, e, "challenges");
		goto out;
	}
	while (*n < CA_MAX_CHALLENGES && (r = sqlite3_step(st)) == SQLITE_ROW) {
		rc = read_chall(st, &out[*n]);
		(*n)++;
		if (rc) {
			rc = bad_row(rc, "challenge", e);
			goto out;
		}
	}
	if (*n < CA_MAX_CHALLENGES && r != SQLITE_DONE)
		rc = db_fail(s, e, "challenges");
out:
	done(st);
	if (rc) {
		for (size_t i = 0; i < *n; i++)
			ca_challenge_free(&out[i]);
		*n = 0;
	}
	return rc;
}

int ca_store_challenge_get(struct ca_store *s, const char *id, struct ca_challenge *out,
                           struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALL_GET, e);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, id)) {
		rc = db_fail(s, e, "challenge get");
		goto out;
	}
	rc = step_row(s, st, "challenge", e);
	if (!rc && (rc = read_chall(st, out)) != 0) {
		rc = bad_row(rc, "challenge", e);
		ca_challenge_free(out);
	}
out:
	done(st);
	return rc;
}

void ca_challenge_free(struct ca_challenge *c)
{
	if (!c)
		return;
	free(c->error);
	memset(c, 0, sizeof(*c));
}

/* One coverage query: kind 0 the name itself, 1 a wildcard authorization, 2 subdomains. */
static int cover_one(struct ca_store *s, const char *account, const char *name, int kind,
                     int64_t now, struct ca_authz *out, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_AUTHZ_COVER, e);
	int rc;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, account) || bind_text(st, 2, name) || sqlite3_bind_int(st, 3, kind) ||
	    sqlite3_bind_int64(st, 4, now))
		rc = db_fail(s, e, "authz cover");
	else
		rc = authz_row(s, st, out, e);
	done(st);
	return rc;
}

/* Keeps the candidate that expires last in best. */
static int take_better(int rc, struct ca_authz *cand, struct ca_authz *best, int *found)
{
	if (rc == ACMERA_ERR_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (!*found || cand->expires > best->expires)
		*best = *cand;
	*found = 1;
	return 0;
}

int ca_store_authz_covering(struct ca_store *s, const char *account, const char *name, int64_t now,
                            struct ca_authz *out, struct acmera_errmsg *e)
{
	struct ca_authz cand, best;
	int found = 0, rc;
	memset(out, 0, sizeof(*out));
	memset(&best, 0, sizeof(best));
	if (!account || !name)
		return acmera_fail(e, ACMERA_ERR_INVAL, "ca store: no name");
	int wildcard = strncmp(name, "*.", 2) == 0;
	const char *base = wildcard ? name + 2 : name;
	rc = cover_one(s, account, base, wildcard ? 1 : 0, now, &cand, e);
	rc = take_better(rc, &cand, &best, &found);
	/* A wildcard's base is itself inside the subtree of a subdomain authorization
	 * for it; a plain name only in those of its strict ancestors. */
	if (!rc && wildcard) {
		rc = cover_one(s, account, base, 2, now, &cand, e);
		rc = take_better(rc, &cand, &best, &found);
	}
	for (const char *p = strchr(base, '.'); !rc && p && p[1]; p = strchr(p + 1, '.')) {
		rc = cover_one(s, account, p + 1, 2, now, &cand, e);
		rc = take_better(rc, &cand, &best, &found);
	}
	if (rc)
		return rc;
	if (!found)
		return acmera_fail(e, ACMERA_ERR_NOTFOUND, "ca store: no authorization covers %s",
		                   name);
	*out = best;
	return 0;
}

int ca_store_authz_pending(struct ca_store *s, const char *account, const char *name, int wildcard,
                           int subdomains, int64_t now, struct ca_authz *out,
                           struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_AUTHZ_PENDING, e);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, account) || bind_text(st, 2, name) ||
	    sqlite3_bind_int(st, 3, wildcard ? 1 : 0) ||
	    sqlite3_bind_int(st, 4, subdomains ? 1 : 0) || sqlite3_bind_int64(st, 5, now))
		rc = db_fail(s, e, "authz pending");
	else
		rc = authz_row(s, st, out, e);
	done(st);
	return rc;
}

int ca_store_authz_deactivate(struct ca_store *s, const char *id, struct acmera_errmsg *e)
{
	static const char problem[] =
	    "{\"type\":\"urn:ietf:params:acme:error:unauthorized\","
	    "\"detail\":\"an authorization of this order was deactivated\",\"status\":403}";
	int ch = 0;
	int rc = tx_begin(s, e);
	if (rc)
		return rc;
	const char *v[] = {id};
	rc = run_texts(s, Q_AUTHZ_DEACT, v, 1, &ch, "authz deactivate", e);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_AGAIN, "ca store: authorization not active");
	if (!rc) {
		const char *w[] = {id, problem};
		rc = run_texts(s, Q_ORDERS_INVALIDATE, w, 2, NULL, "orders invalidate", e);
	}
	return tx_end(s, rc, e);
}

int ca_store_challenge_begin(struct ca_store *s, const char *id, int64_t now,
                             struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALL_BEGIN, e);
	int rc, ch = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, id) || sqlite3_bind_int64(st, 2, now))
		rc = db_fail(s, e, "challenge begin");
	else
		rc = step_done(s, st, "challenge begin", &ch, e);
	done(st);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_AGAIN, "ca store: challenge not pending");
	return rc;
}

/* The challenge's verdict; authz_out gets its authorization's id. */
static int finish_chall(struct ca_store *s, const char *id, const char *error, int64_t now,
                        char authz_out[CA_ID_LEN + 1], struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALL_FINISH, e);
	int rc;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, id) || bind_text(st, 2, error ? "invalid" : "valid") ||
	    sqlite3_bind_int64(st, 3, error ? 0 : now) || bind_text(st, 4, error)) {
		rc = db_fail(s, e, "challenge finish");
		goto out;
	}
	rc = step_row(s, st, "processing challenge", e);
	if (rc == ACMERA_ERR_NOTFOUND)
		rc = acmera_fail(e, ACMERA_ERR_AGAIN, "ca store: challenge not processing");
	else if (!rc && col_fixed(st, 0, authz_out, CA_ID_LEN + 1))
		rc = bad_row(ACMERA_ERR_STORE, "challenge", e);
	if (!rc && sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(s, e, "challenge finish");
out:
	done(st);
	return rc;
}

int ca_store_challenge_finish(struct ca_store *s, const char *id, const char *error, int64_t now,
                              int64_t authz_lifetime, struct acmera_errmsg *e)
{
	char authz[CA_ID_LEN + 1];
	sqlite3_stmt *st;
	int rc = tx_begin(s, e);
	if (rc)
		return rc;
	rc = finish_chall(s, id, error, now, authz, e);
	if (rc)
		goto out;
	st = prep(s, Q_AUTHZ_VERDICT, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	/* An invalid authorization keeps its expiry; a valid one gets a fresh one. */
	if (bind_text(st, 1, authz) || bind_text(st, 2, error ? "invalid" : "valid") ||
	    sqlite3_bind_int64(st, 3, now + authz_lifetime))
		rc = db_fail(s, e, "authz verdict");
	else
		rc = step_done(s, st, "authz verdict", NULL, e);
	done(st);
	if (rc)
		goto out;
	if (error) {
		const char *v[] = {authz, error};
		rc = run_texts(s, Q_ORDERS_INVALIDATE, v, 2, NULL, "orders invalidate", e);
	} else {
		const char *v[] = {authz};
		rc = run_texts(s, Q_ORDERS_READY, v, 1, NULL, "orders ready", e);
	}
out:
	return tx_end(s, rc, e);
}

int ca_store_challenges_processing(struct ca_store *s, char (*ids)[CA_ID_LEN + 1], size_t max,
                                   size_t *n, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CHALLS_PROCESSING, e);
	int rc = 0, r;
	*n = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	if (sqlite3_bind_int64(st, 1, (sqlite3_int64)max)) {
		rc = db_fail(s, e, "challenges processing");
		goto out;
	}
	while (*n < max && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (col_fixed(st, 0, ids[*n], CA_ID_LEN + 1)) {
			rc = bad_row(ACMERA_ERR_STORE, "challenge", e);
			goto out;
		}
		(*n)++;
	}
	if (*n < max && r != SQLITE_DONE)
		rc = db_fail(s, e, "challenges processing");
out:
	done(st);
	return rc;
}

/* ---- orders ---- */

static int link_authzs(struct ca_store *s, const struct ca_order *o, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_ORDER_LINK, e);
	int rc = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	for (size_t i = 0; i < o->n_authzs && !rc; i++) {
		if (bind_text(st, 1, o->id) || bind_text(st, 2, o->authzs[i]) ||
		    sqlite3_bind_int64(st, 3, (sqlite3_int64)i))
			rc = db_fail(s, e, "order link");
		else
			rc = step_done(s, st, "order link", NULL, e);
		done(st);
	}
	return rc;
}

int ca_store_order_add(struct ca_store *s, const struct ca_order *o, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc;
	if (o->n_authzs < 1 || o->n_authzs > CA_ORDER_MAX_IDS)
		return acmera_fail(e, ACMERA_ERR_INVAL, "ca store: %zu authorizations",
		                   o->n_authzs);
	rc = tx_begin(s, e);
	if (rc)
		return rc;
	st = prep(s, Q_ORDER_ADD, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, o->id) || bind_text(st, 2, o->account) ||
	    bind_text(st, 3, o->status) || sqlite3_bind_int64(st, 4, o->expires) ||
	    bind_text(st, 5, o->identifiers) || sqlite3_bind_int64(st, 6, o->created))
		rc = db_fail(s, e, "order add");
	else
		rc = step_done(s, st, "order add", NULL, e);
	done(st);
	if (!rc)
		rc = link_authzs(s, o, e);
out:
	return tx_end(s, rc, e);
}

static int read_order(sqlite3_stmt *st, struct ca_order *o)
{
	int rc = col_fixed(st, 0, o->id, sizeof(o->id));
	if (!rc)
		rc = col_fixed(st, 1, o->account, sizeof(o->account));
	if (!rc)
		rc = col_fixed(st, 2, o->status, sizeof(o->status));
	o->expires = sqlite3_column_int64(st, 3);
	if (!rc)
		rc = col_str(st, 4, &o->identifiers);
	if (!rc)
		rc = col_fixed(st, 5, o->cert, sizeof(o->cert));
	if (!rc)
		rc = col_str(st, 6, &o->error);
	o->created = sqlite3_column_int64(st, 7);
	if (!rc && !o->identifiers)
		rc = ACMERA_ERR_STORE;
	return rc;
}

static int order_authzs(struct ca_store *s, struct ca_order *o, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_ORDER_AUTHZS, e);
	int rc = 0, r;
	if (!st)
		return ACMERA_ERR_STORE;
	o->authzs = calloc(CA_ORDER_MAX_IDS, sizeof(*o->authzs));
	if (!o->authzs) {
		rc = nomem(e);
		goto out;
	}
	if (bind_text(st, 1, o->id) || sqlite3_bind_int(st, 2, CA_ORDER_MAX_IDS)) {
		rc = db_fail(s, e, "order authzs");
		goto out;
	}
	while (o->n_authzs < CA_ORDER_MAX_IDS && (r = sqlite3_step(st)) == SQLITE_ROW) {
		if (col_fixed(st, 0, o->authzs[o->n_authzs], CA_ID_LEN + 1)) {
			rc = bad_row(ACMERA_ERR_STORE, "order", e);
			goto out;
		}
		o->n_authzs++;
	}
	if (o->n_authzs < CA_ORDER_MAX_IDS && r != SQLITE_DONE)
		rc = db_fail(s, e, "order authzs");
out:
	done(st);
	return rc;
}

int ca_store_order_get(struct ca_store *s, const char *id, struct ca_order *out,
                       struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_ORDER_GET, e);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, id)) {
		rc = db_fail(s, e, "order get");
		done(st);
		return rc;
	}
	rc = step_row(s, st, "order", e);
	if (!rc && (rc = read_order(st, out)) != 0)
		rc = bad_row(rc, "order", e);
	done(st);
	if (!rc)
		rc = order_authzs(s, out, e);
	if (rc)
		ca_order_free(out);
	return rc;
}

int ca_store_order_list(struct ca_store *s, const char *account, size_t offset, size_t max,
                        char (*ids)[CA_ID_LEN + 1], size_t *n, int *more, struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_ORDER_LIST, e);
	int rc = 0, r = SQLITE_DONE;
	*n = 0;
	*more = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	/* One row more than asked tells whether another page follows. */
	if (bind_text(st, 1, account) || sqlite3_bind_int64(st, 2, (sqlite3_int64)offset) ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)max + 1)) {
		rc = db_fail(s, e, "order list");
		goto out;
	}
	while ((r = sqlite3_step(st)) == SQLITE_ROW) {
		if (*n == max) {
			*more = 1;
			break;
		}
		if (col_fixed(st, 0, ids[*n], CA_ID_LEN + 1)) {
			rc = bad_row(ACMERA_ERR_STORE, "order", e);
			goto out;
		}
		(*n)++;
	}
	if (r != SQLITE_DONE && r != SQLITE_ROW)
		rc = db_fail(s, e, "order list");
out:
	done(st);
	return rc;
}

int ca_store_order_transition(struct ca_store *s, const char *id, const char *from, const char *to,
                              const char *error, struct acmera_errmsg *e)
{
	const char *v[] = {id, from, to, error};
	int ch = 0;
	int rc = run_texts(s, Q_ORDER_CAS, v, 4, &ch, "order transition", e);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_AGAIN, "ca store: order is not %s", from);
	return rc;
}

void ca_order_free(struct ca_order *o)
{
	if (!o)
		return;
	free(o->identifiers);
	free(o->error);
	free(o->authzs);
	memset(o, 0, sizeof(*o));
}

/* ---- certificates ---- */

static int read_cert(sqlite3_stmt *st, struct ca_cert *c)
{
	int rc = col_fixed(st, 0, c->id, sizeof(c->id));
	if (!rc)
		rc = col_fixed(st, 1, c->account, sizeof(c->account));
	if (!rc)
		rc = col_fixed(st, 2, c->order_id, sizeof(c->order_id));
	if (!rc)
		rc = col_fixed(st, 3, c->serial, sizeof(c->serial));
	if (!rc)
		rc = col_str(st, 4, &c->chain_pem);
	c->not_after = sqlite3_column_int64(st, 5);
	c->issued = sqlite3_column_int64(st, 6);
	c->revoked = sqlite3_column_int(st, 7);
	c->reason = sqlite3_column_int(st, 8);
	c->revoked_at = sqlite3_column_int64(st, 9);
	if (!rc && !c->chain_pem)
		rc = ACMERA_ERR_STORE;
	return rc;
}

int ca_store_cert_issued(struct ca_store *s, const struct ca_cert *c, struct acmera_errmsg *e)
{
	sqlite3_stmt *st;
	int rc = tx_begin(s, e), ch = 0;
	if (rc)
		return rc;
	st = prep(s, Q_CERT_ADD, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, c->id) || bind_text(st, 2, c->account) ||
	    bind_text(st, 3, c->order_id) || bind_text(st, 4, c->serial) ||
	    bind_text(st, 5, c->chain_pem) || sqlite3_bind_int64(st, 6, c->not_after) ||
	    sqlite3_bind_int64(st, 7, c->issued))
		rc = db_fail(s, e, "cert add");
	else
		rc = step_done(s, st, "cert add", NULL, e);
	done(st);
	if (rc)
		goto out;
	st = prep_sql(s, &s->order_valid, order_valid_sql, e);
	if (!st) {
		rc = ACMERA_ERR_STORE;
		goto out;
	}
	if (bind_text(st, 1, c->order_id) || bind_text(st, 2, c->id))
		rc = db_fail(s, e, "order valid");
	else
		rc = step_done(s, st, "order valid", &ch, e);
	done(st);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_AGAIN, "ca store: order is no longer ready");
out:
	return tx_end(s, rc, e);
}

static int cert_by(struct ca_store *s, enum q q, const char *key, struct ca_cert *out,
                   struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, q, e);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, key)) {
		rc = db_fail(s, e, "cert get");
		goto out;
	}
	rc = step_row(s, st, "certificate", e);
	if (!rc && (rc = read_cert(st, out)) != 0) {
		rc = bad_row(rc, "certificate", e);
		ca_cert_free(out);
	}
out:
	done(st);
	return rc;
}

int ca_store_cert_get(struct ca_store *s, const char *id, struct ca_cert *out,
                      struct acmera_errmsg *e)
{
	return cert_by(s, Q_CERT_GET, id, out, e);
}

int ca_store_cert_by_serial(struct ca_store *s, const char *serial, struct ca_cert *out,
                            struct acmera_errmsg *e)
{
	return cert_by(s, Q_CERT_BY_SERIAL, serial, out, e);
}

int ca_store_cert_revoke(struct ca_store *s, const char *id, int reason, int64_t now,
                         struct acmera_errmsg *e)
{
	sqlite3_stmt *st = prep(s, Q_CERT_REVOKE, e);
	int rc, ch = 0;
	if (!st)
		return ACMERA_ERR_STORE;
	if (bind_text(st, 1, id) || sqlite3_bind_int(st, 2, reason) ||
	    sqlite3_bind_int64(st, 3, now))
		rc = db_fail(s, e, "cert revoke");
	else
		rc = step_done(s, st, "cert revoke", &ch, e);
	done(st);
	if (!rc && ch == 0)
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "ca store: already revoked or unknown");
	return rc;
}

void ca_cert_free(struct ca_cert *c)
{
	if (!c)
		return;
	free(c->chain_pem);
	memset(c, 0, sizeof(*c));
}

int ca_store_batch_begin(struct ca_store *s, struct acmera_errmsg *e)
{
	return store_batch_begin(s->base, e);
}

int ca_store_batch_end(struct ca_store *s, struct acmera_errmsg *e)
{
	return store_batch_end(s->base, e);
}

int ca_store_batch_pending(const struct ca_store *s)
{
	return store_batch_pending(s->base);
}

int ca_store_batch_begin_nosync(struct ca_store *s, struct acmera_errmsg *e)
{
	return store_batch_begin_nosync(s->base, e);
}

int ca_store_wal_open(struct ca_store *s, struct acmera_errmsg *e)
{
	return store_wal_open(s->base, e);
}
