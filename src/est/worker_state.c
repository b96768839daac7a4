/* See worker_state.h. */
#include "est/worker_state.h"

#include "base/b64.h"
#include "base/clock.h"
#include "pki/cert.h"
#include "store/store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CSR_SLOTS 128
#define CSR_CACHE_MAX_DER 8192 /* larger CSRs are parsed every time */
#define ANSWER_SLOTS 64
#define CERT_SLOTS 256
#define VERSION_CHECK_MS 100

struct cert_slot {
	char digest[65]; /* "" when empty */
	char *chain_pem;
	int64_t not_after;
	int64_t version; /* store_data_version when it was read */
};

struct answer_slot {
	char *pem; /* the chain as given, and which form was encoded */
	int skip_leaf;
	char *body;
	size_t len;
};

/* csr first: a struct csr_info handed out is the start of its slot. */
struct csr_slot {
	struct csr_info csr;        /* empty: req NULL */
	const void *passed_profile; /* the policy this CSR passed, for passed_name */
	char passed_name[256];
};

struct worker_state {
	struct store *st;
	struct csr_slot csr[CSR_SLOTS]; /* by the DER's bytes */
	struct answer_slot answer[ANSWER_SLOTS];
	struct cert_slot cert[CERT_SLOTS]; /* by CSR digest */
	char *cacerts_pem;                 /* the newest issued chain /cacerts was learnt from */
	int64_t cacerts_version;           /* store_data_version when it was read */
	int64_t version;                   /* store_data_version as last asked */
	int64_t version_ms;                /* when (monotonic ms), 0 never */
	struct csr_slot uncached;          /* the last CSR too large for the cache */
};

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_free(void *arg)
{
	struct worker_state *ws = arg;
	store_close(ws->st);
	for (size_t i = 0; i < CSR_SLOTS; i++)
		csr_info_free(&ws->csr[i].csr);
	for (size_t i = 0; i < ANSWER_SLOTS; i++) {
		free(ws->answer[i].pem);
		free(ws->answer[i].body);
	}
	for (size_t i = 0; i < CERT_SLOTS; i++)
		free(ws->cert[i].chain_pem);
	free(ws->cacerts_pem);
	csr_info_free(&ws->uncached.csr);
	free(ws);
}

static void state_key_make(void)
{
	state_key_ok = pthread_key_create(&state_key, state_free) == 0;
}

static struct worker_state *state(struct acmera_errmsg *e)
{
	if (pthread_once(&state_once, state_key_make) != 0 || !state_key_ok) {
		acmera_fail(e, ACMERA_ERR_NOMEM, "no thread-specific key for the worker state");
		return NULL;
	}
	struct worker_state *ws = pthread_getspecific(state_key);
	if (ws)
		return ws;
	ws = calloc(1, sizeof(*ws));
	if (!ws || pthread_setspecific(state_key, ws) != 0) {
		free(ws);
		acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		return NULL;
	}
	return ws;
}

struct store *est_worker_store(const char *path, struct acmera_errmsg *e)
{
	struct worker_state *ws = state(e);
	if (!ws)
		return NULL;
	if (!ws->st && store_open(path, &ws->st, e))
		return NULL;
	return ws->st;
}

/* FNV-1a of the length and at most the first SLOT_HASH_MAX bytes: a slot index
 * for bytes that are then compared in full. The first bytes of a CSR or of a PEM
 * chain (its leaf, with a random serial) tell them apart. */
#define SLOT_HASH_MAX 256
static size_t slot_of(const void *p, size_t n, size_t slots)
{
	const unsigned char *b = p;
	uint64_t h = (1469598103934665603ULL ^ n) * 1099511628211ULL;
	for (size_t i = 0; i < n && i < SLOT_HASH_MAX; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return (size_t)(h % slots);
}

int est_worker_csr(const uint8_t *der, size_t len, const struct csr_info **out,
                   struct acmera_errmsg *e)
{
	struct worker_state *ws = state(e);
	if (!ws)
		return ACMERA_ERR_NOMEM;
	struct csr_slot *slot = &ws->uncached;
	if (len <= CSR_CACHE_MAX_DER) {
		slot = &ws->csr[slot_of(der, len, CSR_SLOTS)];
		if (slot->csr.req && slot->csr.der_len == len &&
		    memcmp(slot->csr.der, der, len) == 0) {
			*out = &slot->csr;
			return 0;
		}
	}
	struct csr_info fresh = {0};
	int rc = csr_parse_der(der, len, &fresh, e);
	if (rc)
		return rc;
	csr_info_free(&slot->csr);
	*slot = (struct csr_slot){.csr = fresh};
	*out = &slot->csr;
	return 0;
}

int est_worker_csr_passed(const struct csr_info *csr, const void *policy, const char *name)
{
	const struct csr_slot *slot = (const struct csr_slot *)csr;
	return slot->passed_profile == policy && strcmp(slot->passed_name, name) == 0;
}

void est_worker_csr_pass(const struct csr_info *csr, const void *policy, const char *name)
{
	struct csr_slot *slot = (struct csr_slot *)csr;
	if (strlen(name) >= sizeof(slot->passed_name))
		return;
	slot->passed_profile = policy;
	strcpy(slot->passed_name, name);
}

int est_worker_pkcs7(const char *pem, int skip_leaf, const char **body, size_t *len,
                     struct acmera_errmsg *e)
{
	struct worker_state *ws = state(e);
	if (!ws)
		return ACMERA_ERR_NOMEM;
	size_t pem_len = strlen(pem);
	struct answer_slot *a = &ws->answer[slot_of(pem, pem_len, ANSWER_SLOTS)];
	if (a->pem && a->skip_leaf == skip_leaf && strcmp(a->pem, pem) == 0) {
		*body = a->body;
		*len = a->len;
		return 0;
	}
	char *b64 = NULL, *copy = NULL;
	uint8_t *der = NULL;
	size_t der_len = 0, n = 0;
	/* From the PEM as stored: parsing the certificates would cost far more. */
	int rc = pkcs7_certs_only_from_pem(pem, pem_len, skip_leaf, &der, &der_len, e);
	if (rc)
		return rc;
	b64 = b64_encode(der, der_len, 64);
	free(der);
	if (!b64) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	n = strlen(b64);
	if (!(copy = strdup(pem))) {
		free(b64);
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto out;
	}
	free(a->pem);
	free(a->body);
	*a = (struct answer_slot){.pem = copy, .skip_leaf = skip_leaf, .body = b64, .len = n};
	*body = a->body;
	*len = a->len;
out:
	return rc;
}

/* The store's data_version, asked at most every VERSION_CHECK_MS: asking takes
 * SQLite's read locks (two fcntl calls), a tenth of a cached answer's cost. A
 * change committed by another process (a revocation) is therefore seen within
 * that time. Read before a lookup: a change after it is seen by the next check. */
static int store_version(struct worker_state *ws, struct store *st, int64_t *out,
                         struct acmera_errmsg *e)
{
	int64_t now_ms = mono_ms();
	if (ws->version_ms == 0 || now_ms - ws->version_ms >= VERSION_CHECK_MS) {
		int rc = store_data_version(st, &ws->version, e);
		if (rc)
			return rc;
		ws->version_ms = now_ms ? now_ms : 1;
	}
	*out = ws->version;
	return 0;
}

/* This thread's state and the store's data_version (see store_version). */
static int state_at_version(struct store *st, struct worker_state **ws, int64_t *version,
                            struct acmera_errmsg *e)
{
	*ws = state(e);
	return *ws ? store_version(*ws, st, version, e) : ACMERA_ERR_NOMEM;
}

int est_worker_cert(struct store *st, const char *csr_sha256, int64_t now, const char **chain_pem,
                    struct acmera_errmsg *e)
{
	struct worker_state *ws = NULL;
	int64_t version = 0;
	int rc = state_at_version(st, &ws, &version, e);
	if (rc)
		return rc;
	size_t n = strlen(csr_sha256);
	struct cert_slot *c = &ws->cert[slot_of(csr_sha256, n, CERT_SLOTS)];
	if (c->chain_pem && c->version == version && now < c->not_after &&
	    strcmp(c->digest, csr_sha256) == 0) {
		*chain_pem = c->chain_pem;
		return 0;
	}
	struct store_cert found = {0};
	rc = store_cert_lookup(st, csr_sha256, now, &found, e);
	if (rc) {
		store_cert_free(&found);
		return rc;
	}
	free(c->chain_pem);
	*c = (struct cert_slot){
	    .chain_pem = found.chain_pem, .not_after = found.not_after, .version = version};
	found.chain_pem = NULL;
	snprintf(c->digest, sizeof(c->digest), "%s", csr_sha256);
	store_cert_free(&found);
	*chain_pem = c->chain_pem;
	return 0;
}

int est_worker_cacerts(struct store *st, int64_t now, const char **body, size_t *len,
                       struct acmera_errmsg *e)
{
	struct worker_state *ws = NULL;
	int64_t version = 0;
	int rc = state_at_version(st, &ws, &version, e);
	if (rc)
		return rc;
	if (!ws->cacerts_pem || ws->cacerts_version != version) {
		struct store_cert c = {0};
		rc = store_cert_newest(st, now, &c, e);
		if (rc) {
			store_cert_free(&c);
			return rc;
		}
		free(ws->cacerts_pem);
		ws->cacerts_pem = c.chain_pem;
		ws->cacerts_version = version;
		c.chain_pem = NULL;
		store_cert_free(&c);
	}
	return est_worker_pkcs7(ws->cacerts_pem, 1, body, len, e);
}
