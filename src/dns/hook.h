/* `dns.hook`: a command for DNS services without RFC 2136. Called as
 *   HOOK add|delete NAME VALUE
 * with no shell in between; exit status 0 means done. */
#ifndef ACMERA_DNS_HOOK_H
#define ACMERA_DNS_HOOK_H

#include "base/err.h"
#include "dns/update.h"

/* Runs the hook once per record; stops at the first failure, whose exit status
 * and the first line of its stderr are in the error. timeout_ms bounds each run. */
int dns_hook_run(const char *hook, enum dns_update_op op, const struct dns_txt *recs, size_t n,
                 int timeout_ms, struct acmera_errmsg *e);

#endif
