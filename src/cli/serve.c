/* acmera serve: the EST front door and the issuer, in one process by default. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/stop.h"

#include "base/log.h"
#include "est/service.h"
#include "http/server.h"
#include "issuer/issuer.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ISSUER_RESTART_S 5

static const char usage[] =
    "usage: acmera serve --config FILE [--role both|front|issuer]\n"
    "\n"
    "Serves EST (RFC 7030) on [est] listen and drives enrollments through the ACME CA.\n"
    "  --role both     the EST front door and the issuer in one process (default)\n"
    "  --role front    only the EST front door: jobs wait in the store for an issuer\n"
    "  --role issuer   only the issuer: works on the jobs front doors record\n";

enum { OPT_ROLE = 1 };
static const struct option options[] = {
    {"role", required_argument, NULL, OPT_ROLE},
    {NULL, 0, NULL, 0},
};

static int on_option(int opt, const char *arg, void *ctx)
{
	if (opt != OPT_ROLE ||
	    (strcmp(arg, "both") && strcmp(arg, "front") && strcmp(arg, "issuer"))) {
		fprintf(stderr, "acmera serve: --role: '%s' is not both, front or issuer\n", arg);
		return 2;
	}
	*(const char **)ctx = arg;
	return 0;
}

struct issuer_thread {
	const struct config *cfg;
	pthread_t thread;
	int started;
};

/* The issuer for as long as the process runs: a start that fails (CA or store
 * unreachable) is tried again after a pause. */
static void *issuer_main(void *arg)
{
	struct issuer_thread *t = arg;
	pthread_setname_np(pthread_self(), "acmera-issuer");
	while (!cli_stop_requested) {
		struct store *store = NULL;
		struct acmera_errmsg e = {{0}};
		struct issuer_opts o = {.cfg = t->cfg, .stop = &cli_stop_requested};
		int rc = store_open(t->cfg->store.path, &store, &e);
		if (rc == 0)
			rc = issuer_run(store, &o, NULL, &e);
		store_close(store);
		if (cli_stop_requested)
			break;
		log_event(LOG_LVL_ERROR, "issuer.stopped", "error=%s restart_in=%ds",
		          log_qv(rc ? e.text : "returned"), ISSUER_RESTART_S);
		for (int i = 0; i < ISSUER_RESTART_S * 10 && !cli_stop_requested; i++) {
			struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

int cli_serve(int argc, char **argv)
{
	struct config cfg;
	const char *role = "both";
	struct est_service *est = NULL;
	struct http_server *server = NULL;
	struct issuer_thread it = {0};
	struct acmera_errmsg e = {{0}};
	int status = 1;
	int rc = cli_setup(argc, argv, options, "", on_option, &role, usage, &cfg);
	if (rc) {
		config_free(&cfg);
		return rc < 0 ? 0 : rc;
	}
	if (optind != argc) {
		fprintf(stderr, "%s\n(--help lists the options)\n", usage);
		config_free(&cfg);
		return 2;
	}
	int front = strcmp(role, "issuer") != 0, issuer = strcmp(role, "front") != 0;
	/* The store is created (and migrated) once, before any thread opens it. */
	struct store *probe = NULL;
	if (cli_open_store(&cfg, &probe))
		goto out;
	store_close(probe);
	if (front) {
		if (!cfg.est.cert || !cfg.est.key) {
			fprintf(stderr,
			        "acmera serve: set [est] cert and key (the RA's TLS identity)\n");
			goto out;
		}
		if (est_service_new(&cfg, &est, &e)) {
			fprintf(stderr, "acmera serve: %s\n", e.text);
			goto out;
		}
		struct http_server_opts ho = {
		    .listen = cfg.est.listen,
		    .cert_file = cfg.est.cert,
		    .key_file = cfg.est.key,
		    .client_ca_file = cfg.est.client_ca,
		    .workers = cfg.est.workers,
		    .max_connections = cfg.est.max_connections,
		    .max_body = (size_t)cfg.est.max_body,
		    .handshake_timeout_ms = cfg.est.handshake_timeout,
		    .header_timeout_ms = cfg.est.header_timeout,
		    .idle_timeout_ms = cfg.est.idle_timeout,
		    .stop_retry_after = cfg.est.retry_after,
		};
		if (http_server_new(&ho, est_service_handle, est, &server, &e)) {
			fprintf(stderr, "acmera serve: %s\n", e.text);
			goto out;
		}
	}
	cli_stop_on_signals();
	if (issuer) {
		it.cfg = &cfg;
		if (pthread_create(&it.thread, NULL, issuer_main, &it) != 0) {
			fprintf(stderr, "acmera serve: cannot start the issuer thread\n");
			goto out;
		}
		it.started = 1;
	}
	log_event(LOG_LVL_INFO, "serve.started", "role=%s listen=%s port=%u profiles=%zu", role,
	          front ? cfg.est.listen : "-", server ? (unsigned)http_server_port(server) : 0,
	          cfg.n_profiles);
	if (front) {
		cli_run_until_stopped(server);
	} else {
		while (!cli_stop_requested) {
			struct timespec ts = {0, 200000000L};
			nanosleep(&ts, NULL);
		}
	}
	status = 0;
out:
	cli_stop_requested = 1;
	if (it.started)
		pthread_join(it.thread, NULL);
	http_server_free(server);
	est_service_free(est);
	log_event(LOG_LVL_INFO, "serve.stopped", "status=%d", status);
	config_free(&cfg);
	return status;
}
