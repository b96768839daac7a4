/* ACME server objects: the first byte picks the parser (directory, order, authz,
 * challenge, problem, account, RFC 3339 time), the rest is the body. */
#include "acme/resources.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void use_problem(const struct acme_problem *p)
{
	char text[300];
	acme_problem_describe(p, text, sizeof(text));
	(void)acme_problem_is(p, "badNonce");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *json = (const char *)data + 1;
	size_t len = size - 1;
	struct acmera_errmsg e;
	switch (data[0] % 7) {
	case 0: {
		struct acme_directory d;
		if (acme_directory_parse(json, len, &d, &e) == 0)
			acme_directory_free(&d);
		break;
	}
	case 1: {
		struct acme_order o;
		if (acme_order_parse(json, len, &o, &e) == 0) {
			if (o.error)
				use_problem(o.error);
			acme_order_free(&o);
		}
		break;
	}
	case 2: {
		struct acme_authz a;
		if (acme_authz_parse(json, len, &a, &e) == 0) {
			const struct acme_challenge *c = acme_authz_challenge(&a, "dns-01");
			if (c && c->error)
				use_problem(c->error);
			acme_authz_free(&a);
		}
		break;
	}
	case 3: {
		struct acme_challenge c;
		if (acme_challenge_parse(json, len, &c, &e) == 0)
			acme_challenge_free(&c);
		break;
	}
	case 4: {
		struct acme_problem p;
		if (acme_problem_parse(json, len, &p, &e) == 0) {
			use_problem(&p);
			acme_problem_free(&p);
		}
		break;
	}
	case 5: {
		struct acme_account a;
		if (acme_account_parse(json, len, &a, &e) == 0)
			acme_account_free(&a);
		break;
	}
	default: {
		char *s = strndup(json, len);
		int64_t t;
		if (s)
			(void)acme_time_parse(s, &t);
		free(s);
		break;
	}
	}
	return 0;
}
