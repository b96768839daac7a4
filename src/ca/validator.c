/* The validation threads: challenges queued by the HTTP workers are validated for
 * real (ca/validate.h, blocking and bounded in time) off the event loops, and the
 * verdict is committed to the store, which moves authorizations and orders on. */
#include "ca/internal.h"
#include "ca/validate.h"

#include "acme/jws.h"
#include "base/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 4096

struct ca_validators {
	struct ca_service *svc;
	struct ca_validate_config vc;
	char resolver[64];
	pthread_t *threads;
	int n_threads;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char (*queue)[CA_ID_LEN + 1];
	size_t head, count;
	int stop;
};

/* "HOST:PORT" or "[V6]:PORT" into the validation config. */
static int parse_resolver(struct ca_validators *v, const char *s, struct acmera_errmsg *e)
{
	const char *colon = strrchr(s, ':');
	const char *host = s, *host_end = colon;
	if (s[0] == '[') {
		host = s + 1;
		host_end = strchr(s, ']');
		if (!host_end || host_end[1] != ':')
			goto bad;
		colon = host_end + 1;
	}
	if (!colon || host_end <= host || (size_t)(host_end - host) >= sizeof(v->resolver))
		goto bad;
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 1 || port > 65535 || end == colon + 1)
		goto bad;
	memcpy(v->resolver, host, (size_t)(host_end - host));
	v->resolver[host_end - host] = '\0';
	v->vc.resolver = v->resolver;
	v->vc.resolver_port = (int)port;
	return 0;
bad:
	return acmera_fail(e, ACMERA_ERR_CONFIG, "[ca] resolver: '%s' is not HOST:PORT", s);
}

/* RFC 8555 8: the HTTP status a failed validation's problem carries. */
static int problem_status(const char *type)
{
	return strcmp(type, "unauthorized") == 0 ? 403 : 400;
}

/* Validates one challenge and records the verdict. */
static void validate(struct ca_validators *v, struct ca_store *st, const char *id)
{
	struct acmera_errmsg e = {{0}};
	struct ca_challenge ch = {0};
	struct ca_authz a;
	struct ca_account acct = {0};
	const char *problem = NULL;
	char *detail = NULL, *expected = NULL, *err = NULL,
	     keyauthz[CA_TOKEN_LEN + CA_THUMB_LEN + 2];
	int rc = ca_store_challenge_get(st, id, &ch, &e);
	if (!rc)
		rc = ca_store_authz_get(st, ch.authz, &a, &e);
	if (!rc)
		rc = ca_store_account_get(st, a.account, &acct, &e);
	if (rc) {
		log_event(LOG_LVL_ERROR, "ca.validation", "challenge=%s error=%s", id,
		          log_qv(e.text));
		goto out;
	}
	snprintf(keyauthz, sizeof(keyauthz), "%s.%s", ch.token, acct.thumbprint);
	if (strcmp(ch.type, "dns-01") == 0) {
		expected = acme_dns01_value(ch.token, acct.thumbprint);
		rc = expected ? ca_validate_dns01(&v->vc, a.name, expected, &problem, &detail, &e)
		              : ACMERA_ERR_NOMEM;
	} else if (strcmp(ch.type, "http-01") == 0) {
		/* No override: the name and redirect targets are asked of [ca] resolver. */
		rc = ca_validate_http01(&v->vc, a.name, ch.token, keyauthz, NULL, &problem, &detail,
		                        &e);
	} else {
		rc = acmera_fail(&e, ACMERA_ERR_INVAL, "unknown challenge type");
	}
	if (rc) {
		const char *type = problem ? problem : "serverInternal";
		err = ca_problem_text(type, problem ? problem_status(type) : 500,
		                      detail ? detail : e.text);
	}
	int64_t now = (int64_t)time(NULL);
	int frc = ca_store_challenge_finish(st, id, rc ? (err ? err : "{}") : NULL, now,
	                                    v->svc->cfg->ca.authz_lifetime, NULL);
	log_event(rc ? LOG_LVL_WARN : LOG_LVL_INFO, "ca.validation",
	          "challenge=%s type=%s name=%s result=%s problem=%s detail=%s recorded=%s", id,
	          ch.type, a.name, rc ? "invalid" : "valid", problem ? problem : "-",
	          log_qv(rc ? (detail ? detail : e.text) : ""), frc ? "no" : "yes");
out:
	free(err);
	free(detail);
	free(expected);
	ca_challenge_free(&ch);
	ca_account_free(&acct);
}

static void *validator_main(void *arg)
{
	struct ca_validators *v = arg;
	pthread_setname_np(pthread_self(), "acmera-validate");
	for (;;) {
		char id[CA_ID_LEN + 1];
		pthread_mutex_lock(&v->lock);
		while (!v->stop && v->count == 0)
			pthread_cond_wait(&v->cond, &v->lock);
		if (v->stop) {
			pthread_mutex_unlock(&v->lock);
			break;
		}
		memcpy(id, v->queue[v->head], sizeof(id));
		v->head = (v->head + 1) % QUEUE_MAX;
		v->count--;
		pthread_mutex_unlock(&v->lock);
		struct acmera_errmsg e = {{0}};
		struct ca_store *st = ca_service_store(v->svc, &e);
		if (!st) {
			/* Left processing: validated again at the next start. */
			log_event(LOG_LVL_ERROR, "ca.validation", "challenge=%s error=%s", id,
			          log_qv(e.text));
			continue;
		}
		validate(v, st, id);
	}
	return NULL;
}

int ca_validators_submit(struct ca_validators *v, const char *chall_id)
{
	int rc = 0;
	if (!v || strlen(chall_id) != CA_ID_LEN)
		return ACMERA_ERR_INVAL;
	pthread_mutex_lock(&v->lock);
	if (v->stop || v->count == QUEUE_MAX) {
		rc = ACMERA_ERR_AGAIN;
	} else {
		memcpy(v->queue[(v->head + v->count) % QUEUE_MAX], chall_id, CA_ID_LEN + 1);
		v->count++;
		pthread_cond_signal(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
	return rc;
}

int ca_validators_new(struct ca_service *s, int n, struct ca_validators **out,
                      struct acmera_errmsg *e)
{
	struct ca_validators *v = calloc(1, sizeof(*v));
	int rc;
	*out = NULL;
	if (!v)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	v->svc = s;
	v->vc.http_port = s->cfg->ca.http_port;
	v->vc.timeout_ms = s->cfg->ca.challenge_timeout;
	v->queue = calloc(QUEUE_MAX, sizeof(*v->queue));
	v->threads = calloc((size_t)(n > 0 ? n : 1), sizeof(*v->threads));
	if (!v->queue || !v->threads) {
		rc = acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
		goto fail;
	}
	rc = parse_resolver(v, s->cfg->ca.resolver, e);
	if (rc)
		goto fail;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&v->threads[i], NULL, validator_main, v) != 0) {
			rc = acmera_fail(e, ACMERA_ERR_IO, "cannot start a validation thread");
			goto fail;
		}
		v->n_threads++;
	}
	*out = v;
	return 0;
fail:
	ca_validators_free(v);
	return rc;
}

void ca_validators_free(struct ca_validators *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = 1;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	for (int i = 0; i < v->n_threads; i++)
		pthread_join(v->threads[i], NULL);
	pthread_cond_destroy(&v->cond);
	pthread_mutex_destroy(&v->lock);
	free(v->threads);
	free(v->queue);
	free(v);
}
