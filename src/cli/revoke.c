/* acmera revoke --cert FILE [--reason CODE] */
#include "cli/cli.h"
#include "cli/common.h"

#include "acme/account.h"
#include "base/b64.h"
#include "base/secret.h"
#include "pki/cert.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: acmera revoke --cert FILE [--reason CODE]\n"
    "\n"
    "Revokes a certificate issued to this RA's ACME account (RFC 8555 7.6).\n"
    "  --cert FILE     the certificate (PEM; the first certificate of a chain is taken)\n"
    "  --reason CODE   CRL reason code (RFC 5280 5.3.1): 0 unspecified (default),\n"
    "                  1 keyCompromise, 3 affiliationChanged, 4 superseded,\n"
    "                  5 cessationOfOperation\n";

enum { OPT_CERT = 1, OPT_REASON };

static const struct option options[] = {
    {"cert", required_argument, NULL, OPT_CERT},
    {"reason", required_argument, NULL, OPT_REASON},
    {NULL, 0, NULL, 0},
};

struct revoke_args {
	const char *cert;
	long reason;
};

static int on_option(int opt, const char *arg, void *ctx)
{
	struct revoke_args *a = ctx;
	char *end = NULL;
	if (opt == OPT_CERT) {
		a->cert = arg;
		return 0;
	}
	if (opt == OPT_REASON) {
		errno = 0;
		a->reason = strtol(arg, &end, 10);
		/* 2 (cACompromise), 6, 7, 8 and 9 are not for a subscriber to claim. */
		if (errno || !end || *end ||
		    !(a->reason == 0 || a->reason == 1 || (a->reason >= 3 && a->reason <= 5))) {
			fprintf(stderr, "acmera revoke: --reason: '%s' is not 0, 1, 3, 4 or 5\n",
			        arg);
			return 2;
		}
		return 0;
	}
	return 2;
}

/* The first certificate of path: its DER (for the CA) and its PEM as the store
 * keeps it (to stop serving it). */
static int load_cert(const char *path, uint8_t **der, int *len, char **pem, struct acmera_errmsg *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!x)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%s: no PEM certificate", path);
	*der = NULL;
	*len = i2d_X509(x, der);
	STACK_OF(X509) *one = sk_X509_new_null();
	if (one && sk_X509_push(one, x) == 1)
		*pem = chain_to_pem(one);
	sk_X509_free(one);
	X509_free(x);
	if (*len <= 0 || !*pem)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%s: cannot encode", path);
	return 0;
}

int cli_revoke(int argc, char **argv)
{
	struct config cfg;
	struct revoke_args a = {0};
	struct store *store = NULL;
	struct acme_client *client = NULL;
	EVP_PKEY *key = NULL;
	uint8_t *der = NULL;
	int der_len = 0;
	char *b64 = NULL, *payload = NULL, *leaf_pem = NULL;
	struct acmera_errmsg e = {{0}};
	int status = 1;
	int rc = cli_setup(argc, argv, options, "", on_option, &a, usage, &cfg);
	if (rc) {
		config_free(&cfg);
		return rc < 0 ? 0 : rc;
	}
	if (!a.cert || optind != argc) {
		fprintf(stderr, "%s\n(--help lists the options)\n", usage);
		config_free(&cfg);
		return 2;
	}
	if (!cfg.acme.directory) {
		fprintf(stderr,
		        "acmera revoke: no ACME directory: set acme directory or --directory\n");
		goto out;
	}
	if (load_cert(a.cert, &der, &der_len, &leaf_pem, &e))
		goto fail;
	if (cli_open_store(&cfg, &store))
		goto out;
	struct acme_client_opts co = {.directory_url = cfg.acme.directory,
	                              .ca_bundle = cfg.acme.ca_bundle,
	                              .timeout_s = cfg.acme.timeout};
	struct acme_account_opts ao = {.key_type = cfg.acme.account_key_type, .create = 0};
	if (acme_client_new(&co, &client, &e) || acme_client_load_directory(client, &e) ||
	    acme_account_ensure(client, store, &ao, &key, &e))
		goto fail;
	b64 = b64url_encode(der, (size_t)der_len);
	json_t *req =
	    json_pack("{s:s,s:i}", "certificate", b64 ? b64 : "", "reason", (int)a.reason);
	payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (!payload) {
		acmera_fail(&e, ACMERA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (acme_post_sync(client, acme_client_directory(client)->revoke_cert, payload, NULL, 0,
	                   NULL, &e))
		goto fail;
	/* Revoked is revoked: the store must never hand this certificate out again. */
	int64_t marked = 0;
	if (store_cert_mark_revoked(store, leaf_pem, &marked, &e)) {
		fprintf(stderr,
		        "acmera revoke: revoked at the CA, but the store still has it: %s\n",
		        e.text);
		goto out;
	}
	printf("revoked %s (reason %ld)%s\n", a.cert, a.reason,
	       marked ? "; no longer served from the store" : "");
	status = 0;
	goto out;
fail:
	fprintf(stderr, "acmera revoke: %s\n", e.text);
out:
	OPENSSL_free(der);
	free(leaf_pem);
	free(b64);
	free(payload);
	acme_client_free(client);
	EVP_PKEY_free(key);
	store_close(store);
	config_free(&cfg);
	return status;
}
