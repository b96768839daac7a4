/* Listening sockets: each worker has its own, all on one address (SO_REUSEPORT),
 * so the kernel spreads new connections over the workers' loops. */
#include "http/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
	if (v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* spec into an address; an empty host means every address (IPv6 socket that also
 * takes IPv4, see open_socket). Numeric hosts only: no DNS at start. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len, int *any,
                        struct acmera_errmsg *e)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	size_t hlen;

	if (!spec || !*spec)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "no listen address given");
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':')
			return acmera_fail(e, ACMERA_ERR_CONFIG,
			                   "listen '%.80s': expected [IPv6]:PORT", spec);
		hlen = (size_t)(close - spec - 1);
		port = close + 2;
		spec++;
	} else {
		const char *colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			return acmera_fail(
			    e, ACMERA_ERR_CONFIG,
			    "listen '%.80s': expected HOST:PORT, [IPv6]:PORT or :PORT", spec);
		hlen = (size_t)(colon - spec);
		port = colon + 1;
	}
	if (hlen >= sizeof(host))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "listen '%.80s': host too long", spec);
	memcpy(host, spec, hlen);
	host[hlen] = '\0';

	uint16_t p;
	if (parse_port(port, &p))
		return acmera_fail(e, ACMERA_ERR_CONFIG, "listen '%.80s': bad port", spec);

	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	*any = hlen == 0;
	if (hlen == 0 || inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(p);
		if (hlen == 0)
			in6->sin6_addr = in6addr_any;
		*len = sizeof(*in6);
		return 0;
	}
	if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(p);
		*len = sizeof(*in4);
		return 0;
	}
	return acmera_fail(e, ACMERA_ERR_CONFIG, "listen '%.80s': '%s' is not an IP address", spec,
	                   host);
}

static int open_socket(const struct sockaddr_storage *ss, socklen_t len, int any)
{
	int one = 1, zero = 0;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) ||
	    (any && ss->ss_family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) ||
	    bind(fd, (const struct sockaddr *)ss, len) || listen(fd, SOMAXCONN)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

int http_listen_open(const char *spec, int port_override, int *fd_out, uint16_t *port,
                     struct acmera_errmsg *e)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int any, fd;

	int rc = parse_listen(spec, &ss, &len, &any, e);
	if (rc)
		return rc;
	if (port_override >= 0) {
		if (ss.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port_override);
		else
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port_override);
	}
	fd = open_socket(&ss, len, any);
	if (fd < 0 && any && (errno == EAFNOSUPPORT || errno == EADDRNOTAVAIL)) {
		/* No IPv6 on this host: every IPv4 address then. */
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		uint16_t p = ((struct sockaddr_in6 *)&ss)->sin6_port;
		memset(&ss, 0, sizeof(ss));
		in4->sin_family = AF_INET;
		in4->sin_port = p;
		in4->sin_addr.s_addr = htonl(INADDR_ANY);
		fd = open_socket(&ss, sizeof(*in4), 0);
	}
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "listen '%.80s': %s", spec, strerror(errno));

	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &blen)) {
		int err = errno;
		close(fd);
		return acmera_fail(e, ACMERA_ERR_IO, "listen '%.80s': %s", spec, strerror(err));
	}
	*port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
	                                          : ((struct sockaddr_in *)&bound)->sin_port);
	*fd_out = fd;
	return 0;
}
