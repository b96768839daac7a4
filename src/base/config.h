/* Configuration: one INI file (inih), git-config-like sections. Every key is
 * documented in docs/acmera.conf.5 and shown in examples/acmera.conf.
 *
 *   [acme]   directory, ca_bundle, account_key_type, contact, eab_kid,
 *            eab_hmac_key_file, preauthorize (repeatable), alternate_chain,
 *            timeout, poll_max
 *   [dns]    server, tsig_keyfile, zone (repeatable), hook, ttl, timeout,
 *            propagation_check, propagation_timeout
 *   [issuer] parallel, lease, batch_wait, max_attempts
 *   [store]  path
 *   [log]    level, destination
 *   [est]    listen, cert, key, workers, wait, retry_after, max_body,
 *            max_connections, handshake_timeout, header_timeout, idle_timeout,
 *            passwd_file, auth_cache, client_ca, ca_chain
 *   [ca]     listen, url, cert, key, dir, issuer_cert, issuer_key, name, domains,
 *            key_types, lifetime, authz_lifetime, order_lifetime, resolver,
 *            http_port, challenge_timeout, workers, validators, eab_required,
 *            eab_file, terms_of_service (the ACME CA, `acmera ca`)
 *   [profile "LABEL"]  name_template, trust_anchors, auth, key_types,
 *            rsa_min_bits, channel_binding (LABEL "default" serves the
 *            unlabelled /.well-known/est/ paths; others /.well-known/est/LABEL/)
 *
 * An unknown section or key, a bad value or a missing file is an error that names
 * the file, the line and the key. Command-line flags override the file: set the
 * field after config_load. */
#ifndef ACMERA_BASE_CONFIG_H
#define ACMERA_BASE_CONFIG_H

#include "base/err.h"

#include <stddef.h>

#define CONFIG_MAX_LIST 64
#define CONFIG_MAX_PROFILES 32

/* An EST profile: the policy of one label. */
struct config_profile {
	char *label;         /* from the section header */
	char *name_template; /* e.g. "{serialNumber}.iot.example.com" */
	char *trust_anchors; /* PEM bundle of IDevID issuers accepted for this profile */
	char *auth;          /* "cert", "basic" or "cert,basic" (default) */
	char *key_types;     /* comma list of p256, p384, ed25519, rsa (default "p256,p384,rsa") */
	int rsa_min_bits;    /* default 2048 */
	int channel_binding; /* 0/1: challengePassword must carry the TLS channel binding */
};

struct config {
	struct {
		char *directory;         /* ACME directory URL */
		char *ca_bundle;         /* PEM trust for the ACME server's TLS; NULL = system */
		char *account_key_type;  /* "p256" (default), "p384", "rsa2048", ... */
		char *contact;           /* "mailto:..." or NULL */
		char *eab_kid;           /* external account binding key id */
		char *eab_hmac_key_file; /* file holding the base64url MAC key (0600) */
		char *preauthorize[CONFIG_MAX_LIST]; /* parent domains to pre-authorize */
		size_t n_preauthorize;
		char *alternate_chain; /* prefer the chain whose issuer contains this */
		int timeout;           /* seconds per HTTP request, default 30 */
		int poll_max;          /* longest wait between polls, seconds, default 30 */
	} acme;
	struct {
		char *server;       /* HOST:PORT of the primary for UPDATE */
		char *tsig_keyfile; /* BIND key file */
		char *zones[CONFIG_MAX_LIST];
		size_t n_zones;
		char *hook;              /* command used instead of RFC 2136 when set */
		int ttl;                 /* TXT TTL, default 60 */
		int timeout;             /* milliseconds per UPDATE attempt, default 3000 */
		int propagation_check;   /* 0/1, default 0 */
		int propagation_timeout; /* seconds, default 60 */
	} dns;
	struct {
		int parallel;     /* jobs driven at once, default 256 */
		int lease;        /* seconds a claimed job is held, default 60 */
		int batch_wait;   /* ms to gather jobs into one batch, default 200 */
		int max_attempts; /* before a job fails for good, default 10 */
	} issuer;
	struct {
		char *path; /* SQLite file, default "acmera.db" */
	} store;
	struct {
		char *level;       /* debug, info (default), warn, error */
		char *destination; /* stderr (default) or syslog */
	} log;
	struct {
		char *listen;          /* default "127.0.0.1:8443" */
		char *cert, *key;      /* the RA's TLS certificate chain and key (PEM) */
		int workers;           /* event loops, default 1 */
		int wait;              /* ms to wait for the issuer before 202, default 2000 */
		int retry_after;       /* seconds in Retry-After of a 202, default 5 */
		int max_body;          /* bytes, default 65536 */
		int max_connections;   /* per worker, default 1000 */
		int handshake_timeout; /* ms, default 10000 */
		int header_timeout;    /* ms, default 10000 */
		int idle_timeout;      /* ms, default 60000 */
		char *passwd_file;     /* HTTP Basic users (acmera passwd) */
		int auth_cache;        /* seconds a verified Basic credential is kept, 300 */
		char *client_ca;       /* PEM bundle the TLS layer verifies client certs with */
		char *ca_chain;        /* PEM chain for /cacerts until one is learnt */
	} est;
	struct {
		char *listen;      /* HTTPS, default "127.0.0.1:14000" */
		char *url;         /* external base URL; NULL: "https://" + listen */
		char *cert, *key;  /* TLS certificate chain and key of the ACME server */
		char *dir;         /* CA state (generated hierarchy), default "acmera-ca" */
		char *issuer_cert; /* configured issuing CA chain (PEM), else generated */
		char *issuer_key;  /* its key */
		char *name;        /* CN prefix of generated CAs, default "acmera private" */
		char *domains[CONFIG_MAX_LIST]; /* allowed: these names and names below */
		size_t n_domains;
		char *key_types;        /* CSR keys: p256 p384 rsa ed25519 (default all) */
		int lifetime;           /* leaf seconds, default 7776000 (90 days) */
		int authz_lifetime;     /* valid authorization reuse, default 2592000 */
		int order_lifetime;     /* seconds, default 604800 */
		char *resolver;         /* HOST:PORT asked for dns-01, default 127.0.0.1:53 */
		int http_port;          /* http-01 port, default 80 */
		int challenge_timeout;  /* ms per validation attempt, default 5000 */
		int workers;            /* HTTP event loops, default 1 */
		int validators;         /* validation threads, default 2 */
		int eab_required;       /* 0/1, default 0 */
		char *eab_file;         /* "kid base64url-hmac-key" lines, 0600 */
		char *terms_of_service; /* URL or NULL */
	} ca;
	struct config_profile profiles[CONFIG_MAX_PROFILES];
	size_t n_profiles;
};

/* The profile of label ("default" for no label), or NULL. */
const struct config_profile *config_profile_find(const struct config *c, const char *label);

/* Fills defaults (heap strings). Returns 0 or ACMERA_ERR_NOMEM. */
int config_init(struct config *c);
/* Reads path into c (over the defaults; on failure c may be partly updated and
 * still needs config_free). Errors: "FILE:LINE: unknown key 'x' in
 * section [dns]", "FILE:LINE: [dns] ttl: 'abc' is not a number from 0 to ...",
 * "FILE: cannot open: No such file or directory". */
int config_load(struct config *c, const char *path, struct acmera_errmsg *e);
/* Replaces a string field (frees the old value); for command-line overrides. */
int config_set_str(char **field, const char *value);
/* Appends to a repeatable list. */
int config_list_add(char **list, size_t *n, const char *value, struct acmera_errmsg *e);
void config_free(struct config *c);

#endif
