#include "ca/signer.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/secret.h"
#include "pki/cert.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DAY 86400
#define ROOT_DAYS 3653  /* 10 years with their leap days */
#define INTER_DAYS 1827 /* 5 years */
/* Clocks of relying parties run a little behind. */
#define BACKDATE 60
#define SERIAL_LEN 16
#define CN_MAX 64 /* ub-common-name, RFC 5280 */
#define HOST_NAME_MAX_LEN 253
#define TIME_MAX 253402300799LL /* 9999-12-31T23:59:59Z, the last GeneralizedTime */
/* A configured chain: CHAIN_MAX_CERTS certificates with text around them. */
#define CERT_FILE_MAX (1024 * 1024)
/* Key identifiers are 20 bytes in practice; a longer one is refused, not trusted. */
#define KEYID_MAX 64

struct ca_signer {
	EVP_PKEY *key;          /* the issuer's private key */
	const EVP_MD *md;       /* NULL for EdDSA issuers, which take none */
	X509_NAME *issuer_name; /* subject of the issuing certificate */
	int64_t not_after;      /* of the issuing certificate */
	int64_t renew_before;   /* a renewal is due with less than this left */
	int64_t lifetime;
	/* Made once, copied into every leaf: X509_add_ext only reads them, so workers
	 * can share them. */
	X509_EXTENSION *ku_sig;  /* digitalSignature */
	X509_EXTENSION *ku_rsa;  /* digitalSignature, keyEncipherment */
	X509_EXTENSION *eku;     /* serverAuth, clientAuth */
	X509_EXTENSION *bc_leaf; /* CA:FALSE */
	X509_EXTENSION *aki;     /* the issuer's key identifier */
	char *send_pem;          /* sent after the leaf: the chain without its root */
	char *chain_pem;         /* issuer .. root */
	char *root_pem;
	/* EVP_DigestSignInit with key and md, done once: each leaf is signed on a copy,
	 * made under mu since workers share it. */
	EVP_MD_CTX *ready;
	pthread_mutex_t mu;
};

/* The four files of a generated CA. */
struct ca_paths {
	char root_pem[PATH_MAX];
	char root_key[PATH_MAX];
	char inter_pem[PATH_MAX];
	char inter_key[PATH_MAX];
};

static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

static int nomem(struct acmera_errmsg *e)
{
	ERR_clear_error();
	return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
}

/* ---- files ---- */

/* 1 if path exists, 0 if not, or a negative error. */
static int file_exists(const char *path, struct acmera_errmsg *e)
{
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISREG(st.st_mode))
			return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: not a regular file", path);
		return 1;
	}
	if (errno == ENOENT)
		return 0;
	return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
}

/* Reads a whole file of at most max bytes into a NUL-terminated heap string. */
static int read_small_file(const char *path, size_t max, char **out, size_t *len,
                           struct acmera_errmsg *e)
{
	struct buf b = BUF_INIT;
	char chunk[4096];
	int rc = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %zu bytes", path,
			                 max);
			goto out;
		}
		if (buf_append(&b, chunk, (size_t)n) != 0) {
			rc = nomem(e);
			goto out;
		}
	}
	*len = b.len;
	*out = buf_steal(&b);
	if (!*out)
		rc = nomem(e);
out:
	close(fd);
	buf_free(&b);
	return rc;
}

static int fsync_dir(const char *dir, struct acmera_errmsg *e)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", dir, strerror(errno));
	int rc = fsync(fd) == 0
	             ? 0
	             : acmera_fail(e, ACMERA_ERR_IO, "%s: fsync: %s", dir, strerror(errno));
	close(fd);
	return rc;
}

/* Temporary file in the same directory, fsync, rename, fsync of the directory: after a
 * crash path holds either nothing or all of data, never a part. */
static int write_file_atomic(const char *dir, const char *path, const void *data, size_t len,
                             mode_t mode, struct acmera_errmsg *e)
{
	char tmp[PATH_MAX];
	const char *p = data;
	int rc = 0;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: path too long", path);
	/* Created 0600 with O_EXCL, so no one reads a key while it is being written. */
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", tmp, strerror(errno));
	if (fchmod(fd, mode) != 0) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
		goto out;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = acmera_fail(e, ACMERA_ERR_IO, "%s: %s", tmp, strerror(errno));
			goto out;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fsync(fd) != 0)
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: fsync: %s", tmp, strerror(errno));
out:
	if (close(fd) != 0 && rc == 0)
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: close: %s", tmp, strerror(errno));
	if (rc == 0 && rename(tmp, path) != 0)
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: rename: %s", path, strerror(errno));
	if (rc != 0) {
		unlink(tmp);
		return rc;
	}
	return fsync_dir(dir, e);
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1; /* never prompt: keys are stored unencrypted, 0600 */
}

static int load_key_file(const char *path, EVP_PKEY **out, struct acmera_errmsg *e)
{
	char *pem = NULL;
	int rc = read_secret_file(path, &pem, e);
	if (rc)
		return rc;
	BIO *bio = BIO_new_mem_buf(pem, -1);
	if (!bio) {
		rc = nomem(e);
		goto out;
	}
	*out = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	if (!*out)
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: not an unencrypted PEM private key: %s",
		                 path, ossl_why());
out:
	BIO_free(bio);
	secret_free(pem);
	return rc;
}

static int write_key_file(const char *dir, const char *path, EVP_PKEY *key, struct acmera_errmsg *e)
{
	char *p = NULL;
	int rc;
	/* Secure memory BIO: the PEM is wiped when freed. */
	BIO *bio = BIO_new(BIO_s_secmem());
	if (!bio)
		return nomem(e);
	if (!PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "cannot encode key: %s", ossl_why());
		goto out;
	}
	long n = BIO_get_mem_data(bio, &p);
	rc = write_file_atomic(dir, path, p, n > 0 ? (size_t)n : 0, 0600, e);
out:
	BIO_free(bio);
	return rc;
}

static int write_cert_file(const char *dir, const char *path, X509 *x, struct acmera_errmsg *e)
{
	char *p = NULL;
	int rc;
	BIO *bio = BIO_new(BIO_s_mem());
	if (!bio)
		return nomem(e);
	if (!PEM_write_bio_X509(bio, x)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "cannot encode certificate: %s", ossl_why());
		goto out;
	}
	long n = BIO_get_mem_data(bio, &p);
	rc = write_file_atomic(dir, path, p, n > 0 ? (size_t)n : 0, 0644, e);
out:
	BIO_free(bio);
	return rc;
}

static int load_chain_file(const char *path, STACK_OF(X509) * *out, struct acmera_errmsg *e)
{
	char *pem = NULL;
	size_t len = 0;
	int rc = read_small_file(path, CERT_FILE_MAX, &pem, &len, e);
	if (rc)
		return rc;
	rc = chain_parse_pem(pem, len, out, e);
	if (rc)
		rc = acmera_fail_wrap(e, ACMERA_ERR_CONFIG, "%s", path);
	free(pem);
	return rc;
}

static int load_cert_file(const char *path, X509 **out, struct acmera_errmsg *e)
{
	STACK_OF(X509) *chain = NULL;
	int rc = load_chain_file(path, &chain, e);
	if (rc)
		return rc;
	if (sk_X509_num(chain) != 1)
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "%s: holds %d certificates, not one", path,
		                 sk_X509_num(chain));
	else
		*out = sk_X509_shift(chain);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/* ---- certificates ---- */

/* SHA-256 with SHA-384 and SHA-512 for the larger curves, so the hash is as strong as
 * the key; EdDSA hashes internally. */
static const EVP_MD *md_for_key(EVP_PKEY *k)
{
	int id = EVP_PKEY_get_base_id(k);
	if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448)
		return NULL;
	if (id == EVP_PKEY_EC && EVP_PKEY_get_bits(k) > 384)
		return EVP_sha512();
	if (id == EVP_PKEY_EC && EVP_PKEY_get_bits(k) > 256)
		return EVP_sha384();
	return EVP_sha256();
}

/* A random positive serial of exactly SERIAL_LEN bytes: the top bit clear (positive),
 * the next set (no leading zero byte shortens it); 126 random bits. */
static int set_serial(X509 *x, char *hex, struct acmera_errmsg *e)
{
	uint8_t b[SERIAL_LEN];
	if (RAND_bytes(b, sizeof(b)) != 1)
		return acmera_fail(e, ACMERA_ERR_AGAIN, "no randomness for a serial: %s",
		                   ossl_why());
	b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);
	if (!ASN1_STRING_set(X509_get_serialNumber(x), b, sizeof(b)))
		return nomem(e);
	if (hex)
		for (size_t i = 0; i < sizeof(b); i++)
			snprintf(hex + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* Method 1 of RFC 5280 4.2.1.2: SHA-1 of the subjectPublicKey bits. */
static int add_ski(X509 *x, struct acmera_errmsg *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	int rc = 0;
	if (!X509_pubkey_digest(x, EVP_sha1(), md, &n))
		return acmera_fail(e, ACMERA_ERR_INVAL, "cannot hash public key: %s", ossl_why());
	ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
	if (!ski || !ASN1_OCTET_STRING_set(ski, md, (int)n) ||
	    X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, X509V3_ADD_DEFAULT) != 1)
		rc = nomem(e);
	ASN1_OCTET_STRING_free(ski);
	return rc;
}

/* The issuer's key identifier as an authorityKeyIdentifier extension: its SKI, or the
 * same hash computed from its key when it has none. */
static X509_EXTENSION *aki_ext(X509 *issuer, struct acmera_errmsg *e)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	const unsigned char *id = md;
	X509_EXTENSION *ext = NULL;
	AUTHORITY_KEYID *aki = NULL;
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
	if (ski) {
		id = ASN1_STRING_get0_data(ski);
		n = (unsigned int)ASN1_STRING_length(ski);
	} else if (!X509_pubkey_digest(issuer, EVP_sha1(), md, &n)) {
		acmera_fail(e, ACMERA_ERR_INVAL, "cannot hash issuer key: %s", ossl_why());
		return NULL;
	}
	if (n == 0 || n > KEYID_MAX) {
		acmera_fail(e, ACMERA_ERR_CONFIG, "issuer key identifier is %u bytes", n);
		return NULL;
	}
	aki = AUTHORITY_KEYID_new();
	if (!aki || !(aki->keyid = ASN1_OCTET_STRING_new()) ||
	    !ASN1_OCTET_STRING_set(aki->keyid, id, (int)n) ||
	    !(ext = X509V3_EXT_i2d(NID_authority_key_identifier, 0, aki)))
		nomem(e);
	AUTHORITY_KEYID_free(aki);
	return ext;
}

/* An extension from OpenSSL's configuration syntax; values are ours, never a peer's. */
static X509_EXTENSION *conf_ext(int nid, const char *value, struct acmera_errmsg *e)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
	if (!ext)
		acmera_fail(e, ACMERA_ERR_NOMEM, "extension %s: %s", value, ossl_why());
	return ext;
}

static int add_conf_ext(X509 *x, int nid, const char *value, struct acmera_errmsg *e)
{
	X509_EXTENSION *ext = conf_ext(nid, value, e);
	if (!ext)
		return ACMERA_ERR_NOMEM;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : nomem(e);
}

/* 1 when bits is the one DER form of a key of this kind: an uncompressed point on a
 * named curve (RFC 5480), or a raw EdDSA key (RFC 8410). RSA, and any other form,
 * are encoded anew by the caller, so the CA never signs a device's odd encoding. */
static int canonical_spki(int alg, int ptype, const void *pval, const unsigned char *bits,
                          int nbits)
{
	if (alg == NID_ED25519 || alg == NID_ED448)
		return ptype == V_ASN1_UNDEF && nbits == (alg == NID_ED25519 ? 32 : 57);
	if (alg != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
		return 0;
	int curve = OBJ_obj2nid(pval);
	int field = curve == NID_X9_62_prime256v1 ? 32
	            : curve == NID_secp384r1      ? 48
	            : curve == NID_secp521r1      ? 66
	                                          : 0;
	return field && nbits == 1 + 2 * field && bits[0] == 0x04;
}

/* Puts a copy of src, as encoded, in x: OpenSSL 3.0's X509_set_pubkey encodes the
 * key again through a provider encoder, most of the cost of a leaf. 0 when src is
 * not in canonical form (the caller then encodes the key). */
static int copy_spki(X509 *x, const X509_PUBKEY *src)
{
	ASN1_OBJECT *alg = NULL;
	const unsigned char *bits = NULL;
	int nbits = 0, ptype = V_ASN1_UNDEF;
	X509_ALGOR *salg = NULL;
	const ASN1_OBJECT *pobj = NULL;
	const void *pval = NULL;
	void *param = NULL;
	if (!src || !X509_PUBKEY_get0_param(&alg, &bits, &nbits, &salg, src) || nbits <= 0)
		return 0;
	X509_ALGOR_get0(&pobj, &ptype, &pval, salg);
	if (!canonical_spki(OBJ_obj2nid(alg), ptype, pval, bits, nbits))
		return 0;
	if (ptype == V_ASN1_OBJECT) /* an EC named curve */
		param = OBJ_dup(pval);
	ASN1_OBJECT *obj = OBJ_dup(alg);
	unsigned char *enc = OPENSSL_memdup(bits, (size_t)nbits);
	if (!obj || !enc || (ptype == V_ASN1_OBJECT && !param) ||
	    !X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), obj, ptype, param, enc, nbits)) {
		ASN1_OBJECT_free(obj);
		ASN1_OBJECT_free(param);
		OPENSSL_free(enc);
		return 0;
	}
	return 1;
}

/* A v3 certificate with a random serial, subject CN=cn (empty when cn is NULL), the
 * issuer's name (its own when issuer_name is NULL), validity and key (spki as
 * encoded when given, else pub), and an SKI. */
static X509 *cert_new(EVP_PKEY *pub, const X509_PUBKEY *spki, const char *cn,
                      const X509_NAME *issuer_name, int64_t nb, int64_t na, char *serial_hex,
                      struct acmera_errmsg *e)
{
	X509 *x = X509_new();
	if (!x) {
		nomem(e);
		return NULL;
	}
	X509_NAME *subject = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    (cn && !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
	                                       (const unsigned char *)cn, -1, -1, 0)) ||
	    !X509_set_issuer_name(x, issuer_name ? issuer_name : subject) ||
	    !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) ||
	    !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na)) {
		nomem(e);
		goto fail;
	}
	if (!copy_spki(x, spki) && !X509_set_pubkey(x, pub)) {
		acmera_fail(e, ACMERA_ERR_INVAL, "unusable public key: %s", ossl_why());
		goto fail;
	}
	if (set_serial(x, serial_hex, e) != 0 || add_ski(x, e) != 0)
		goto fail;
	return x;
fail:
	X509_free(x);
	return NULL;
}

/* X509_sign through a context that signs once, so that OpenSSL need not copy it
 * to keep it reusable. */
static int sign_with(X509 *x, EVP_PKEY *key, const EVP_MD *md, struct acmera_errmsg *e)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL;
	if (ok) {
		EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
		ok = EVP_DigestSignInit(ctx, NULL, md, NULL, key) == 1 && X509_sign_ctx(x, ctx) > 0;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return acmera_fail(e, ACMERA_ERR_INVAL, "cannot sign certificate: %s", ossl_why());
	return 0;
}

static int cert_sign(X509 *x, EVP_PKEY *key, struct acmera_errmsg *e)
{
	return sign_with(x, key, md_for_key(key), e);
}

/* sign_with for a leaf, on a copy of s->ready: a tenth of the cost of setting up a
 * context (OpenSSL 3 fetches the algorithm and makes its context each time). */
static int sign_leaf(struct ca_signer *s, X509 *x, struct acmera_errmsg *e)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL;
	if (ok) {
		pthread_mutex_lock(&s->mu);
		ok = EVP_MD_CTX_copy_ex(ctx, s->ready) == 1;
		pthread_mutex_unlock(&s->mu);
	}
	if (ok) {
		EVP_MD_CTX_set_flags(ctx, EVP_MD_CTX_FLAG_FINALISE);
		ok = X509_sign_ctx(x, ctx) > 0;
	}
	EVP_MD_CTX_free(ctx);
	if (!ok)
		return acmera_fail(e, ACMERA_ERR_INVAL, "cannot sign certificate: %s", ossl_why());
	return 0;
}

/* A CA certificate for key: self-signed when issuer is NULL, else signed by issuer with
 * pathlen 0 and an AKI, and never outliving it. */
static X509 *ca_cert_new(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                         int64_t days, int64_t now, struct acmera_errmsg *e)
{
	int64_t na = now + days * DAY;
	int64_t issuer_na;
	X509_EXTENSION *aki = NULL;
	if (issuer && cert_not_after(issuer, &issuer_na) == 0 && issuer_na < na)
		na = issuer_na;
	X509 *x = cert_new(key, NULL, cn, issuer ? X509_get_subject_name(issuer) : NULL,
	                   now - BACKDATE, na, NULL, e);
	if (!x)
		return NULL;
	if (add_conf_ext(x, NID_basic_constraints,
	                 issuer ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE", e) != 0 ||
	    add_conf_ext(x, NID_key_usage, "critical,keyCertSign,cRLSign", e) != 0)
		goto fail;
	if (issuer) {
		if (!(aki = aki_ext(issuer, e)))
			goto fail;
		if (!X509_add_ext(x, aki, -1)) {
			nomem(e);
			goto fail;
		}
		X509_EXTENSION_free(aki);
		aki = NULL;
	}
	if (cert_sign(x, issuer ? issuer_key : key, e) != 0)
		goto fail;
	return x;
fail:
	X509_EXTENSION_free(aki);
	X509_free(x);
	return NULL;
}

/* ---- opening ---- */

/* The issuer (first) holds key, may sign certificates, and verifies up to the
 * self-signed last certificate of chain at the current time. */
static int check_chain(STACK_OF(X509) * chain, EVP_PKEY *key, struct acmera_errmsg *e)
{
	X509 *issuer = sk_X509_value(chain, 0);
	X509 *root = sk_X509_value(chain, sk_X509_num(chain) - 1);
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	int rc = 0;
	if (X509_check_private_key(issuer, key) != 1) {
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_CONFIG, "the key does not match the certificate");
	}
	if (X509_check_ca(issuer) == 0 || !(X509_get_key_usage(issuer) & KU_KEY_CERT_SIGN))
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "the certificate may not sign certificates");
	if (X509_self_signed(root, 1) != 1) {
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_CONFIG, "the chain does not end with its root");
	}
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (!store || !ctx || !X509_STORE_add_cert(store, root) ||
	    !X509_STORE_CTX_init(ctx, store, issuer, chain)) {
		rc = nomem(e);
		goto out;
	}
	if (X509_verify_cert(ctx) != 1)
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "the chain does not verify: %s",
		                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

static int load_configured(const struct ca_signer_config *cfg, STACK_OF(X509) * *chain,
                           EVP_PKEY **key, struct acmera_errmsg *e)
{
	int rc = load_chain_file(cfg->cert_file, chain, e);
	if (rc == 0)
		rc = load_key_file(cfg->key_file, key, e);
	if (rc == 0 && (rc = check_chain(*chain, *key, e)) != 0)
		rc = acmera_fail_wrap(e, rc, "CA %s", cfg->cert_file);
	return rc;
}

static int paths_init(const char *dir, struct ca_paths *p, struct acmera_errmsg *e)
{
	size_t n = sizeof(p->root_pem);
	if ((size_t)snprintf(p->root_pem, n, "%s/root.pem", dir) >= n ||
	    (size_t)snprintf(p->root_key, n, "%s/root.key", dir) >= n ||
	    (size_t)snprintf(p->inter_pem, n, "%s/intermediate.pem", dir) >= n ||
	    (size_t)snprintf(p->inter_key, n, "%s/intermediate.key", dir) >= n)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: path too long", dir);
	return 0;
}

static int make_dir(const char *dir, struct acmera_errmsg *e)
{
	struct stat st;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: mkdir: %s", dir, strerror(errno));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: not a directory", dir);
	return 0;
}

/* A new key pair, written before any certificate for it. */
static int make_key(const char *curve, const char *dir, const char *path, EVP_PKEY **out,
                    struct acmera_errmsg *e)
{
	*out = EVP_EC_gen(curve);
	if (!*out)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "cannot generate %s key: %s", curve,
		                   ossl_why());
	return write_key_file(dir, path, *out, e);
}

static int make_root(const struct ca_signer_config *cfg, const struct ca_paths *p, const char *name,
                     int64_t now, X509 **root, EVP_PKEY **root_key, struct acmera_errmsg *e)
{
	char cn[CN_MAX + 1];
	snprintf(cn, sizeof(cn), "%s Root CA", name);
	int rc = make_key("P-384", cfg->dir, p->root_key, root_key, e);
	if (rc)
		return rc;
	if (!(*root = ca_cert_new(*root_key, cn, NULL, NULL, ROOT_DAYS, now, e)))
		return ACMERA_ERR_INVAL;
	return write_cert_file(cfg->dir, p->root_pem, *root, e);
}

static int make_intermediate(const struct ca_signer_config *cfg, const struct ca_paths *p,
                             const char *name, int64_t now, X509 *root, EVP_PKEY *root_key,
                             X509 **inter, EVP_PKEY **inter_key, struct acmera_errmsg *e)
{
	char cn[CN_MAX + 1];
	snprintf(cn, sizeof(cn), "%s Intermediate CA", name);
	if (X509_check_private_key(root, root_key) != 1) {
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s does not match %s", p->root_key,
		                   p->root_pem);
	}
	int rc = make_key("P-256", cfg->dir, p->inter_key, inter_key, e);
	if (rc)
		return rc;
	if (!(*inter = ca_cert_new(*inter_key, cn, root, root_key, INTER_DAYS, now, e)))
		return ACMERA_ERR_INVAL;
	return write_cert_file(cfg->dir, p->inter_pem, *inter, e);
}

/* A generated intermediate with less than this left is replaced at start, so that
 * the leaves signed after keep their full lifetime (they are cut at its notAfter)
 * and a CA restarted now and then never reaches its expiry. */
static int64_t renew_before(const struct ca_signer_config *cfg)
{
	return cfg->leaf_lifetime + 30 * DAY;
}

/* The time renewal decisions are made at (a running CA's renewal passes it). */
static int64_t decision_time(const struct ca_signer_config *cfg)
{
	return cfg->now ? cfg->now : (int64_t)time(NULL);
}

/* Moves the intermediate's files aside as intermediate-NOTAFTER.pem and .key, the
 * certificate first: a crash between the two leaves a key without its certificate,
 * which the next start replaces as it would after a crash while making it. */
static int retire_intermediate(const char *dir, const struct ca_paths *p, int64_t not_after,
                               struct acmera_errmsg *e)
{
	char pem[PATH_MAX], key[PATH_MAX];
	if ((size_t)snprintf(pem, sizeof(pem), "%s/intermediate-%lld.pem", dir,
	                     (long long)not_after) >= sizeof(pem) ||
	    (size_t)snprintf(key, sizeof(key), "%s/intermediate-%lld.key", dir,
	                     (long long)not_after) >= sizeof(key))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: path too long", dir);
	if (rename(p->inter_pem, pem) != 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", p->inter_pem, strerror(errno));
	if (rename(p->inter_key, key) != 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", p->inter_key, strerror(errno));
	return fsync_dir(dir, e);
}

/* Loads the generated intermediate, or leaves *inter NULL when it is to be made
 * again: it expires within renew_before, root outlives it, and the root key is
 * there to sign a new one (otherwise the old one serves to its end). */
static int load_intermediate(const struct ca_signer_config *cfg, const struct ca_paths *p,
                             int64_t now, X509 *root, X509 **inter, EVP_PKEY **key,
                             struct acmera_errmsg *e)
{
	int64_t na = 0, root_na = 0;
	int rc = load_cert_file(p->inter_pem, inter, e);
	if (rc == 0)
		rc = load_key_file(p->inter_key, key, e);
	if (rc || cert_not_after(*inter, &na) != 0 || na - now >= renew_before(cfg))
		return rc;
	/* A new one would end with the root no later than this one: only a new root
	 * helps then, which relying parties must be given; ca_signer_open warns. */
	if (cert_not_after(root, &root_na) != 0 || root_na <= na)
		return 0;
	int have_root_key = file_exists(p->root_key, e);
	if (have_root_key < 0)
		return have_root_key;
	if (!have_root_key)
		return 0; /* ca_signer_open warns of it */
	rc = retire_intermediate(cfg->dir, p, na, e);
	if (rc)
		return rc;
	log_event(LOG_LVL_INFO, "ca.intermediate", "old_not_after=%lld change=renewed",
	          (long long)na);
	X509_free(*inter);
	EVP_PKEY_free(*key);
	*inter = NULL;
	*key = NULL;
	return 0;
}

/* Loads the generated CA from dir, making what is missing. A key without its
 * certificate is what a crash between the two leaves; it is replaced. An intermediate
 * without its root is an operator's mistake, and no new root is made under it. */
static int load_generated(const struct ca_signer_config *cfg, STACK_OF(X509) * *chain,
                          EVP_PKEY **key, struct acmera_errmsg *e)
{
	struct ca_paths p;
	X509 *root = NULL, *inter = NULL;
	EVP_PKEY *root_key = NULL;
	const char *name = cfg->name ? cfg->name : "acmera";
	int64_t now = decision_time(cfg);
	int have_root, have_inter;
	int rc = paths_init(cfg->dir, &p, e);
	if (rc || (rc = make_dir(cfg->dir, e)) != 0)
		return rc;
	if ((have_root = file_exists(p.root_pem, e)) < 0)
		return have_root;
	if ((have_inter = file_exists(p.inter_pem, e)) < 0)
		return have_inter;
	if (have_inter && !have_root)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s exists but %s does not", p.inter_pem,
		                   p.root_pem);
	if (have_root)
		rc = load_cert_file(p.root_pem, &root, e);
	else
		rc = make_root(cfg, &p, name, now, &root, &root_key, e);
	if (rc)
		goto out;
	if (have_inter && (rc = load_intermediate(cfg, &p, now, root, &inter, key, e)) != 0)
		goto out;
	if (!inter) {
		/* The root key is read only to make an intermediate. */
		if (!root_key && (rc = load_key_file(p.root_key, &root_key, e)) != 0)
			goto out;
		rc = make_intermediate(cfg, &p, name, now, root, root_key, &inter, key, e);
		if (rc)
			goto out;
	}
	if (!(*chain = sk_X509_new_null()) || !sk_X509_push(*chain, inter)) {
		rc = nomem(e);
		goto out;
	}
	inter = NULL;
	if (!sk_X509_push(*chain, root)) {
		rc = nomem(e);
		goto out;
	}
	root = NULL;
	rc = check_chain(*chain, *key, e);
	if (rc)
		rc = acmera_fail_wrap(e, rc, "CA in %s", cfg->dir);
out:
	X509_free(root);
	X509_free(inter);
	EVP_PKEY_free(root_key);
	return rc;
}

static char *cert_pem(X509 *x)
{
	STACK_OF(X509) *one = sk_X509_new_null();
	char *pem = NULL;
	if (one && sk_X509_push(one, x))
		pem = chain_to_pem(one);
	sk_X509_free(one);
	return pem;
}

/* Everything ca_signer_issue reads, made once so that issuing only reads it. */
static int signer_fill(struct ca_signer *s, STACK_OF(X509) * chain, EVP_PKEY *key,
                       struct acmera_errmsg *e)
{
	X509 *issuer = sk_X509_value(chain, 0);
	int n = sk_X509_num(chain);
	if (!EVP_PKEY_up_ref(key))
		return nomem(e);
	s->key = key;
	s->md = md_for_key(key);
	if (!(s->ready = EVP_MD_CTX_new()) ||
	    EVP_DigestSignInit(s->ready, NULL, s->md, NULL, key) != 1)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "cannot set up signing: %s", ossl_why());
	if (cert_not_after(issuer, &s->not_after) != 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "issuer notAfter unreadable");
	if (!(s->issuer_name = X509_NAME_dup(X509_get_subject_name(issuer))))
		return nomem(e);
	if (!(s->aki = aki_ext(issuer, e)))
		return ACMERA_ERR_CONFIG;
	if (!(s->ku_sig = conf_ext(NID_key_usage, "critical,digitalSignature", e)) ||
	    !(s->ku_rsa =
	          conf_ext(NID_key_usage, "critical,digitalSignature,keyEncipherment", e)) ||
	    !(s->eku = conf_ext(NID_ext_key_usage, "serverAuth,clientAuth", e)) ||
	    !(s->bc_leaf = conf_ext(NID_basic_constraints, "critical,CA:FALSE", e)))
		return ACMERA_ERR_NOMEM;
	/* The root is not sent: relying parties have it, and it proves nothing. */
	STACK_OF(X509) *send = sk_X509_new_null();
	if (!send)
		return nomem(e);
	for (int i = 0; i < n - 1; i++)
		if (!sk_X509_push(send, sk_X509_value(chain, i))) {
			sk_X509_free(send);
			return nomem(e);
		}
	s->send_pem = n > 1 ? chain_to_pem(send) : strdup("");
	sk_X509_free(send);
	s->chain_pem = chain_to_pem(chain);
	s->root_pem = cert_pem(sk_X509_value(chain, n - 1));
	if (!s->send_pem || !s->chain_pem || !s->root_pem)
		return nomem(e);
	return 0;
}

static int config_check(const struct ca_signer_config *cfg, struct acmera_errmsg *e)
{
	if (!cfg)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no CA configuration");
	if (cfg->leaf_lifetime < CA_LEAF_LIFETIME_MIN || cfg->leaf_lifetime > CA_LEAF_LIFETIME_MAX)
		return acmera_fail(
		    e, ACMERA_ERR_CONFIG, "leaf lifetime %lld s is outside %d s .. %d s",
		    (long long)cfg->leaf_lifetime, CA_LEAF_LIFETIME_MIN, CA_LEAF_LIFETIME_MAX);
	if (!cfg->cert_file != !cfg->key_file)
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "a CA certificate file needs its key file, and the reverse");
	if (!cfg->cert_file && (!cfg->dir || !cfg->dir[0]))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "no directory for the generated CA");
	if (cfg->name) {
		size_t len = strlen(cfg->name);
		if (len == 0 || len > CA_NAME_MAX)
			return acmera_fail(e, ACMERA_ERR_CONFIG, "CA name must be 1..%d characters",
			                   CA_NAME_MAX);
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)cfg->name[i] < 0x20 || cfg->name[i] == 0x7f)
				return acmera_fail(e, ACMERA_ERR_CONFIG,
				                   "CA name has a control character");
	}
	return 0;
}

int ca_signer_open(const struct ca_signer_config *cfg, struct ca_signer **out,
                   struct acmera_errmsg *e)
{
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *key = NULL;
	struct ca_signer *s = NULL;
	int rc;
	*out = NULL;
	rc = config_check(cfg, e);
	if (rc)
		return rc;
	if (cfg->cert_file)
		rc = load_configured(cfg, &chain, &key, e);
	else
		rc = load_generated(cfg, &chain, &key, e);
	if (rc)
		goto out;
	if (!(s = calloc(1, sizeof(*s)))) {
		rc = nomem(e);
		goto out;
	}
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		s = NULL;
		rc = nomem(e);
		goto out;
	}
	s->lifetime = cfg->leaf_lifetime;
	rc = signer_fill(s, chain, key, e);
	if (rc)
		goto out;
	s->renew_before = renew_before(cfg);
	if (ca_signer_renewal_due(s, decision_time(cfg)))
		log_event(LOG_LVL_WARN, "ca.certificate",
		          "not_after=%lld effect=\"leaves are cut at it; not renewed here, see "
		          "acmera-ca(1)\"",
		          (long long)s->not_after);
	*out = s;
	s = NULL;
out:
	ca_signer_free(s);
	sk_X509_pop_free(chain, X509_free);
	EVP_PKEY_free(key);
	return rc;
}

/* ---- issuing ---- */

/* Names come from an authorized order, but a bad one must not reach a certificate. */
static int names_check(const char *const *names, size_t n, struct acmera_errmsg *e)
{
	if (!names || n == 0 || n > CSR_MAX_NAMES)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%zu names; 1..%d allowed", names ? n : 0,
		                   CSR_MAX_NAMES);
	for (size_t i = 0; i < n; i++) {
		if (!names[i])
			return acmera_fail(e, ACMERA_ERR_INVAL, "name %zu missing", i + 1);
		size_t len = strnlen(names[i], HOST_NAME_MAX_LEN + 1);
		if (len == 0 || len > HOST_NAME_MAX_LEN ||
		    strspn(names[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                     "0123456789-.*") != len)
			return acmera_fail(e, ACMERA_ERR_INVAL, "name %zu is not a host name",
			                   i + 1);
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(names[i], names[j]) == 0)
				return acmera_fail(e, ACMERA_ERR_INVAL, "name %zu repeats name %zu",
				                   i + 1, j + 1);
	}
	return 0;
}

static int add_san(X509 *x, const char *const *names, size_t n, int critical,
                   struct acmera_errmsg *e)
{
	int rc = 0;
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	if (!gens)
		return nomem(e);
	for (size_t i = 0; i < n; i++) {
		GENERAL_NAME *g = GENERAL_NAME_new();
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();
		if (!g || !s || !ASN1_STRING_set(s, names[i], (int)strlen(names[i]))) {
			GENERAL_NAME_free(g);
			ASN1_IA5STRING_free(s);
			rc = nomem(e);
			goto out;
		}
		GENERAL_NAME_set0_value(g, GEN_DNS, s);
		if (!sk_GENERAL_NAME_push(gens, g)) {
			GENERAL_NAME_free(g);
			rc = nomem(e);
			goto out;
		}
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, critical, X509V3_ADD_DEFAULT) != 1)
		rc = nomem(e);
out:
	GENERAL_NAMES_free(gens);
	return rc;
}

static int add_leaf_exts(const struct ca_signer *s, X509 *x, EVP_PKEY *pub, struct acmera_errmsg *e)
{
	/* keyEncipherment only where the key can encrypt: RSA key transport. */
	X509_EXTENSION *ku = EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA ? s->ku_rsa : s->ku_sig;
	if (!X509_add_ext(x, ku, -1) || !X509_add_ext(x, s->eku, -1) ||
	    !X509_add_ext(x, s->bc_leaf, -1) || !X509_add_ext(x, s->aki, -1))
		return nomem(e);
	return 0;
}

int ca_signer_renewal_due(const struct ca_signer *s, int64_t now)
{
	return s->not_after - now < s->renew_before;
}

int64_t ca_signer_issuer_not_after(const struct ca_signer *s)
{
	return s->not_after;
}

int64_t ca_signer_leaf_not_after(const struct ca_signer *s, int64_t now)
{
	return now > s->not_after - s->lifetime ? s->not_after : now + s->lifetime;
}

int ca_signer_issue(struct ca_signer *s, const struct csr_info *csr, const char *const *names,
                    size_t n, int64_t now, char **chain_pem, char serial_hex[41],
                    struct acmera_errmsg *e)
{
	X509 *x = NULL;
	char *leaf = NULL;
	struct buf b = BUF_INIT;
	int rc;
	if (chain_pem)
		*chain_pem = NULL;
	if (serial_hex)
		serial_hex[0] = '\0';
	if (!s || !csr || !csr->req || !chain_pem || !serial_hex)
		return acmera_fail(e, ACMERA_ERR_INVAL, "nothing to issue");
	/* Before 1970 or past year 9999 is a caller's bug, not a time to sign for. */
	if (now < BACKDATE || now > TIME_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "time %lld out of range", (long long)now);
	rc = names_check(names, n, e);
	if (rc)
		return rc;
	EVP_PKEY *pub = csr->key;
	if (!pub)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR public key unusable: %s", ossl_why());
	int64_t nb = now - BACKDATE;
	int64_t na = ca_signer_leaf_not_after(s, now);
	if (na <= now)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "the issuing CA certificate has expired");
	/* A name too long for a CN goes in the SAN only, which then must be critical. */
	const char *cn = strlen(names[0]) <= CN_MAX ? names[0] : NULL;
	x = cert_new(pub, X509_REQ_get_X509_PUBKEY(csr->req), cn, s->issuer_name, nb, na,
	             serial_hex, e);
	if (!x) {
		rc = ACMERA_ERR_INVAL;
		goto out;
	}
	if ((rc = add_leaf_exts(s, x, pub, e)) != 0 || (rc = add_san(x, names, n, !cn, e)) != 0)
		goto out;
	if ((rc = sign_leaf(s, x, e)) != 0)
		goto out;
	if (!(leaf = cert_pem(x)) || buf_append_str(&b, leaf) != 0 ||
	    buf_append_str(&b, s->send_pem) != 0 || !(*chain_pem = buf_steal(&b))) {
		rc = nomem(e);
		goto out;
	}
out:
	if (rc && serial_hex)
		serial_hex[0] = '\0';
	free(leaf);
	buf_free(&b);
	X509_free(x);
	return rc;
}

const char *ca_signer_chain_pem(const struct ca_signer *s)
{
	return s ? s->chain_pem : NULL;
}

const char *ca_signer_root_pem(const struct ca_signer *s)
{
	return s ? s->root_pem : NULL;
}

void ca_signer_free(struct ca_signer *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ready);
	pthread_mutex_destroy(&s->mu);
	EVP_PKEY_free(s->key);
	X509_NAME_free(s->issuer_name);
	X509_EXTENSION_free(s->ku_sig);
	X509_EXTENSION_free(s->ku_rsa);
	X509_EXTENSION_free(s->eku);
	X509_EXTENSION_free(s->bc_leaf);
	X509_EXTENSION_free(s->aki);
	free(s->send_pem);
	free(s->chain_pem);
	free(s->root_pem);
	free(s);
}
