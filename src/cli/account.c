/* acmera account show|create|rollover|deactivate */
#include "cli/cli.h"
#include "cli/common.h"

#include "acme/account.h"
#include "acme/jws.h"
#include "base/secret.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: acmera account show|create|rollover|deactivate [--key-type TYPE]\n"
    "\n"
    "  show        the account URL, key thumbprint and the CA's view of the account\n"
    "  create      register the account (with external account binding when configured)\n"
    "  rollover    replace the account key (RFC 8555 7.3.5)\n"
    "  deactivate  deactivate the account for good (RFC 8555 7.3.6)\n"
    "\n"
    "  --key-type TYPE     p256 (default), p384, rsa2048, rsa3072 or rsa4096: the key made\n"
    "                      by create or rollover\n";

enum { OPT_KEY_TYPE = 1 };

static const struct option options[] = {
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {NULL, 0, NULL, 0},
};

static int on_option(int opt, const char *arg, void *ctx)
{
	if (opt != OPT_KEY_TYPE)
		return 2;
	if (acme_key_type_parse(arg) < 0) {
		fprintf(stderr, "acmera account: --key-type: unknown key type '%s'\n", arg);
		return 2;
	}
	*(const char **)ctx = arg;
	return 0;
}

int cli_account(int argc, char **argv)
{
	struct config cfg;
	const char *key_type = NULL;
	struct store *store = NULL;
	struct acme_client *client = NULL;
	EVP_PKEY *key = NULL;
	char *eab = NULL, *json = NULL;
	struct acmera_errmsg e = {{0}};
	int status = 1;
	int rc = cli_setup(argc, argv, options, "", on_option, &key_type, usage, &cfg);
	if (rc) {
		config_free(&cfg);
		return rc < 0 ? 0 : rc;
	}
	const char *action = optind < argc ? argv[optind] : NULL;
	if (!action || optind + 1 != argc ||
	    (strcmp(action, "show") && strcmp(action, "create") && strcmp(action, "rollover") &&
	     strcmp(action, "deactivate"))) {
		if (action && optind + 1 == argc)
			fprintf(stderr, "acmera account: unknown action '%s'\n", action);
		fprintf(stderr, "%s\n(--help lists the options)\n", usage);
		config_free(&cfg);
		return 2;
	}
	if (!cfg.acme.directory) {
		fprintf(stderr, "acmera account: no ACME directory: set acme directory or "
		                "--directory\n");
		goto out;
	}
	if (cli_open_store(&cfg, &store))
		goto out;
	struct acme_client_opts co = {.directory_url = cfg.acme.directory,
	                              .ca_bundle = cfg.acme.ca_bundle,
	                              .timeout_s = cfg.acme.timeout};
	if (acme_client_new(&co, &client, &e) || acme_client_load_directory(client, &e))
		goto fail;
	if (cfg.acme.eab_hmac_key_file && read_secret_file(cfg.acme.eab_hmac_key_file, &eab, &e))
		goto fail;
	struct acme_account_opts ao = {
	    .key_type = key_type ? key_type : cfg.acme.account_key_type,
	    .contact = cfg.acme.contact,
	    .eab_kid = cfg.acme.eab_kid,
	    .eab_hmac_key = eab,
	    .create = strcmp(action, "create") == 0,
	};
	if (acme_account_ensure(client, store, &ao, &key, &e))
		goto fail;
	if (strcmp(action, "rollover") == 0) {
		if (acme_account_rollover(client, store, ao.key_type, &key, &e))
			goto fail;
		printf("rolled over: new key type %s\n", ao.key_type ? ao.key_type : "p256");
	} else if (strcmp(action, "deactivate") == 0) {
		if (acme_account_deactivate(client, store, &e))
			goto fail;
		printf("deactivated\n");
	}
	if (strcmp(action, "deactivate") != 0) {
		if (acme_account_fetch(client, &json, &e))
			goto fail;
		printf("account: %s\nalgorithm: %s\nthumbprint: %s\n%s\n", acme_client_kid(client),
		       jws_alg(key), acme_client_thumbprint(client), json);
	}
	status = 0;
	goto out;
fail:
	fprintf(stderr, "acmera account %s: %s\n", action, e.text);
out:
	secret_free(eab);
	free(json);
	acme_client_free(client);
	EVP_PKEY_free(key);
	store_close(store);
	config_free(&cfg);
	return status;
}
