/* Schema migrations of the SQLite store: an ordered list of SQL steps, step i
 * bringing the schema from version i to i + 1, recorded in PRAGMA user_version.
 * Each step is plain DDL that a PostgreSQL back-end mirrors in its own list; step
 * 4 also fills its new column for the rows already there, in C. */
#ifndef ACMERA_STORE_MIGRATIONS_H
#define ACMERA_STORE_MIGRATIONS_H

#include "base/err.h"

#include <sqlite3.h>

/* The version the newest step leads to. */
int store_migrations_latest(void);

/* Applies the missing steps in one IMMEDIATE transaction, so that processes
 * opening the same file at once migrate it exactly once. Refuses a file whose
 * version is newer than this build knows. *version gets the resulting version. */
int store_migrate(sqlite3 *db, int *version, struct acmera_errmsg *e);

#endif
