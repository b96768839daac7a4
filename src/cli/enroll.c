/* acmera enroll: the device side of EST (RFC 7030). Parses the options, settles
 * trust in the RA (explicit anchors, or bootstrap with a human or a pinned
 * fingerprint), and wires the EST client's steps together. */
#include "cli/cli.h"
#include "cli/common.h"

#include "base/log.h"
#include "base/secret.h"
#include "est/body.h"
#include "est/client.h"
#include "pki/cert.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage[] =
    "usage: acmera enroll --server https://HOST:PORT [--label L]\n"
    "         (--ca FILE | --bootstrap [--bootstrap-fingerprint SHA256] [--out-ca FILE])\n"
    "         [--user U --password-file F] [--cert FILE --key FILE]\n"
    "         [--key-type p256|p384|rsa2048|ed25519] [--name NAME]\n"
    "         --out-key FILE --out-cert FILE [--out-chain FILE]\n"
    "         [--reenroll] [--channel-binding] [--tls-max 1.2|1.3]\n"
    "         [--max-wait SECONDS] [--log-level LEVEL]\n"
    "\n"
    "Obtains a certificate from an EST server (RFC 7030): GET /csrattrs, a new key,\n"
    "a CSR as the RA's template asks, POST /simpleenroll until the certificate comes.\n"
    "  --server URL            the EST server, https://HOST[:PORT]\n"
    "  --label L               CA label: /.well-known/est/L/...\n"
    "  --ca FILE               PEM anchors the server's TLS certificate must chain to\n"
    "  --bootstrap             no anchors yet: fetch /cacerts unverified, show the\n"
    "                          fingerprints, ask \"Trust this RA?\", then trust the CA\n"
    "                          certificates and the RA's TLS certificate\n"
    "  --bootstrap-fingerprint SHA256  accept without asking when the RA's TLS\n"
    "                          certificate has this SHA-256 (hex, ':' allowed)\n"
    "  --out-ca FILE           with --bootstrap: keep the accepted anchors (for --ca)\n"
    "  --user U                HTTP Basic user\n"
    "  --password-file F       its password (file of mode 0600; never in argv)\n"
    "  --cert FILE, --key FILE TLS client certificate and key (IDevID, or the\n"
    "                          current certificate with --reenroll)\n"
    "  --key-type T            p256 (default), p384, rsa2048, ed25519: used when the\n"
    "                          RA names no key type or one compatible with T\n"
    "  --name NAME             the name to ask for when the RA sends no template\n"
    "  --out-key FILE          the new private key (PKCS#8 PEM, mode 0600), written\n"
    "                          before the first POST\n"
    "  --out-cert FILE         the certificate (PEM)\n"
    "  --out-chain FILE        the certificate and its chain (PEM, leaf first)\n"
    "  --reenroll              POST /simplereenroll with --cert/--key: new key, same\n"
    "                          subject and names as the current certificate\n"
    "  --channel-binding       put the TLS channel binding of the connection in the\n"
    "                          CSR's challengePassword (RFC 7030 3.5): tls-exporter\n"
    "                          on TLS 1.3, tls-unique on TLS 1.2\n"
    "  --tls-max VERSION       highest TLS version to offer: 1.2 or 1.3 (default)\n"
    "  --max-wait SECONDS      how long to keep retrying after 202 (default 300)\n"
    "  --log-level LEVEL       debug, info, warn (default) or error\n";

enum {
	OPT_SERVER = 1000,
	OPT_LABEL,
	OPT_CA,
	OPT_BOOTSTRAP,
	OPT_BOOTSTRAP_FP,
	OPT_OUT_CA,
	OPT_USER,
	OPT_PASSWORD_FILE,
	OPT_CERT,
	OPT_KEY,
	OPT_KEY_TYPE,
	OPT_NAME,
	OPT_OUT_KEY,
	OPT_OUT_CERT,
	OPT_OUT_CHAIN,
	OPT_REENROLL,
	OPT_CHANNEL_BINDING,
	OPT_TLS_MAX,
	OPT_MAX_WAIT,
	OPT_LOG_LEVEL,
	OPT_HELP,
};

static const struct option options[] = {
    {"server", required_argument, NULL, OPT_SERVER},
    {"label", required_argument, NULL, OPT_LABEL},
    {"ca", required_argument, NULL, OPT_CA},
    {"bootstrap", no_argument, NULL, OPT_BOOTSTRAP},
    {"bootstrap-fingerprint", required_argument, NULL, OPT_BOOTSTRAP_FP},
    {"out-ca", required_argument, NULL, OPT_OUT_CA},
    {"user", required_argument, NULL, OPT_USER},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},
    {"key-type", required_argument, NULL, OPT_KEY_TYPE},
    {"name", required_argument, NULL, OPT_NAME},
    {"out-key", required_argument, NULL, OPT_OUT_KEY},
    {"out-cert", required_argument, NULL, OPT_OUT_CERT},
    {"out-chain", required_argument, NULL, OPT_OUT_CHAIN},
    {"reenroll", no_argument, NULL, OPT_REENROLL},
    {"channel-binding", no_argument, NULL, OPT_CHANNEL_BINDING},
    {"tls-max", required_argument, NULL, OPT_TLS_MAX},
    {"max-wait", required_argument, NULL, OPT_MAX_WAIT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

struct enroll_args {
	const char *server, *label, *ca, *bootstrap_fp, *out_ca;
	const char *user, *password_file, *cert, *key, *name;
	const char *out_key, *out_cert, *out_chain;
	int bootstrap, reenroll, have_key_type, channel_binding;
	int tls_max; /* 12, 13, or 0 for the library's highest */
	struct est_key_spec key_type;
	long max_wait;
	int log_level;
};

#define MAX_WAIT_LIMIT 86400

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "acmera enroll: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(--help lists the options)\n");
	return 2;
}

/* Returns 0, 2 for a usage error, or -1 after --help. */
static int parse_args(int argc, char **argv, struct enroll_args *a)
{
	int opt;
	char *end = NULL;
	optind = 1;
	opterr = 1;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case OPT_SERVER:
			a->server = optarg;
			break;
		case OPT_LABEL:
			a->label = optarg;
			break;
		case OPT_CA:
			a->ca = optarg;
			break;
		case OPT_BOOTSTRAP:
			a->bootstrap = 1;
			break;
		case OPT_BOOTSTRAP_FP:
			a->bootstrap_fp = optarg;
			break;
		case OPT_OUT_CA:
			a->out_ca = optarg;
			break;
		case OPT_USER:
			a->user = optarg;
			break;
		case OPT_PASSWORD_FILE:
			a->password_file = optarg;
			break;
		case OPT_CERT:
			a->cert = optarg;
			break;
		case OPT_KEY:
			a->key = optarg;
			break;
		case OPT_NAME:
			a->name = optarg;
			break;
		case OPT_OUT_KEY:
			a->out_key = optarg;
			break;
		case OPT_OUT_CERT:
			a->out_cert = optarg;
			break;
		case OPT_OUT_CHAIN:
			a->out_chain = optarg;
			break;
		case OPT_REENROLL:
			a->reenroll = 1;
			break;
		case OPT_CHANNEL_BINDING:
			a->channel_binding = 1;
			break;
		case OPT_TLS_MAX:
			if (strcmp(optarg, "1.2") == 0)
				a->tls_max = 12;
			else if (strcmp(optarg, "1.3") == 0)
				a->tls_max = 13;
			else
				return usage_error("--tls-max: '%s' is not 1.2 or 1.3", optarg);
			break;
		case OPT_KEY_TYPE:
			if (est_key_spec_parse(optarg, &a->key_type) != 0)
				return usage_error("--key-type: '%s' is not p256, p384, rsa2048, "
				                   "rsa3072, rsa4096 or ed25519",
				                   optarg);
			a->have_key_type = 1;
			break;
		case OPT_MAX_WAIT:
			errno = 0;
			a->max_wait = strtol(optarg, &end, 10);
			if (errno || !end || *end || end == optarg || a->max_wait < 0 ||
			    a->max_wait > MAX_WAIT_LIMIT)
				return usage_error("--max-wait: '%s' is not a number of seconds "
				                   "from 0 to 86400",
				                   optarg);
			break;
		case OPT_LOG_LEVEL:
			if ((a->log_level = log_level_parse(optarg)) < 0)
				return usage_error("--log-level: '%s' is not debug, info, warn or "
				                   "error",
				                   optarg);
			break;
		case OPT_HELP:
			printf("%s", usage);
			return -1;
		default:
			fprintf(stderr, "(--help lists the options)\n");
			return 2;
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!a->server)
		return usage_error("%s", "--server is required");
	if (!a->out_key || !a->out_cert)
		return usage_error("%s", "--out-key and --out-cert are required");
	if ((a->ca != NULL) + a->bootstrap != 1)
		return usage_error("%s", "give exactly one of --ca FILE and --bootstrap");
	if (!a->bootstrap && (a->bootstrap_fp || a->out_ca))
		return usage_error("%s",
		                   "--bootstrap-fingerprint and --out-ca go with --bootstrap");
	if ((a->user != NULL) != (a->password_file != NULL))
		return usage_error("%s", "--user and --password-file go together");
	if ((a->cert != NULL) != (a->key != NULL))
		return usage_error("%s", "--cert and --key go together");
	if (!a->user && !a->cert)
		return usage_error("%s", "no credentials: give --user/--password-file or "
		                         "--cert/--key");
	if (a->reenroll && !a->cert)
		return usage_error("%s", "--reenroll authenticates with --cert/--key (the "
		                         "current certificate)");
	if (a->reenroll && a->name)
		return usage_error("%s", "--name does not go with --reenroll (the names of the "
		                         "current certificate are kept)");
	/* The current key must survive until the new certificate is here. */
	struct stat s1, s2;
	if (a->key && (strcmp(a->key, a->out_key) == 0 ||
	               (stat(a->key, &s1) == 0 && stat(a->out_key, &s2) == 0 &&
	                s1.st_dev == s2.st_dev && s1.st_ino == s2.st_ino)))
		return usage_error("--out-key %s is the --key file: write the new key elsewhere "
		                   "(the current key must outlive the enrollment)",
		                   a->out_key);
	return 0;
}

/* The --key file is a secret: refuse one that others may read. */
static int check_key_file(const char *path, struct acmera_errmsg *e)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "%s: readable by others (mode %03o); chmod 600 it", path,
		                   (unsigned)(st.st_mode & 0777));
	return 0;
}

static int load_first_cert(const char *path, X509 **out, struct acmera_errmsg *e)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	*out = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	if (!*out)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%s: no PEM certificate", path);
	return 0;
}

static int write_file(const char *path, const void *data, size_t len, int mode,
                      struct acmera_errmsg *e)
{
	if (cli_write_file(path, data, len, mode) != 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
	return 0;
}

static int write_key(const char *path, EVP_PKEY *key, struct acmera_errmsg *e)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	int rc = 0;
	if (!b || !PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)) {
		BIO_free(b);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "cannot encode the key");
	}
	long n = BIO_get_mem_data(b, &data);
	rc = write_file(path, data, (size_t)n, 0600, e);
	OPENSSL_cleanse(data, (size_t)n);
	BIO_free(b);
	return rc;
}

static int write_chain(const char *path, STACK_OF(X509) * chain, int n_certs,
                       struct acmera_errmsg *e)
{
	STACK_OF(X509) *part = sk_X509_new_null();
	char *pem = NULL;
	int rc = 0;
	for (int i = 0; part && i < n_certs && i < sk_X509_num(chain); i++)
		if (!sk_X509_push(part, sk_X509_value(chain, i))) {
			sk_X509_free(part);
			part = NULL;
		}
	if (!part || !(pem = chain_to_pem(part)))
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	else
		rc = write_file(path, pem, strlen(pem), 0644, e);
	sk_X509_free(part);
	free(pem);
	return rc;
}

/* ---- trust ---- */

static int ask_user(void)
{
	char line[16];
	printf("Trust this RA? [y/N] ");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 0;
	return line[0] == 'y' || line[0] == 'Y';
}

static void show_cert(const char *what, X509 *x, const char fp[65])
{
	char *subj = cert_subject_line(x);
	printf("  %s: %s\n    SHA-256 %s\n", what, subj ? subj : "?", fp);
	free(subj);
}

/* RFC 7030 4.1.1: /cacerts over TLS that is not verified, no credentials sent;
 * a human (or the pinned fingerprint) accepts the RA. On success *anchors is
 * the PEM of the CA certificates and the RA's TLS certificate. */
static int bootstrap(const struct enroll_args *a, char **anchors, struct acmera_errmsg *e)
{
	struct est_client_opts o = {.server = a->server, .label = a->label, .insecure = 1};
	struct est_client *c = NULL;
	struct est_response r = {0};
	STACK_OF(X509) *cas = NULL;
	X509 *server = NULL;
	char fp[65], text[512], what[32];
	int rc;
	*anchors = NULL;
	if ((rc = est_client_new(&o, &c, e)) || (rc = est_client_get(c, "cacerts", &r, e)))
		goto out;
	if (r.status != 200) {
		est_response_text(&r, text, sizeof(text));
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "GET /cacerts -> %ld: %s", r.status,
		                 text[0] ? text : "(no text)");
		goto out;
	}
	if ((rc = est_cacerts_answer(r.body, r.len, &cas, e)) ||
	    (rc = est_client_server_cert(c, &server, e)))
		goto out;
	printf("GET /cacerts -> 200: %d CA certificate%s (bootstrap: TLS not verified)\n",
	       sk_X509_num(cas), sk_X509_num(cas) == 1 ? "" : "s");
	for (int i = 0; i < sk_X509_num(cas); i++) {
		if ((rc = est_cert_fingerprint(sk_X509_value(cas, i), fp)))
			goto out;
		snprintf(what, sizeof(what), "CA certificate %d", i + 1);
		show_cert(what, sk_X509_value(cas, i), fp);
	}
	if ((rc = est_cert_fingerprint(server, fp)))
		goto out;
	show_cert("RA TLS certificate", server, fp);
	if (a->bootstrap_fp) {
		if (!est_fingerprint_matches(a->bootstrap_fp, fp)) {
			rc = acmera_fail(e, ACMERA_ERR_REFUSED,
			                 "the RA's TLS certificate does not match "
			                 "--bootstrap-fingerprint: not trusted");
			goto out;
		}
		printf("RA accepted: its TLS certificate matches --bootstrap-fingerprint\n");
	} else if (!isatty(STDIN_FILENO)) {
		rc = acmera_fail(e, ACMERA_ERR_REFUSED,
		                 "stdin is not a terminal to ask on: check the fingerprints and "
		                 "pass --bootstrap-fingerprint, or use --ca");
		goto out;
	} else if (!ask_user()) {
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "RA not trusted");
		goto out;
	}
	fflush(stdout);
	if (!sk_X509_push(cas, server)) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	server = NULL; /* owned by cas now */
	if (!(*anchors = chain_to_pem(cas))) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (a->out_ca) {
		if ((rc = write_file(a->out_ca, *anchors, strlen(*anchors), 0644, e)))
			goto out;
		printf("wrote %s (trust anchors, for --ca)\n", a->out_ca);
	}
out:
	if (rc) {
		free(*anchors);
		*anchors = NULL;
	}
	X509_free(server);
	sk_X509_pop_free(cas, X509_free);
	est_response_free(&r);
	est_client_free(c);
	return rc;
}

/* ---- enrollment ---- */

/* GET /csrattrs: 200 fills attrs (returns 1), 204/404 mean none (returns 0). */
static int fetch_csrattrs(struct est_client *c, struct est_csrattrs_out *attrs,
                          struct acmera_errmsg *e)
{
	struct est_response r = {0};
	uint8_t *der = NULL;
	size_t len = 0;
	char text[512], kind[16];
	int rc = est_client_get(c, "csrattrs", &r, e);
	if (rc)
		goto out;
	if (r.status == 204 || r.status == 404) {
		printf("GET /csrattrs -> %ld: no attributes\n", r.status);
		goto out;
	}
	if (r.status != 200) {
		est_response_text(&r, text, sizeof(text));
		rc = acmera_fail(e, ACMERA_ERR_REFUSED, "GET /csrattrs -> %ld: %s", r.status,
		                 text[0] ? text : "(no text)");
		goto out;
	}
	if ((rc = est_body_decode(r.body, r.len, &der, &len, e)) ||
	    (rc = est_csrattrs_parse(der, len, attrs, e))) {
		acmera_fail_wrap(e, ACMERA_ERR_PROTO, "GET /csrattrs -> 200");
		goto out;
	}
	const char *name = attrs->subject_cn    ? attrs->subject_cn
	                   : attrs->n_dns_names ? attrs->dns_names[0]
	                                        : "(none)";
	struct est_key_spec ks = {.kind = attrs->key, .rsa_bits = attrs->rsa_bits};
	printf("GET /csrattrs -> 200: name %s, key %s\n", name,
	       attrs->have_key ? est_key_spec_name(&ks, kind, sizeof(kind)) : "not named");
	rc = 1;
out:
	free(der);
	est_response_free(&r);
	return rc;
}

/* What the CSR is made from, kept to make it again for a new connection. */
struct csr_recipe {
	X509 *current;                 /* re-enrollment: copy its subject and names */
	struct est_csrattrs_out attrs; /* else the RA's template, */
	const char *name;              /* else --name */
	EVP_PKEY *key;
};

static int recipe_make(void *arg, const char *challenge_password, uint8_t **der, size_t *len,
                       struct acmera_errmsg *e)
{
	struct csr_recipe *r = arg;
	if (r->current)
		return est_csr_like_cert(r->current, r->key, challenge_password, der, len, e);
	if (r->attrs.subject_cn || r->attrs.n_dns_names)
		return est_csr_from_template(
		    r->attrs.subject_cn, (const char *const *)r->attrs.dns_names,
		    r->attrs.n_dns_names, r->key, challenge_password, der, len, e);
	const char *names[1] = {r->name};
	return est_csr_from_template(NULL, names, 1, r->key, challenge_password, der, len, e);
}

/* Re-enrollment asks nothing before the POST, but a binding needs a
 * connection: GET /cacerts, which needs no authentication, opens it. */
static int open_connection(struct est_client *c, struct acmera_errmsg *e)
{
	struct est_response r = {0};
	int rc = est_client_get(c, "cacerts", &r, e);
	if (rc == 0)
		printf("GET /cacerts -> %ld (the connection the CSR is bound to)\n", r.status);
	est_response_free(&r);
	return rc;
}

/* The key type, the key, and the CSR: from the RA's template, or from the
 * current certificate when re-enrolling; bound to the connection when asked. */
static int make_request(const struct enroll_args *a, struct est_client *c, struct csr_recipe *r,
                        int *bound, uint8_t **der, size_t *len, struct acmera_errmsg *e)
{
	struct est_key_spec spec;
	char k1[16], k2[16], cb[EST_BINDING_B64_MAX];
	const char *cb_type = NULL;
	int have = 0, ignored = 0, rc = 0;
	*bound = a->channel_binding;
	if (r->current) {
		if (a->have_key_type)
			spec = a->key_type;
		else if ((rc = est_key_spec_of(X509_get0_pubkey(r->current), &spec, e)))
			return rc;
		if (*bound && (rc = open_connection(c, e)))
			return rc;
	} else {
		if ((have = fetch_csrattrs(c, &r->attrs, e)) < 0)
			return have;
		/* The RA lists challengePassword when it checks the binding (RFC 7030 3.5). */
		if (have && r->attrs.challenge_password && !*bound) {
			*bound = 1;
			printf("the RA asks for the TLS channel binding in the CSR\n");
		}
		est_key_choose(have ? &r->attrs : NULL, a->have_key_type ? &a->key_type : NULL,
		               &spec, &ignored);
		if (ignored)
			fprintf(stderr,
			        "acmera enroll: --key-type %s ignored: the RA asks for %s\n",
			        est_key_spec_name(&a->key_type, k1, sizeof(k1)),
			        est_key_spec_name(&spec, k2, sizeof(k2)));
		if (r->attrs.subject_cn || r->attrs.n_dns_names) {
			if (a->name)
				fprintf(stderr, "acmera enroll: --name ignored: the RA's template "
				                "names the certificate\n");
		} else if (a->name) {
			r->name = a->name;
		} else {
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "the RA sent no name template: give --name NAME");
		}
	}
	if (*bound) {
		if ((rc = est_client_channel_binding(c, cb, &cb_type, e)))
			return acmera_fail_wrap(e, rc, "--channel-binding");
		printf("CSR carries the TLS channel binding (%s)\n", cb_type);
	}
	if ((rc = est_key_generate(&spec, &r->key, e)))
		return rc;
	return recipe_make(r, *bound ? cb : NULL, der, len, e);
}

static int enroll(const struct enroll_args *a, const char *anchors, struct acmera_errmsg *e)
{
	struct est_client *c = NULL;
	struct csr_recipe recipe = {0};
	char *password = NULL;
	uint8_t *csr = NULL;
	size_t csr_len = 0;
	STACK_OF(X509) *chain = NULL;
	int rc = 0, bound = 0;
	if (a->password_file && (rc = read_secret_file(a->password_file, &password, e)))
		goto out;
	if (a->key && (rc = check_key_file(a->key, e)))
		goto out;
	if (a->reenroll && (rc = load_first_cert(a->cert, &recipe.current, e)))
		goto out;
	struct est_client_opts o = {.server = a->server,
	                            .label = a->label,
	                            .ca_file = anchors ? NULL : a->ca,
	                            .ca_pem = anchors,
	                            .cert_file = a->cert,
	                            .key_file = a->key,
	                            .user = a->user,
	                            .password = password,
	                            .tls_max = a->tls_max};
	rc = est_client_new(&o, &c, e);
	secret_free(password);
	password = NULL;
	if (rc || (rc = make_request(a, c, &recipe, &bound, &csr, &csr_len, e)))
		goto out;
	/* Before the first POST: once the RA has the CSR, the key must exist. */
	if ((rc = write_key(a->out_key, recipe.key, e)))
		goto out;
	printf("wrote %s (private key, mode 0600)\n", a->out_key);
	fflush(stdout);
	struct est_csr_rebind rebind = {.remake = recipe_make, .arg = &recipe};
	rc = est_enroll_submit(c, a->reenroll ? "simplereenroll" : "simpleenroll", csr, csr_len,
	                       bound ? &rebind : NULL, recipe.key, (int)a->max_wait, stdout, &chain,
	                       e);
	if (rc == ACMERA_ERR_TIMEOUT) {
		char why[sizeof(e->text)];
		snprintf(why, sizeof(why), "%s", e->text);
		acmera_fail(e, rc, "%.300s; the RA goes on with the request, whose key is in %s",
		            why, a->out_key);
	}
	if (rc)
		goto out;
	if ((rc = write_chain(a->out_cert, chain, 1, e)))
		goto out;
	printf("wrote %s (certificate)\n", a->out_cert);
	if (a->out_chain) {
		if ((rc = write_chain(a->out_chain, chain, sk_X509_num(chain), e)))
			goto out;
		printf("wrote %s (chain of %d certificate%s, leaf first)\n", a->out_chain,
		       sk_X509_num(chain), sk_X509_num(chain) == 1 ? "" : "s");
	}
out:
	fflush(stdout);
	sk_X509_pop_free(chain, X509_free);
	free(csr);
	EVP_PKEY_free(recipe.key);
	X509_free(recipe.current);
	est_csrattrs_out_free(&recipe.attrs);
	est_client_free(c);
	return rc;
}

int cli_enroll(int argc, char **argv)
{
	struct enroll_args a = {.max_wait = 300, .log_level = LOG_LVL_WARN};
	struct acmera_errmsg e = {{0}};
	char *anchors = NULL;
	int rc = parse_args(argc, argv, &a);
	if (rc)
		return rc < 0 ? 0 : rc;
	/* One step per line, as it happens, also through a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init("stderr", (enum log_level)a.log_level);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "acmera enroll: cannot initialise libcurl\n");
		return 1;
	}
	rc = a.bootstrap ? bootstrap(&a, &anchors, &e) : 0;
	if (rc == 0)
		rc = enroll(&a, anchors, &e);
	if (rc)
		fprintf(stderr, "acmera enroll: %s\n", e.text);
	free(anchors);
	curl_global_cleanup();
	return rc ? 1 : 0;
}
