/* What a device may get: its name from the profile's template and its
 * authenticated identity, checked against the CSR it sent. */
#ifndef ACMERA_EST_POLICY_H
#define ACMERA_EST_POLICY_H

#include "base/err.h"
#include "est/auth.h"
#include "pki/csr.h"

#include <stddef.h>

struct est_policy {
	const char *name_template; /* e.g. "{serialNumber}.iot.example.com", "{cn}",
	                              "{user}.dev.example.com" */
	int allow_p256, allow_p384, allow_ed25519;
	int rsa_min_bits;            /* 0: RSA refused; else at least this (>= 2048) */
	int require_channel_binding; /* challengePassword must carry the TLS channel binding */
};

/* Expands the template for identity into name (lower case). A placeholder whose
 * value is empty or not a valid DNS label is an error naming it (so a device
 * without a serialNumber gets no name rather than a wrong one). */
int est_policy_name(const struct est_policy *p, const struct est_identity *id, char *name,
                    size_t len, struct acmera_errmsg *e);

/* Whether name (lower case) has the shape of the template: its literal text
 * equal, each placeholder one DNS label. Re-enrollment has no identity to expand
 * the template with; this keeps a certificate made under one profile from
 * renewing under another. ACMERA_ERR_REFUSED with the reason otherwise. */
int est_policy_name_fits(const struct est_policy *p, const char *name, struct acmera_errmsg *e);

/* Checks the parsed CSR (signature already verified by csr_parse_der): exactly
 * one DNS name and it equals name (no wildcard, nothing else), key type and size
 * allowed, and, when required, a challengePassword equal to the base64 of the
 * channel binding. ACMERA_ERR_REFUSED with the reason for the 403 body. */
int est_policy_check_csr(const struct est_policy *p, const struct csr_info *csr, const char *name,
                         const uint8_t *binding, size_t binding_len, struct acmera_errmsg *e);

/* The channel-binding part of est_policy_check_csr alone (RFC 7030 3.5): the CSR's
 * one challengePassword equals base64 of binding. ACMERA_ERR_REFUSED with the
 * reason otherwise. */
int est_policy_check_binding(const struct csr_info *csr, const uint8_t *binding, size_t binding_len,
                             struct acmera_errmsg *e);

#endif
