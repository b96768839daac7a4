/* acmera ca: the ACME CA (RFC 8555, RFC 9444) for private PKIs. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/stop.h"

#include "base/log.h"
#include "ca/jws_verify.h"
#include "ca/service.h"
#include "http/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage[] =
    "usage: acmera ca --config FILE [--print-root]\n"
    "\n"
    "Runs an ACME server (RFC 8555) on [ca] listen with pre-authorization and RFC 9444\n"
    "subdomain authorizations, issuing from [ca] dir (generated) or issuer_cert, until\n"
    "SIGTERM or SIGINT. Its directory is <[ca] url>/dir.\n"
    "  --print-root    print the root CA certificate (PEM) and exit\n";

enum { OPT_PRINT_ROOT = 1 };
static const struct option options[] = {
    {"print-root", no_argument, NULL, OPT_PRINT_ROOT},
    {NULL, 0, NULL, 0},
};

static int on_option(int opt, const char *arg, void *ctx)
{
	(void)arg;
	if (opt != OPT_PRINT_ROOT)
		return 2;
	*(int *)ctx = 1;
	return 0;
}

int cli_ca(int argc, char **argv)
{
	struct config cfg;
	struct ca_service *ca = NULL;
	struct http_server *server = NULL;
	struct acmera_errmsg e = {{0}};
	int print_root = 0, status = 1;
	int rc = cli_setup(argc, argv, options, "", on_option, &print_root, usage, &cfg);
	if (rc) {
		config_free(&cfg);
		return rc < 0 ? 0 : rc;
	}
	if (optind != argc) {
		fprintf(stderr, "%s\n(--help lists the options)\n", usage);
		config_free(&cfg);
		return 2;
	}
	/* The store is created (and migrated) once, before any thread opens it. */
	struct store *probe = NULL;
	if (cli_open_store(&cfg, &probe))
		goto out;
	store_close(probe);
	if (ca_service_new(&cfg, &ca, &e)) {
		fprintf(stderr, "acmera ca: %s\n", e.text);
		goto out;
	}
	if (print_root) {
		fputs(ca_service_root_pem(ca), stdout);
		status = fflush(stdout) == 0 ? 0 : 1;
		goto out;
	}
	if (!cfg.ca.cert || !cfg.ca.key) {
		fprintf(stderr,
		        "acmera ca: set [ca] cert and key (the ACME server's TLS identity)\n");
		goto out;
	}
	struct http_server_opts ho = {
	    .listen = cfg.ca.listen,
	    .cert_file = cfg.ca.cert,
	    .key_file = cfg.ca.key,
	    .workers = cfg.ca.workers,
	    /* Above the CA's own JWS limit, so that a body between the two gets an ACME
	     * problem document with a nonce rather than libevent's bare 413. */
	    .max_body = 2 * CA_JWS_MAX_BODY,
	};
	if (http_server_new(&ho, ca_service_handle, ca, &server, &e)) {
		fprintf(stderr, "acmera ca: %s\n", e.text);
		goto out;
	}
	cli_stop_on_signals();
	log_event(LOG_LVL_INFO, "ca.started", "listen=%s port=%u domains=%zu validators=%d",
	          cfg.ca.listen, (unsigned)http_server_port(server), cfg.ca.n_domains,
	          cfg.ca.validators);
	cli_run_until_stopped(server);
	status = 0;
	log_event(LOG_LVL_INFO, "ca.stopped", "status=%d", status);
out:
	http_server_free(server);
	ca_service_free(ca);
	config_free(&cfg);
	return status;
}
