/* The enrollment exchange: POST the CSR, wait out 202s with the same bytes
 * (RFC 7030 4.2.3: the RA keys the job by the request, the client stays
 * stateless), read the certificate. See client.h. */
#include "est/client.h"

#include "acme/resources.h"
#include "base/b64.h"
#include "est/body.h"
#include "pki/cert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_DEFAULT_S 5 /* a 202 must carry Retry-After; when it does not */
#define RETRY_MIN_S 1     /* never spin, whatever the server says */

void est_response_text(const struct est_response *r, char *out, size_t outlen)
{
	size_t o = 0;
	int space = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; r && r->body && i < r->len && o + 1 < outlen; i++) {
		unsigned char c = r->body[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < outlen)
			out[o++] = ' ';
		space = 0;
		/* Control characters could rewrite the user's terminal. */
		out[o++] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
	}
	out[o] = '\0';
}

static int64_t mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

static void sleep_s(int64_t s)
{
	struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* "certificate for NAME, notAfter 2026-11-28T13:00:00Z" */
static void describe_leaf(X509 *leaf, char *out, size_t len)
{
	char **names = NULL, when[32] = "?";
	size_t n = 0;
	int64_t na = 0;
	if (cert_not_after(leaf, &na) == 0) {
		time_t t = (time_t)na;
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	if (cert_dns_names(leaf, &names, &n) == 0 && n > 0) {
		snprintf(out, len, "certificate for %s%s, notAfter %s", names[0],
		         n > 1 ? " (and more)" : "", when);
	} else {
		char *subj = cert_subject_line(leaf);
		snprintf(out, len, "certificate for %s, notAfter %s", subj ? subj : "?", when);
		free(subj);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int est_enroll_submit(struct est_client *c, const char *op, const uint8_t *csr_der, size_t csr_len,
                      EVP_PKEY *key, int max_wait_s, FILE *steps, STACK_OF(X509) * *chain,
                      struct acmera_errmsg *e)
{
	struct est_response r = {0};
	char text[512], line[700];
	*chain = NULL;
	/* Encoded once: every retry sends exactly these bytes. */
	char *body = b64_encode(csr_der, csr_len, 64);
	int rc = 0;
	if (!body)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	int64_t start = mono_s();
	for (;;) {
		est_response_free(&r);
		rc = est_client_post(c, op, EST_CT_PKCS10, body, strlen(body), &r, e);
		if (rc)
			goto out;
		if (r.status == 200) {
			rc = est_enroll_answer(r.body, r.len, key, chain, e);
			if (rc) {
				acmera_fail_wrap(e, rc, "POST /%s -> 200", op);
				goto out;
			}
			describe_leaf(sk_X509_value(*chain, 0), line, sizeof(line));
			if (steps)
				fprintf(steps, "POST /%s -> 200: %s\n", op, line);
			goto out;
		}
		if (r.status != 202) {
			est_response_text(&r, text, sizeof(text));
			rc = acmera_fail(e, ACMERA_ERR_REFUSED, "POST /%s -> %ld: %s", op, r.status,
			                 text[0] ? text : "(no text)");
			goto out;
		}
		int64_t wait = RETRY_DEFAULT_S;
		if (!r.retry_after ||
		    http_retry_after_parse(r.retry_after, (int64_t)time(NULL), &wait) != 0)
			wait = RETRY_DEFAULT_S;
		if (wait < RETRY_MIN_S)
			wait = RETRY_MIN_S;
		if (steps) {
			if (r.retry_after)
				fprintf(steps, "POST /%s -> 202, Retry-After %lld\n", op,
				        (long long)wait);
			else
				fprintf(steps,
				        "POST /%s -> 202 without Retry-After, waiting %lld\n", op,
				        (long long)wait);
			fflush(steps);
		}
		int64_t waited = mono_s() - start;
		if (waited + wait > max_wait_s) {
			rc =
			    acmera_fail(e, ACMERA_ERR_TIMEOUT,
			                "POST /%s: still pending after %lld s; waiting %lld s more "
			                "would pass --max-wait %d",
			                op, (long long)waited, (long long)wait, max_wait_s);
			goto out;
		}
		sleep_s(wait);
	}
out:
	est_response_free(&r);
	free(body);
	return rc;
}
