/* DNS identifier checks. See names.h. */
#include "ca/names.h"

#include <string.h>

static int is_ldh(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int ca_name_normalize(const char *in, int allow_wildcard, char out[CA_DNS_NAME_MAX + 1],
                      int *wildcard, struct acmera_errmsg *e)
{
	size_t len = in ? strnlen(in, CA_DNS_NAME_MAX + 1) : 0;
	size_t label = 0, labels = 1, start = 0;
	int wild = 0;
	if (wildcard)
		*wildcard = 0;
	out[0] = '\0';
	if (len == 0 || len > CA_DNS_NAME_MAX)
		return acmera_fail(e, ACMERA_ERR_INVAL, "a DNS name has 1 to %d characters",
		                   CA_DNS_NAME_MAX);
	if (len >= 2 && in[0] == '*' && in[1] == '.') {
		if (!allow_wildcard)
			return acmera_fail(e, ACMERA_ERR_INVAL, "no wildcard allowed here");
		wild = 1;
		start = 2;
	}
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[i] = c;
		if (i < start)
			continue;
		if (c == '.') {
			if (label == 0 || out[i - 1] == '-')
				goto bad;
			label = 0;
			labels++;
			continue;
		}
		if (!is_ldh(c) || (label == 0 && c == '-') || ++label > 63)
			goto bad;
	}
	out[len] = '\0';
	if (label == 0 || out[len - 1] == '-' || labels - (size_t)wild < 2)
		goto bad;
	if (wildcard)
		*wildcard = wild;
	return 0;
bad:
	out[0] = '\0';
	return acmera_fail(e, ACMERA_ERR_INVAL,
	                   "not a DNS name of two or more letter-digit-hyphen labels%s",
	                   allow_wildcard ? " (\"*.\" only as the first label)" : "");
}

int ca_name_is_ancestor(const char *ancestor, const char *name)
{
	size_t a = strlen(ancestor), n = strlen(name);
	if (a == 0 || n <= a + 1)
		return 0;
	return name[n - a - 1] == '.' && strcmp(name + n - a, ancestor) == 0;
}

int ca_name_allowed(const char *name, char *const *domains, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, domains[i]) == 0 || ca_name_is_ancestor(domains[i], name))
			return 1;
	return 0;
}
