/* Untrusted HTTP header values the ACME client acts on: Retry-After (RFC 9110
 * 10.2.3, HTTP-date 5.6.7) and Link (RFC 8288). */
#include "acme/resources.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RETRY_AFTER_MAX 86400
#define HEADER_VALUE_MAX 65536 /* longer header values are refused */
#define LINK_MAX_URLS 32       /* matches kept per header value */

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static int two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + (s[1] - '0');
}

static int month_index(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	for (int i = 0; i < 12; i++)
		if (strncasecmp(s, months + 3 * i, 3) == 0)
			return i + 1;
	return -1;
}

static int is_day_name(const char *s, size_t n, int full)
{
	static const char *const days[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
	                                   "Friday", "Saturday", "Sunday"};
	for (size_t i = 0; i < 7; i++) {
		size_t dl = full ? strlen(days[i]) : 3;
		if (n == dl && strncasecmp(s, days[i], dl) == 0)
			return 1;
	}
	return 0;
}

/* Checks "HH:MM:SS" shape; acme_time_parse checks the ranges. */
static int is_clock(const char *s)
{
	return two_digits(s) >= 0 && s[2] == ':' && two_digits(s + 3) >= 0 && s[5] == ':' &&
	       two_digits(s + 6) >= 0;
}

/* Rewrites the date as RFC 3339 so one strict parser validates and converts it. */
static int to_unix(int year, int mon, int day, const char *clock, int64_t *t)
{
	char iso[48];
	if (year < 1 || year > 9999 || mon < 1 || day < 1)
		return -1;
	snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%.8sZ", year, mon, day, clock);
	return acme_time_parse(iso, t) == 0 ? 0 : -1;
}

/* IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", obsolete RFC 850
 * "Sunday, 06-Nov-94 08:49:37 GMT" and asctime "Sun Nov  6 08:49:37 1994". */
static int http_date_parse(const char *s, size_t n, int64_t now, int64_t *t)
{
	const char *comma = memchr(s, ',', n);
	if (n == 29 && comma == s + 3) {
		if (!is_day_name(s, 3, 0) || memcmp(s + 3, ", ", 2) != 0 || s[7] != ' ' ||
		    s[11] != ' ' || s[16] != ' ' || !is_clock(s + 17) ||
		    memcmp(s + 25, " GMT", 4) != 0)
			return -1;
		int hi = two_digits(s + 12), lo = two_digits(s + 14);
		if (hi < 0 || lo < 0)
			return -1;
		return to_unix(hi * 100 + lo, month_index(s + 8), two_digits(s + 5), s + 17, t);
	}
	if (comma && comma > s) {
		size_t wl = (size_t)(comma - s);
		const char *d = comma + 1;
		if (n != wl + 24 || !is_day_name(s, wl, 1) || d[0] != ' ' || d[3] != '-' ||
		    d[7] != '-' || d[10] != ' ' || !is_clock(d + 11) ||
		    memcmp(d + 19, " GMT", 4) != 0)
			return -1;
		int yy = two_digits(d + 8);
		if (yy < 0)
			return -1;
		/* RFC 9110 5.6.7: a two-digit year more than 50 years ahead is in the past. */
		time_t nt = (time_t)now;
		struct tm tm;
		if (!gmtime_r(&nt, &tm))
			return -1;
		int cur = tm.tm_year + 1900;
		int year = cur - cur % 100 + yy;
		if (year > cur + 50)
			year -= 100;
		return to_unix(year, month_index(d + 4), two_digits(d + 1), d + 11, t);
	}
	if (n == 24) {
		if (!is_day_name(s, 3, 0) || s[3] != ' ' || s[7] != ' ' || s[10] != ' ' ||
		    !is_clock(s + 11) || s[19] != ' ')
			return -1;
		int day = two_digits(s + 8);
		if (s[8] == ' ' && s[9] >= '1' && s[9] <= '9')
			day = s[9] - '0'; /* asctime pads the day with a space */
		int hi = two_digits(s + 20), lo = two_digits(s + 22);
		if (hi < 0 || lo < 0)
			return -1;
		return to_unix(hi * 100 + lo, month_index(s + 4), day, s + 11, t);
	}
	return -1;
}

int http_retry_after_parse(const char *value, int64_t now, int64_t *seconds)
{
	if (!value || !seconds)
		return -1;
	size_t n = strnlen(value, 256);
	if (n == 256)
		return -1;
	const char *s = value;
	while (n && is_ows(*s)) {
		s++;
		n--;
	}
	while (n && is_ows(s[n - 1]))
		n--;
	if (n == 0)
		return -1;
	int64_t v = 0;
	size_t i = 0;
	while (i < n && s[i] >= '0' && s[i] <= '9') {
		if (v <= RETRY_AFTER_MAX) /* saturate: any larger value clamps anyway */
			v = v * 10 + (s[i] - '0');
		i++;
	}
	if (i == n) {
		*seconds = v > RETRY_AFTER_MAX ? RETRY_AFTER_MAX : v;
		return 0;
	}
	int64_t t;
	if (http_date_parse(s, n, now, &t) != 0)
		return -1;
	/* Clamped without computing t - now where it could overflow. */
	if (t <= now)
		v = 0;
	else if (now < t - RETRY_AFTER_MAX)
		v = RETRY_AFTER_MAX;
	else
		v = t - now;
	*seconds = v;
	return 0;
}

/* RFC 9110 5.6.2 tchar. */
static int is_tchar(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* One link-param value into buf (unescaped), as token, lenient bare word, or
 * quoted-string. Advances *pp. Returns the length, or -1 when malformed. */
static long param_value(const char **pp, const char *end, char *buf)
{
	const char *p = *pp;
	long n = 0;
	if (p < end && *p == '"') {
		for (p++;; p++) {
			if (p == end)
				return -1;
			unsigned char c = (unsigned char)*p;
			if (c == '"')
				break;
			if (c == '\\') {
				if (++p == end)
					return -1;
				c = (unsigned char)*p;
			}
			if ((c < 0x20 && c != '\t') || c == 0x7f)
				return -1;
			buf[n++] = (char)c;
		}
		p++;
	} else {
		/* Servers send rel=up and even rel=http://...; take any visible run. */
		while (p < end && (unsigned char)*p > 0x20 && *p != 0x7f && *p != ';' &&
		       *p != ',' && *p != '"')
			buf[n++] = *p++;
	}
	*pp = p;
	return n;
}

/* 1 if the space-separated relation types in v include rel (case-insensitive). */
static int rel_matches(const char *v, size_t n, const char *rel)
{
	size_t rl = strlen(rel), i = 0;
	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t'))
			i++;
		size_t start = i;
		while (i < n && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - start == rl && rl && strncasecmp(v + start, rel, rl) == 0)
			return 1;
	}
	return 0;
}

/* Parses the params after one <URI>; sets *match when its rel has rel. */
static int link_params(const char **pp, const char *end, const char *rel, char *scratch, int *match)
{
	const char *p = *pp;
	int seen_rel = 0;
	*match = 0;
	for (;;) {
		while (p < end && is_ows(*p))
			p++;
		if (p == end || *p == ',')
			break;
		if (*p++ != ';')
			return -1;
		while (p < end && is_ows(*p))
			p++;
		if (p == end || *p == ';' || *p == ',')
			continue; /* tolerate empty params */
		const char *name = p;
		while (p < end && is_tchar(*p))
			p++;
		size_t nl = (size_t)(p - name);
		if (nl == 0)
			return -1;
		while (p < end && is_ows(*p))
			p++;
		long vl = 0;
		if (p < end && *p == '=') {
			p++;
			while (p < end && is_ows(*p))
				p++;
			vl = param_value(&p, end, scratch);
			if (vl < 0)
				return -1;
		}
		/* RFC 8288 3.3: only the first rel parameter counts. */
		if (nl == 3 && strncasecmp(name, "rel", 3) == 0 && !seen_rel) {
			seen_rel = 1;
			*match = rel_matches(scratch, (size_t)vl, rel);
		}
	}
	*pp = p;
	return 0;
}

int http_link_parse(const char *value, const char *rel, char ***urls, size_t *n)
{
	char **out = NULL, *scratch = NULL;
	size_t cnt = 0;
	int rc = ACMERA_ERR_INVAL;
	if (urls)
		*urls = NULL;
	if (n)
		*n = 0;
	if (!value || !rel || !urls || !n)
		return ACMERA_ERR_INVAL;
	size_t len = strnlen(value, HEADER_VALUE_MAX + 1);
	if (len > HEADER_VALUE_MAX)
		return ACMERA_ERR_INVAL;
	const char *p = value, *end = value + len;
	/* A value is never longer than the header, so one scratch buffer does. */
	scratch = malloc(len + 1);
	out = calloc(LINK_MAX_URLS, sizeof(*out));
	if (!scratch || !out) {
		rc = ACMERA_ERR_NOMEM;
		goto out;
	}
	for (;;) {
		while (p < end && (is_ows(*p) || *p == ','))
			p++;
		if (p == end)
			break;
		if (*p != '<')
			goto out;
		const char *u = ++p;
		const char *gt = memchr(u, '>', (size_t)(end - u));
		if (!gt)
			goto out;
		for (const char *c = u; c < gt; c++)
			if ((unsigned char)*c <= 0x20 || *c == 0x7f || *c == '<')
				goto out;
		p = gt + 1;
		int match;
		if (link_params(&p, end, rel, scratch, &match) != 0)
			goto out;
		if (match && cnt < LINK_MAX_URLS) {
			out[cnt] = strndup(u, (size_t)(gt - u));
			if (!out[cnt]) {
				rc = ACMERA_ERR_NOMEM;
				goto out;
			}
			cnt++;
		}
	}
	rc = 0;
out:
	free(scratch);
	if (rc || cnt == 0) {
		for (size_t i = 0; i < cnt; i++)
			free(out[i]);
		free(out);
		return rc;
	}
	*urls = out;
	*n = cnt;
	return 0;
}
