/* TSIG keys read from BIND key files, as written by `tsig-keygen`:
 *
 *   key "acmera" {
 *           algorithm hmac-sha256;
 *           secret "base64...";
 *   };
 */
#ifndef ACMERA_DNS_TSIG_KEY_H
#define ACMERA_DNS_TSIG_KEY_H

#include "base/err.h"

struct tsig_key {
	char name[256];       /* key name, absolute, with trailing dot */
	char algorithm[32];   /* "hmac-sha256." | "hmac-sha384." | "hmac-sha512." */
	char secret_b64[256]; /* a secret: never log it */
};

/* Reads the first key of a BIND key file. Refuses a file readable by group or
 * others (secrets are 0600) unless allow_open_mode is set. Errors name the file,
 * the line and what is wrong. */
int tsig_key_load(const char *path, int allow_open_mode, struct tsig_key *out,
                  struct acmera_errmsg *e);
/* Parses key-file text (for tests and fuzzing); origin names it in errors. */
int tsig_key_parse(const char *text, size_t len, const char *origin, struct tsig_key *out,
                   struct acmera_errmsg *e);
/* Overwrites the secret in memory. */
void tsig_key_wipe(struct tsig_key *k);

#endif
