/* The enrollment exchange: POST the CSR, wait out 202s with the same bytes
 * (RFC 7030 4.2.3: the RA keys the job by the request, the client stays
 * stateless), read the certificate. A CSR bound to its TLS connection is made
 * again once if its first POST found that connection gone. See client.h. */
#include "est/client.h"

#include "acme/resources.h"
#include "base/b64.h"
#include "base/clock.h"
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

/* The first POST of a CSR bound to an earlier connection went over a new one
 * and was refused: the binding it carries is stale. Makes the CSR again for the
 * new connection into *body. Returns 1 when remade, 0 when the refusal stands. */
static int rebind_csr(struct est_client *c, const char *op, const struct est_csr_rebind *rebind,
                      const struct est_response *r, char **body, FILE *steps,
                      struct acmera_errmsg *e)
{
	char cb[EST_BINDING_B64_MAX];
	const char *type = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	if (!rebind || !est_client_new_connection(c) || (r->status != 400 && r->status != 403))
		return 0;
	int rc = est_client_channel_binding(c, cb, &type, e);
	if (rc == 0)
		rc = rebind->remake(rebind->arg, cb, &der, &len, e);
	if (rc)
		return rc;
	char *b = b64_encode(der, len, 64);
	free(der);
	if (!b)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	free(*body);
	*body = b;
	if (steps) {
		fprintf(steps,
		        "POST /%s -> %ld over a new TLS connection: CSR made again with its "
		        "%s\n",
		        op, r->status, type);
		fflush(steps);
	}
	return 1;
}

int est_enroll_submit(struct est_client *c, const char *op, const uint8_t *csr_der, size_t csr_len,
                      const struct est_csr_rebind *rebind, EVP_PKEY *key, int max_wait_s,
                      FILE *steps, STACK_OF(X509) * *chain, struct acmera_errmsg *e)
{
	struct est_response r = {0};
	char text[512], line[700];
	int first = 1, rebound = 0;
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
		if (rebind && !first && est_client_new_connection(c) && steps)
			fprintf(steps, "POST /%s: sent again over a new TLS connection, same CSR\n",
			        op);
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
			/* Once: a second new connection means the server does not keep
			 * them, and no CSR can carry a binding it will see. */
			if (first && !rebound) {
				rc = rebind_csr(c, op, rebind, &r, &body, steps, e);
				if (rc < 0)
					goto out;
				if (rc == 1) {
					rebound = 1;
					rc = 0;
					continue;
				}
			}
			est_response_text(&r, text, sizeof(text));
			rc = acmera_fail(
			    e, ACMERA_ERR_REFUSED, "POST /%s -> %ld: %s%s", op, r.status,
			    text[0] ? text : "(no text)",
			    rebind && est_client_new_connection(c)
			        ? " (the request went over a new TLS connection, not the "
			          "one whose channel binding the CSR carries)"
			        : "");
			goto out;
		}
		first = 0;
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
