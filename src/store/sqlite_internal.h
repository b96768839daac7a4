/* What the SQLite back-ends of the store share (store.h in sqlite.c, the CA's
 * ca_store.h in ca_sqlite.c): the connection of an open handle and small column
 * and binding helpers. Internal to src/store/. */
#ifndef ACMERA_STORE_SQLITE_INTERNAL_H
#define ACMERA_STORE_SQLITE_INTERNAL_H

#include "base/err.h"
#include "store/store.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

/* The connection of s (opened, hardened and migrated by store_open); owned by s. */
sqlite3 *store_sqlite_db(struct store *s);

/* One change on the connection of s: a transaction of its own, or a savepoint of
 * the open batch (store_batch_begin). tx_end commits when rc is 0, else undoes
 * the change; it returns rc or the commit's error. */
int store_sqlite_tx_begin(struct store *s, struct acmera_errmsg *e);
int store_sqlite_tx_end(struct store *s, int rc, struct acmera_errmsg *e);

/* The text of statement i of each back-end, NULL past the last: the tests read
 * every query plan through these. */
const char *store_sqlite_statement(size_t i);
const char *ca_sqlite_statement(size_t i);

/* SHA-256, lower-case hex, of the first PEM certificate block of chain_pem
 * ("-----BEGIN CERTIFICATE-----\n" through "-----END CERTIFICATE-----\n"): the
 * key certs_by_leaf indexes. -1 when chain_pem has no such block. */
int store_leaf_digest(const char *chain_pem, char hex[65]);

static inline int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* A heap copy of a text column, NULL for SQL NULL. */
static inline int col_str(sqlite3_stmt *st, int i, char **out)
{
	const unsigned char *t;

	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	t = sqlite3_column_text(st, i);
	if (t)
		*out = strdup((const char *)t);
	return *out ? 0 : ACMERA_ERR_NOMEM;
}

#endif
