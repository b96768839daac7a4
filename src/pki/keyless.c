/* See keyless.h. */
#include "pki/keyless.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <pthread.h>
#include <string.h>

static OSSL_LIB_CTX *keyless_ctx;
static pthread_once_t keyless_once = PTHREAD_ONCE_INIT;

static void make_keyless(void)
{
	OSSL_LIB_CTX *ctx = OSSL_LIB_CTX_new();
	/* Loading any provider keeps the default one from being loaded on demand. The
	 * context lives as long as the process, as the default one does. */
	if (ctx && !OSSL_PROVIDER_load(ctx, "null")) {
		OSSL_LIB_CTX_free(ctx);
		ctx = NULL;
	}
	keyless_ctx = ctx;
}

OSSL_LIB_CTX *pki_keyless_libctx(void)
{
	pthread_once(&keyless_once, make_keyless);
	return keyless_ctx;
}

static int spki_der(const X509_PUBKEY *k, unsigned char **der)
{
	*der = NULL;
	return k ? i2d_X509_PUBKEY(k, der) : -1;
}

/* Decodes DER SubjectPublicKeyInfo with the default providers. */
static EVP_PKEY *spki_key(const unsigned char *der, int len)
{
	const unsigned char *p = der;
	return len > 0 ? d2i_PUBKEY(NULL, &p, len) : NULL;
}

/* A key holding only its curve, one per curve acmera takes, made once: copying
 * one and setting the point costs a quarter of building the key from its name
 * (7 against 27 us for P-256), which sets the whole group up again. */
static const int template_nids[] = {NID_X9_62_prime256v1, NID_secp384r1, NID_secp521r1};
static EVP_PKEY *templates[sizeof(template_nids) / sizeof(template_nids[0])];
static pthread_once_t templates_once = PTHREAD_ONCE_INIT;

static void make_templates(void)
{
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		OSSL_PARAM params[] = {
		    OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
		                                     (char *)OBJ_nid2sn(template_nids[i]), 0),
		    OSSL_PARAM_construct_end(),
		};
		if (ctx && EVP_PKEY_fromdata_init(ctx) == 1)
			EVP_PKEY_fromdata(ctx, &templates[i], EVP_PKEY_KEY_PARAMETERS, params);
		EVP_PKEY_CTX_free(ctx);
	}
}

/* NULL for a curve acmera does not take (or a template OpenSSL could not make). */
static const EVP_PKEY *curve_template(int nid)
{
	pthread_once(&templates_once, make_templates);
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
		if (template_nids[i] == nid)
			return templates[i];
	return NULL;
}

/* A named-curve EC point or a raw EdDSA key, without the decoder; NULL when pub
 * is of another kind (the caller then decodes it). */
static EVP_PKEY *fast_key(const X509_PUBKEY *pub)
{
	ASN1_OBJECT *alg = NULL;
	const unsigned char *bits = NULL;
	int nbits = 0, ptype = V_ASN1_UNDEF;
	X509_ALGOR *a = NULL;
	const void *pval = NULL;
	if (!X509_PUBKEY_get0_param(&alg, &bits, &nbits, &a, pub) || nbits <= 0)
		return NULL;
	X509_ALGOR_get0(NULL, &ptype, &pval, a);
	int nid = OBJ_obj2nid(alg);
	if ((nid == NID_ED25519 || nid == NID_ED448) && ptype == V_ASN1_UNDEF)
		return EVP_PKEY_new_raw_public_key(nid, NULL, bits, (size_t)nbits);
	if (nid != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT)
		return NULL;
	const EVP_PKEY *group = curve_template(OBJ_obj2nid(pval));
	EVP_PKEY *key = group ? EVP_PKEY_dup((EVP_PKEY *)group) : NULL;
	/* The point is checked to lie on the curve as it is set. */
	if (key && EVP_PKEY_set1_encoded_public_key(key, bits, (size_t)nbits) != 1) {
		EVP_PKEY_free(key);
		key = NULL;
	}
	return key;
}

EVP_PKEY *pki_spki_key(const X509_PUBKEY *pub)
{
	if (!pub)
		return NULL;
	EVP_PKEY *key = fast_key(pub);
	if (key)
		return key;
	unsigned char *der = NULL;
	int len = spki_der(pub, &der);
	key = spki_key(der, len);
	OPENSSL_free(der);
	return key;
}

int pki_spki_equal(const X509_PUBKEY *a, const X509_PUBKEY *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la = spki_der(a, &da), lb = spki_der(b, &db), eq = 0;
	if (la > 0 && lb > 0) {
		eq = la == lb && memcmp(da, db, (size_t)la) == 0;
		if (!eq) {
			EVP_PKEY *ka = spki_key(da, la), *kb = spki_key(db, lb);
			eq = ka && kb && EVP_PKEY_eq(ka, kb) == 1;
			EVP_PKEY_free(ka);
			EVP_PKEY_free(kb);
		}
	}
	OPENSSL_free(da);
	OPENSSL_free(db);
	return eq;
}
