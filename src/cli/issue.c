/* acmera issue: certificates for CSR files through the issuer. */
#include "cli/cli.h"
#include "cli/common.h"
#include "cli/csr_files.h"
#include "cli/issue_writer.h"
#include "cli/stop.h"

#include "base/b64.h"
#include "base/log.h"
#include "dns/zone.h"
#include "issuer/issuer.h"
#include "pki/cert.h"
#include "pki/csr.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CSRS 10000

static const char usage[] =
    "usage: acmera issue --csr FILE [--csr FILE ...] --out PATH [--pkcs7] [--timeout SECONDS]\n"
    "\n"
    "Obtains a certificate for each CSR from the ACME CA, proving control of its names\n"
    "with DNS-01. With one CSR, PATH is the certificate file; with several, PATH is a\n"
    "directory and each certificate is written under its CSR's file name with .pem\n"
    "(or .p7 with --pkcs7). The CSR is sent to the CA unchanged. A CSR that already has\n"
    "a valid certificate in the store gets it back without asking the CA again.\n"
    "\n"
    "  --csr FILE          PKCS#10 request, PEM or DER (repeatable)\n"
    "  --out PATH          certificate file, or directory for several CSRs\n"
    "  --pkcs7             write PKCS#7 certs-only (PEM armoured) instead of a PEM chain\n"
    "  --timeout SECONDS   give up after this long (default 600)\n";

enum { OPT_CSR = 1, OPT_OUT, OPT_PKCS7, OPT_TIMEOUT };

static const struct option options[] = {
    {"csr", required_argument, NULL, OPT_CSR},
    {"out", required_argument, NULL, OPT_OUT},
    {"pkcs7", no_argument, NULL, OPT_PKCS7},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {NULL, 0, NULL, 0},
};

struct issue_args {
	const char *csr_paths[MAX_CSRS];
	size_t n_csrs;
	const char *out;
	int pkcs7;
	long timeout;
};

static int on_option(int opt, const char *arg, void *ctx)
{
	struct issue_args *a = ctx;
	char *end = NULL;
	switch (opt) {
	case OPT_CSR:
		if (a->n_csrs == MAX_CSRS) {
			fprintf(stderr, "acmera issue: at most %d CSRs at once\n", MAX_CSRS);
			return 2;
		}
		a->csr_paths[a->n_csrs++] = arg;
		return 0;
	case OPT_OUT:
		a->out = arg;
		return 0;
	case OPT_PKCS7:
		a->pkcs7 = 1;
		return 0;
	case OPT_TIMEOUT:
		errno = 0;
		a->timeout = strtol(arg, &end, 10);
		if (errno || !end || *end || a->timeout < 1 || a->timeout > 86400) {
			fprintf(stderr, "acmera issue: --timeout: '%s' is not 1..86400 seconds\n",
			        arg);
			return 2;
		}
		return 0;
	}
	return 2;
}

/* out/<csr file name without extension>.pem|.p7 */
static char *output_path(const struct issue_args *a, const char *csr_path)
{
	if (a->n_csrs == 1)
		return strdup(a->out);
	char *copy = strdup(csr_path);
	if (!copy)
		return NULL;
	char *base = basename(copy);
	char *dot = strrchr(base, '.');
	if (dot && dot != base)
		*dot = '\0';
	size_t len = strlen(a->out) + strlen(base) + 8;
	char *path = malloc(len);
	if (path)
		snprintf(path, len, "%s/%s.%s", a->out, base, a->pkcs7 ? "p7" : "pem");
	free(copy);
	return path;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* Two CSRs whose files share a name would write one certificate over the other:
 * sorted output paths side by side show it. */
static int duplicate_outputs(const struct issue_args *a)
{
	if (a->n_csrs < 2)
		return 0;
	char **paths = calloc(a->n_csrs, sizeof(*paths));
	int dup = !paths;
	for (size_t i = 0; paths && i < a->n_csrs; i++)
		if (!(paths[i] = output_path(a, a->csr_paths[i])))
			dup = 1;
	if (!dup) {
		qsort(paths, a->n_csrs, sizeof(*paths), cmp_str);
		for (size_t i = 1; i < a->n_csrs && !dup; i++)
			if (strcmp(paths[i - 1], paths[i]) == 0) {
				fprintf(stderr,
				        "acmera issue: two CSRs would both be written to %s\n",
				        paths[i]);
				dup = 1;
			}
	}
	for (size_t i = 0; paths && i < a->n_csrs; i++)
		free(paths[i]);
	free(paths);
	return dup;
}

/* Queues path's content in files (written by cli_files_commit). */
static int write_certificate(const struct issue_args *a, struct cli_files *files, const char *path,
                             const char *chain_pem)
{
	struct acmera_errmsg e = {{0}};
	if (!a->pkcs7)
		return cli_files_add(files, path, chain_pem, strlen(chain_pem), 0644);
	uint8_t *der = NULL;
	size_t len = 0;
	char *b64 = NULL;
	/* The stored chain goes into PKCS#7 as it is, without parsing it again. */
	int rc = pkcs7_certs_only_from_pem(chain_pem, strlen(chain_pem), 0, &der, &len, &e);
	if (rc == 0 && !(b64 = b64_encode(der, len, 64)))
		rc = ACMERA_ERR_NOMEM;
	if (rc == 0) {
		size_t n = strlen(b64) + 64;
		char *pem = malloc(n);
		if (!pem) {
			rc = ACMERA_ERR_NOMEM;
		} else {
			int m =
			    snprintf(pem, n, "-----BEGIN PKCS7-----\n%s-----END PKCS7-----\n", b64);
			rc = cli_files_add(files, path, pem, (size_t)m, 0644);
			free(pem);
		}
	}
	free(der);
	free(b64);
	return rc;
}

/* The writer's way to queue a file (issue_writer_fn). */
struct file_queue {
	const struct issue_args *a;
	struct cli_files *files;
};

static int queue_file(void *arg, const char *path, const char *chain_pem)
{
	struct file_queue *q = arg;
	return write_certificate(q->a, q->files, path, chain_pem);
}

/* The writer for the n watched jobs (their paths made here), or NULL: with one
 * job there is nothing to overlap, and without a writer every file is written
 * after the issuer, as before. */
static struct issue_writer *start_writer(const struct config *cfg, const struct issue_args *a,
                                         struct issue_writer_job *jobs, const int64_t *ids,
                                         const size_t *watch_csr, const struct csr_info *csrs,
                                         size_t n, struct file_queue *q)
{
	struct issue_writer *w = NULL;
	struct acmera_errmsg e = {{0}};
	if (n < 2)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		jobs[i].id = ids[i];
		jobs[i].digest = csrs[watch_csr[i]].sha256_hex;
		if (!(jobs[i].path = output_path(a, a->csr_paths[watch_csr[i]])))
			return NULL;
	}
	if (issue_writer_start(cfg->store.path, jobs, n, queue_file, q, &w, &e))
		log_event(LOG_LVL_WARN, "issue.writer",
		          "error=%s effect=\"files written after the last certificate\"",
		          log_qv(e.text));
	return w;
}

/* Refuses, before anything is sent, a CSR with a name outside the zones. */
static int check_zones(const struct config *cfg, const char *path, const struct csr_info *c)
{
	if (cfg->dns.n_zones == 0)
		return 0;
	for (size_t i = 0; i < c->n_names; i++) {
		const char *name = c->names[i];
		if (strncmp(name, "*.", 2) == 0)
			name += 2;
		if (!dns_zone_for_name(name, (const char *const *)cfg->dns.zones,
		                       cfg->dns.n_zones)) {
			fprintf(stderr,
			        "acmera issue: %s: name %s is outside the configured zones\n", path,
			        c->names[i]);
			return 1;
		}
	}
	return 0;
}

int cli_issue(int argc, char **argv)
{
	struct issue_args a = {.timeout = 600};
	struct config cfg;
	struct store *store = NULL;
	struct csr_info *csrs = NULL;
	int64_t *ids = NULL;
	size_t *watch_csr = NULL; /* the CSR of each job watched */
	unsigned char *joined = NULL;
	struct issue_writer_job *wjobs = NULL; /* the writer's view of the watched jobs */
	unsigned char *written = NULL;         /* per CSR: its file is queued */
	struct cli_files files = {0};
	size_t n_watch = 0, from_cache = 0, issued = 0;
	int status = 1;
	int rc = cli_setup(argc, argv, options, "", on_option, &a, usage, &cfg);
	if (rc) {
		config_free(&cfg);
		return rc < 0 ? 0 : rc;
	}
	if (a.n_csrs == 0 || !a.out || optind != argc) {
		fprintf(stderr, "%s\n(--help lists the options)\n", usage);
		config_free(&cfg);
		return 2;
	}
	if (a.n_csrs > 1 && mkdir(a.out, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "acmera issue: %s: %s\n", a.out, strerror(errno));
		goto out;
	}
	if (duplicate_outputs(&a))
		goto out;
	csrs = calloc(a.n_csrs, sizeof(*csrs));
	ids = calloc(a.n_csrs, sizeof(*ids));
	watch_csr = calloc(a.n_csrs, sizeof(*watch_csr));
	joined = calloc(a.n_csrs, sizeof(*joined));
	wjobs = calloc(a.n_csrs, sizeof(*wjobs));
	written = calloc(a.n_csrs, sizeof(*written));
	if (!csrs || !ids || !watch_csr || !joined || !wjobs || !written)
		goto out;
	struct acmera_errmsg le = {{0}};
	size_t bad = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cli_load_csr_files(a.csr_paths, a.n_csrs, csrs, cpus > 0 ? (int)cpus : 1, &bad, &le)) {
		fprintf(stderr, "acmera issue: %s: %s\n", a.csr_paths[bad], le.text);
		goto out;
	}
	for (size_t i = 0; i < a.n_csrs; i++)
		if (check_zones(&cfg, a.csr_paths[i], &csrs[i]))
			goto out;
	if (cli_open_store(&cfg, &store))
		goto out;

	int64_t now = (int64_t)time(NULL);
	/* Every job of this run in one commit: one disk sync, not one per CSR. */
	struct acmera_errmsg be = {{0}};
	if (store_batch_begin(store, &be)) {
		fprintf(stderr, "acmera issue: %s\n", be.text);
		goto out;
	}
	for (size_t i = 0; i < a.n_csrs; i++) {
		struct store_cert c = {0};
		struct acmera_errmsg e = {{0}};
		if (store_cert_lookup(store, csrs[i].sha256_hex, now, &c, NULL) == 0) {
			store_cert_free(&c);
			from_cache++;
			continue;
		}
		char *names = csr_names_joined(&csrs[i]);
		int created = 0;
		if (!names || store_job_submit(store, csrs[i].der, csrs[i].der_len, names, now,
		                               &ids[n_watch], &created, &e)) {
			fprintf(stderr, "acmera issue: %s: %s\n", a.csr_paths[i], e.text);
			free(names);
			goto out;
		}
		free(names);
		watch_csr[n_watch] = i;
		joined[n_watch] = !created;
		n_watch++;
	}
	if (store_batch_end(store, &be)) {
		fprintf(stderr, "acmera issue: %s\n", be.text);
		goto out;
	}
	/* Only now, with the commit done, are the jobs submitted. */
	for (size_t w = 0; w < n_watch; w++) {
		char *names = csr_names_joined(&csrs[watch_csr[w]]);
		log_event(LOG_LVL_INFO, "job.submitted", "job=%lld csr=%s names=%s joined=%s",
		          (long long)ids[w], csrs[watch_csr[w]].sha256_hex, names ? names : "",
		          joined[w] ? "yes" : "no");
		free(names);
	}

	struct issuer_stats st = {0};
	struct acmera_errmsg issuer_err = {{0}};
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (n_watch > 0) {
		cli_stop_on_signals();
		struct issuer_opts io = {
		    .cfg = &cfg,
		    .watch = ids,
		    .n_watch = n_watch,
		    .deadline = now + a.timeout,
		    .stop = &cli_stop_requested,
		};
		struct file_queue q = {.a = &a, .files = &files};
		struct issue_writer *writer =
		    start_writer(&cfg, &a, wjobs, ids, watch_csr, csrs, n_watch, &q);
		if (issuer_run(store, &io, &st, &issuer_err))
			fprintf(stderr, "acmera issue: %s\n", issuer_err.text);
		else
			issuer_err.text[0] = '\0'; /* a success leaves no reason to quote */
		issue_writer_stop(writer);
		for (size_t w = 0; writer && w < n_watch; w++)
			written[watch_csr[w]] = wjobs[w].written != 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);

	status = 0;
	now = (int64_t)time(NULL);
	/* All the certificates reach the disk with one sync, not one each; those
	 * of the jobs that finished while the issuer ran are queued already. */
	for (size_t i = 0; i < a.n_csrs; i++) {
		if (written[i])
			continue;
		struct store_cert c = {0};
		char *path = output_path(&a, a.csr_paths[i]);
		if (path && store_cert_lookup(store, csrs[i].sha256_hex, now, &c, NULL) == 0) {
			if (write_certificate(&a, &files, path, c.chain_pem)) {
				fprintf(stderr, "acmera issue: %s: cannot write: %s\n", path,
				        strerror(errno));
				status = 1;
			}
			store_cert_free(&c);
		} else {
			struct store_job j = {0};
			/* The job's own last error, else why the issuer stopped. */
			const char *why =
			    issuer_err.text[0] ? issuer_err.text : "not issued in time";
			if (store_job_get_by_digest(store, csrs[i].sha256_hex, &j, NULL) == 0 &&
			    j.reason)
				why = j.reason;
			fprintf(stderr, "acmera issue: %s: no certificate: %s\n", a.csr_paths[i],
			        why);
			store_job_free(&j);
			status = 1;
		}
		free(path);
	}
	const char *failed = NULL;
	issued = cli_files_commit(&files, &failed);
	if (failed) {
		fprintf(stderr, "acmera issue: %s: cannot write: %s\n", failed, strerror(errno));
		status = 1;
	}
	double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	log_event(LOG_LVL_INFO, "issue.summary",
	          "written=%zu of=%zu from_store=%zu seconds=%.3f acme_requests=%llu "
	          "dns_messages=%llu deferred=%llu failed=%llu",
	          issued, a.n_csrs, from_cache, secs, (unsigned long long)st.acme_requests,
	          (unsigned long long)st.dns_messages, (unsigned long long)st.deferred,
	          (unsigned long long)st.failed);
out:
	for (size_t i = 0; csrs && i < a.n_csrs; i++)
		csr_info_free(&csrs[i]);
	free(csrs);
	free(ids);
	free(watch_csr);
	free(joined);
	for (size_t i = 0; wjobs && i < a.n_csrs; i++)
		free(wjobs[i].path);
	free(wjobs);
	free(written);
	cli_files_free(&files);
	store_close(store);
	config_free(&cfg);
	return status;
}
