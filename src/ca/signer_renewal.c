/* A generated intermediate renewed while acmera ca runs (see internal.h): a CA
 * that is never restarted still never reaches its intermediate's end, and its
 * leaves keep their full lifetime. */
#include "ca/internal.h"

#include "base/log.h"

#include <stdlib.h>

/* A renewal that could not be made (no root.key, the root ends first, a
 * configured CA, a disk error) is not tried again before this. */
#define RENEW_RETRY_S 3600

/* Opens the signer again at now, as a restart would, and swaps it in when that
 * made a later intermediate. Called with renew_mu held. */
static void renew(struct ca_service *s, struct ca_signer *cur, int64_t now)
{
	struct ca_signer_config sc = s->signer_cfg;
	struct ca_signer *next = NULL;
	struct acmera_errmsg e = {{0}};
	sc.now = now;
	if (ca_signer_open(&sc, &next, &e) != 0) {
		log_event(LOG_LVL_ERROR, "ca.intermediate",
		          "change=failed error=%s effect=\"the current one serves on; tried again "
		          "in an hour\"",
		          log_qv(e.text));
		return;
	}
	/* Nothing new (ca_signer_open said why at level warn). */
	if (ca_signer_issuer_not_after(next) <= ca_signer_issuer_not_after(cur)) {
		ca_signer_free(next);
		return;
	}
	struct ca_signer **r = realloc(s->retired, (s->n_retired + 1) * sizeof(*r));
	if (!r) {
		ca_signer_free(next);
		return;
	}
	s->retired = r;
	s->retired[s->n_retired++] = cur;
	atomic_store(&s->signer, next);
	log_event(LOG_LVL_INFO, "ca.intermediate", "change=swapped not_after=%lld",
	          (long long)ca_signer_issuer_not_after(next));
}

/* A renewal of cur is due at now, and was not tried within the last hour. */
static int worth_a_try(const struct ca_service *s, const struct ca_signer *cur, int64_t now)
{
	return ca_signer_renewal_due(cur, now) &&
	       now - atomic_load(&s->renew_tried) >= RENEW_RETRY_S;
}

struct ca_signer *ca_service_signer(struct ca_service *s, int64_t now)
{
	struct ca_signer *cur = atomic_load(&s->signer);
	/* Another worker renewing meanwhile: this one signs with the current signer. */
	if (!worth_a_try(s, cur, now) || pthread_mutex_trylock(&s->renew_mu) != 0)
		return cur;
	/* Looked at again under the lock: another worker may have renewed just now. */
	cur = atomic_load(&s->signer);
	if (worth_a_try(s, cur, now)) {
		atomic_store(&s->renew_tried, now);
		renew(s, cur, now);
	}
	pthread_mutex_unlock(&s->renew_mu);
	return atomic_load(&s->signer);
}

void ca_service_signers_free(struct ca_service *s)
{
	ca_signer_free(atomic_load(&s->signer));
	atomic_store(&s->signer, NULL);
	for (size_t i = 0; i < s->n_retired; i++)
		ca_signer_free(s->retired[i]);
	free(s->retired);
	s->retired = NULL;
	s->n_retired = 0;
}
