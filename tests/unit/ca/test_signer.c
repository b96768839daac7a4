/* The CA of `acmera ca`: generating and reloading its keys, loading a configured CA,
 * and the leaf certificates it issues. */
#include "ca/internal.h"
#include "ca/signer.h"
#include "pki/cert.h"
#include "pki/csr.h"
#include "../pki/pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400
#define LIFETIME (90 * DAY)

struct fixture {
	char dir[64]; /* temporary state directory */
	int64_t now;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	strcpy(f->dir, "/tmp/acmera-ca-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

static struct ca_signer_config gen_config(const struct fixture *f)
{
	struct ca_signer_config cfg = {
	    .dir = f->dir, .name = "acmera test", .leaf_lifetime = LIFETIME};
	return cfg;
}

static struct ca_signer *open_ok(const struct ca_signer_config *cfg)
{
	struct ca_signer *s = NULL;
	struct acmera_errmsg e = {{0}};
	int rc = ca_signer_open(cfg, &s, &e);
	if (rc)
		print_error("ca_signer_open: %s\n", e.text);
	assert_int_equal(rc, 0);
	assert_non_null(s);
	return s;
}

static int open_fails(const struct ca_signer_config *cfg, const char *why)
{
	struct ca_signer *s = NULL;
	struct acmera_errmsg e = {{0}};
	int rc = ca_signer_open(cfg, &s, &e);
	assert_true(rc < 0);
	assert_null(s);
	if (!strstr(e.text, why))
		print_error("message \"%s\" lacks \"%s\"\n", e.text, why);
	assert_non_null(strstr(e.text, why));
	return rc;
}

static STACK_OF(X509) * parse(const char *pem)
{
	STACK_OF(X509) *chain = NULL;
	assert_non_null(pem);
	assert_int_equal(chain_parse_pem(pem, strlen(pem), &chain, NULL), 0);
	return chain;
}

static void chain_free(STACK_OF(X509) * chain)
{
	sk_X509_pop_free(chain, X509_free);
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;
	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void fingerprint(const char *pem, unsigned char out[32])
{
	STACK_OF(X509) *c = parse(pem);
	unsigned int n = 0;
	assert_int_equal(X509_digest(sk_X509_value(c, 0), EVP_sha256(), out, &n), 1);
	assert_int_equal(n, 32);
	chain_free(c);
}

static int64_t unix_of(const ASN1_TIME *t)
{
	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
	return (int64_t)timegm(&tm);
}

static int ext_critical(X509 *x, int nid)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	assert_true(i >= 0);
	return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

/* A parsed, signature-checked CSR, as the ACME server hands it over. */
static void csr_make(EVP_PKEY *key, const char *cn, const char *san, struct csr_info *out)
{
	uint8_t *der = NULL;
	size_t len = 0;
	tu_csr(key, cn, san, &der, &len);
	assert_int_equal(csr_parse_der(der, len, out, NULL), 0);
	free(der);
}

static void issue_ok(struct ca_signer *s, const struct csr_info *csr, const char *const *names,
                     size_t n, int64_t now, char **chain_pem, char serial[41])
{
	struct acmera_errmsg e = {{0}};
	int rc = ca_signer_issue(s, csr, names, n, now, chain_pem, serial, &e);
	if (rc)
		print_error("ca_signer_issue: %s\n", e.text);
	assert_int_equal(rc, 0);
}

/* X509_verify_cert of the chain's leaf at time now, trusting only root_pem, as a TLS
 * server certificate. Returns the verify error (X509_V_OK when it verifies). */
static int verify_leaf(const char *chain_pem, const char *root_pem, int64_t now)
{
	STACK_OF(X509) *chain = parse(chain_pem);
	STACK_OF(X509) *roots = parse(root_pem);
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	assert_non_null(store);
	assert_non_null(ctx);
	assert_int_equal(X509_STORE_add_cert(store, sk_X509_value(roots, 0)), 1);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain), 1);
	X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
	X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
	int ok = X509_verify_cert(ctx);
	int err = X509_STORE_CTX_get_error(ctx);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	chain_free(roots);
	chain_free(chain);
	return ok == 1 ? X509_V_OK : (err == X509_V_OK ? -1 : err);
}

static void write_pem_file(const char *path, X509 *const *certs, int n, EVP_PKEY *key)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < n; i++)
		assert_int_equal(PEM_write_X509(fp, certs[i]), 1);
	if (key)
		assert_int_equal(PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL), 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, 0600), 0);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A CA certificate made the way an operator's own PKI would (self-signed without
 * issuer), valid from now - 1 day to not_after. */
static X509 *make_ca(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, int64_t now,
                     int64_t not_after)
{
	static long serial = 100;
	X509 *x = X509_new();
	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	X509_NAME *name = X509_get_subject_name(x);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	                                            (const unsigned char *)cn, -1, -1, 0),
	                 1);
	assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name), 1);
	assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - DAY)));
	assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
	add_ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	add_ext(x, issuer, NID_subject_key_identifier, "hash");
	if (issuer)
		add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
	EVP_PKEY *signer = issuer ? issuer_key : key;
	const EVP_MD *md = EVP_PKEY_get_bits(signer) == 384 ? EVP_sha384() : EVP_sha256();
	assert_true(X509_sign(x, signer, md) > 0);
	return x;
}

/* A configured CA in f->dir: a P-384 root and a P-384 issuing CA valid until
 * issuer_not_after. Paths are heap strings. */
struct configured {
	char *cert_file, *key_file;
	EVP_PKEY *root_key, *key;
	X509 *root, *issuer;
};

static void configured_make(const struct fixture *f, int64_t issuer_not_after, struct configured *c)
{
	c->root_key = EVP_EC_gen("P-384");
	c->key = EVP_EC_gen("P-384");
	assert_non_null(c->root_key);
	assert_non_null(c->key);
	c->root = make_ca("Operator Root", c->root_key, NULL, NULL, f->now, f->now + 3650 * DAY);
	c->issuer =
	    make_ca("Operator Issuing CA", c->key, c->root, c->root_key, f->now, issuer_not_after);
	c->cert_file = path_in(f->dir, "ca.pem");
	c->key_file = path_in(f->dir, "ca.key");
	X509 *both[2] = {c->issuer, c->root};
	write_pem_file(c->cert_file, both, 2, NULL);
	write_pem_file(c->key_file, NULL, 0, c->key);
}

static void configured_free(struct configured *c)
{
	free(c->cert_file);
	free(c->key_file);
	EVP_PKEY_free(c->root_key);
	EVP_PKEY_free(c->key);
	X509_free(c->root);
	X509_free(c->issuer);
}

static struct ca_signer_config conf_config(const struct fixture *f, const struct configured *c)
{
	struct ca_signer_config cfg = {.dir = f->dir,
	                               .cert_file = c->cert_file,
	                               .key_file = c->key_file,
	                               .leaf_lifetime = LIFETIME};
	return cfg;
}

/* ---- generated CA ---- */

static void generated_ca_has_p384_root_and_p256_intermediate_with_ca_extensions(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	STACK_OF(X509) *chain = parse(ca_signer_chain_pem(s));
	STACK_OF(X509) *roots = parse(ca_signer_root_pem(s));
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(sk_X509_num(roots), 1);
	X509 *inter = sk_X509_value(chain, 0), *root = sk_X509_value(chain, 1);
	assert_int_equal(X509_cmp(root, sk_X509_value(roots, 0)), 0);

	assert_int_equal(X509_self_signed(root, 1), 1);
	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(root)), 384);
	assert_int_equal(EVP_PKEY_get_base_id(X509_get0_pubkey(root)), EVP_PKEY_EC);
	assert_int_equal(X509_get_signature_nid(root), NID_ecdsa_with_SHA384);
	assert_true(X509_check_ca(root) > 0);
	assert_int_equal(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_true(ext_critical(root, NID_basic_constraints));
	assert_true(ext_critical(root, NID_key_usage));
	assert_non_null(X509_get0_subject_key_id(root));
	assert_int_equal(X509_get_pathlen(root), -1);
	int64_t root_life = unix_of(X509_get0_notAfter(root)) - f->now;
	assert_true(root_life >= 3652 * DAY && root_life <= 3653 * DAY);

	assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(inter)), 256);
	assert_int_equal(X509_get_signature_nid(inter), NID_ecdsa_with_SHA384);
	assert_true(X509_check_ca(inter) > 0);
	assert_int_equal(X509_get_pathlen(inter), 0);
	assert_int_equal(X509_get_key_usage(inter), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_true(ext_critical(inter, NID_basic_constraints));
	assert_true(ext_critical(inter, NID_key_usage));
	assert_non_null(X509_get0_subject_key_id(inter));
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(inter),
	                                       X509_get0_subject_key_id(root)),
	                 0);
	int64_t inter_life = unix_of(X509_get0_notAfter(inter)) - f->now;
	assert_true(inter_life >= 1826 * DAY && inter_life <= 1827 * DAY);

	char *subject = cert_subject_line(root);
	assert_string_equal(subject, "CN=acmera test Root CA");
	free(subject);
	subject = cert_subject_line(inter);
	assert_string_equal(subject, "CN=acmera test Intermediate CA");
	free(subject);
	chain_free(roots);
	chain_free(chain);
	ca_signer_free(s);
}

static void generated_keys_are_mode_0600_and_no_temporary_files_remain(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	const char *files[] = {"root.pem", "root.key", "intermediate.pem", "intermediate.key"};
	const unsigned modes[] = {0644, 0600, 0644, 0600};
	for (size_t i = 0; i < 4; i++) {
		char *p = path_in(f->dir, files[i]);
		struct stat st;
		assert_int_equal(stat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(st.st_mode & 0777, modes[i]);
		free(p);
	}
	/* Four files and nothing else: no .XXXXXX temporaries left behind. */
	int count = 0;
	char *cmd = NULL;
	assert_true(asprintf(&cmd, "ls -A %s | wc -l", f->dir) > 0);
	FILE *ls = popen(cmd, "r");
	assert_non_null(ls);
	assert_int_equal(fscanf(ls, "%d", &count), 1);
	pclose(ls);
	free(cmd);
	assert_int_equal(count, 4);
}

static void reopening_the_directory_loads_the_same_ca(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	unsigned char root1[32], root2[32], chain1[32], chain2[32];
	struct ca_signer *s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root1);
	fingerprint(ca_signer_chain_pem(s), chain1);
	ca_signer_free(s);
	s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root2);
	fingerprint(ca_signer_chain_pem(s), chain2);
	assert_memory_equal(root1, root2, 32);
	assert_memory_equal(chain1, chain2, 32);
	ca_signer_free(s);
}

/* The notAfter of a leaf the signer issues now, which verifies against its root. */
static int64_t leaf_end(const struct fixture *f, struct ca_signer *s)
{
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, "a.example.com", NULL, &csr);
	const char *names[] = {"a.example.com"};
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 1, f->now, &pem, serial);
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
	STACK_OF(X509) *chain = parse(pem);
	int64_t end = unix_of(X509_get0_notAfter(sk_X509_value(chain, 0)));
	chain_free(chain);
	free(pem);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	return end;
}

/* The fingerprint of the chain a fresh open of cfg's CA sends. */
static void chain_print(const struct ca_signer_config *cfg, unsigned char out[32])
{
	struct ca_signer *s = open_ok(cfg);
	fingerprint(ca_signer_chain_pem(s), out);
	ca_signer_free(s);
}

/* The root key is needed only to make an intermediate: a CA running from a directory
 * without it still issues. */
static void reopening_without_root_key_still_issues(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	char *p = path_in(f->dir, "root.key");
	assert_int_equal(unlink(p), 0);
	free(p);
	struct ca_signer *s = open_ok(&cfg);
	assert_int_equal(leaf_end(f, s), f->now + LIFETIME);
	ca_signer_free(s);
}

/* A crash after intermediate.key was written but before intermediate.pem: the next
 * start makes a new intermediate under the same root. */
static void intermediate_key_without_certificate_is_replaced_under_same_root(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	unsigned char root1[32], root2[32], inter1[32], inter2[32];
	struct ca_signer *s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root1);
	fingerprint(ca_signer_chain_pem(s), inter1);
	ca_signer_free(s);
	char *p = path_in(f->dir, "intermediate.pem");
	assert_int_equal(unlink(p), 0);
	free(p);
	s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root2);
	fingerprint(ca_signer_chain_pem(s), inter2);
	assert_memory_equal(root1, root2, 32);
	assert_memory_not_equal(inter1, inter2, 32);
	ca_signer_free(s);
}

/* Replaces the generated intermediate of f->dir by one of a new P-256 key, signed
 * by the generated root's key, that ends at not_after; with root_end, the root too
 * by one of the same key that ends then. */
static void intermediate_ending_at(const struct fixture *f, int64_t not_after, int64_t root_end)
{
	char *root_key_path = path_in(f->dir, "root.key"), *root_path = path_in(f->dir, "root.pem");
	char *pem_path = path_in(f->dir, "intermediate.pem");
	char *key_path = path_in(f->dir, "intermediate.key");
	FILE *fp = fopen(root_key_path, "r");
	assert_non_null(fp);
	EVP_PKEY *root_key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	fp = fopen(root_path, "r");
	assert_non_null(fp);
	X509 *root = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(root_key);
	assert_non_null(root);
	if (root_end) {
		X509_free(root);
		root = make_ca("Ending Root", root_key, NULL, NULL, f->now, root_end);
		write_pem_file(root_path, &root, 1, NULL);
	}
	EVP_PKEY *key = EVP_EC_gen("P-256");
	assert_non_null(key);
	X509 *inter = make_ca("Ending Intermediate", key, root, root_key, f->now, not_after);
	write_pem_file(pem_path, &inter, 1, NULL);
	write_pem_file(key_path, NULL, 0, key);
	X509_free(inter);
	X509_free(root);
	EVP_PKEY_free(key);
	EVP_PKEY_free(root_key);
	free(root_key_path);
	free(root_path);
	free(pem_path);
	free(key_path);
}

/* The files of an intermediate that ended at end were kept under that name. */
static void assert_retired_files_kept(const struct fixture *f, int64_t end)
{
	const char *ext[] = {"pem", "key"};
	for (int i = 0; i < 2; i++) {
		char name[64];
		struct stat st;
		snprintf(name, sizeof(name), "intermediate-%lld.%s", (long long)end, ext[i]);
		char *kept = path_in(f->dir, name);
		assert_int_equal(stat(kept, &st), 0);
		free(kept);
	}
}

/* A CA started 60 days ago (its renewal window still ahead then) whose
 * intermediate ends at end, in a service holding only what ca_service_signer
 * uses. Without the root key when !root_key. Returns the signer it started with. */
static struct ca_signer *running_ca(const struct fixture *f, struct ca_service *svc, int64_t end,
                                    int root_key)
{
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	intermediate_ending_at(f, end, 0);
	if (!root_key) {
		char *path = path_in(f->dir, "root.key");
		assert_int_equal(unlink(path), 0);
		free(path);
	}
	memset(svc, 0, sizeof(*svc));
	assert_int_equal(pthread_mutex_init(&svc->renew_mu, NULL), 0);
	svc->signer_cfg = cfg;
	cfg.now = f->now - 60 * DAY;
	struct ca_signer *s = open_ok(&cfg);
	atomic_store(&svc->signer, s);
	assert_int_equal(ca_signer_issuer_not_after(s), end);
	assert_ptr_equal(ca_service_signer(svc, cfg.now), s);
	return s;
}

static void running_ca_free(struct ca_service *svc)
{
	ca_service_signers_free(svc);
	pthread_mutex_destroy(&svc->renew_mu);
}

/* A CA that runs on renews its intermediate at the first issuance within the
 * window, as a restart would, and swaps it in; the replaced signer stays usable
 * for workers that still hold it. */
static void running_ca_renews_and_swaps_its_intermediate(void **state)
{
	struct fixture *f = *state;
	struct ca_service svc;
	int64_t end = f->now + LIFETIME + 10 * DAY; /* less than the lifetime and 30 days */
	struct ca_signer *first = running_ca(f, &svc, end, 1);

	struct ca_signer *second = ca_service_signer(&svc, f->now);
	assert_ptr_not_equal(second, first);
	assert_true(ca_signer_issuer_not_after(second) > end);
	assert_int_equal(leaf_end(f, second), f->now + LIFETIME);
	assert_int_equal(svc.n_retired, 1);
	assert_ptr_equal(ca_service_signer(&svc, f->now), second);
	/* The replaced one still signs (and verifies). */
	assert_int_equal(leaf_end(f, first), f->now + LIFETIME);
	assert_retired_files_kept(f, end);
	running_ca_free(&svc);
}

/* Without root.key nothing can be renewed: the current signer serves on, and
 * the next try waits an hour rather than being made at every issuance. */
static void running_ca_without_root_key_serves_on(void **state)
{
	struct fixture *f = *state;
	struct ca_service svc;
	int64_t now = f->now;
	struct ca_signer *first = running_ca(f, &svc, now + LIFETIME + 10 * DAY, 0);
	assert_ptr_equal(ca_service_signer(&svc, now), first);
	assert_int_equal(atomic_load(&svc.renew_tried), now);
	assert_ptr_equal(ca_service_signer(&svc, now + 60), first);
	assert_int_equal(atomic_load(&svc.renew_tried), now); /* not tried again yet */
	assert_ptr_equal(ca_service_signer(&svc, now + 3600), first);
	assert_int_equal(atomic_load(&svc.renew_tried), now + 3600);
	assert_int_equal(svc.n_retired, 0);
	running_ca_free(&svc);
}

/* An intermediate that would cut the leaves' lifetime is replaced at start under
 * the same root; the old one's files are kept under its notAfter. */
static void intermediate_near_its_end_is_renewed_at_start(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	unsigned char root1[32], root2[32], old[32], renewed[32], next1[32], next2[32];
	int64_t end = f->now + 40 * DAY; /* less than the lifetime and 30 days */
	struct ca_signer *s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root1);
	ca_signer_free(s);
	intermediate_ending_at(f, end, 0);
	char *pem_path = path_in(f->dir, "intermediate.pem");
	FILE *fp = fopen(pem_path, "r");
	assert_non_null(fp);
	X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
	fclose(fp);
	assert_non_null(x);
	assert_int_equal(X509_digest(x, EVP_sha256(), old, NULL), 1);
	X509_free(x);

	s = open_ok(&cfg);
	fingerprint(ca_signer_root_pem(s), root2);
	assert_memory_equal(root1, root2, 32);
	STACK_OF(X509) *chain = parse(ca_signer_chain_pem(s));
	assert_int_equal(X509_digest(sk_X509_value(chain, 0), EVP_sha256(), renewed, NULL), 1);
	assert_memory_not_equal(old, renewed, 32);
	chain_free(chain);
	assert_int_equal(leaf_end(f, s), f->now + LIFETIME);
	ca_signer_free(s);

	assert_retired_files_kept(f, end);
	free(pem_path);

	/* The new one is far from its end: the next start keeps it. */
	chain_print(&cfg, next1);
	chain_print(&cfg, next2);
	assert_memory_equal(next1, next2, 32);
}

/* Without the root key no new intermediate can be signed: the old one serves to
 * its end, leaves cut at it. */
static void intermediate_near_its_end_without_root_key_serves_on(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	int64_t end = f->now + 40 * DAY;
	ca_signer_free(open_ok(&cfg));
	intermediate_ending_at(f, end, 0);
	char *p = path_in(f->dir, "root.key");
	assert_int_equal(unlink(p), 0);
	free(p);
	struct ca_signer *s = open_ok(&cfg);
	assert_int_equal(leaf_end(f, s), end);
	ca_signer_free(s);
}

/* Nor is one made that the root would end no later: each start would make
 * another. */
static void intermediate_near_the_roots_end_serves_on(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	int64_t end = f->now + 40 * DAY;
	unsigned char before[32], after[32];
	ca_signer_free(open_ok(&cfg));
	intermediate_ending_at(f, end, end);
	struct ca_signer *s = open_ok(&cfg);
	assert_int_equal(leaf_end(f, s), end);
	ca_signer_free(s);
	chain_print(&cfg, before);
	chain_print(&cfg, after);
	assert_memory_equal(before, after, 32);
}

static void intermediate_without_root_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	char *p = path_in(f->dir, "root.pem");
	assert_int_equal(unlink(p), 0);
	open_fails(&cfg, "root.pem does not");
	/* And no new root was made over the old intermediate. */
	assert_int_equal(access(p, F_OK), -1);
	free(p);
}

static void group_readable_key_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	char *p = path_in(f->dir, "intermediate.key");
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(open_fails(&cfg, "chmod 600"), ACMERA_ERR_CONFIG);
	free(p);
}

static void swapped_intermediate_key_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	ca_signer_free(open_ok(&cfg));
	EVP_PKEY *other = EVP_EC_gen("P-256");
	assert_non_null(other);
	char *p = path_in(f->dir, "intermediate.key");
	write_pem_file(p, NULL, 0, other);
	open_fails(&cfg, "does not match");
	free(p);
	EVP_PKEY_free(other);
}

static void bad_configuration_is_refused(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	cfg.leaf_lifetime = CA_LEAF_LIFETIME_MIN - 1;
	open_fails(&cfg, "lifetime");
	cfg.leaf_lifetime = CA_LEAF_LIFETIME_MAX + 1;
	open_fails(&cfg, "lifetime");
	cfg = gen_config(f);
	cfg.cert_file = "/nonexistent/ca.pem";
	open_fails(&cfg, "key file");
	cfg = gen_config(f);
	cfg.dir = NULL;
	open_fails(&cfg, "directory");
	cfg = gen_config(f);
	cfg.name = "a name that is far too long to fit a common name of 64";
	open_fails(&cfg, "CA name");
	cfg.name = "bad\nname";
	open_fails(&cfg, "control");
}

/* ---- issuing ---- */

static void issued_leaf_verifies_as_tls_server_against_the_root(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, "dev1.iot.example.com", "DNS:dev1.iot.example.com", &csr);
	const char *names[] = {"dev1.iot.example.com"};
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 1, f->now, &pem, serial);
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
	/* Past the leaf's notAfter it no longer verifies: the check above means something. */
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now + LIFETIME + DAY),
	                 X509_V_ERR_CERT_HAS_EXPIRED);
	/* leaf + intermediate; the root is not sent. */
	STACK_OF(X509) *chain = parse(pem);
	STACK_OF(X509) *ca = parse(ca_signer_chain_pem(s));
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), sk_X509_value(ca, 0)), 0);
	assert_int_equal(X509_get_signature_nid(sk_X509_value(chain, 0)), NID_ecdsa_with_SHA256);
	chain_free(ca);
	chain_free(chain);
	free(pem);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

/* The CSR asks for other names, CA:TRUE and keyCertSign; none of it is copied. */
static void issued_leaf_has_exactly_the_given_names_and_fixed_extensions(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	X509_REQ *req = tu_req_new(k, "evil.example.com", NULL);
	/* One extensionRequest attribute holding them all. */
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	assert_non_null(exts);
	const struct {
		int nid;
		const char *value;
	} asked[] = {
	    {NID_subject_alt_name, "DNS:evil.example.com,DNS:a.example.com,IP:192.0.2.1"},
	    {NID_basic_constraints, "critical,CA:TRUE"},
	    {NID_key_usage, "critical,keyCertSign"},
	    {NID_netscape_comment, "copied"},
	};
	for (size_t i = 0; i < 4; i++) {
		X509_EXTENSION *x = X509V3_EXT_conf_nid(NULL, NULL, asked[i].nid, asked[i].value);
		assert_non_null(x);
		assert_true(sk_X509_EXTENSION_push(exts, x) > 0);
	}
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	tu_req_sign(req, k);
	uint8_t *der = NULL;
	size_t len = 0;
	tu_req_der(req, &der, &len);
	struct csr_info csr = {0};
	assert_int_equal(csr_parse_der(der, len, &csr, NULL), 0);
	const char *names[] = {"a.example.com", "b.example.com", "*.c.example.com"};
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 3, f->now, &pem, serial);

	STACK_OF(X509) *chain = parse(pem);
	X509 *leaf = sk_X509_value(chain, 0), *inter = sk_X509_value(chain, 1);
	char **got = NULL;
	size_t n = 0;
	assert_int_equal(cert_dns_names(leaf, &got, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(got[i], names[i]);
		free(got[i]);
	}
	free(got);
	GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	assert_non_null(gens);
	assert_int_equal(sk_GENERAL_NAME_num(gens), 3); /* no IP address */
	GENERAL_NAMES_free(gens);
	assert_false(ext_critical(leaf, NID_subject_alt_name));

	char *subject = cert_subject_line(leaf);
	assert_string_equal(subject, "CN=a.example.com");
	free(subject);

	/* Exactly six extensions. */
	const int want[] = {NID_key_usage,
	                    NID_ext_key_usage,
	                    NID_basic_constraints,
	                    NID_subject_key_identifier,
	                    NID_authority_key_identifier,
	                    NID_subject_alt_name};
	assert_int_equal(X509_get_ext_count(leaf), 6);
	for (size_t i = 0; i < 6; i++)
		assert_true(X509_get_ext_by_NID(leaf, want[i], -1) >= 0);
	assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
	assert_true(ext_critical(leaf, NID_key_usage));
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
	assert_non_null(eku);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 2);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
	EXTENDED_KEY_USAGE_free(eku);
	BASIC_CONSTRAINTS *bc = X509_get_ext_d2i(leaf, NID_basic_constraints, NULL, NULL);
	assert_non_null(bc);
	assert_int_equal(bc->ca, 0);
	BASIC_CONSTRAINTS_free(bc);
	assert_int_equal(X509_check_ca(leaf), 0);
	assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
	                                       X509_get0_subject_key_id(inter)),
	                 0);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(leaf);
	assert_non_null(ski);
	assert_int_equal(ASN1_STRING_length(ski), 20);
	assert_int_equal(X509_get_version(leaf), X509_VERSION_3);

	int64_t nb = unix_of(X509_get0_notBefore(leaf));
	int64_t na = unix_of(X509_get0_notAfter(leaf));
	assert_int_equal(nb, f->now - 60);
	assert_int_equal(na, f->now + LIFETIME);
	assert_int_equal(ca_signer_leaf_not_after(s, f->now), na);

	chain_free(chain);
	free(pem);
	free(der);
	X509_REQ_free(req);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

static void each_key_type_gets_a_verifying_leaf_with_matching_key_usage(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *keys[] = {tu_key(TU_EC_P256), EVP_EC_gen("P-384"), tu_key(TU_RSA_2048),
	                    tu_key(TU_ED25519)};
	const uint32_t ku[] = {KU_DIGITAL_SIGNATURE, KU_DIGITAL_SIGNATURE,
	                       KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT, KU_DIGITAL_SIGNATURE};
	const char *names[] = {"k.example.com"};
	for (size_t i = 0; i < 4; i++) {
		assert_non_null(keys[i]);
		struct csr_info csr = {0};
		csr_make(keys[i], NULL, "DNS:k.example.com", &csr);
		char *pem = NULL, serial[41];
		issue_ok(s, &csr, names, 1, f->now, &pem, serial);
		assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
		STACK_OF(X509) *chain = parse(pem);
		X509 *leaf = sk_X509_value(chain, 0);
		assert_int_equal(X509_get_key_usage(leaf), ku[i]);
		assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), keys[i]), 1);
		/* The CSR's key goes into the leaf byte for byte (copied, not re-encoded). */
		unsigned char *a = NULL, *b = NULL;
		int la = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &a);
		int lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(csr.req), &b);
		assert_true(la > 0 && la == lb);
		assert_memory_equal(a, b, (size_t)la);
		OPENSSL_free(a);
		OPENSSL_free(b);
		chain_free(chain);
		free(pem);
		csr_info_free(&csr);
		EVP_PKEY_free(keys[i]);
	}
	ca_signer_free(s);
}

static void serials_are_random_positive_16_bytes_and_differ(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, NULL, "DNS:a.example.com", &csr);
	const char *names[] = {"a.example.com"};
	char serials[8][41];
	for (int i = 0; i < 8; i++) {
		char *pem = NULL;
		issue_ok(s, &csr, names, 1, f->now, &pem, serials[i]);
		assert_int_equal(strlen(serials[i]), 32);
		assert_int_equal(strspn(serials[i], "0123456789abcdef"), 32);
		STACK_OF(X509) *chain = parse(pem);
		const ASN1_INTEGER *sn = X509_get0_serialNumber(sk_X509_value(chain, 0));
		assert_int_equal(ASN1_STRING_type(sn), V_ASN1_INTEGER); /* not negative */
		/* 16 content bytes on the wire: no 0x00 pad, no short serial. */
		assert_int_equal(i2d_ASN1_INTEGER(sn, NULL), 2 + 16);
		BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
		char *hex = BN_bn2hex(bn);
		assert_int_equal(strcasecmp(hex, serials[i]), 0);
		OPENSSL_free(hex);
		BN_free(bn);
		chain_free(chain);
		free(pem);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(serials[i], serials[j]);
	}
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

static void long_first_name_leaves_subject_empty_and_san_critical(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, NULL, "DNS:a.example.com", &csr);
	const char *names[] = {
	    "a-very-long-label-that-is-allowed-in-dns.another-long-label.example.com"};
	assert_true(strlen(names[0]) > 64);
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 1, f->now, &pem, serial);
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
	STACK_OF(X509) *chain = parse(pem);
	X509 *leaf = sk_X509_value(chain, 0);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(leaf)), 0);
	assert_true(ext_critical(leaf, NID_subject_alt_name));
	chain_free(chain);
	free(pem);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

static void bad_issue_arguments_are_refused(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, NULL, "DNS:a.example.com", &csr);
	const char *dup[] = {"a.example.com", "A.example.com"};
	const char *comma[] = {"a.example.com,IP:1.2.3.4"};
	const char *empty[] = {""};
	const char *null[] = {NULL};
	char long_name[300];
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	const char *too_long[] = {long_name};
	struct {
		const char *const *names;
		size_t n;
		const char *why;
	} cases[] = {
	    {dup, 0, "0 names"},           {dup, 2, "repeats"},  {comma, 1, "not a host name"},
	    {empty, 1, "not a host name"}, {null, 1, "missing"}, {too_long, 1, "not a host name"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct acmera_errmsg e = {{0}};
		char *pem = (char *)"untouched", serial[41] = "x";
		assert_int_equal(
		    ca_signer_issue(s, &csr, cases[i].names, cases[i].n, f->now, &pem, serial, &e),
		    ACMERA_ERR_INVAL);
		assert_null(pem);
		assert_string_equal(serial, "");
		assert_non_null(strstr(e.text, cases[i].why));
	}
	char *pem = NULL, serial[41];
	assert_int_equal(ca_signer_issue(s, &csr, dup, 1, -5, &pem, serial, NULL),
	                 ACMERA_ERR_INVAL);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

/* ---- configured CA ---- */

static void configured_ca_is_loaded_and_signs_with_sha384(void **state)
{
	struct fixture *f = *state;
	struct configured c = {0};
	configured_make(f, f->now + 1000 * DAY, &c);
	struct ca_signer_config cfg = conf_config(f, &c);
	struct ca_signer *s = open_ok(&cfg);

	STACK_OF(X509) *ca = parse(ca_signer_chain_pem(s));
	assert_int_equal(sk_X509_num(ca), 2);
	assert_int_equal(X509_cmp(sk_X509_value(ca, 0), c.issuer), 0);
	assert_int_equal(X509_cmp(sk_X509_value(ca, 1), c.root), 0);
	STACK_OF(X509) *root = parse(ca_signer_root_pem(s));
	assert_int_equal(sk_X509_num(root), 1);
	assert_int_equal(X509_cmp(sk_X509_value(root, 0), c.root), 0);

	EVP_PKEY *k = tu_key(TU_RSA_2048);
	struct csr_info csr = {0};
	csr_make(k, "x.example.com", NULL, &csr);
	const char *names[] = {"x.example.com"};
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 1, f->now, &pem, serial);
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
	STACK_OF(X509) *chain = parse(pem);
	assert_int_equal(sk_X509_num(chain), 2);
	assert_int_equal(X509_cmp(sk_X509_value(chain, 1), c.issuer), 0);
	assert_int_equal(X509_get_signature_nid(sk_X509_value(chain, 0)), NID_ecdsa_with_SHA384);
	/* Nothing was generated in dir for a configured CA. */
	char *p = path_in(f->dir, "root.key");
	assert_int_equal(access(p, F_OK), -1);
	free(p);

	chain_free(chain);
	chain_free(root);
	chain_free(ca);
	free(pem);
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
	configured_free(&c);
}

static void lifetime_is_clipped_at_the_issuer_not_after(void **state)
{
	struct fixture *f = *state;
	struct configured c = {0};
	int64_t issuer_end = f->now + 10 * DAY;
	configured_make(f, issuer_end, &c);
	struct ca_signer_config cfg = conf_config(f, &c);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, NULL, "DNS:a.example.com", &csr);
	const char *names[] = {"a.example.com"};
	char *pem = NULL, serial[41];
	issue_ok(s, &csr, names, 1, f->now, &pem, serial);
	STACK_OF(X509) *chain = parse(pem);
	assert_int_equal(unix_of(X509_get0_notAfter(sk_X509_value(chain, 0))), issuer_end);
	assert_int_equal(ca_signer_leaf_not_after(s, f->now), issuer_end);
	assert_int_equal(verify_leaf(pem, ca_signer_root_pem(s), f->now), X509_V_OK);
	chain_free(chain);
	free(pem);
	/* Once the issuer has expired nothing more is issued. */
	struct acmera_errmsg e = {{0}};
	assert_int_equal(ca_signer_issue(s, &csr, names, 1, issuer_end, &pem, serial, &e),
	                 ACMERA_ERR_CONFIG);
	assert_null(pem);
	assert_non_null(strstr(e.text, "expired"));
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
	configured_free(&c);
}

static void configured_key_not_matching_the_certificate_is_refused(void **state)
{
	struct fixture *f = *state;
	struct configured c = {0};
	configured_make(f, f->now + 100 * DAY, &c);
	write_pem_file(c.key_file, NULL, 0, c.root_key); /* the root's key, not the issuer's */
	struct ca_signer_config cfg = conf_config(f, &c);
	assert_int_equal(open_fails(&cfg, "does not match"), ACMERA_ERR_CONFIG);
	configured_free(&c);
}

static void configured_chain_without_its_root_is_refused(void **state)
{
	struct fixture *f = *state;
	struct configured c = {0};
	configured_make(f, f->now + 100 * DAY, &c);
	write_pem_file(c.cert_file, &c.issuer, 1, NULL);
	struct ca_signer_config cfg = conf_config(f, &c);
	open_fails(&cfg, "does not end with its root");
	configured_free(&c);
}

static void configured_leaf_certificate_is_refused_as_issuer(void **state)
{
	struct fixture *f = *state;
	struct configured c = {0};
	configured_make(f, f->now + 100 * DAY, &c);
	X509 *leaf = tu_cert("not a ca", c.key, c.root, c.root_key, f->now + 100 * DAY, NULL);
	X509 *both[2] = {leaf, c.root};
	write_pem_file(c.cert_file, both, 2, NULL);
	struct ca_signer_config cfg = conf_config(f, &c);
	open_fails(&cfg, "may not sign");
	X509_free(leaf);
	configured_free(&c);
}

/* ---- threads ---- */

#define THREADS 4
#define PER_THREAD 25

struct worker {
	struct ca_signer *s;
	const struct csr_info *csr;
	int64_t now;
	char serials[PER_THREAD][41];
	char *pems[PER_THREAD];
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	const char *names[] = {"t.example.com"};
	for (int i = 0; i < PER_THREAD; i++)
		if (ca_signer_issue(w->s, w->csr, names, 1, w->now, &w->pems[i], w->serials[i],
		                    NULL) != 0)
			w->failures++;
	return NULL;
}

static void concurrent_workers_all_get_verifying_leaves_with_distinct_serials(void **state)
{
	struct fixture *f = *state;
	struct ca_signer_config cfg = gen_config(f);
	struct ca_signer *s = open_ok(&cfg);
	EVP_PKEY *k = tu_key(TU_EC_P256);
	struct csr_info csr = {0};
	csr_make(k, NULL, "DNS:t.example.com", &csr);
	struct worker w[THREADS];
	pthread_t t[THREADS];
	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++) {
		w[i].s = s;
		w[i].csr = &csr;
		w[i].now = f->now;
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < THREADS; i++) {
		assert_int_equal(w[i].failures, 0);
		for (int j = 0; j < PER_THREAD; j++) {
			assert_int_equal(verify_leaf(w[i].pems[j], ca_signer_root_pem(s), f->now),
			                 X509_V_OK);
			for (int a = 0; a <= i; a++)
				for (int b = 0; b < (a == i ? j : PER_THREAD); b++)
					assert_string_not_equal(w[i].serials[j], w[a].serials[b]);
			free(w[i].pems[j]);
		}
	}
	csr_info_free(&csr);
	EVP_PKEY_free(k);
	ca_signer_free(s);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(generated_ca_has_p384_root_and_p256_intermediate_with_ca_extensions),
	    T(generated_keys_are_mode_0600_and_no_temporary_files_remain),
	    T(reopening_the_directory_loads_the_same_ca),
	    T(reopening_without_root_key_still_issues),
	    T(intermediate_key_without_certificate_is_replaced_under_same_root),
	    T(intermediate_near_its_end_is_renewed_at_start),
	    T(running_ca_renews_and_swaps_its_intermediate),
	    T(running_ca_without_root_key_serves_on),
	    T(intermediate_near_its_end_without_root_key_serves_on),
	    T(intermediate_near_the_roots_end_serves_on),
	    T(intermediate_without_root_is_refused),
	    T(group_readable_key_is_refused),
	    T(swapped_intermediate_key_is_refused),
	    T(bad_configuration_is_refused),
	    T(issued_leaf_verifies_as_tls_server_against_the_root),
	    T(issued_leaf_has_exactly_the_given_names_and_fixed_extensions),
	    T(each_key_type_gets_a_verifying_leaf_with_matching_key_usage),
	    T(serials_are_random_positive_16_bytes_and_differ),
	    T(long_first_name_leaves_subject_empty_and_san_critical),
	    T(bad_issue_arguments_are_refused),
	    T(configured_ca_is_loaded_and_signs_with_sha384),
	    T(lifetime_is_clipped_at_the_issuer_not_after),
	    T(configured_key_not_matching_the_certificate_is_refused),
	    T(configured_chain_without_its_root_is_refused),
	    T(configured_leaf_certificate_is_refused_as_issuer),
	    T(concurrent_workers_all_get_verifying_leaves_with_distinct_serials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
