/* The keys and certificates of `acmera ca`, and issuance of leaf certificates from
 * CSRs that the ACME server has already parsed, checked and authorized. */
#ifndef ACMERA_CA_SIGNER_H
#define ACMERA_CA_SIGNER_H

#include "base/err.h"
#include "pki/csr.h"

#include <stddef.h>
#include <stdint.h>

#define CA_LEAF_LIFETIME_MIN 3600              /* 1 hour */
#define CA_LEAF_LIFETIME_MAX (398 * 24 * 3600) /* 398 days (CA/B Forum ceiling) */
#define CA_NAME_MAX 48 /* so "<name> Intermediate CA" fits a 64-character CN */

struct ca_signer_config {
	const char *dir;       /* state directory: generated keys/certs live here */
	const char *cert_file; /* configured issuing CA certificate chain (PEM, issuer first,
	                          then up to its root), or NULL to generate */
	const char *key_file;  /* its private key (PEM, unencrypted, mode 0600), with
	                          cert_file */
	const char *name;      /* CN prefix for generated CAs, e.g. "acmera private";
	                          NULL means "acmera" */
	int64_t leaf_lifetime; /* seconds, e.g. 90 days; bounded 1 h .. 398 days */
	int64_t now;           /* the time the renewal decision uses; 0: the current time */
};

struct ca_signer;

/* Loads the configured CA, or at first start generates a root (P-384, 10 years,
 * basicConstraints CA:TRUE critical, keyUsage keyCertSign+cRLSign critical, SKI) and an
 * intermediate (P-256, 5 years, pathlen 0, AKI+SKI) signed by it, writes them to dir
 * (root.pem, intermediate.pem, intermediate.key mode 0600, root.key 0600; written to a
 * temporary file, fsync, rename, so a crash never leaves half a file) and loads them on
 * later starts. A key is written before its certificate, so a certificate on disk
 * always has its key; a key left without its certificate by a crash is replaced.
 * root.key is read only when an intermediate has to be made. Key files must be mode
 * 0600 and at most 4 KiB (read_secret_file). Checks the key matches the certificate,
 * that it is a CA certificate with keyCertSign, and that the chain verifies now up to
 * its self-signed last certificate. *out is owned by the caller (ca_signer_free). */
int ca_signer_open(const struct ca_signer_config *cfg, struct ca_signer **out,
                   struct acmera_errmsg *e);

/* Issues a leaf for csr (already parsed and signature-checked by csr_parse_der) with
 * exactly the dNSName SANs in names (n >= 1; 1..253 characters of letters, digits, '-',
 * '.', '*'; no repeats). The subject is CN = names[0] when it fits the 64-character CN
 * limit, else empty with a critical subjectAltName (RFC 5280 4.2.1.6). A random 16-byte
 * positive serial, notBefore = now - 60 s, notAfter = now + lifetime (never past the
 * issuer's notAfter; refused once the issuer has expired), keyUsage digitalSignature
 * (+ keyEncipherment for RSA keys) critical, extendedKeyUsage serverAuth+clientAuth, AKI,
 * SKI, basicConstraints CA:FALSE critical, no extensions copied from the CSR. Signed with
 * SHA-256 (SHA-384 for a P-384 issuer, SHA-512 for P-521, none for EdDSA).
 * *chain_pem = leaf + the issuing chain without its root (the root is not sent), a heap
 * string the caller frees; serial_hex (32 lower-case hex digits) filled. Thread-safe:
 * several workers may call it at once on the same s. */
/* 1 when the issuing certificate ends within the leaf lifetime + 30 days of now:
 * a generated intermediate is then replaced by ca_signer_open (leaves issued
 * before are cut at its end). */
int ca_signer_renewal_due(const struct ca_signer *s, int64_t now);
int64_t ca_signer_issuer_not_after(const struct ca_signer *s);

/* The notAfter of a leaf issued at now: now + lifetime, never past the issuer's. */
int64_t ca_signer_leaf_not_after(const struct ca_signer *s, int64_t now);
int ca_signer_issue(struct ca_signer *s, const struct csr_info *csr, const char *const *names,
                    size_t n, int64_t now, char **chain_pem, char serial_hex[41],
                    struct acmera_errmsg *e);

/* The issuing chain without the leaf (intermediate, root), PEM; and the root alone.
 * Owned by s, valid until ca_signer_free. */
const char *ca_signer_chain_pem(const struct ca_signer *s);
const char *ca_signer_root_pem(const struct ca_signer *s);

void ca_signer_free(struct ca_signer *s);

#endif
