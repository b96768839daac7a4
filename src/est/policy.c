/* The one name a device may hold, from the profile's template and its
 * authenticated identity, and the check of its CSR against that name. */
#include "est/policy.h"

#include "base/b64.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HOST_NAME_MAX_LEN 253
#define HOST_LABEL_MAX_LEN 63
#define VALUE_SHOWN_MAX 64
/* Names of a refused CSR listed in a message before "...". */
#define NAMES_SHOWN_MAX 200

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* One DNS label: lower-case LDH, 1..63, no hyphen at either end. */
static int label_valid(const char *s, size_t n)
{
	if (n == 0 || n > HOST_LABEL_MAX_LEN || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!ldh(s[i]))
			return 0;
	return 1;
}

/* Lower-case LDH labels separated by single dots, <= 253 characters. */
static int host_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > HOST_NAME_MAX_LEN)
		return 0;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t k = dot ? (size_t)(dot - p) : strlen(p);
		if (!label_valid(p, k))
			return 0;
		if (!dot)
			return 1;
		p = dot + 1;
	}
}

/* A value from a client for a message: printable ASCII, bounded. */
static void shown(const char *s, char *out, size_t outlen)
{
	size_t o = 0, i = 0;
	for (; s[i] && i < VALUE_SHOWN_MAX && o + 5 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
	}
	if (s[i] && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* The value of a placeholder, or NULL when the name is unknown. */
static const char *placeholder(const struct est_identity *id, const char *name, size_t n)
{
	if (n == 12 && memcmp(name, "serialNumber", 12) == 0)
		return id->serial_number;
	if (n == 2 && memcmp(name, "cn", 2) == 0)
		return id->cn;
	if (n == 4 && memcmp(name, "user", 4) == 0)
		return id->user;
	return NULL;
}

static int append(char *out, size_t *o, const char *s, size_t n)
{
	if (*o + n > HOST_NAME_MAX_LEN)
		return -1;
	for (size_t i = 0; i < n; i++)
		out[(*o)++] = lower(s[i]);
	out[*o] = '\0';
	return 0;
}

/* Expands tmpl into out[HOST_NAME_MAX_LEN + 1]. With probe set, every
 * placeholder stands for "a", which checks the template alone: its faults are
 * ACMERA_ERR_CONFIG, those of the identity's values ACMERA_ERR_REFUSED. */
static int expand(const char *tmpl, const struct est_identity *id, int probe, char *out,
                  struct acmera_errmsg *e)
{
	static const struct est_identity none = {.user = "", .cn = "", .serial_number = ""};
	size_t o = 0;
	char sv[VALUE_SHOWN_MAX * 4 + 8], st[VALUE_SHOWN_MAX * 4 + 8];
	out[0] = '\0';
	shown(tmpl, st, sizeof(st));
	for (const char *p = tmpl; *p;) {
		if (*p == '}')
			return acmera_fail(e, ACMERA_ERR_CONFIG,
			                   "name template \"%s\": '}' without '{'", st);
		if (*p != '{') {
			if (append(out, &o, p, 1))
				goto too_long;
			p++;
			continue;
		}
		const char *end = strchr(p + 1, '}');
		if (!end)
			return acmera_fail(e, ACMERA_ERR_CONFIG,
			                   "name template \"%s\": '{' without '}'", st);
		const char *ph = p + 1;
		int phn = (int)(end - ph);
		const char *v = placeholder(probe ? &none : id, ph, (size_t)phn);
		if (!v)
			return acmera_fail(e, ACMERA_ERR_CONFIG,
			                   "name template \"%s\": unknown placeholder {%.*s} (use "
			                   "{serialNumber}, {cn} or {user})",
			                   st, phn > VALUE_SHOWN_MAX ? VALUE_SHOWN_MAX : phn, ph);
		if (probe)
			v = "a";
		char low[HOST_LABEL_MAX_LEN + 1];
		size_t vn = strlen(v);
		if (vn == 0)
			return acmera_fail(e, ACMERA_ERR_REFUSED,
			                   "the client's identity has no {%.*s}, so it gets no "
			                   "name",
			                   phn, ph);
		for (size_t i = 0; i < vn && i < sizeof(low) - 1; i++)
			low[i] = lower(v[i]);
		low[vn < sizeof(low) - 1 ? vn : sizeof(low) - 1] = '\0';
		if (vn > HOST_LABEL_MAX_LEN || !label_valid(low, vn)) {
			shown(v, sv, sizeof(sv));
			return acmera_fail(e, ACMERA_ERR_REFUSED,
			                   "{%.*s} \"%s\" is not a single DNS label (letters, "
			                   "digits and inner hyphens, 1 to %d), so it gets no name",
			                   phn, ph, sv, HOST_LABEL_MAX_LEN);
		}
		if (append(out, &o, low, vn))
			goto too_long;
		p = end + 1;
	}
	if (!host_valid(out))
		return acmera_fail(e, probe ? ACMERA_ERR_CONFIG : ACMERA_ERR_REFUSED,
		                   "name template \"%s\" does not make a valid host name", st);
	return 0;
too_long:
	return acmera_fail(e, probe ? ACMERA_ERR_CONFIG : ACMERA_ERR_REFUSED,
	                   "the name from template \"%s\" would be longer than %d characters", st,
	                   HOST_NAME_MAX_LEN);
}

int est_policy_name(const struct est_policy *p, const struct est_identity *id, char *name,
                    size_t len, struct acmera_errmsg *e)
{
	char out[HOST_NAME_MAX_LEN + 1];
	if (len > 0)
		name[0] = '\0';
	if (!p->name_template || !p->name_template[0])
		return acmera_fail(e, ACMERA_ERR_CONFIG, "no name template");
	int rc = expand(p->name_template, id, 1, out, e);
	if (!rc)
		rc = expand(p->name_template, id, 0, out, e);
	if (rc)
		return rc;
	size_t n = strlen(out);
	if (n >= len)
		return acmera_fail(e, ACMERA_ERR_INVAL, "name buffer too small");
	memcpy(name, out, n + 1);
	return 0;
}

/* 1 when name matches tmpl from here on: literal characters (case-insensitive)
 * equal, each {placeholder} one or more label characters (no dot). Recursion is
 * bounded by the template's placeholders (at most a handful; templates are
 * operator configuration). */
static int fits(const char *tmpl, const char *name)
{
	while (*tmpl && *tmpl != '{') {
		if (lower(*tmpl) != *name)
			return 0;
		tmpl++;
		name++;
	}
	if (!*tmpl)
		return *name == '\0';
	const char *end = strchr(tmpl, '}');
	if (!end)
		return 0;
	/* The shortest label that lets the rest match (labels have no dots, so at
	 * most one split point per literal that follows). */
	for (size_t n = 1; name[n - 1] && name[n - 1] != '.'; n++) {
		char c = name[n - 1];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return 0;
		if (fits(end + 1, name + n))
			return 1;
	}
	return 0;
}

int est_policy_name_fits(const struct est_policy *p, const char *name, struct acmera_errmsg *e)
{
	char st[VALUE_SHOWN_MAX * 4 + 8];
	if (!p->name_template || !name || !fits(p->name_template, name)) {
		shown(p->name_template ? p->name_template : "", st, sizeof(st));
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "%s is not a name this profile gives (its template is \"%s\")",
		                   name ? name : "(none)", st);
	}
	return 0;
}

/* "a.example, b.example, ..." bounded, for a message. */
static void names_list(const struct csr_info *csr, char *out, size_t outlen)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < csr->n_names; i++) {
		size_t k = strlen(csr->names[i]);
		if (o + k + 2 > NAMES_SHOWN_MAX || o + k + 6 >= outlen) {
			snprintf(out + o, outlen - o, "%s...", i ? ", " : "");
			return;
		}
		o += (size_t)snprintf(out + o, outlen - o, "%s%s", i ? ", " : "", csr->names[i]);
	}
}

/* The CSR's subjectAltName holds only dNSNames: an IP address, e-mail address
 * or URI is not for this device to ask. */
static int only_dns_sans(const struct csr_info *csr, const char *name, struct acmera_errmsg *e)
{
	static const char *const kinds[] = {
	    [GEN_OTHERNAME] = "an otherName",
	    [GEN_EMAIL] = "an e-mail address",
	    [GEN_DNS] = "a DNS name",
	    [GEN_X400] = "an X.400 address",
	    [GEN_DIRNAME] = "a directory name",
	    [GEN_EDIPARTY] = "an EDI party name",
	    [GEN_URI] = "a URI",
	    [GEN_IPADD] = "an IP address",
	    [GEN_RID] = "a registered ID",
	};
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr->req);
	GENERAL_NAMES *gens = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL) : NULL;
	int rc = 0;
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		int type = sk_GENERAL_NAME_value(gens, i)->type;
		if (type == GEN_DNS)
			continue;
		rc = acmera_fail(e, ACMERA_ERR_REFUSED,
		                 "the CSR asks for %s as well; this device may only have %s",
		                 type >= 0 && type <= GEN_RID ? kinds[type] : "another name", name);
		break;
	}
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	ERR_clear_error();
	return rc;
}

/* 1 when the n bytes at s, lower-cased, are a host name with a dot (or a
 * wildcard of one): a CN a CA could take for a name to certify. */
static int looks_like_host(const unsigned char *s, size_t n)
{
	char low[HOST_NAME_MAX_LEN + 1];
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	if (n == 0 || n > HOST_NAME_MAX_LEN || !memchr(s, '.', n) || memchr(s, '\0', n))
		return 0;
	for (size_t i = 0; i < n; i++)
		low[i] = lower((char)s[i]);
	low[n] = '\0';
	return host_valid(low);
}

/* A subject CN that is another host name beside the right SAN: some CAs would
 * certify it too. A label such as "Device 42" or "dev42" stays allowed. */
static int cn_agrees(const struct csr_info *csr, const char *name, struct acmera_errmsg *e)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(csr->req);
	int rc = 0;
	for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;) {
		unsigned char *utf8 = NULL;
		const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
		int len = ASN1_STRING_to_UTF8(&utf8, s);
		if (len > 0 && looks_like_host(utf8, (size_t)len) &&
		    ((size_t)len != strlen(name) || strncasecmp((char *)utf8, name, (size_t)len))) {
			char sv[VALUE_SHOWN_MAX * 4 + 8];
			char *cn = strndup((char *)utf8, (size_t)len);
			shown(cn ? cn : "", sv, sizeof(sv));
			free(cn);
			rc = acmera_fail(e, ACMERA_ERR_REFUSED,
			                 "the CSR's subject CN is \"%s\"; this device may only "
			                 "have %s",
			                 sv, name);
		}
		OPENSSL_free(utf8);
		if (rc)
			break;
	}
	ERR_clear_error();
	return rc;
}

static int check_names(const struct csr_info *csr, const char *name, struct acmera_errmsg *e)
{
	char list[NAMES_SHOWN_MAX + 8];
	if (csr->n_names == 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR asks for no DNS name; this device may only have %s",
		                   name);
	if (csr->n_names > 1) {
		names_list(csr, list, sizeof(list));
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR asks for %zu names (%s); this device may only have %s",
		                   csr->n_names, list, name);
	}
	const char *asked = csr->names[0];
	if (asked[0] == '*')
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR asks for the wildcard %s; this device may only have %s",
		                   asked, name);
	if (strcasecmp(asked, name) != 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR asks for %s; this device may only have %s", asked,
		                   name);
	int rc = only_dns_sans(csr, name, e);
	if (!rc)
		rc = cn_agrees(csr, name, e);
	return rc;
}

/* The header promises at least 2048 bits; a smaller setting does not weaken it. */
static int rsa_min(const struct est_policy *p)
{
	return p->rsa_min_bits > 0 && p->rsa_min_bits < 2048 ? 2048 : p->rsa_min_bits;
}

/* "P-256, P-384, Ed25519 or RSA of at least 2048 bits" from the policy. */
static void accepted_keys(const struct est_policy *p, char *out, size_t outlen)
{
	const char *v[4];
	char rsa[48];
	size_t n = 0, o = 0;
	if (p->allow_p256)
		v[n++] = "EC P-256";
	if (p->allow_p384)
		v[n++] = "EC P-384";
	if (p->allow_ed25519)
		v[n++] = "Ed25519";
	if (rsa_min(p) > 0) {
		snprintf(rsa, sizeof(rsa), "RSA of at least %d bits", rsa_min(p));
		v[n++] = rsa;
	}
	out[0] = '\0';
	if (n == 0) {
		snprintf(out, outlen, "none");
		return;
	}
	for (size_t i = 0; i < n && o < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%s%s",
		                      i == 0       ? ""
		                      : i + 1 == n ? " or "
		                                   : ", ",
		                      v[i]);
}

static int check_key(const struct est_policy *p, const struct csr_info *csr,
                     struct acmera_errmsg *e)
{
	char what[64], ok[128];
	int allowed = 0;
	EVP_PKEY *k = csr->key;
	accepted_keys(p, ok, sizeof(ok));
	if (!k) {
		ERR_clear_error();
		return acmera_fail(e, ACMERA_ERR_REFUSED, "the CSR's key cannot be read");
	}
	if (EVP_PKEY_is_a(k, "EC")) {
		char group[64];
		size_t glen = 0;
		int nid = NID_undef;
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) == 1)
			nid = OBJ_txt2nid(group);
		if (nid == NID_X9_62_prime256v1)
			allowed = p->allow_p256;
		else if (nid == NID_secp384r1)
			allowed = p->allow_p384;
		const char *nist = nid != NID_undef ? EC_curve_nid2nist(nid) : NULL;
		const char *sn = nid != NID_undef ? OBJ_nid2sn(nid) : NULL;
		snprintf(what, sizeof(what), "EC %s",
		         nist ? nist
		         : sn ? sn
		              : "with explicit curve parameters");
	} else if (EVP_PKEY_is_a(k, "ED25519")) {
		allowed = p->allow_ed25519;
		snprintf(what, sizeof(what), "Ed25519");
	} else if (EVP_PKEY_is_a(k, "RSA")) {
		int bits = EVP_PKEY_get_bits(k);
		allowed = rsa_min(p) > 0 && bits >= rsa_min(p);
		snprintf(what, sizeof(what), "RSA of %d bits", bits);
	} else {
		const char *type = EVP_PKEY_get0_type_name(k);
		snprintf(what, sizeof(what), "%.40s", type ? type : "of an unknown type");
	}
	ERR_clear_error();
	if (!allowed)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR's key is %s; this profile accepts %s", what, ok);
	return 0;
}

/* RFC 7030 3.5: the challengePassword carries base64 of the TLS channel
 * binding, proving the CSR was made for this connection. */
int est_policy_check_binding(const struct csr_info *csr, const uint8_t *binding, size_t binding_len,
                             struct acmera_errmsg *e)
{
	int rc = 0;
	if (!binding || binding_len == 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "this connection has no TLS channel binding, which this "
		                   "profile requires in the CSR");
	int i = X509_REQ_get_attr_by_NID(csr->req, NID_pkcs9_challengePassword, -1);
	if (i < 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR has no challengePassword; this profile requires the "
		                   "TLS channel binding in it (RFC 7030 3.5)");
	if (X509_REQ_get_attr_by_NID(csr->req, NID_pkcs9_challengePassword, i) >= 0)
		return acmera_fail(e, ACMERA_ERR_REFUSED, "the CSR has two challengePasswords");
	X509_ATTRIBUTE *attr = X509_REQ_get_attr(csr->req, i);
	ASN1_TYPE *v = X509_ATTRIBUTE_count(attr) == 1 ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
	if (!v || (v->type != V_ASN1_PRINTABLESTRING && v->type != V_ASN1_UTF8STRING))
		return acmera_fail(e, ACMERA_ERR_REFUSED,
		                   "the CSR's challengePassword is not one PrintableString or "
		                   "UTF8String");
	char *want = b64_encode(binding, binding_len, 0);
	if (!want)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	const unsigned char *got = ASN1_STRING_get0_data(v->value.asn1_string);
	int got_len = ASN1_STRING_length(v->value.asn1_string);
	size_t want_len = strlen(want);
	/* The length is public (that of the binding); the bytes are compared in
	 * constant time. */
	if (got_len < 0 || (size_t)got_len != want_len || CRYPTO_memcmp(got, want, want_len) != 0)
		rc = acmera_fail(e, ACMERA_ERR_REFUSED,
		                 "the CSR's challengePassword is not this connection's TLS channel "
		                 "binding; make a new CSR on this connection");
	free(want);
	return rc;
}

int est_policy_check_csr(const struct est_policy *p, const struct csr_info *csr, const char *name,
                         const uint8_t *binding, size_t binding_len, struct acmera_errmsg *e)
{
	if (!name || !name[0])
		return acmera_fail(e, ACMERA_ERR_INVAL, "no name to check the CSR against");
	int rc = check_names(csr, name, e);
	if (!rc)
		rc = check_key(p, csr, e);
	if (!rc && p->require_channel_binding)
		rc = est_policy_check_binding(csr, binding, binding_len, e);
	return rc;
}
