/* Which zone a name belongs to, and whether a record is visible yet. */
#ifndef ACMERA_DNS_ZONE_H
#define ACMERA_DNS_ZONE_H

#include "base/err.h"
#include "dns/update.h"

#include <stddef.h>

/* The configured zone that holds name (longest suffix match, case-insensitive),
 * or NULL when none does. */
const char *dns_zone_for_name(const char *name, const char *const *zones, size_t nzones);

/* Finds the zone of name by SOA lookup against srv: asks for SOA of name and
 * walks up until an answer or authority SOA names the zone apex.
 * Writes the zone (no trailing dot, lower case) to out. */
int dns_zone_find_soa(const struct dns_server *srv, const char *name, char *out, size_t outlen,
                      struct acmera_errmsg *e);

/* Waits until every TXT value of recs is visible on each authoritative server of
 * zone (its NS records, resolved by srv; srv itself when none resolve), polling
 * every interval_ms up to timeout_ms. ACMERA_ERR_TIMEOUT names what is missing. */
int dns_wait_visible(const struct dns_server *srv, const char *zone, const struct dns_txt *recs,
                     size_t n, int timeout_ms, int interval_ms, struct acmera_errmsg *e);

#endif
