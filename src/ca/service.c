/* The CA service: set-up from [ca], and the HTTPS handler around
 * ca_service_process. See service.h. */
#include "ca/internal.h"
#include "ca/key_cache.h"
#include "ca/names.h"
#include "ca/nonce.h"
#include "ca/signer.h"
#include "ca/wal_syncer.h"

#include "base/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Account keys kept: the accounts that keep a CA busy are its RAs, a few. */
#define CA_KEY_CACHE_SLOTS 1024

#define REQUEUE_MAX 1024

static void close_store(void *p)
{
	ca_store_close(p);
}

static int has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; p && *p;) {
		p += strspn(p, " ,\t");
		size_t len = strcspn(p, " ,\t");
		if (len == n && strncmp(p, w, n) == 0)
			return 1;
		p += len;
	}
	return 0;
}

static int set_base(struct ca_service *s, struct acmera_errmsg *e)
{
	const struct config *cfg = s->cfg;
	int n;
	if (cfg->ca.url)
		n = snprintf(s->base, sizeof(s->base), "%s", cfg->ca.url);
	else
		n = snprintf(s->base, sizeof(s->base), "https://%s%s",
		             cfg->ca.listen[0] == ':' ? "localhost" : "", cfg->ca.listen);
	if (n < 0 || (size_t)n >= sizeof(s->base) - 128)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "[ca] url: too long");
	while (n > 0 && s->base[n - 1] == '/')
		s->base[--n] = '\0';
	return 0;
}

static int set_domains(struct ca_service *s, struct acmera_errmsg *e)
{
	const struct config *cfg = s->cfg;
	if (cfg->ca.n_domains == 0)
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "[ca] domains: name the domains this CA issues for");
	for (size_t i = 0; i < cfg->ca.n_domains; i++) {
		char name[CA_DNS_NAME_MAX + 2];
		snprintf(name, sizeof(name), "%s", cfg->ca.domains[i]);
		size_t len = strlen(name);
		if (len && name[len - 1] == '.')
			name[len - 1] = '\0';
		for (char *p = name; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		s->domains[i] = strdup(name);
		if (!s->domains[i])
			return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		s->n_domains++;
	}
	return 0;
}

/* Challenges a stop left processing are validated again. */
static void requeue(struct ca_service *s)
{
	struct acmera_errmsg e = {{0}};
	struct ca_store *st = ca_service_store(s, &e);
	char(*ids)[CA_ID_LEN + 1] = calloc(REQUEUE_MAX, sizeof(*ids));
	size_t n = 0;
	if (st && ids && ca_store_challenges_processing(st, ids, REQUEUE_MAX, &n, &e) == 0)
		for (size_t i = 0; i < n; i++)
			ca_validators_submit(s->validators, ids[i]);
	if (n)
		log_event(LOG_LVL_INFO, "ca.validation", "requeued=%zu", n);
	free(ids);
}

/* The log's descriptor comes from this thread's handle, which stays open until
 * ca_service_free: the log is never removed under it. */
static int start_syncer(struct ca_service *s, struct acmera_errmsg *e)
{
	struct ca_store *st = ca_service_store(s, e);
	if (!st)
		return ACMERA_ERR_STORE;
	int fd = ca_store_wal_open(st, e);
	if (fd < 0)
		return ACMERA_ERR_IO;
	return wal_syncer_start(fd, &s->syncer, e);
}

int ca_service_new(const struct config *cfg, struct ca_service **out, struct acmera_errmsg *e)
{
	struct ca_service *s = calloc(1, sizeof(*s));
	int rc;
	*out = NULL;
	if (!s)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	s->cfg = cfg;
	if (pthread_mutex_init(&s->renew_mu, NULL) != 0) {
		free(s);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	}
	if (pthread_key_create(&s->store_key, close_store) != 0) {
		pthread_mutex_destroy(&s->renew_mu);
		free(s);
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of thread keys");
	}
	s->store_key_made = 1;
	const char *kt = cfg->ca.key_types;
	s->allow_p256 = has_word(kt, "p256");
	s->allow_p384 = has_word(kt, "p384");
	s->allow_rsa = has_word(kt, "rsa");
	s->allow_ed25519 = has_word(kt, "ed25519");
	if ((rc = set_base(s, e)) || (rc = set_domains(s, e)) ||
	    (rc = ca_nonces_new(0, &s->nonces, e)) ||
	    (rc = ca_key_cache_new(CA_KEY_CACHE_SLOTS, &s->keys, e)))
		goto fail;
	if (cfg->ca.eab_file && (rc = ca_eab_load(cfg->ca.eab_file, &s->eab, e)))
		goto fail;
	if (cfg->ca.eab_required && !s->eab) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "[ca] eab_required needs eab_file");
		goto fail;
	}
	if (!cfg->ca.issuer_cert != !cfg->ca.issuer_key) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "[ca] issuer_cert and issuer_key go together");
		goto fail;
	}
	s->signer_cfg = (struct ca_signer_config){.dir = cfg->ca.dir,
	                                          .cert_file = cfg->ca.issuer_cert,
	                                          .key_file = cfg->ca.issuer_key,
	                                          .name = cfg->ca.name,
	                                          .leaf_lifetime = cfg->ca.lifetime};
	struct ca_signer *signer = NULL;
	rc = ca_signer_open(&s->signer_cfg, &signer, e);
	if (rc)
		goto fail;
	atomic_store(&s->signer, signer);
	rc = ca_validators_new(s, cfg->ca.validators, &s->validators, e);
	if (rc)
		goto fail;
	if ((rc = start_syncer(s, e)))
		goto fail;
	requeue(s);
	*out = s;
	return 0;
fail:
	ca_service_free(s);
	return rc;
}

void ca_service_free(struct ca_service *s)
{
	if (!s)
		return;
	ca_validators_free(s->validators);
	ca_service_signers_free(s);
	ca_eab_free(s->eab);
	ca_key_cache_free(s->keys);
	ca_nonces_free(s->nonces);
	for (size_t i = 0; i < s->n_domains; i++)
		free(s->domains[i]);
	if (s->store_key_made) {
		/* The calling thread's handle; other threads closed theirs as they ended. */
		ca_store_close(pthread_getspecific(s->store_key));
		pthread_setspecific(s->store_key, NULL);
		pthread_key_delete(s->store_key);
	}
	/* After the last handle: the syncer's descriptor of the log closes last
	 * (store_wal_open). The workers are gone, so nothing waits for a sync. */
	wal_syncer_stop(s->syncer);
	pthread_mutex_destroy(&s->renew_mu);
	free(s);
}

const char *ca_service_root_pem(const struct ca_service *s)
{
	return ca_signer_root_pem(atomic_load(&s->signer));
}
