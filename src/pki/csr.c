#include "pki/csr.h"

#include "pki/keyless.h"

#include "base/buf.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_NAME_MAX_LEN 253
#define HOST_LABEL_MAX_LEN 63
/* A PEM file may carry `openssl req -text` output around the block. */
#define CSR_MAX_FILE (4 * CSR_MAX_DER)
/* How much of an offending name goes into an error message. */
#define NAME_SHOWN_MAX 80

/* The most specific OpenSSL reason queued, for messages; empties the queue so a
 * later caller does not see our stale errors. */
static const char *ossl_why(void)
{
	const char *r = ERR_reason_error_string(ERR_peek_error());
	ERR_clear_error();
	return r ? r : "unknown reason";
}

/* Copies up to NAME_SHOWN_MAX bytes of s into out for a message, escaping
 * anything that is not printable ASCII so a hostile name cannot forge log lines. */
static void show_name(const char *s, size_t n, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < n && i < NAME_SHOWN_MAX && o + 5 < outlen; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch > 0x20 && ch < 0x7f && ch != '\\')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", ch);
	}
	if (n > NAME_SHOWN_MAX && o + 4 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* LDH labels of 1..63 characters, no leading or trailing hyphen, no empty label;
 * a leading "*." is allowed and left for policy to judge. s is lower case. */
static int host_name_valid(const char *s, size_t n)
{
	if (n == 0 || n > HOST_NAME_MAX_LEN)
		return 0;
	if (n >= 2 && s[0] == '*' && s[1] == '.') {
		s += 2;
		n -= 2;
	}
	if (n == 0)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '.') {
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		int ldh = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
		if (!ldh || (ch == '-' && label == 0))
			return 0;
		if (++label > HOST_LABEL_MAX_LEN)
			return 0;
	}
	return label > 0 && s[n - 1] != '-';
}

/* Lower-cases raw into low[HOST_NAME_MAX_LEN + 1]; 0 if too long or empty. */
static int lower_name(const unsigned char *raw, size_t n, char *low)
{
	if (n == 0 || n > HOST_NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = raw[i];
		low[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
	}
	low[n] = '\0';
	return 1;
}

/* Adds one name (already lower case and valid) unless it is already there. */
static int add_name(struct csr_info *c, const char *name, struct acmera_errmsg *e)
{
	for (size_t i = 0; i < c->n_names; i++)
		if (strcmp(c->names[i], name) == 0)
			return 0;
	if (c->n_names == CSR_MAX_NAMES)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR asks for more than %d names",
		                   CSR_MAX_NAMES);
	char *dup = strdup(name);
	if (!dup)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	c->names[c->n_names++] = dup;
	return 0;
}

static int add_dns_san(struct csr_info *c, const ASN1_IA5STRING *s, struct acmera_errmsg *e)
{
	const unsigned char *raw = ASN1_STRING_get0_data(s);
	int len = ASN1_STRING_length(s);
	char low[HOST_NAME_MAX_LEN + 1];
	if (len < 0 || !lower_name(raw, (size_t)len, low) || !host_name_valid(low, (size_t)len)) {
		char shown[NAME_SHOWN_MAX * 4 + 8];
		show_name((const char *)raw, len < 0 ? 0 : (size_t)len, shown, sizeof(shown));
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR name \"%s\" is not a valid host name",
		                   shown);
	}
	return add_name(c, low, e);
}

/* The extension request attribute, or NULL (and *exts NULL) when there is none. */
static int req_extensions(X509_REQ *req, STACK_OF(X509_EXTENSION) * *exts, struct acmera_errmsg *e)
{
	*exts = X509_REQ_get_extensions(req);
	if (*exts)
		return 0;
	if (X509_REQ_get_attr_by_NID(req, NID_ext_req, -1) >= 0 ||
	    X509_REQ_get_attr_by_NID(req, NID_ms_ext_req, -1) >= 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR extension request is malformed: %s",
		                   ossl_why());
	ERR_clear_error();
	return 0;
}

/* The last (most specific) CN of the subject, when it is a valid host name. */
static int add_subject_cn(struct csr_info *c, struct acmera_errmsg *e)
{
	const X509_NAME *subj = X509_REQ_get_subject_name(c->req);
	int last = -1;
	for (int i = -1; (i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0;)
		last = i;
	if (last < 0)
		return 0;
	const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, last));
	unsigned char *utf8 = NULL;
	int len = ASN1_STRING_to_UTF8(&utf8, cn);
	char low[HOST_NAME_MAX_LEN + 1];
	int rc = 0;
	if (len < 0) {
		ERR_clear_error();
		goto out;
	}
	/* A CN such as "Device 42" is a label, not a name to certify. */
	if (!lower_name(utf8, (size_t)len, low) || !host_name_valid(low, (size_t)len))
		goto out;
	rc = add_name(c, low, e);
out:
	OPENSSL_free(utf8);
	return rc;
}

static int read_names(struct csr_info *c, struct acmera_errmsg *e)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *gens = NULL;
	int rc = req_extensions(c->req, &exts, e);
	if (rc)
		return rc;
	int crit = -1;
	if (exts)
		gens = X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL);
	if (crit == -1) {
		rc = add_subject_cn(c, e);
		goto out;
	}
	if (crit == -2) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR has more than one subjectAltName");
		goto out;
	}
	if (!gens) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR subjectAltName is malformed: %s",
		                 ossl_why());
		goto out;
	}
	/* IP addresses, e-mail addresses and URIs are not for ACME DNS names. */
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		if (gn->type != GEN_DNS)
			continue;
		rc = add_dns_san(c, gn->d.dNSName, e);
		if (rc)
			goto out;
	}
out:
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return rc;
}

static char *name_line(const X509_NAME *name)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *line = NULL;
	if (!bio)
		return NULL;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) >= 0) {
		char *p;
		long n = BIO_get_mem_data(bio, &p);
		if (n >= 0)
			line = strndup(n > 0 ? p : "", (size_t)n);
	}
	BIO_free(bio);
	return line;
}

/* Proof of possession: the request is signed by its own key. The request was
 * parsed without its key (pki/keyless.h), so the key is made from its encoding
 * and the check runs in the default library context. */
static int verify_pop(struct csr_info *c, struct acmera_errmsg *e)
{
	c->key = pki_spki_key(X509_REQ_get_X509_PUBKEY(c->req));
	if (!c->key)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR public key is unsupported: %s",
		                   ossl_why());
	if (X509_REQ_verify_ex(c->req, c->key, NULL, NULL) != 1)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR signature does not verify: %s",
		                   ossl_why());
	return 0;
}

/* stored: a CSR acmera verified when it took it: neither key nor signature. */
static int parse(const uint8_t *der, size_t len, int stored, struct csr_info *out,
                 struct acmera_errmsg *e)
{
	int rc;
	memset(out, 0, sizeof(*out));
	if (len == 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR is empty");
	if (len > CSR_MAX_DER)
		return acmera_fail(e, ACMERA_ERR_INVAL, "CSR is %zu bytes, more than %d", len,
		                   CSR_MAX_DER);
	const unsigned char *p = der;
	/* Without its key: OpenSSL 3.0's decoder is most of the cost of a parse. */
	OSSL_LIB_CTX *ctx = pki_keyless_libctx();
	out->req = ctx ? (X509_REQ *)ASN1_item_d2i_ex(NULL, &p, (long)len, ASN1_ITEM_rptr(X509_REQ),
	                                              ctx, NULL)
	               : d2i_X509_REQ(NULL, &p, (long)len);
	if (!out->req) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR is not a PKCS#10 request: %s",
		                 ossl_why());
		goto out;
	}
	if (p != der + len) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR has %zu trailing bytes",
		                 (size_t)(der + len - p));
		goto out;
	}
	if (X509_REQ_get_version(out->req) != X509_REQ_VERSION_1) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR version is not 1");
		goto out;
	}
	if (!stored) {
		rc = verify_pop(out, e);
		if (rc)
			goto out;
	}
	rc = read_names(out, e);
	if (rc)
		goto out;
	out->subject = name_line(X509_REQ_get_subject_name(out->req));
	out->der = malloc(len);
	if (!out->subject || !out->der) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	memcpy(out->der, der, len);
	out->der_len = len;
	sha256_hex(der, len, out->sha256_hex);
	if (!out->sha256_hex[0])
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "SHA-256 failed: %s", ossl_why());
out:
	if (rc)
		csr_info_free(out);
	return rc;
}

int csr_parse_der(const uint8_t *der, size_t len, struct csr_info *out, struct acmera_errmsg *e)
{
	return parse(der, len, 0, out, e);
}

int csr_parse_stored(const uint8_t *der, size_t len, struct csr_info *out, struct acmera_errmsg *e)
{
	return parse(der, len, 1, out, e);
}

/* Reads at most max bytes of path; more is an error. */
static int read_file(const char *path, size_t max, uint8_t **data, size_t *len,
                     struct acmera_errmsg *e)
{
	struct buf b = BUF_INIT;
	int rc = 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	for (;;) {
		uint8_t chunk[4096];
		size_t n = fread(chunk, 1, sizeof(chunk), f);
		if (n > 0 && b.len + n > max) {
			rc = acmera_fail(e, ACMERA_ERR_INVAL, "%s: more than %zu bytes", path, max);
			goto out;
		}
		if (n > 0 && buf_append(&b, chunk, n)) {
			rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (n < sizeof(chunk))
			break;
	}
	if (ferror(f)) {
		rc = acmera_fail(e, ACMERA_ERR_IO, "%s: read error", path);
		goto out;
	}
	*len = b.len;
	*data = (uint8_t *)buf_steal(&b);
	if (!*data)
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
out:
	if (rc)
		buf_free(&b);
	fclose(f);
	return rc;
}

static int is_csr_label(const char *name)
{
	return strcmp(name, PEM_STRING_X509_REQ) == 0 || strcmp(name, PEM_STRING_X509_REQ_OLD) == 0;
}

/* Decodes the one CSR PEM block of text; the digest is then over exactly the
 * bytes the device encoded. */
static int pem_csr_bytes(const uint8_t *text, size_t n, unsigned char **der, long *der_len,
                         struct acmera_errmsg *e)
{
	char *name = NULL, *header = NULL, *name2 = NULL, *header2 = NULL;
	unsigned char *data2 = NULL;
	long len2 = 0;
	int rc = 0;
	*der = NULL;
	BIO *bio = BIO_new_mem_buf(text, (int)n);
	if (!bio)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (!PEM_read_bio_ex(bio, &name, &header, der, der_len, PEM_FLAG_EAY_COMPATIBLE)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "bad PEM: %s", ossl_why());
		goto out;
	}
	if (!is_csr_label(name)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "PEM block is \"%.40s\", not a CSR", name);
		goto out;
	}
	if (header[0]) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "CSR PEM block has headers");
		goto out;
	}
	if (PEM_read_bio_ex(bio, &name2, &header2, &data2, &len2, PEM_FLAG_EAY_COMPATIBLE)) {
		rc = acmera_fail(e, ACMERA_ERR_INVAL, "more than one PEM block");
		goto out;
	}
	ERR_clear_error();
out:
	if (rc) {
		OPENSSL_free(*der);
		*der = NULL;
	}
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(name2);
	OPENSSL_free(header2);
	OPENSSL_free(data2);
	BIO_free(bio);
	return rc;
}

int csr_load_file(const char *path, struct csr_info *out, struct acmera_errmsg *e)
{
	uint8_t *data = NULL;
	unsigned char *der = NULL;
	size_t len = 0;
	memset(out, 0, sizeof(*out));
	int rc = read_file(path, CSR_MAX_FILE, &data, &len, e);
	if (rc)
		return rc;
	/* A CSR is a SEQUENCE too long for a short-form length; no text starts so. */
	if (len >= 2 && data[0] == 0x30 && (data[1] & 0x80)) {
		rc = csr_parse_der(data, len, out, e);
	} else {
		long der_len = 0;
		rc = pem_csr_bytes(data, len, &der, &der_len, e);
		if (!rc)
			rc = csr_parse_der(der, (size_t)der_len, out, e);
	}
	if (rc)
		acmera_fail_wrap(e, rc, "%s", path);
	OPENSSL_free(der);
	free(data);
	return rc;
}

char *csr_names_joined(const struct csr_info *c)
{
	struct buf b = BUF_INIT;
	if (c->n_names == 0)
		return strdup("");
	for (size_t i = 0; i < c->n_names; i++) {
		if ((i && buf_append_str(&b, ",")) || buf_append_str(&b, c->names[i])) {
			buf_free(&b);
			return NULL;
		}
	}
	return buf_steal(&b);
}

void csr_info_free(struct csr_info *c)
{
	if (!c)
		return;
	X509_REQ_free(c->req);
	EVP_PKEY_free(c->key);
	free(c->der);
	for (size_t i = 0; i < c->n_names; i++)
		free(c->names[i]);
	free(c->subject);
	memset(c, 0, sizeof(*c));
}

void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	out[0] = '\0';
	if (!EVP_Digest(p, n, md, &md_len, EVP_sha256(), NULL) || md_len != 32)
		return;
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[64] = '\0';
}
