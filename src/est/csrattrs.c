/* CsrAttrs (RFC 7030 section 4.5.2) with the RFC 9908 CertificationRequestInfoTemplate,
 * built and read with OpenSSL's ASN.1 templates rather than by hand. */
#include "est/csrattrs.h"

#include <openssl/asn1t.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdlib.h>
#include <string.h>

/* RFC 9908 section 6, "SMI Security for S/MIME Attributes" (1.2.840.113549.1.9.16.2):
 * the published RFC's values for TBD2 and TBD3 of the editor's copy in
 * shared/reference, as the ASN.1 module taken from the published RFC has them
 * (pyasn1-alt-modules rfc9908: id-aa 61 and 62). */
#define OID_CRI_TEMPLATE "1.2.840.113549.1.9.16.2.61"     /* certificationRequestInfoTemplate */
#define OID_EXT_REQ_TEMPLATE "1.2.840.113549.1.9.16.2.62" /* extensionReqTemplate */

#define CSRATTRS_MAX_DER (64 * 1024)
#define CSRATTRS_MAX_ITEMS 64 /* per list: AttrOrOIDs, attributes, RDNs, extensions */
#define CSRATTRS_MAX_NAMES 100
#define DNS_NAME_MAX 253
#define CN_MAX_CHARS 64 /* ub-common-name (RFC 5280) */
#define CN_MAX_BYTES 256
#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 16384

/* clang-format off */
/* SingleAttributeTemplate ::= SEQUENCE { type OID, value ANY OPTIONAL } */
typedef struct {
	ASN1_OBJECT *type;
	ASN1_TYPE *value;
} SATTR_TMPL;
DEFINE_STACK_OF(SATTR_TMPL)
ASN1_SEQUENCE(SATTR_TMPL) = {
	ASN1_SIMPLE(SATTR_TMPL, type, ASN1_OBJECT),
	ASN1_OPT(SATTR_TMPL, value, ASN1_ANY),
} static_ASN1_SEQUENCE_END(SATTR_TMPL)

/* RelativeDistinguishedNameTemplate ::= SET SIZE (1..MAX) OF SingleAttributeTemplate */
typedef STACK_OF(SATTR_TMPL) RDN_TMPL;
DEFINE_STACK_OF(RDN_TMPL)
ASN1_ITEM_TEMPLATE(RDN_TMPL) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SET_OF, 0, RDN_TMPL, SATTR_TMPL)
static_ASN1_ITEM_TEMPLATE_END(RDN_TMPL)

/* NameTemplate ::= SEQUENCE OF RelativeDistinguishedNameTemplate (this item frees one;
 * CRI_TMPL names it as SEQUENCE_OF_OPT, since OpenSSL rejects an optional item template) */
typedef STACK_OF(RDN_TMPL) NAME_TMPL;
ASN1_ITEM_TEMPLATE(NAME_TMPL) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, NAME_TMPL, RDN_TMPL)
static_ASN1_ITEM_TEMPLATE_END(NAME_TMPL)

/* SubjectPublicKeyInfoTemplate ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING OPTIONAL } */
typedef struct {
	X509_ALGOR *algorithm;
	ASN1_BIT_STRING *key;
} SPKI_TMPL;
ASN1_SEQUENCE(SPKI_TMPL) = {
	ASN1_SIMPLE(SPKI_TMPL, algorithm, X509_ALGOR),
	ASN1_OPT(SPKI_TMPL, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(SPKI_TMPL)

/* CertificationRequestInfoTemplate (RFC 9908 appendix A, IMPLICIT TAGS) */
typedef struct {
	ASN1_INTEGER *version;
	STACK_OF(RDN_TMPL) *subject;
	SPKI_TMPL *spki;
	STACK_OF(X509_ATTRIBUTE) *attributes;
} CRI_TMPL;
ASN1_SEQUENCE(CRI_TMPL) = {
	ASN1_SIMPLE(CRI_TMPL, version, ASN1_INTEGER),
	ASN1_SEQUENCE_OF_OPT(CRI_TMPL, subject, RDN_TMPL),
	ASN1_IMP_OPT(CRI_TMPL, spki, SPKI_TMPL, 0),
	ASN1_IMP_SET_OF(CRI_TMPL, attributes, X509_ATTRIBUTE, 1),
} static_ASN1_SEQUENCE_END(CRI_TMPL)

/* ExtensionTemplate: an Extension whose extnValue may be absent; reads both. */
typedef struct {
	ASN1_OBJECT *id;
	ASN1_BOOLEAN critical;
	ASN1_OCTET_STRING *value;
} EXT_TMPL;
DEFINE_STACK_OF(EXT_TMPL)
ASN1_SEQUENCE(EXT_TMPL) = {
	ASN1_SIMPLE(EXT_TMPL, id, ASN1_OBJECT),
	ASN1_OPT(EXT_TMPL, critical, ASN1_FBOOLEAN),
	ASN1_OPT(EXT_TMPL, value, ASN1_OCTET_STRING),
} static_ASN1_SEQUENCE_END(EXT_TMPL)

typedef STACK_OF(EXT_TMPL) EXTS_TMPL;
ASN1_ITEM_TEMPLATE(EXTS_TMPL) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, EXTS_TMPL, EXT_TMPL)
static_ASN1_ITEM_TEMPLATE_END(EXTS_TMPL)

/* RSAPublicKey, for the placeholder key that carries an RSA size. */
typedef struct {
	ASN1_INTEGER *n;
	ASN1_INTEGER *e;
} RSAPUB_TMPL;
ASN1_SEQUENCE(RSAPUB_TMPL) = {
	ASN1_SIMPLE(RSAPUB_TMPL, n, ASN1_INTEGER),
	ASN1_SIMPLE(RSAPUB_TMPL, e, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(RSAPUB_TMPL)

/* AttrOrOID ::= CHOICE { oid OBJECT IDENTIFIER, attribute Attribute } */
#define AOO_OID 0
#define AOO_ATTR 1
typedef struct {
	int type;
	union {
		ASN1_OBJECT *oid;
		X509_ATTRIBUTE *attr;
	} d;
} ATTR_OR_OID;
DEFINE_STACK_OF(ATTR_OR_OID)
ASN1_CHOICE(ATTR_OR_OID) = {
	ASN1_SIMPLE(ATTR_OR_OID, d.oid, ASN1_OBJECT),
	ASN1_SIMPLE(ATTR_OR_OID, d.attr, X509_ATTRIBUTE),
} static_ASN1_CHOICE_END(ATTR_OR_OID)

/* CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID */
typedef STACK_OF(ATTR_OR_OID) CSRATTRS;
ASN1_ITEM_TEMPLATE(CSRATTRS) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, CsrAttrs, ATTR_OR_OID)
static_ASN1_ITEM_TEMPLATE_END(CSRATTRS)
                               /* clang-format on */

                               static const char *
                               ossl_why(void)
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

/* Printable ASCII without space: what a dNSName may hold, wildcards included. */
static int dns_name_ok(const unsigned char *s, size_t n)
{
	if (n == 0 || n > DNS_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return 0;
	return 1;
}

/* ---- building ---- */

static int sig_nid(enum est_key_kind k)
{
	switch (k) {
	case EST_KEY_EC_P256:
		return NID_ecdsa_with_SHA256;
	case EST_KEY_EC_P384:
		return NID_ecdsa_with_SHA384;
	case EST_KEY_RSA:
		return NID_sha256WithRSAEncryption;
	case EST_KEY_ED25519:
		return NID_ED25519;
	}
	return NID_undef;
}

static int check_in(const struct est_csrattrs_in *in, struct acmera_errmsg *e)
{
	if (in->n_dns_names > CSRATTRS_MAX_NAMES)
		return acmera_fail(e, ACMERA_ERR_INVAL, "%zu dNSNames, more than %d",
		                   in->n_dns_names, CSRATTRS_MAX_NAMES);
	if (in->n_dns_names > 0 && !in->dns_names)
		return acmera_fail(e, ACMERA_ERR_INVAL, "dNSNames missing");
	for (size_t i = 0; i < in->n_dns_names; i++) {
		const char *n = in->dns_names[i];
		if (!n || !dns_name_ok((const unsigned char *)n, strnlen(n, DNS_NAME_MAX + 1)))
			return acmera_fail(e, ACMERA_ERR_INVAL, "dNSName %zu is not a DNS name", i);
	}
	if (sig_nid(in->key) == NID_undef)
		return acmera_fail(e, ACMERA_ERR_INVAL, "unknown key kind %d", (int)in->key);
	if (in->key == EST_KEY_RSA &&
	    (in->rsa_bits < RSA_BITS_MIN || in->rsa_bits > RSA_BITS_MAX || in->rsa_bits % 8))
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "RSA size %d is not a multiple of 8 in %d..%d", in->rsa_bits,
		                   RSA_BITS_MIN, RSA_BITS_MAX);
	return 0;
}

/* The extensionRequest attribute: Extensions with one subjectAltName. Critical
 * when the subject is empty, as RFC 5280 section 4.2.1.6 asks. */
static X509_ATTRIBUTE *ext_req_attr(const struct est_csrattrs_in *in)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *ext = NULL;
	X509_ATTRIBUTE *attr = NULL;
	unsigned char *der = NULL;
	if (!gens || !exts)
		goto out;
	for (size_t i = 0; i < in->n_dns_names; i++) {
		GENERAL_NAME *gn = GENERAL_NAME_new();
		ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
		if (!gn || !ia5 || !ASN1_STRING_set(ia5, in->dns_names[i], -1)) {
			GENERAL_NAME_free(gn);
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
		if (!sk_GENERAL_NAME_push(gens, gn)) {
			GENERAL_NAME_free(gn);
			goto out;
		}
	}
	ext = X509V3_EXT_i2d(NID_subject_alt_name, in->subject_cn == NULL, gens);
	if (!ext || !sk_X509_EXTENSION_push(exts, ext))
		goto out;
	ext = NULL;
	int len = i2d_X509_EXTENSIONS(exts, &der);
	if (len <= 0)
		goto out;
	attr = X509_ATTRIBUTE_create_by_NID(NULL, NID_ext_req, V_ASN1_SEQUENCE, der, len);
out:
	OPENSSL_free(der);
	X509_EXTENSION_free(ext);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(gens);
	return attr;
}

/* subject ::= one RDN, commonName = cn. */
static STACK_OF(RDN_TMPL) * subject_tmpl(const char *cn, struct acmera_errmsg *e, int *rc)
{
	STACK_OF(RDN_TMPL) *subj = NULL;
	RDN_TMPL *rdn = NULL;
	SATTR_TMPL *sa = NULL;
	ASN1_STRING *utf8 = NULL;
	*rc = 0;
	/* Checks UTF-8 and the 1..64 characters of ub-common-name. */
	if (ASN1_mbstring_ncopy(&utf8, (const unsigned char *)cn, -1, MBSTRING_UTF8,
	                        B_ASN1_UTF8STRING, 1, CN_MAX_CHARS) < 0) {
		*rc = acmera_fail(e, ACMERA_ERR_INVAL, "subject CN is not 1..%d UTF-8 characters",
		                  CN_MAX_CHARS);
		goto out;
	}
	subj = sk_RDN_TMPL_new_null();
	rdn = sk_SATTR_TMPL_new_null();
	sa = (SATTR_TMPL *)ASN1_item_new(ASN1_ITEM_rptr(SATTR_TMPL));
	if (!subj || !rdn || !sa || !(sa->value = ASN1_TYPE_new()))
		goto fail;
	ASN1_OBJECT_free(sa->type);
	sa->type = OBJ_nid2obj(NID_commonName);
	ASN1_TYPE_set(sa->value, V_ASN1_UTF8STRING, utf8);
	utf8 = NULL;
	if (!sk_SATTR_TMPL_push(rdn, sa))
		goto fail;
	sa = NULL;
	if (!sk_RDN_TMPL_push(subj, rdn))
		goto fail;
	rdn = NULL;
	goto out;
fail:
	*rc = nomem(e);
	ASN1_item_free((ASN1_VALUE *)subj, ASN1_ITEM_rptr(NAME_TMPL));
	subj = NULL;
out:
	ASN1_STRING_free(utf8);
	ASN1_item_free((ASN1_VALUE *)sa, ASN1_ITEM_rptr(SATTR_TMPL));
	ASN1_item_free((ASN1_VALUE *)rdn, ASN1_ITEM_rptr(RDN_TMPL));
	return subj;
}

/* subjectPKInfo: the algorithm, and for RSA a placeholder key of the wanted
 * modulus length (RFC 9908 section 3.4); no key otherwise. */
static SPKI_TMPL *spki_tmpl(const struct est_csrattrs_in *in)
{
	SPKI_TMPL *spki = (SPKI_TMPL *)ASN1_item_new(ASN1_ITEM_rptr(SPKI_TMPL));
	RSAPUB_TMPL *rp = NULL;
	BIGNUM *bn = NULL;
	unsigned char *der = NULL;
	int ok = 0;
	if (!spki)
		return NULL;
	X509_ALGOR *alg = spki->algorithm;
	switch (in->key) {
	case EST_KEY_EC_P256:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
		                     OBJ_nid2obj(NID_X9_62_prime256v1));
		break;
	case EST_KEY_EC_P384:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
		                     OBJ_nid2obj(NID_secp384r1));
		break;
	case EST_KEY_ED25519:
		/* RFC 8410: parameters absent. */
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ED25519), V_ASN1_UNDEF, NULL);
		break;
	case EST_KEY_RSA:
		ok = X509_ALGOR_set0(alg, OBJ_nid2obj(NID_rsaEncryption), V_ASN1_NULL, NULL);
		if (!ok)
			break;
		ok = 0;
		/* modulus 2^(bits-1) + 1: exactly bits long; exponent 65537 */
		rp = (RSAPUB_TMPL *)ASN1_item_new(ASN1_ITEM_rptr(RSAPUB_TMPL));
		bn = BN_new();
		if (!rp || !bn || !BN_set_bit(bn, in->rsa_bits - 1) || !BN_set_bit(bn, 0) ||
		    !BN_to_ASN1_INTEGER(bn, rp->n) || !ASN1_INTEGER_set(rp->e, 65537))
			break;
		int len = ASN1_item_i2d((ASN1_VALUE *)rp, &der, ASN1_ITEM_rptr(RSAPUB_TMPL));
		if (len <= 0 || !(spki->key = ASN1_BIT_STRING_new()) ||
		    !ASN1_BIT_STRING_set(spki->key, der, len))
			break;
		spki->key->flags &= ~0x07L;
		spki->key->flags |= ASN1_STRING_FLAG_BITS_LEFT; /* no unused bits */
		ok = 1;
		break;
	}
	OPENSSL_free(der);
	BN_free(bn);
	ASN1_item_free((ASN1_VALUE *)rp, ASN1_ITEM_rptr(RSAPUB_TMPL));
	if (!ok) {
		ASN1_item_free((ASN1_VALUE *)spki, ASN1_ITEM_rptr(SPKI_TMPL));
		return NULL;
	}
	return spki;
}

/* Appends an attribute (always taking it) or an OID. 1 on success. */
static int push_attr(STACK_OF(ATTR_OR_OID) * list, X509_ATTRIBUTE *a)
{
	ATTR_OR_OID *x = a ? (ATTR_OR_OID *)ASN1_item_new(ASN1_ITEM_rptr(ATTR_OR_OID)) : NULL;
	if (!x) {
		X509_ATTRIBUTE_free(a);
		return 0;
	}
	x->type = AOO_ATTR;
	x->d.attr = a;
	if (!sk_ATTR_OR_OID_push(list, x)) {
		ASN1_item_free((ASN1_VALUE *)x, ASN1_ITEM_rptr(ATTR_OR_OID));
		return 0;
	}
	return 1;
}

static int push_oid(STACK_OF(ATTR_OR_OID) * list, int nid)
{
	ATTR_OR_OID *x = (ATTR_OR_OID *)ASN1_item_new(ASN1_ITEM_rptr(ATTR_OR_OID));
	if (!x)
		return 0;
	x->type = AOO_OID;
	x->d.oid = OBJ_nid2obj(nid);
	if (!sk_ATTR_OR_OID_push(list, x)) {
		ASN1_item_free((ASN1_VALUE *)x, ASN1_ITEM_rptr(ATTR_OR_OID));
		return 0;
	}
	return 1;
}

/* The RFC 7030 form of the key type: an attribute whose type is the key
 * algorithm and whose value is its parameter (curve, or RSA size as in RFC 9908's
 * examples); Ed25519 has no parameter, so its OID alone. */
static int push_legacy_key(STACK_OF(ATTR_OR_OID) * list, const struct est_csrattrs_in *in)
{
	switch (in->key) {
	case EST_KEY_EC_P256:
	case EST_KEY_EC_P384: {
		int curve = in->key == EST_KEY_EC_P256 ? NID_X9_62_prime256v1 : NID_secp384r1;
		return push_attr(list, X509_ATTRIBUTE_create_by_NID(NULL, NID_X9_62_id_ecPublicKey,
		                                                    V_ASN1_OBJECT,
		                                                    OBJ_nid2obj(curve), -1));
	}
	case EST_KEY_RSA: {
		ASN1_INTEGER *bits = ASN1_INTEGER_new();
		if (!bits || !ASN1_INTEGER_set(bits, in->rsa_bits)) {
			ASN1_INTEGER_free(bits);
			return 0;
		}
		X509_ATTRIBUTE *a =
		    X509_ATTRIBUTE_create_by_NID(NULL, NID_rsaEncryption, V_ASN1_INTEGER, bits, -1);
		ASN1_INTEGER_free(bits);
		return push_attr(list, a);
	}
	case EST_KEY_ED25519:
		return push_oid(list, NID_ED25519);
	}
	return 0;
}

int est_csrattrs_build(const struct est_csrattrs_in *in, uint8_t **der, size_t *len,
                       struct acmera_errmsg *e)
{
	STACK_OF(ATTR_OR_OID) *list = NULL;
	CRI_TMPL *cri = NULL;
	X509_ATTRIBUTE *ext = NULL, *copy = NULL;
	ASN1_OBJECT *tmpl_oid = NULL;
	unsigned char *cri_der = NULL, *enc = NULL;
	int rc = 0;
	*der = NULL;
	*len = 0;
	if (!in)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no csrattrs input");
	rc = check_in(in, e);
	if (rc)
		return rc;
	cri = (CRI_TMPL *)ASN1_item_new(ASN1_ITEM_rptr(CRI_TMPL));
	list = sk_ATTR_OR_OID_new_null();
	tmpl_oid = OBJ_txt2obj(OID_CRI_TEMPLATE, 1);
	if (!cri || !list || !tmpl_oid || !ASN1_INTEGER_set(cri->version, 0))
		goto nomem;
	if (in->subject_cn) {
		cri->subject = subject_tmpl(in->subject_cn, e, &rc);
		if (!cri->subject)
			goto out;
	}
	cri->spki = spki_tmpl(in);
	if (!cri->spki)
		goto nomem;
	if (!cri->attributes && !(cri->attributes = sk_X509_ATTRIBUTE_new_null()))
		goto nomem;
	if (in->n_dns_names > 0) {
		ext = ext_req_attr(in);
		copy = ext ? X509_ATTRIBUTE_dup(ext) : NULL;
		if (!copy || !sk_X509_ATTRIBUTE_push(cri->attributes, copy))
			goto nomem;
		copy = NULL;
	}
	int cri_len = ASN1_item_i2d((ASN1_VALUE *)cri, &cri_der, ASN1_ITEM_rptr(CRI_TMPL));
	if (cri_len <= 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "cannot encode the CSR template: %s",
		                 ossl_why());
		goto out;
	}
	/* Template first (RFC 9908), then the RFC 7030 list for older clients. */
	if (!push_attr(list, X509_ATTRIBUTE_create_by_OBJ(NULL, tmpl_oid, V_ASN1_SEQUENCE, cri_der,
	                                                  cri_len)) ||
	    !push_legacy_key(list, in))
		goto nomem;
	if (ext) {
		X509_ATTRIBUTE *a = ext;
		ext = NULL;
		if (!push_attr(list, a))
			goto nomem;
	}
	/* Ed25519's signature algorithm is its key OID, already listed. */
	if (in->key != EST_KEY_ED25519 && !push_oid(list, sig_nid(in->key)))
		goto nomem;
	/* An OID in the plain list, as RFC 7030 4.5.2's example has it: the template's
	 * attributes carry values, and this one's value is the client's to fill in. */
	if (in->challenge_password && !push_oid(list, NID_pkcs9_challengePassword))
		goto nomem;
	int n = ASN1_item_i2d((ASN1_VALUE *)list, &enc, ASN1_ITEM_rptr(CSRATTRS));
	if (n <= 0) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "cannot encode CsrAttrs: %s", ossl_why());
		goto out;
	}
	*der = malloc((size_t)n);
	if (!*der)
		goto nomem;
	memcpy(*der, enc, (size_t)n);
	*len = (size_t)n;
	goto out;
nomem:
	rc = nomem(e);
out:
	OPENSSL_free(enc);
	OPENSSL_free(cri_der);
	ASN1_OBJECT_free(tmpl_oid);
	X509_ATTRIBUTE_free(copy);
	X509_ATTRIBUTE_free(ext);
	ASN1_item_free((ASN1_VALUE *)cri, ASN1_ITEM_rptr(CRI_TMPL));
	ASN1_item_free((ASN1_VALUE *)list, ASN1_ITEM_rptr(CSRATTRS));
	return rc;
}

/* ---- reading ---- */

struct rd {
	struct est_csrattrs_out *out;
	struct acmera_errmsg *e;
	ASN1_OBJECT *cri_oid, *ext_tmpl_oid;
	int seen_ext, seen_san;
};

/* d2i of a whole buffer: nothing may follow the value. */
static ASN1_VALUE *d2i_all(const unsigned char *p, int len, const ASN1_ITEM *it)
{
	if (!p || len <= 0)
		return NULL;
	const unsigned char *q = p;
	ASN1_VALUE *v = ASN1_item_d2i(NULL, &q, len, it);
	if (v && q != p + len) {
		ASN1_item_free(v, it);
		return NULL;
	}
	return v;
}

static void set_key(struct est_csrattrs_out *o, enum est_key_kind k, int bits)
{
	o->have_key = 1;
	o->key = k;
	o->rsa_bits = bits;
}

/* 1 and *k for the curves we can name. */
static int ec_kind(const ASN1_OBJECT *curve, enum est_key_kind *k)
{
	switch (OBJ_obj2nid(curve)) {
	case NID_X9_62_prime256v1:
		*k = EST_KEY_EC_P256;
		return 1;
	case NID_secp384r1:
		*k = EST_KEY_EC_P384;
		return 1;
	}
	return 0;
}

static int add_dns_name(struct rd *r, const ASN1_IA5STRING *s)
{
	struct est_csrattrs_out *o = r->out;
	const unsigned char *d = ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);
	if (n <= 0 || !dns_name_ok(d, (size_t)n))
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "dNSName %zu is not a DNS name",
		                   o->n_dns_names);
	if (o->n_dns_names >= CSRATTRS_MAX_NAMES)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "more than %d dNSNames",
		                   CSRATTRS_MAX_NAMES);
	char **a = realloc(o->dns_names, (o->n_dns_names + 1) * sizeof *a);
	if (!a)
		return nomem(r->e);
	o->dns_names = a;
	char *c = malloc((size_t)n + 1);
	if (!c)
		return nomem(r->e);
	memcpy(c, d, (size_t)n);
	c[n] = '\0';
	a[o->n_dns_names++] = c;
	return 0;
}

static int read_san(struct rd *r, const ASN1_OCTET_STRING *v)
{
	GENERAL_NAMES *gens = (GENERAL_NAMES *)d2i_all(
	    ASN1_STRING_get0_data(v), ASN1_STRING_length(v), ASN1_ITEM_rptr(GENERAL_NAMES));
	int rc = 0;
	if (!gens)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "subjectAltName is malformed: %s",
		                   ossl_why());
	for (int i = 0; i < sk_GENERAL_NAME_num(gens) && rc == 0; i++) {
		GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		if (gn->type == GEN_DNS)
			rc = add_dns_name(r, gn->d.dNSName);
	}
	GENERAL_NAMES_free(gens);
	return rc;
}

/* extensionRequest or extensionReqTemplate: the subjectAltName's dNSNames. In
 * the RFC 7030 list a value that is not Extensions is skipped: RFC 7030's own
 * example puts a bare OID there (RFC 9908 section 5.2). */
static int read_ext_attr(struct rd *r, X509_ATTRIBUTE *attr, int legacy)
{
	EXTS_TMPL *exts = NULL;
	int rc = 0;
	if (r->seen_ext)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "more than one extension request");
	r->seen_ext = 1;
	int nv = X509_ATTRIBUTE_count(attr);
	if (nv != 1)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "extension request has %d values, not 1",
		                   nv);
	ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, 0);
	if (!t || t->type != V_ASN1_SEQUENCE) {
		if (legacy)
			return 0;
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "extension request is not Extensions");
	}
	exts =
	    (EXTS_TMPL *)d2i_all(ASN1_STRING_get0_data(t->value.sequence),
	                         ASN1_STRING_length(t->value.sequence), ASN1_ITEM_rptr(EXTS_TMPL));
	if (!exts)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "extension request is malformed: %s",
		                   ossl_why());
	int n = sk_EXT_TMPL_num(exts);
	if (n > CSRATTRS_MAX_ITEMS) {
		rc = acmera_fail(r->e, ACMERA_ERR_INVAL, "%d extensions, more than %d", n,
		                 CSRATTRS_MAX_ITEMS);
		goto out;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		EXT_TMPL *x = sk_EXT_TMPL_value(exts, i);
		if (OBJ_obj2nid(x->id) != NID_subject_alt_name)
			continue;
		if (r->seen_san) {
			rc = acmera_fail(r->e, ACMERA_ERR_INVAL, "two subjectAltName extensions");
			goto out;
		}
		r->seen_san = 1;
		/* A template may leave the value to the client. */
		if (x->value)
			rc = read_san(r, x->value);
	}
out:
	ASN1_item_free((ASN1_VALUE *)exts, ASN1_ITEM_rptr(EXTS_TMPL));
	return rc;
}

static int read_cn(struct rd *r, const ASN1_TYPE *t)
{
	switch (t->type) {
	case V_ASN1_UTF8STRING:
	case V_ASN1_PRINTABLESTRING:
	case V_ASN1_IA5STRING:
	case V_ASN1_T61STRING:
	case V_ASN1_BMPSTRING:
	case V_ASN1_UNIVERSALSTRING:
		break;
	default:
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "subject CN is not a string");
	}
	unsigned char *u = NULL;
	int n = ASN1_STRING_to_UTF8(&u, t->value.asn1_string);
	if (n <= 0 || n > CN_MAX_BYTES || memchr(u, 0, (size_t)n)) {
		OPENSSL_free(u);
		ERR_clear_error();
		return acmera_fail(r->e, ACMERA_ERR_INVAL,
		                   "subject CN is empty, too long or "
		                   "not text");
	}
	r->out->subject_cn = malloc((size_t)n + 1);
	if (!r->out->subject_cn) {
		OPENSSL_free(u);
		return nomem(r->e);
	}
	memcpy(r->out->subject_cn, u, (size_t)n);
	r->out->subject_cn[n] = '\0';
	OPENSSL_free(u);
	return 0;
}

/* The first commonName with a value; one without a value leaves the choice to
 * the client and so gives no CN. */
static int read_subject(struct rd *r, NAME_TMPL *subj)
{
	int n = sk_RDN_TMPL_num(subj);
	if (n > CSRATTRS_MAX_ITEMS)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "subject has %d RDNs, more than %d", n,
		                   CSRATTRS_MAX_ITEMS);
	for (int i = 0; i < n; i++) {
		RDN_TMPL *rdn = sk_RDN_TMPL_value(subj, i);
		int m = sk_SATTR_TMPL_num(rdn);
		if (m <= 0 || m > CSRATTRS_MAX_ITEMS)
			return acmera_fail(r->e, ACMERA_ERR_INVAL, "RDN %d has %d attributes", i,
			                   m);
		for (int j = 0; j < m; j++) {
			SATTR_TMPL *sa = sk_SATTR_TMPL_value(rdn, j);
			if (OBJ_obj2nid(sa->type) != NID_commonName || !sa->value ||
			    r->out->subject_cn)
				continue;
			int rc = read_cn(r, sa->value);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The size of an RSA placeholder key: the bit length of its modulus. */
static int read_rsa_placeholder(struct rd *r, const ASN1_BIT_STRING *bs, int *bits)
{
	RSAPUB_TMPL *rp = (RSAPUB_TMPL *)d2i_all(ASN1_STRING_get0_data(bs), ASN1_STRING_length(bs),
	                                         ASN1_ITEM_rptr(RSAPUB_TMPL));
	BIGNUM *bn = NULL;
	int rc = 0;
	if (!rp) {
		rc = acmera_fail(r->e, ACMERA_ERR_INVAL, "RSA placeholder key is malformed");
		goto out;
	}
	bn = ASN1_INTEGER_to_BN(rp->n, NULL);
	if (!bn) {
		rc = nomem(r->e);
		goto out;
	}
	int b = BN_num_bits(bn);
	if (BN_is_negative(bn) || b <= 0 || b > RSA_BITS_MAX) {
		rc = acmera_fail(r->e, ACMERA_ERR_INVAL,
		                 "RSA placeholder modulus is not 1..%d bits", RSA_BITS_MAX);
		goto out;
	}
	*bits = b;
out:
	BN_free(bn);
	ASN1_item_free((ASN1_VALUE *)rp, ASN1_ITEM_rptr(RSAPUB_TMPL));
	return rc;
}

static int read_tmpl_key(struct rd *r, SPKI_TMPL *spki)
{
	const ASN1_OBJECT *obj;
	const void *pval;
	int ptype;
	enum est_key_kind k;
	X509_ALGOR_get0(&obj, &ptype, &pval, spki->algorithm);
	switch (OBJ_obj2nid(obj)) {
	case NID_X9_62_id_ecPublicKey:
		if (ptype == V_ASN1_OBJECT && ec_kind(pval, &k))
			set_key(r->out, k, 0);
		return 0;
	case NID_rsaEncryption: {
		int bits = 0;
		if (spki->key) {
			int rc = read_rsa_placeholder(r, spki->key, &bits);
			if (rc)
				return rc;
		}
		set_key(r->out, EST_KEY_RSA, bits);
		return 0;
	}
	case NID_ED25519:
		set_key(r->out, EST_KEY_ED25519, 0);
		return 0;
	}
	return 0;
}

static int read_template(struct rd *r, X509_ATTRIBUTE *attr)
{
	CRI_TMPL *cri = NULL;
	int rc = 0;
	int nv = X509_ATTRIBUTE_count(attr);
	if (nv != 1)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "CSR template has %d values, not 1", nv);
	ASN1_TYPE *t = X509_ATTRIBUTE_get0_type(attr, 0);
	if (!t || t->type != V_ASN1_SEQUENCE)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "CSR template is not a SEQUENCE");
	cri = (CRI_TMPL *)d2i_all(ASN1_STRING_get0_data(t->value.sequence),
	                          ASN1_STRING_length(t->value.sequence), ASN1_ITEM_rptr(CRI_TMPL));
	if (!cri)
		return acmera_fail(r->e, ACMERA_ERR_INVAL, "CSR template is malformed: %s",
		                   ossl_why());
	int64_t v;
	if (!ASN1_INTEGER_get_int64(&v, cri->version) || v != 0) {
		ERR_clear_error();
		rc = acmera_fail(r->e, ACMERA_ERR_INVAL, "CSR template version is not v1");
		goto out;
	}
	if (cri->subject && (rc = read_subject(r, cri->subject)))
		goto out;
	if (cri->spki && (rc = read_tmpl_key(r, cri->spki)))
		goto out;
	int n = sk_X509_ATTRIBUTE_num(cri->attributes);
	if (n > CSRATTRS_MAX_ITEMS) {
		rc = acmera_fail(r->e, ACMERA_ERR_INVAL, "CSR template has %d attributes", n);
		goto out;
	}
	for (int i = 0; i < n && rc == 0; i++) {
		X509_ATTRIBUTE *a = sk_X509_ATTRIBUTE_value(cri->attributes, i);
		const ASN1_OBJECT *o = X509_ATTRIBUTE_get0_object(a);
		if (OBJ_obj2nid(o) == NID_ext_req || OBJ_cmp(o, r->ext_tmpl_oid) == 0)
			rc = read_ext_attr(r, a, 0);
	}
out:
	ASN1_item_free((ASN1_VALUE *)cri, ASN1_ITEM_rptr(CRI_TMPL));
	return rc;
}

/* RFC 7030 list: key type from the first key attribute or key OID, dNSNames
 * from extensionRequest. */
static int read_legacy(struct rd *r, STACK_OF(ATTR_OR_OID) * list)
{
	for (int i = 0; i < sk_ATTR_OR_OID_num(list); i++) {
		ATTR_OR_OID *x = sk_ATTR_OR_OID_value(list, i);
		if (x->type == AOO_OID) {
			int nid = OBJ_obj2nid(x->d.oid);
			if (r->out->have_key)
				continue;
			if (nid == NID_ED25519)
				set_key(r->out, EST_KEY_ED25519, 0);
			else if (nid == NID_rsaEncryption)
				set_key(r->out, EST_KEY_RSA, 0);
			continue;
		}
		X509_ATTRIBUTE *a = x->d.attr;
		int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(a));
		if (nid == NID_ext_req) {
			int rc = read_ext_attr(r, a, 1);
			if (rc)
				return rc;
			continue;
		}
		if (r->out->have_key ||
		    (nid != NID_X9_62_id_ecPublicKey && nid != NID_rsaEncryption))
			continue;
		ASN1_TYPE *t = X509_ATTRIBUTE_count(a) > 0 ? X509_ATTRIBUTE_get0_type(a, 0) : NULL;
		enum est_key_kind k;
		if (nid == NID_X9_62_id_ecPublicKey) {
			if (t && t->type == V_ASN1_OBJECT && ec_kind(t->value.object, &k))
				set_key(r->out, k, 0);
			continue;
		}
		int64_t bits = 0;
		if (t && t->type == V_ASN1_INTEGER &&
		    (!ASN1_INTEGER_get_int64(&bits, t->value.integer) || bits <= 0 ||
		     bits > RSA_BITS_MAX)) {
			ERR_clear_error();
			return acmera_fail(r->e, ACMERA_ERR_INVAL, "RSA size is not 1..%d",
			                   RSA_BITS_MAX);
		}
		set_key(r->out, EST_KEY_RSA, (int)bits);
	}
	return 0;
}

int est_csrattrs_parse(const uint8_t *der, size_t len, struct est_csrattrs_out *out,
                       struct acmera_errmsg *e)
{
	struct rd r = {.out = out, .e = e};
	STACK_OF(ATTR_OR_OID) *list = NULL;
	X509_ATTRIBUTE *tmpl = NULL;
	int rc = 0;
	memset(out, 0, sizeof *out);
	if (!der || len == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CsrAttrs is empty");
	if (len > CSRATTRS_MAX_DER)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CsrAttrs is %zu bytes, more than %d", len,
		                   CSRATTRS_MAX_DER);
	r.cri_oid = OBJ_txt2obj(OID_CRI_TEMPLATE, 1);
	r.ext_tmpl_oid = OBJ_txt2obj(OID_EXT_REQ_TEMPLATE, 1);
	if (!r.cri_oid || !r.ext_tmpl_oid) {
		rc = nomem(e);
		goto out;
	}
	list = (STACK_OF(ATTR_OR_OID) *)d2i_all(der, (int)len, ASN1_ITEM_rptr(CSRATTRS));
	if (!list) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL,
		                 "not a CsrAttrs (DER SEQUENCE OF AttrOrOID): %s", ossl_why());
		goto out;
	}
	int n = sk_ATTR_OR_OID_num(list);
	if (n > CSRATTRS_MAX_ITEMS) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CsrAttrs has %d elements, more than %d", n,
		                 CSRATTRS_MAX_ITEMS);
		goto out;
	}
	for (int i = 0; i < n; i++) {
		ATTR_OR_OID *x = sk_ATTR_OR_OID_value(list, i);
		/* Wanted whichever form is read below: a template cannot ask for it. */
		const ASN1_OBJECT *o =
		    x->type == AOO_OID ? x->d.oid : X509_ATTRIBUTE_get0_object(x->d.attr);
		if (OBJ_obj2nid(o) == NID_pkcs9_challengePassword)
			out->challenge_password = 1;
		if (x->type != AOO_ATTR ||
		    OBJ_cmp(X509_ATTRIBUTE_get0_object(x->d.attr), r.cri_oid) != 0)
			continue;
		if (tmpl) {
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "two CSR templates");
			goto out;
		}
		tmpl = x->d.attr;
	}
	/* RFC 9908 section 4: a client that reads the template uses it alone. */
	rc = tmpl ? read_template(&r, tmpl) : read_legacy(&r, list);
out:
	if (rc)
		est_csrattrs_out_free(out);
	ASN1_item_free((ASN1_VALUE *)list, ASN1_ITEM_rptr(CSRATTRS));
	ASN1_OBJECT_free(r.cri_oid);
	ASN1_OBJECT_free(r.ext_tmpl_oid);
	return rc;
}

void est_csrattrs_out_free(struct est_csrattrs_out *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->n_dns_names; i++)
		free(o->dns_names[i]);
	free(o->dns_names);
	free(o->subject_cn);
	memset(o, 0, sizeof *o);
}
