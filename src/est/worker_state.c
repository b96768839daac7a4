/* See worker_state.h. */
#include "est/worker_state.h"

#include "est/body.h"
#include "pki/cert.h"
#include "store/store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CSR_SLOTS 128
#define CSR_CACHE_MAX_DER 8192 /* larger CSRs are parsed every time */
#define ANSWER_SLOTS 64

struct answer_slot {
	char *pem; /* the chain as given, and which form was encoded */
	int skip_leaf;
	char *body;
	size_t len;
};

struct worker_state {
	struct store *st;
	struct csr_info csr[CSR_SLOTS]; /* by SHA-256 of the DER; empty: req NULL */
	struct answer_slot answer[ANSWER_SLOTS];
	struct csr_info uncached; /* the last CSR too large for the cache */
};

static pthread_key_t state_key;
static pthread_once_t state_once = PTHREAD_ONCE_INIT;
static int state_key_ok;

static void state_free(void *arg)
{
	struct worker_state *ws = arg;
	store_close(ws->st);
	for (size_t i = 0; i < CSR_SLOTS; i++)
		csr_info_free(&ws->csr[i]);
	for (size_t i = 0; i < ANSWER_SLOTS; i++) {
		free(ws->answer[i].pem);
		free(ws->answer[i].body);
	}
	csr_info_free(&ws->uncached);
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

/* FNV-1a: a slot index for text that is then compared in full. */
static size_t slot_of(const void *p, size_t n, size_t slots)
{
	const unsigned char *b = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ULL;
	return (size_t)(h % slots);
}

int est_worker_csr(const uint8_t *der, size_t len, const struct csr_info **out,
                   struct acmera_errmsg *e)
{
	struct worker_state *ws = state(e);
	if (!ws)
		return ACMERA_ERR_NOMEM;
	struct csr_info *slot = &ws->uncached;
	if (len <= CSR_CACHE_MAX_DER) {
		slot = &ws->csr[slot_of(der, len, CSR_SLOTS)];
		if (slot->req && slot->der_len == len && memcmp(slot->der, der, len) == 0) {
			*out = slot;
			return 0;
		}
	}
	struct csr_info fresh = {0};
	int rc = csr_parse_der(der, len, &fresh, e);
	if (rc)
		return rc;
	csr_info_free(slot);
	*slot = fresh;
	*out = slot;
	return 0;
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
	STACK_OF(X509) *chain = NULL;
	char *b64 = NULL, *copy = NULL;
	size_t n = 0;
	int rc = chain_parse_pem(pem, pem_len, &chain, e);
	if (rc)
		return rc;
	if (skip_leaf) {
		if (sk_X509_num(chain) < 2) {
			rc = acmera_fail(e, ACMERA_ERR_NOTFOUND, "the chain has no CA certificate");
			goto out;
		}
		X509_free(sk_X509_shift(chain));
	}
	rc = est_body_pkcs7(chain, &b64, &n, e);
	if (rc)
		goto out;
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
	sk_X509_pop_free(chain, X509_free);
	return rc;
}
