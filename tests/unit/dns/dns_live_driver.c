/* A small driver of the DNS-01 publisher for tests/integration/test_dns_update.sh (not a
 * unit test: it talks to a real named).
 *
 *   dns_live_driver SERVER KEYFILE ZONE add|delete NAME VALUE [NAME VALUE]...
 *   dns_live_driver SERVER -       ZONE wait       NAME VALUE [NAME VALUE]...
 *   dns_live_driver SERVER -       -    soa        NAME
 *
 * Environment: DNS_TIMEOUT_MS (per attempt), DNS_RETRIES, DNS_TTL (default 60),
 * DNS_WAIT_MS (for wait, default 5000). Exit 0 on success; else the error on stderr. */
#include "dns/tsig_key.h"
#include "dns/update.h"
#include "dns/zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

static int usage(void)
{
	fprintf(stderr, "usage: dns_live_driver SERVER KEYFILE|- ZONE|- add|delete|wait|soa "
	                "NAME [VALUE [NAME VALUE]...]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct acmera_errmsg e = {{0}};
	struct dns_server srv;
	struct tsig_key key;
	struct dns_txt *recs = NULL;
	size_t n = 0;
	int rc;

	if (argc < 6)
		return usage();
	const char *op = argv[4];
	if (dns_server_parse(argv[1], &srv, &e) != 0) {
		fprintf(stderr, "dns_live_driver: %s\n", e.text);
		return 1;
	}
	srv.timeout_ms = env_int("DNS_TIMEOUT_MS", srv.timeout_ms);
	srv.retries = env_int("DNS_RETRIES", srv.retries);
	if (strcmp(op, "soa") == 0) {
		char zone[256];
		rc = dns_zone_find_soa(&srv, argv[5], zone, sizeof(zone), &e);
		if (rc == 0)
			printf("%s\n", zone);
		goto done;
	}
	if ((argc - 5) % 2 != 0)
		return usage();
	n = (size_t)(argc - 5) / 2;
	recs = calloc(n, sizeof(*recs));
	if (!recs)
		return 1;
	for (size_t i = 0; i < n; i++) {
		recs[i].name = argv[5 + 2 * i];
		recs[i].value = argv[6 + 2 * i];
	}
	if (strcmp(op, "wait") == 0) {
		rc =
		    dns_wait_visible(&srv, argv[3], recs, n, env_int("DNS_WAIT_MS", 5000), 100, &e);
		goto done;
	}
	enum dns_update_op uop;
	if (strcmp(op, "add") == 0)
		uop = DNS_UPDATE_ADD;
	else if (strcmp(op, "delete") == 0)
		uop = DNS_UPDATE_DELETE;
	else
		return usage();
	rc = tsig_key_load(argv[2], 0, &key, &e);
	if (rc == 0) {
		rc = dns_update_send(&srv, &key, argv[3], uop, recs, n,
		                     (uint32_t)env_int("DNS_TTL", 60), &e);
		tsig_key_wipe(&key);
	}
done:
	free(recs);
	if (rc) {
		fprintf(stderr, "dns_live_driver: %s (%s)\n", e.text, acmera_strerror(rc));
		return 1;
	}
	return 0;
}
