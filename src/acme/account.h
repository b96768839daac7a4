/* The ACME account (RFC 8555 7.3): its key lives in the store, per directory URL. */
#ifndef ACMERA_ACME_ACCOUNT_H
#define ACMERA_ACME_ACCOUNT_H

#include "acme/client.h"
#include "base/err.h"
#include "store/store.h"

#include <openssl/evp.h>

struct acme_account_opts {
	const char *key_type;     /* "p256" (default), "p384", "rsa2048", ... */
	const char *contact;      /* e.g. "mailto:ops@example.com", or NULL */
	const char *eab_kid;      /* external account binding, or NULL */
	const char *eab_hmac_key; /* base64url MAC key (a secret), or NULL */
	int create;               /* 1: register when the CA does not know the key */
};

/* Loads the account key of the client's directory from the store (making and
 * storing a new one when there is none and opts->create), finds or registers the
 * account, stores its URL, and sets key and kid on the client. *key is owned by
 * the caller (EVP_PKEY_free) and must outlive the client's use of it. */
int acme_account_ensure(struct acme_client *c, struct store *s, const struct acme_account_opts *o,
                        EVP_PKEY **key, struct acmera_errmsg *e);

/* POST-as-GET of the account: its JSON text (heap) for `acmera account show`. */
int acme_account_fetch(struct acme_client *c, char **json, struct acmera_errmsg *e);

/* Key rollover (RFC 8555 7.3.5): a new key of key_type replaces the old one at
 * the CA and then in the store. *key is replaced (the old one freed). */
int acme_account_rollover(struct acme_client *c, struct store *s, const char *key_type,
                          EVP_PKEY **key, struct acmera_errmsg *e);

/* Deactivation (RFC 8555 7.3.6); the store marks the account deactivated. */
int acme_account_deactivate(struct acme_client *c, struct store *s, struct acmera_errmsg *e);

#endif
