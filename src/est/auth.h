/* Who is asking: HTTP Basic against a file of yescrypt hashes, or a TLS client
 * certificate (an IDevID under the profile's trust anchors, or a certificate
 * acmera issued, for re-enrollment). */
#ifndef ACMERA_EST_AUTH_H
#define ACMERA_EST_AUTH_H

#include "base/err.h"

#include <openssl/x509.h>
#include <stddef.h>

/* The password file: one "user:hash" per line, hash from crypt(3) with a yescrypt
 * setting ("$y$..."); '#' comments; at most 100000 users. Loaded once and reloaded
 * when its mtime changes. */
struct est_passwd;
int est_passwd_load(const char *path, struct est_passwd **out, struct acmera_errmsg *e);
void est_passwd_free(struct est_passwd *p);
/* Checks an Authorization header value ("Basic base64(user:pass)"). On success
 * copies the user name into user (at most userlen bytes) and returns 0;
 * ACMERA_ERR_REFUSED for wrong credentials, ACMERA_ERR_INVAL for a malformed
 * header. Takes constant time per user entry whether or not the user exists. */
int est_passwd_check(struct est_passwd *p, const char *authorization, char *user, size_t userlen,
                     struct acmera_errmsg *e);
/* Remembers verified credentials for ttl_s seconds (0: off, the default), so that
 * repeated requests skip yescrypt; see cred_cache.h for what is kept. A reload of
 * the file forgets them all; a changed entry never hits. */
int est_passwd_cache(struct est_passwd *p, int ttl_s, struct acmera_errmsg *e);
/* Adds or replaces user with a fresh yescrypt hash of password in the file
 * (created 0600), atomically. For `acmera passwd`. */
int est_passwd_set(const char *path, const char *user, const char *password,
                   struct acmera_errmsg *e);

/* Trust anchors of a profile (PEM bundle) and the verification of a presented
 * chain against them at time now (the TLS layer may not have). */
struct est_trust;
int est_trust_load(const char *pem_file, struct est_trust **out, struct acmera_errmsg *e);
void est_trust_free(struct est_trust *t);
/* 0 when chain (leaf first) verifies to an anchor of t, else ACMERA_ERR_REFUSED
 * naming why. */
int est_trust_verify(struct est_trust *t, STACK_OF(X509) * chain, struct acmera_errmsg *e);

/* The authenticated identity a name template may use. */
struct est_identity {
	char user[128];          /* Basic user, "" if none */
	char cn[256];            /* client certificate subject CN, "" if none */
	char serial_number[128]; /* client certificate subject serialNumber, "" if none */
	int by_certificate;      /* 1 when authenticated by TLS client certificate */
};
/* Fills cn and serial_number from a certificate's subject. */
void est_identity_from_cert(X509 *cert, struct est_identity *id);

#endif
