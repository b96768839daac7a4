/* Batched DNS-01 publication. See publisher.h. */
#include "issuer/publisher.h"

#include "base/clock.h"
#include "base/log.h"
#include "dns/hook.h"
#include "dns/tsig_key.h"
#include "dns/update.h"
#include "dns/zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HOOK_TIMEOUT_MS 60000
/* Zones found by SOA lookup, remembered so that the issuer's loop asks once for a
 * run of sibling names (dev1.iot.example.com, dev2.iot.example.com, ...). Bounded
 * in count, and in time so that a changed delegation is seen again. */
#define ZONE_CACHE_SIZE 64
#define ZONE_CACHE_TTL_S 300

struct zone_cache_entry {
	char key[256]; /* an identifier (exact) or the parent of one (suffix) */
	char zone[256];
	int exact;
	int64_t until; /* monotonic seconds; 0 = empty */
};

struct publisher {
	const struct config *cfg;
	struct store *store;
	struct dns_server server;
	struct tsig_key key;
	int have_server;
	uint64_t messages;
	struct zone_cache_entry zones[ZONE_CACHE_SIZE];
	size_t zone_next;
};

int publisher_new(const struct config *cfg, struct store *s, struct publisher **out,
                  struct acmera_errmsg *e)
{
	struct publisher *p = calloc(1, sizeof(*p));
	int rc;
	if (!p)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	p->cfg = cfg;
	p->store = s;
	if (cfg->dns.server) {
		rc = dns_server_parse(cfg->dns.server, &p->server, e);
		if (rc) {
			acmera_fail_wrap(e, rc, "dns server");
			goto fail;
		}
		p->server.timeout_ms = cfg->dns.timeout;
		p->have_server = 1;
	}
	/* The check asks the zone's name servers, found through the server: without
	 * one it could not run, and skipping it silently would defeat it. */
	if (cfg->dns.propagation_check && !p->have_server) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "dns propagation_check needs dns server (or --dns-server) to find "
		                 "the zone's name servers");
		goto fail;
	}
	if (!cfg->dns.hook) {
		if (!p->have_server) {
			rc = acmera_fail(
			    e, ACMERA_ERR_CONFIG,
			    "no DNS server: set dns server (or --dns-server), or dns hook");
			goto fail;
		}
		if (!cfg->dns.tsig_keyfile) {
			rc = acmera_fail(e, ACMERA_ERR_CONFIG,
			                 "no TSIG key: set dns tsig_keyfile (or --tsig-keyfile)");
			goto fail;
		}
		rc = tsig_key_load(cfg->dns.tsig_keyfile, 0, &p->key, e);
		if (rc)
			goto fail;
	}
	*out = p;
	return 0;
fail:
	publisher_free(p);
	return rc;
}

void publisher_free(struct publisher *p)
{
	if (!p)
		return;
	tsig_key_wipe(&p->key);
	free(p);
}

uint64_t publisher_messages(const struct publisher *p)
{
	return p->messages;
}

/* 1 when name is zone or below it (case-insensitive). */
static int at_or_below(const char *name, const char *zone)
{
	size_t n = strlen(name), z = strlen(zone);
	if (n == z)
		return strcasecmp(name, zone) == 0;
	return n > z && name[n - z - 1] == '.' && strcasecmp(name + n - z, zone) == 0;
}

/* The zone of identifier from an earlier lookup of it, or of a sibling: a name
 * whose parent lies inside a zone is taken to be in that zone too (devices are
 * leaves; a zone cut at each of them would be unusual). */
static int zone_cached(struct publisher *p, const char *identifier, char *zone, size_t len)
{
	const char *parent = strchr(identifier, '.');
	int64_t now = mono_s();
	parent = parent ? parent + 1 : NULL;
	for (size_t i = 0; i < ZONE_CACHE_SIZE; i++) {
		const struct zone_cache_entry *c = &p->zones[i];
		if (c->until <= now)
			continue;
		const char *want = c->exact ? identifier : parent;
		if (want && strcasecmp(c->key, want) == 0 &&
		    (size_t)snprintf(zone, len, "%s", c->zone) < len)
			return 1;
	}
	return 0;
}

static void zone_remember(struct publisher *p, const char *identifier, const char *zone)
{
	const char *parent = strchr(identifier, '.');
	parent = parent ? parent + 1 : NULL;
	/* Keyed by the parent only when the parent is inside the zone: the apex's own
	 * parent says nothing about other names. */
	int exact = !parent || !at_or_below(parent, zone);
	const char *key = exact ? identifier : parent;
	struct zone_cache_entry *slot = NULL;
	if (strlen(key) >= sizeof(slot->key) || strlen(zone) >= sizeof(slot->zone))
		return;
	for (size_t i = 0; i < ZONE_CACHE_SIZE && !slot; i++)
		if (p->zones[i].until && p->zones[i].exact == exact &&
		    strcasecmp(p->zones[i].key, key) == 0)
			slot = &p->zones[i];
	if (!slot) {
		slot = &p->zones[p->zone_next];
		p->zone_next = (p->zone_next + 1) % ZONE_CACHE_SIZE;
	}
	snprintf(slot->key, sizeof(slot->key), "%s", key);
	snprintf(slot->zone, sizeof(slot->zone), "%s", zone);
	slot->exact = exact;
	slot->until = mono_s() + ZONE_CACHE_TTL_S;
}

int publisher_zone_known(struct publisher *p, const char *identifier)
{
	char zone[256];
	return p->cfg->dns.n_zones > 0 || !p->have_server ||
	       zone_cached(p, identifier, zone, sizeof(zone));
}

int publisher_zone_of(struct publisher *p, const char *identifier, char *zone, size_t len,
                      struct acmera_errmsg *e)
{
	const struct config *cfg = p->cfg;
	if (cfg->dns.n_zones > 0) {
		const char *z = dns_zone_for_name(identifier, (const char *const *)cfg->dns.zones,
		                                  cfg->dns.n_zones);
		if (!z)
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "name %s is outside the configured zones", identifier);
		snprintf(zone, len, "%s", z);
		return 0;
	}
	if (!p->have_server)
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "no zone configured for %s and no DNS server to ask",
		                   identifier);
	if (zone_cached(p, identifier, zone, len))
		return 0;
	char owner[300];
	snprintf(owner, sizeof(owner), "_acme-challenge.%s", identifier);
	int rc = dns_zone_find_soa(&p->server, owner, zone, len, e);
	if (rc)
		return acmera_fail_wrap(e, rc, "zone of %s", identifier);
	zone_remember(p, identifier, zone);
	return 0;
}

/* Sends one UPDATE (or hook runs) for the records of one zone. */
static int send_zone(struct publisher *p, const char *zone, enum dns_update_op op,
                     struct pub_record **recs, size_t n, struct acmera_errmsg *e)
{
	struct dns_txt *txt = calloc(n, sizeof(*txt));
	int rc;
	if (!txt)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		txt[i].name = recs[i]->name;
		txt[i].value = recs[i]->value;
	}
	const char *verb = op == DNS_UPDATE_ADD ? "add" : "delete";
	if (p->cfg->dns.hook) {
		rc = dns_hook_run(p->cfg->dns.hook, op, txt, n, HOOK_TIMEOUT_MS, e);
		p->messages += n;
	} else {
		rc = dns_update_send(&p->server, &p->key, zone, op, txt, n,
		                     (uint32_t)p->cfg->dns.ttl, e);
		p->messages++;
	}
	if (rc)
		log_event(LOG_LVL_ERROR, "dns.update", "op=%s zone=%s records=%zu error=%s", verb,
		          zone, n, log_qv(e ? e->text : ""));
	else
		log_event(LOG_LVL_INFO, "dns.update", "op=%s zone=%s records=%zu via=%s", verb,
		          zone, n, p->cfg->dns.hook ? "hook" : "rfc2136");
	if (rc == 0 && op == DNS_UPDATE_ADD && p->cfg->dns.propagation_check && p->have_server) {
		rc = dns_wait_visible(&p->server, zone, txt, n,
		                      p->cfg->dns.propagation_timeout * 1000, 500, e);
		if (rc == 0)
			log_event(LOG_LVL_INFO, "dns.visible", "zone=%s records=%zu", zone, n);
	}
	free(txt);
	return rc;
}

/* Calls send_zone once per distinct zone among recs. */
static int for_each_zone(struct publisher *p, enum dns_update_op op, struct pub_record *recs,
                         size_t n, struct acmera_errmsg *e)
{
	struct pub_record **group = calloc(n ? n : 1, sizeof(*group));
	char *done = calloc(n ? n : 1, 1);
	int first_rc = 0;
	if (!group || !done) {
		free(group);
		free(done);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		size_t k = 0;
		for (size_t j = i; j < n; j++) {
			if (!done[j] && strcasecmp(recs[j].zone, recs[i].zone) == 0) {
				group[k++] = &recs[j];
				done[j] = 1;
			}
		}
		struct acmera_errmsg zerr = {{0}};
		int rc = send_zone(p, recs[i].zone, op, group, k, &zerr);
		if (rc) {
			if (!first_rc) {
				first_rc = rc;
				if (e)
					*e = zerr;
			}
			continue;
		}
		for (size_t j = 0; j < k; j++)
			group[j]->sent = 1;
	}
	free(group);
	free(done);
	return first_rc;
}

/* Opens a batch on the publisher's handle unless its owner has one open (the
 * records then join that). 1 when this call opened it. */
static int batch_open(struct publisher *p, int sync)
{
	return (sync ? store_batch_begin(p->store, NULL)
	             : store_batch_begin_nosync(p->store, NULL)) == 0;
}

int publisher_add(struct publisher *p, struct pub_record *recs, size_t n, struct acmera_errmsg *e)
{
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < n; i++) {
		const char *ident = recs[i].name + strlen("_acme-challenge.");
		/* Usually settled by the caller already (one SOA lookup per name at most). */
		int rc = recs[i].zone[0]
		             ? 0
		             : publisher_zone_of(p, ident, recs[i].zone, sizeof(recs[i].zone), e);
		if (rc)
			return rc;
		if (!dns_name_allowed(recs[i].name, recs[i].zone))
			return acmera_fail(e, ACMERA_ERR_INVAL, "refusing to publish %s in zone %s",
			                   recs[i].name, recs[i].zone);
	}
	/* Remember first, durably, in one commit: a crash or a power loss between here
	 * and the UPDATE leaves a note to clean. */
	int batch = batch_open(p, 1), rc = 0;
	for (size_t i = 0; i < n; i++)
		recs[i].id = 0;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_dns_record_add(p->store, recs[i].zone, recs[i].name, recs[i].value, now,
		                          &recs[i].id, e);
	if (batch && store_batch_end(p->store, rc ? NULL : e)) {
		for (size_t i = 0; i < n; i++)
			recs[i].id = 0; /* undone with the batch */
		if (rc == 0)
			rc = ACMERA_ERR_STORE;
	}
	if (rc)
		return rc; /* the notes kept are deleted with their run's records */
	return for_each_zone(p, DNS_UPDATE_ADD, recs, n, e);
}

int publisher_delete(struct publisher *p, struct pub_record *recs, size_t n,
                     struct acmera_errmsg *e)
{
	for (size_t i = 0; i < n; i++)
		recs[i].sent = 0;
	int rc = for_each_zone(p, DNS_UPDATE_DELETE, recs, n, e);
	/* The notes of deleted records go in one commit, after every UPDATE (a batch
	 * holds the store's write lock), and without the sync: a note that a power loss
	 * brings back only makes a later cleanup delete the record again. */
	int batch = batch_open(p, 0);
	for (size_t i = 0; i < n; i++)
		if (recs[i].sent && recs[i].id > 0 &&
		    store_dns_record_remove(p->store, recs[i].id, NULL) != 0)
			recs[i].sent = 0; /* still noted: deleted again later */
	/* A failed commit undid every removal: all are tried again later. */
	int undone = batch && store_batch_end(p->store, NULL) != 0;
	for (size_t i = 0; i < n && !undone; i++)
		if (recs[i].sent)
			recs[i].id = 0;
	return rc;
}

int publisher_cleanup(struct publisher *p, struct acmera_errmsg *e)
{
	struct store_dns_record *rows = NULL;
	size_t n = 0;
	int rc = store_dns_record_list(p->store, &rows, &n, e);
	if (rc || n == 0)
		return rc;
	struct pub_record *recs = calloc(n, sizeof(*recs));
	if (!recs) {
		store_dns_records_free(rows, n);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(recs[i].name, sizeof(recs[i].name), "%s", rows[i].name);
		snprintf(recs[i].value, sizeof(recs[i].value), "%s", rows[i].value);
		snprintf(recs[i].zone, sizeof(recs[i].zone), "%s", rows[i].zone);
		recs[i].id = rows[i].id;
	}
	log_event(LOG_LVL_INFO, "dns.cleanup", "records=%zu", n);
	rc = publisher_delete(p, recs, n, e);
	free(recs);
	store_dns_records_free(rows, n);
	return rc;
}
