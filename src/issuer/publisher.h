/* The issuer's DNS-01 publisher: groups the TXT records of many challenges by
 * zone and sends one RFC 2136 UPDATE per zone (or runs dns.hook per record). Every
 * record is written to the store before it is published and forgotten only after
 * it is deleted, so a crash never leaves one behind for good. */
#ifndef ACMERA_ISSUER_PUBLISHER_H
#define ACMERA_ISSUER_PUBLISHER_H

#include "base/config.h"
#include "base/err.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

struct publisher;

struct pub_record {
	char name[300]; /* _acme-challenge.<identifier> */
	char value[64]; /* dns-01 value */
	char zone[256]; /* filled by publisher_add */
	int64_t id;     /* store id, filled by publisher_add; 0 once forgotten */
	int sent;       /* publisher's own: its zone's UPDATE succeeded */
};

/* Reads the TSIG key (when dns.hook is not set) and checks the settings. */
int publisher_new(const struct config *cfg, struct store *s, struct publisher **out,
                  struct acmera_errmsg *e);
void publisher_free(struct publisher *p);

/* The zone that will hold the record for identifier, or an error when the name is
 * outside the configured zones (nothing is sent then). With no zone configured it
 * asks dns.server by SOA lookup (blocking) and remembers the answer for 5 minutes,
 * for the identifier and for its siblings (names with the same parent inside that
 * zone), 64 answers at most. */
/* 1 when publisher_zone_of answers for identifier without asking DNS (configured
 * zones, or a zone it found before). */
int publisher_zone_known(struct publisher *p, const char *identifier);
int publisher_zone_of(struct publisher *p, const char *identifier, char *zone, size_t len,
                      struct acmera_errmsg *e);

/* A publisher and its store handle are used by one thread at a time (the issuer
 * has one on its loop and one in its DNS worker, see dns_worker.h). */

/* Publishes n records: one UPDATE per zone, then (dns.propagation_check) waits until
 * the zone's servers show them. */
int publisher_add(struct publisher *p, struct pub_record *recs, size_t n, struct acmera_errmsg *e);
/* Deletes exactly these values: one UPDATE per zone; each is forgotten in the store
 * once its zone's UPDATE succeeded. */
int publisher_delete(struct publisher *p, struct pub_record *recs, size_t n,
                     struct acmera_errmsg *e);
/* Deletes every record the store still holds (left by a crash or a DNS outage). */
int publisher_cleanup(struct publisher *p, struct acmera_errmsg *e);

/* UPDATE messages (or hook runs) sent so far. */
uint64_t publisher_messages(const struct publisher *p);

#endif
