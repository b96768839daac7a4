/* Name checks for the DNS-01 publisher: which names the TSIG key may touch, and
 * which configured zone holds a name. Pure string work, no I/O. */
#include "dns/update.h"
#include "dns/zone.h"

#include <string.h>
#include <strings.h>

#define ACME_LABEL "_acme-challenge"
#define NAME_MAX_LEN 253 /* presentation form without the trailing dot */
#define LABEL_MAX_LEN 63

/* Length of name without one trailing dot. */
static size_t name_len(const char *name)
{
	size_t n = strnlen(name, NAME_MAX_LEN + 2);
	if (n > 0 && name[n - 1] == '.')
		n--;
	return n;
}

/* 1 when the first n characters are labels of letters, digits, '-' and '_', each 1..63 long,
 * at most 253 in all. The underscore is needed for _acme-challenge itself. */
static int name_syntax_ok(const char *s, size_t n)
{
	size_t label = 0;
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
		if (++label > LABEL_MAX_LEN)
			return 0;
	}
	return label > 0;
}

/* 1 when name (length n) equals zone (length z) or ends with "." + zone, ignoring case. */
static int at_or_below(const char *name, size_t n, const char *zone, size_t z)
{
	if (n == z)
		return strncasecmp(name, zone, z) == 0;
	if (n > z && name[n - z - 1] == '.')
		return strncasecmp(name + n - z, zone, z) == 0;
	return 0;
}

int dns_name_allowed(const char *name, const char *zone)
{
	static const size_t acme = sizeof(ACME_LABEL) - 1;
	if (!name || !zone)
		return 0;
	size_t n = name_len(name), z = name_len(zone);
	if (!name_syntax_ok(name, n) || !name_syntax_ok(zone, z))
		return 0;
	/* "_acme-challenge." followed by at least the zone. */
	if (n < acme + 1 + z || strncasecmp(name, ACME_LABEL ".", acme + 1) != 0)
		return 0;
	return at_or_below(name + acme + 1, n - acme - 1, zone, z);
}

const char *dns_zone_for_name(const char *name, const char *const *zones, size_t nzones)
{
	const char *best = NULL;
	size_t best_len = 0;
	if (!name || !zones)
		return NULL;
	size_t n = name_len(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return NULL;
	for (size_t i = 0; i < nzones; i++) {
		if (!zones[i])
			continue;
		size_t z = name_len(zones[i]);
		if (z == 0 || z > NAME_MAX_LEN)
			continue;
		if (z > best_len && at_or_below(name, n, zones[i], z)) {
			best = zones[i];
			best_len = z;
		}
	}
	return best;
}
