/* Building answers: headers, JSON bodies, problem documents (RFC 8555 6.7, RFC 7807). */
#include "ca/internal.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ca_header(struct ca_response *rs, const char *name, const char *value)
{
	char *n, *v;
	if (rs->n_headers >= CA_MAX_HEADERS) {
		log_event(LOG_LVL_ERROR, "ca.reply", "error=%s name=%s", log_qv("too many headers"),
		          log_qv(name));
		return;
	}
	n = strdup(name);
	v = strdup(value);
	if (!n || !v) {
		free(n);
		free(v);
		return;
	}
	rs->headers[2 * rs->n_headers] = n;
	rs->headers[2 * rs->n_headers + 1] = v;
	rs->n_headers++;
	rs->headers[2 * rs->n_headers] = NULL;
}

static void set_body(struct ca_response *rs, int status, const char *type, char *text)
{
	free(rs->body);
	rs->status = status;
	rs->content_type = type;
	rs->body = (uint8_t *)text;
	rs->len = text ? strlen(text) : 0;
}

void ca_reply_body(struct ca_response *rs, int status, const char *content_type, const void *data,
                   size_t len)
{
	uint8_t *copy = malloc(len + 1);
	if (!copy) {
		ca_reply_problem(rs, 500, "serverInternal", NULL, "out of memory");
		return;
	}
	memcpy(copy, data, len);
	copy[len] = '\0';
	free(rs->body);
	rs->status = status;
	rs->content_type = content_type;
	rs->body = copy;
	rs->len = len;
}

void ca_reply_json(struct ca_response *rs, int status, json_t *json)
{
	char *text = json ? json_dumps(json, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(json);
	if (!text) {
		ca_reply_problem(rs, 500, "serverInternal", NULL, "out of memory");
		return;
	}
	set_body(rs, status, "application/json", text);
}

static json_t *problem_json(const char *type, int status, const char *detail)
{
	char full[96];
	snprintf(full, sizeof(full), "%s%s", CA_PROBLEM_PREFIX, type);
	return json_pack("{s:s, s:s, s:i}", "type", full, "detail", detail ? detail : "", "status",
	                 status);
}

char *ca_problem_text(const char *type, int status, const char *detail)
{
	json_t *j = problem_json(type, status, detail);
	char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	return text;
}

void ca_reply_problem(struct ca_response *rs, int status, const char *type, json_t *subproblems,
                      const char *fmt, ...)
{
	char detail[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	snprintf(rs->problem, sizeof(rs->problem), "%s", type);
	json_t *j = problem_json(type, status, detail);
	if (j && subproblems)
		json_object_set(j, "subproblems", subproblems);
	json_decref(subproblems);
	char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	json_decref(j);
	if (!text) /* a fixed answer when even that failed */
		text = strdup("{\"type\":\"" CA_PROBLEM_PREFIX "serverInternal\",\"status\":500}");
	set_body(rs, text && j ? status : 500, "application/problem+json", text);
}

void ca_reply_store_error(struct ca_response *rs, int rc, const struct acmera_errmsg *e)
{
	log_event(LOG_LVL_ERROR, "ca.store", "error=%s", log_qv(e ? e->text : ""));
	if (rc == ACMERA_ERR_NOMEM) {
		ca_reply_problem(rs, 500, "serverInternal", NULL, "out of memory");
		return;
	}
	ca_header(rs, "Retry-After", "5");
	ca_reply_problem(rs, 503, "serverInternal", NULL, "the CA's store is not available");
}

void ca_response_free(struct ca_response *rs)
{
	if (!rs)
		return;
	free(rs->body);
	for (size_t i = 0; i < 2 * rs->n_headers; i++)
		free(rs->headers[i]);
	memset(rs, 0, sizeof(*rs));
}
