/* DNS identifiers of `acmera ca`: syntax (RFC 8555 7.1.4, 7.1.3 wildcards), RFC 9444
 * ancestor relations compared on whole labels, and the `domains` policy. */
#ifndef ACMERA_CA_NAMES_H
#define ACMERA_CA_NAMES_H

#include "base/err.h"
#include "store/ca_store.h"

#include <stddef.h>

/* Checks and lower-cases a DNS identifier into out: LDH labels of 1..63 characters
 * (no leading or trailing '-'), at least two labels, at most 253 characters, no final
 * dot; "*." is allowed only as the whole first label when allow_wildcard. *wildcard
 * (may be NULL) says whether it had one; out keeps the "*." */
int ca_name_normalize(const char *in, int allow_wildcard, char out[CA_DNS_NAME_MAX + 1],
                      int *wildcard, struct acmera_errmsg *e);

/* 1 when ancestor is a strict ancestor of name (whole labels; a leading "*." of name is
 * a label of its own, so "b.example" is an ancestor of "*.b.example"), else 0. */
int ca_name_is_ancestor(const char *ancestor, const char *name);

/* 1 when name (wildcard or not) equals one of domains or lies below one (all lower case, no final
 * dot). */
int ca_name_allowed(const char *name, char *const *domains, size_t n);

#endif
