/* "HOST:PORT" of the DNS server that receives UPDATEs and queries. */
#include "dns/update.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_PORT 53
#define DEFAULT_TIMEOUT_MS 3000
#define DEFAULT_RETRIES 2

static int parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	if (*s == '\0' || strlen(s) > 5)
		return -1;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int dns_server_parse(const char *text, struct dns_server *out, struct acmera_errmsg *e)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port = NULL;
	size_t hlen;
	unsigned char addr[sizeof(struct in6_addr)];

	if (!text || !out)
		return acmera_fail(e, ACMERA_ERR_INVAL, "no DNS server given");
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (!close)
			return acmera_fail(e, ACMERA_ERR_INVAL, "DNS server '%.80s': missing ']'",
			                   text);
		hlen = (size_t)(close - text - 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0')
			return acmera_fail(e, ACMERA_ERR_INVAL,
			                   "DNS server '%.80s': expected ':PORT' after ']'", text);
		text++;
	} else {
		const char *colon = strchr(text, ':');
		/* One colon separates IPv4 and port; more mean a bare IPv6 address. */
		if (colon && !strchr(colon + 1, ':')) {
			hlen = (size_t)(colon - text);
			port = colon + 1;
		} else {
			hlen = strlen(text);
		}
	}
	if (hlen == 0 || hlen >= sizeof(host))
		return acmera_fail(e, ACMERA_ERR_INVAL, "DNS server '%.80s': bad address", text);
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	int v6 = inet_pton(AF_INET6, host, addr) == 1;
	if (!v6 && inet_pton(AF_INET, host, addr) != 1)
		return acmera_fail(e, ACMERA_ERR_INVAL,
		                   "DNS server '%s' is not an IP address (names are not resolved)",
		                   host);
	memset(out, 0, sizeof(*out));
	out->port = DEFAULT_PORT;
	if (port && parse_port(port, &out->port) != 0)
		return acmera_fail(e, ACMERA_ERR_INVAL, "DNS server %s: bad port '%.16s'", host,
		                   port);
	snprintf(out->host, sizeof(out->host), "%s", host);
	out->timeout_ms = DEFAULT_TIMEOUT_MS;
	out->retries = DEFAULT_RETRIES;
	return 0;
}
