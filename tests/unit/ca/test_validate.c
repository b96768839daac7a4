/* Challenge validation of `acmera ca` against real peers on 127.0.0.1: BIND 9 named (started
 * here, on a free port, serving a zone of _acme-challenge TXT records, and A/AAAA records
 * for http-01) for dns-01 and for the names of http-01, and a small HTTP server (a thread
 * here, on 127.0.0.1 and ::1) for http-01. Both are stopped by the group teardown. */
#include "ca/validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define ZONE "example.test"
#define GOOD "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
#define GOOD_A "LoqXcYV8q5ONbJQx"
#define GOOD_B "bmR7SCTNo3tiAXDfowyjxAjEuX0"
#define WRONG "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
#define KEY_AUTHZ GOOD ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
#define HOST "www.example.test"
#define CHALLENGE "/.well-known/acme-challenge/"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port on 127.0.0.1 free for both TCP and UDP just now (0 when none was found). */
static uint16_t free_port(void)
{
	for (int i = 0; i < 50; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof(a);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int t = socket(AF_INET, SOCK_STREAM, 0), u = socket(AF_INET, SOCK_DGRAM, 0);
		uint16_t port = 0;
		if (t >= 0 && u >= 0 && bind(t, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(t, (struct sockaddr *)&a, &al) == 0 &&
		    bind(u, (struct sockaddr *)&a, sizeof(a)) == 0)
			port = ntohs(a.sin_port);
		if (t >= 0)
			close(t);
		if (u >= 0)
			close(u);
		if (port)
			return port;
	}
	return 0;
}

/* ---- BIND 9 named ---- */

static char named_dir[64];
static pid_t named_pid = -1;
static uint16_t named_port;

static int write_file(const char *name, const char *fmt, ...)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", named_dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	return fclose(f);
}

/* 1 when named answers the zone's SOA (asked with plain ldns, not the code under test). */
static int named_answers(void)
{
	ldns_resolver *r = ldns_resolver_new();
	ldns_rdf *ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, "127.0.0.1");
	ldns_rdf *name = ldns_dname_new_frm_str(ZONE);
	ldns_pkt *p = NULL;
	int ok = 0;
	if (r && ns && name && ldns_resolver_push_nameserver(r, ns) == LDNS_STATUS_OK) {
		ldns_resolver_set_port(r, named_port);
		ldns_resolver_set_timeout(r, (struct timeval){0, 200000});
		ldns_resolver_set_retry(r, 1);
		if (ldns_resolver_query_status(&p, r, name, LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN,
		                               0) == LDNS_STATUS_OK &&
		    p && ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR &&
		    ldns_rr_list_rr_count(ldns_pkt_answer(p)) == 1)
			ok = 1;
	}
	ldns_pkt_free(p);
	if (name)
		ldns_rdf_deep_free(name);
	if (ns)
		ldns_rdf_deep_free(ns);
	if (r)
		ldns_resolver_deep_free(r);
	return ok;
}

/* The zone: one good value, one wrong, one split into two strings, a CNAME to a name that
 * holds the value, a set with the value among others, an RRset too big for UDP, a CNAME
 * loop, and a name with no TXT. For http-01: HOST on 127.0.0.1, v6 on ::1, both on both,
 * a CNAME to HOST, a CNAME out of the zone (named does not recurse: no address), a name
 * with no address, and A records too many for UDP. */
static int write_zone(void)
{
	char big[4096] = "", many[4096] = "";
	size_t n = 0, m = 0;
	for (int i = 1; i <= 100; i++)
		m += (size_t)snprintf(many + m, sizeof(many) - m, "many IN A 127.0.1.%d\n", i);
	for (int i = 0; i < 8; i++) {
		n += (size_t)snprintf(big + n, sizeof(big) - n, "_acme-challenge.big IN TXT \"");
		for (int k = 0; k < 200; k++)
			big[n++] = (char)('a' + (i + k) % 26);
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\"\n");
	}
	return write_file(ZONE ".db",
	                  "$TTL 60\n"
	                  "@ IN SOA ns1." ZONE ". hostmaster." ZONE ". 1 60 60 600 60\n"
	                  "@ IN NS ns1." ZONE ".\n"
	                  "ns1 IN A 127.0.0.1\n"
	                  "_acme-challenge.good IN TXT \"" GOOD "\"\n"
	                  "_acme-challenge.wrong IN TXT \"" WRONG "\"\n"
	                  "_acme-challenge.split IN TXT \"" GOOD_A "\" \"" GOOD_B "\"\n"
	                  "_acme-challenge.alias IN CNAME holder.elsewhere." ZONE ".\n"
	                  "holder.elsewhere IN TXT \"" GOOD "\"\n"
	                  "_acme-challenge.several IN TXT \"" WRONG "\"\n"
	                  "_acme-challenge.several IN TXT \"v=spf1 -all\"\n"
	                  "_acme-challenge.several IN TXT \"" GOOD "\"\n"
	                  "%s"
	                  "_acme-challenge.big IN TXT \"" GOOD "\"\n"
	                  "_acme-challenge.loop IN CNAME loop2\n"
	                  "loop2 IN CNAME _acme-challenge.loop\n"
	                  "_acme-challenge.nodata IN HINFO \"cpu\" \"os\"\n"
	                  "www IN A 127.0.0.1\n"
	                  "v6 IN AAAA ::1\n"
	                  "both IN A 127.0.0.1\n"
	                  "both IN AAAA ::1\n"
	                  "webalias IN CNAME www\n"
	                  "outside IN CNAME www.other.test.\n"
	                  "noaddr IN TXT \"no address here\"\n"
	                  "%s",
	                  big, many);
}

static int start_named(void)
{
	snprintf(named_dir, sizeof(named_dir), "/tmp/acmera-validate.XXXXXX");
	if (!mkdtemp(named_dir) || !(named_port = free_port()))
		return -1;
	if (write_file("named.conf",
	               "options {\n"
	               "\tdirectory \"%s\";\n"
	               "\tpid-file \"%s/named.pid\";\n"
	               "\tsession-keyfile \"%s/session.key\";\n"
	               "\tmanaged-keys-directory \"%s\";\n"
	               "\tlisten-on port %u { 127.0.0.1; };\n"
	               "\tlisten-on-v6 { none; };\n"
	               "\trecursion no;\n"
	               "\tdnssec-validation no;\n"
	               "\tnotify no;\n"
	               "};\n"
	               "controls { };\n"
	               "logging { channel f { file \"%s/named.log\"; severity info; };\n"
	               "\tcategory default { f; }; };\n"
	               "zone \"" ZONE "\" { type primary; file \"%s/" ZONE ".db\"; };\n",
	               named_dir, named_dir, named_dir, named_dir, named_port, named_dir,
	               named_dir) != 0 ||
	    write_zone() != 0)
		return -1;

	char conf[128], out[128];
	snprintf(conf, sizeof(conf), "%s/named.conf", named_dir);
	snprintf(out, sizeof(out), "%s/named.out", named_dir);
	named_pid = fork();
	if (named_pid < 0)
		return -1;
	if (named_pid == 0) {
		/* named goes when this test dies, also on a crash that skips the teardown. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("named", "named", "-f", "-c", conf, (char *)NULL);
		execl("/usr/sbin/named", "named", "-f", "-c", conf, (char *)NULL);
		_exit(127);
	}
	for (long long end = now_ms() + 20000; now_ms() < end;) {
		if (waitpid(named_pid, NULL, WNOHANG) == named_pid) {
			named_pid = -1;
			fprintf(stderr, "named exited at start-up; see %s\n", out);
			return -1;
		}
		if (named_answers())
			return 0;
		usleep(50000);
	}
	fprintf(stderr, "named did not answer within 20 s; see %s\n", out);
	return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void stop_named(void)
{
	if (named_pid > 0) {
		kill(named_pid, SIGTERM);
		long long end = now_ms() + 5000;
		while (waitpid(named_pid, NULL, WNOHANG) == 0) {
			if (now_ms() > end) {
				kill(named_pid, SIGKILL);
				waitpid(named_pid, NULL, 0);
				break;
			}
			usleep(20000);
		}
		named_pid = -1;
	}
	if (named_dir[0] && !getenv("ACMERA_TEST_KEEP"))
		nftw(named_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- a small HTTP server ---- */

static struct web {
	int fd, fd6; /* 127.0.0.1 and ::1, the same port */
	uint16_t port;
	pthread_t thread;
	atomic_int stop;
	atomic_int requests;
	atomic_int last_v6; /* the last request came over IPv6 */
	pthread_mutex_t lock;
	char last_host[128]; /* Host header of the last request */
	char last_path[256];
} web = {.fd = -1, .fd6 = -1, .lock = PTHREAD_MUTEX_INITIALIZER};

static void send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, int status, const char *extra, const char *body, size_t len, int clen)
{
	char head[512];
	int n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nConnection: close\r\n%s", status,
	                 extra ? extra : "");
	if (clen)
		n += snprintf(head + n, sizeof(head) - (size_t)n, "Content-Length: %zu\r\n", len);
	n += snprintf(head + n, sizeof(head) - (size_t)n, "\r\n");
	send_all(fd, head, (size_t)n);
	send_all(fd, body, len);
}

static void redirect(int fd, const char *location)
{
	char h[300];
	snprintf(h, sizeof(h), "Location: %s\r\n", location);
	reply(fd, 302, h, "moved\n", 6, 1);
}

/* The answers, by token. */
static void route(int fd, const char *path)
{
	char loc[256];
	const char *tok =
	    strncmp(path, CHALLENGE, strlen(CHALLENGE)) == 0 ? path + strlen(CHALLENGE) : "";
	static char big[20000];
	memset(big, 'a', sizeof(big));
	int hop;

	if (strcmp(tok, "good") == 0)
		reply(fd, 200, NULL, KEY_AUTHZ " \r\n\t\n", strlen(KEY_AUTHZ) + 5, 1);
	else if (strcmp(tok, "wrong") == 0)
		reply(fd, 200, NULL, "not-it\x01\"", 8, 1);
	else if (strcmp(tok, "leadingspace") == 0)
		reply(fd, 200, NULL, " " KEY_AUTHZ, strlen(KEY_AUTHZ) + 1, 1);
	else if (strcmp(tok, "big") == 0)
		reply(fd, 200, NULL, big, 9000, 1);
	else if (strcmp(tok, "bignolength") == 0)
		reply(fd, 200, NULL, big, sizeof(big), 0);
	else if (strcmp(tok, "slow") == 0) {
		usleep(1000000);
		reply(fd, 200, NULL, KEY_AUTHZ, strlen(KEY_AUTHZ), 1);
	} else if (strcmp(tok, "relative") == 0)
		redirect(fd, CHALLENGE "good");
	else if (strcmp(tok, "absolute") == 0) {
		snprintf(loc, sizeof(loc), "http://" HOST ":%u" CHALLENGE "good", web.port);
		redirect(fd, loc);
	} else if (strcmp(tok, "toport") == 0)
		redirect(fd, "http://" HOST ":8080" CHALLENGE "good");
	else if (strcmp(tok, "toip") == 0) {
		snprintf(loc, sizeof(loc), "http://127.0.0.1:%u" CHALLENGE "good", web.port);
		redirect(fd, loc);
	} else if (strcmp(tok, "tov6") == 0) {
		snprintf(loc, sizeof(loc), "http://v6." ZONE ":%u" CHALLENGE "good", web.port);
		redirect(fd, loc);
	} else if (strcmp(tok, "tonoaddr") == 0) {
		snprintf(loc, sizeof(loc), "http://noaddr." ZONE ":%u" CHALLENGE "good", web.port);
		redirect(fd, loc);
	} else if (strcmp(tok, "tolocalhost") == 0) {
		snprintf(loc, sizeof(loc), "http://localhost:%u" CHALLENGE "good", web.port);
		redirect(fd, loc);
	} else if (strcmp(tok, "toftp") == 0)
		redirect(fd, "ftp://" HOST "/good");
	else if (strcmp(tok, "loop") == 0)
		redirect(fd, CHALLENGE "loop");
	else if (sscanf(tok, "hop%d", &hop) == 1 && hop > 0) {
		snprintf(loc, sizeof(loc), CHALLENGE "hop%d", hop - 1);
		redirect(fd, loc);
	} else if (strcmp(tok, "hop0") == 0)
		reply(fd, 200, NULL, KEY_AUTHZ, strlen(KEY_AUTHZ), 1);
	else
		reply(fd, 404, NULL, "not found\n", 10, 1);
}

static void serve_one(int fd)
{
	char req[4096], path[256] = "", host[128] = "";
	size_t n = 0;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[n] = '\0';
	if (sscanf(req, "GET %255s HTTP/1.1", path) != 1)
		return;
	const char *h = strstr(req, "\r\nHost: ");
	if (h)
		sscanf(h + 8, "%127[^\r]", host);
	pthread_mutex_lock(&web.lock);
	snprintf(web.last_path, sizeof(web.last_path), "%s", path);
	snprintf(web.last_host, sizeof(web.last_host), "%s", host);
	pthread_mutex_unlock(&web.lock);
	atomic_fetch_add(&web.requests, 1);
	route(fd, path);
}

static void *web_main(void *arg)
{
	while (!atomic_load(&web.stop)) {
		struct pollfd p[2] = {{.fd = web.fd, .events = POLLIN},
		                      {.fd = web.fd6, .events = POLLIN}};
		if (poll(p, 2, 50) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			int c = p[i].revents & POLLIN ? accept(p[i].fd, NULL, NULL) : -1;
			if (c < 0)
				continue;
			atomic_store(&web.last_v6, i == 1);
			serve_one(c);
			close(c);
		}
	}
	return NULL;
}

/* Listens on 127.0.0.1 and on ::1 with the same port (one name, either family). */
static int start_web(void)
{
	for (int i = 0; i < 50 && web.fd6 < 0; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
		                          .sin6_addr = IN6ADDR_LOOPBACK_INIT};
		socklen_t al = sizeof(a);
		int one = 1;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (web.fd >= 0)
			close(web.fd);
		web.fd = socket(AF_INET, SOCK_STREAM, 0);
		if (web.fd < 0 || bind(web.fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
		    getsockname(web.fd, (struct sockaddr *)&a, &al) != 0 || listen(web.fd, 16) != 0)
			return -1;
		web.port = ntohs(a.sin_port);
		a6.sin6_port = a.sin_port;
		int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
		if (fd6 < 0)
			return -1;
		setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (bind(fd6, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(fd6, 16) == 0)
			web.fd6 = fd6;
		else
			close(fd6);
	}
	if (web.fd6 < 0)
		return -1;
	return pthread_create(&web.thread, NULL, web_main, NULL) == 0 ? 0 : -1;
}

static void stop_web(void)
{
	if (web.fd < 0)
		return;
	atomic_store(&web.stop, 1);
	pthread_join(web.thread, NULL);
	close(web.fd);
	close(web.fd6);
	web.fd = web.fd6 = -1;
}

static int group_setup(void **state)
{
	if (start_web() != 0 || start_named() != 0) {
		fprintf(stderr, "the HTTP server (127.0.0.1 and ::1) or named did not start\n");
		stop_web();
		stop_named();
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	stop_web();
	stop_named();
	return 0;
}

/* ---- helpers ---- */

static struct ca_validate_config cfg(int timeout_ms)
{
	return (struct ca_validate_config){.resolver = "127.0.0.1",
	                                   .resolver_port = named_port,
	                                   .http_port = web.port,
	                                   .timeout_ms = timeout_ms};
}

struct verdict {
	int rc;
	const char *problem;
	char *detail;
	struct acmera_errmsg e;
};

static struct verdict dns01(const char *domain, const char *expected)
{
	struct ca_validate_config c = cfg(2000);
	struct verdict v = {0};
	v.rc = ca_validate_dns01(&c, domain, expected, &v.problem, &v.detail, &v.e);
	return v;
}

static struct verdict http01(const char *token, int timeout_ms)
{
	struct ca_validate_config c = cfg(timeout_ms);
	struct verdict v = {0};
	char resolve[64];
	snprintf(resolve, sizeof(resolve), HOST ":%u:127.0.0.1", web.port);
	v.rc = ca_validate_http01(&c, HOST, token, KEY_AUTHZ, resolve, &v.problem, &v.detail, &v.e);
	return v;
}

/* http-01 with the names asked of named (no resolve_override). */
static struct verdict http01_named(const char *domain, const char *token, int timeout_ms)
{
	struct ca_validate_config c = cfg(timeout_ms);
	struct verdict v = {0};
	v.rc = ca_validate_http01(&c, domain, token, KEY_AUTHZ, NULL, &v.problem, &v.detail, &v.e);
	return v;
}

static struct verdict resolve(const char *domain, int port, char **entry)
{
	struct ca_validate_config c = cfg(2000);
	struct verdict v = {0};
	v.rc = ca_validate_resolve(&c, domain, port, entry, &v.problem, &v.detail, &v.e);
	return v;
}

static void expect_valid(struct verdict v)
{
	if (v.rc != 0)
		fail_msg("expected success, got %d: %s", v.rc, v.e.text);
	assert_null(v.problem);
	assert_null(v.detail);
}

/* Fails unless v is the given problem with a detail containing each of the strings. */
static void expect_problem(struct verdict v, int rc, const char *problem, ...)
{
	va_list ap;
	if (v.rc != rc || !v.problem || strcmp(v.problem, problem) != 0)
		fail_msg("expected %s (%d), got %s (%d): %s", problem, rc,
		         v.problem ? v.problem : "none", v.rc, v.e.text);
	assert_non_null(v.detail);
	va_start(ap, problem);
	for (const char *s; (s = va_arg(ap, const char *));) {
		if (!strstr(v.detail, s)) {
			va_end(ap);
			fail_msg("detail '%s' lacks '%s'", v.detail, s);
		}
	}
	va_end(ap);
	free(v.detail);
}

/* ---- dns-01 ---- */

static void dns01_good_record_validates(void **state)
{
	expect_valid(dns01("good." ZONE, GOOD));
}

static void dns01_wrong_record_is_incorrect_response_naming_what_was_found(void **state)
{
	expect_problem(dns01("wrong." ZONE, GOOD), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "1 TXT record, none the expected value", "_acme-challenge.wrong." ZONE,
	               "\"" WRONG "\"", NULL);
}

static void dns01_record_split_into_two_strings_is_joined(void **state)
{
	expect_valid(dns01("split." ZONE, GOOD));
	/* Either half alone is not the value. */
	expect_problem(dns01("split." ZONE, GOOD_A), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "\"" GOOD_A GOOD_B "\"", NULL);
}

static void dns01_cname_to_name_holding_value_validates(void **state)
{
	expect_valid(dns01("alias." ZONE, GOOD));
	expect_problem(dns01("alias." ZONE, WRONG), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "(CNAME to \"holder.elsewhere." ZONE ".\")", NULL);
}

static void dns01_wildcard_asks_the_base_domain(void **state)
{
	expect_valid(dns01("*.good." ZONE, GOOD));
}

static void dns01_value_among_several_records_validates(void **state)
{
	expect_valid(dns01("several." ZONE, GOOD));
	expect_problem(dns01("several." ZONE, "nothere"), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "3 TXT records", "\"v=spf1 -all\"", NULL);
}

static void dns01_answer_too_big_for_udp_is_asked_again_over_tcp(void **state)
{
	/* 9 records of ~200 bytes: named truncates the UDP answer (EDNS 1232). */
	expect_valid(dns01("big." ZONE, GOOD));
}

static void dns01_missing_name_is_incorrect_response(void **state)
{
	expect_problem(dns01("missing." ZONE, GOOD), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "no such name", "_acme-challenge.missing." ZONE, NULL);
}

static void dns01_name_without_txt_is_incorrect_response(void **state)
{
	expect_problem(dns01("nodata." ZONE, GOOD), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "no TXT record at \"_acme-challenge.nodata." ZONE ".\"", NULL);
}

static void dns01_refused_query_is_dns_problem(void **state)
{
	/* named serves only ZONE and does not recurse: REFUSED. */
	expect_problem(dns01("www.other.test", GOOD), ACMERA_ERR_REFUSED, "dns", "REFUSED",
	               "_acme-challenge.www.other.test", NULL);
}

static void dns01_cname_loop_is_dns_problem(void **state)
{
	/* named itself gives up on the loop with SERVFAIL. */
	expect_problem(dns01("loop." ZONE, GOOD), ACMERA_ERR_REFUSED, "dns", "SERVFAIL", NULL);
}

static void dns01_silent_resolver_is_dns_problem_within_the_timeout(void **state)
{
	struct ca_validate_config c = cfg(200);
	struct verdict v = {0};
	uint16_t dead = free_port();
	assert_int_not_equal(dead, 0);
	c.resolver_port = dead;
	long long t0 = now_ms();
	v.rc = ca_validate_dns01(&c, "good." ZONE, GOOD, &v.problem, &v.detail, &v.e);
	long long took = now_ms() - t0;
	expect_problem(v, ACMERA_ERR_REFUSED, "dns", "no answer from the DNS resolver 127.0.0.1",
	               "2 attempts of 200 ms", NULL);
	assert_true(took < 2000);
}

static void dns01_bad_arguments_are_refused_as_malformed(void **state)
{
	struct ca_validate_config c = cfg(500);
	struct verdict v = {0};
	const char *bad_domains[] = {"",        "a..b",        "-a.example",     "a_b.example",
	                             "1.2.3.4", "*.*.example", "sp ace.example", "a-.example",
	                             "a.b-"};
	for (size_t i = 0; i < sizeof(bad_domains) / sizeof(bad_domains[0]); i++)
		expect_problem(dns01(bad_domains[i], GOOD), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(dns01("good." ZONE, "has=padding"), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(dns01("good." ZONE, ""), ACMERA_ERR_INVAL, "malformed", NULL);
	c.resolver = "localhost"; /* not an address: names are not resolved */
	v.rc = ca_validate_dns01(&c, "good." ZONE, GOOD, &v.problem, &v.detail, &v.e);
	expect_problem(v, ACMERA_ERR_INVAL, "malformed", "resolver", NULL);
}

/* An answer built here, as wire bytes, for ca_validate_dns01_answer: the answer section
 * holds the records of rrs (NULL-terminated). */
static struct verdict check_wire_rrs(const char *question, const char *const *rrs, int rcode)
{
	ldns_pkt *p = NULL;
	ldns_rdf *q = ldns_dname_new_frm_str(question);
	uint8_t *wire = NULL;
	size_t len = 0;
	struct verdict v = {0};

	assert_non_null(q);
	p = ldns_pkt_query_new(q, LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_IN, LDNS_RD);
	assert_non_null(p);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	for (; *rrs; rrs++) {
		ldns_rr *rr = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&rr, *rrs, 60, NULL, NULL), LDNS_STATUS_OK);
		assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
	}
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	v.rc = ca_validate_dns01_answer(wire, len, "_acme-challenge.x.example.", GOOD, &v.problem,
	                                &v.detail, &v.e);
	free(wire);
	ldns_pkt_free(p);
	return v;
}

static struct verdict check_wire(const char *question, const char *answer_rr, int rcode)
{
	const char *rrs[] = {answer_rr, NULL};
	return check_wire_rrs(question, rrs, rcode);
}

static void dns01_answer_cname_chain_leads_to_the_txt_owner(void **state)
{
	const char *chain[] = {"_acme-challenge.x.example. 60 IN CNAME a.example.",
	                       "b.example. 60 IN TXT \"" GOOD "\"",
	                       "a.example. 60 IN CNAME b.example.", NULL};
	expect_valid(check_wire_rrs("_acme-challenge.x.example.", chain, LDNS_RCODE_NOERROR));
	/* The value at a name the chain does not reach does not count. */
	const char *stray[] = {"_acme-challenge.x.example. 60 IN CNAME a.example.",
	                       "b.example. 60 IN TXT \"" GOOD "\"", NULL};
	expect_problem(check_wire_rrs("_acme-challenge.x.example.", stray, LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "incorrectResponse",
	               "no TXT record at \"_acme-challenge.x.example.\" (CNAME to \"a.example.\")",
	               NULL);
}

static void dns01_answer_cname_loop_is_dns_problem(void **state)
{
	const char *loop[] = {"_acme-challenge.x.example. 60 IN CNAME a.example.",
	                      "a.example. 60 IN CNAME _acme-challenge.x.example.",
	                      "a.example. 60 IN TXT \"" GOOD "\"", NULL};
	expect_problem(check_wire_rrs("_acme-challenge.x.example.", loop, LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "dns", "more than 16 CNAMEs", NULL);
}

static void dns01_answer_values_are_escaped_in_the_detail(void **state)
{
	expect_problem(check_wire("_acme-challenge.x.example.",
	                          "_acme-challenge.x.example. 60 IN TXT \"a\\\"b\\\\c\\007\\255\"",
	                          LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "incorrectResponse", "\"a\\\"b\\\\c\\x07\\xff\"", NULL);
}

static void dns01_answer_holding_only_a_prefix_of_the_value_is_refused(void **state)
{
	const char *prefix[] = {"_acme-challenge.x.example. 60 IN TXT \"" GOOD_A "\"",
	                        "_acme-challenge.x.example. 60 IN TXT \"\"",
	                        "_acme-challenge.x.example. 60 IN TXT \"" GOOD "x\"",
	                        "_acme-challenge.x.example. 60 IN TXT \"" GOOD GOOD GOOD GOOD "\"",
	                        NULL};
	expect_problem(check_wire_rrs("_acme-challenge.x.example.", prefix, LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "incorrectResponse", "4 TXT records", NULL);
}

static void dns01_answer_without_question_is_dns_problem(void **state)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *rr = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	struct verdict v = {0};

	assert_non_null(p);
	ldns_pkt_set_qr(p, true);
	assert_int_equal(ldns_rr_new_frm_str(&rr,
	                                     "_acme-challenge.x.example. 60 IN TXT \"" GOOD "\"",
	                                     60, NULL, NULL),
	                 LDNS_STATUS_OK);
	assert_true(ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr));
	assert_int_equal(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	v.rc = ca_validate_dns01_answer(wire, len, "_acme-challenge.x.example.", GOOD, &v.problem,
	                                &v.detail, &v.e);
	free(wire);
	ldns_pkt_free(p);
	expect_problem(v, ACMERA_ERR_REFUSED, "dns", "not for that question", NULL);
}

static void dns01_answer_to_another_question_is_dns_problem(void **state)
{
	expect_problem(check_wire("_acme-challenge.y.example.",
	                          "_acme-challenge.y.example. 60 IN TXT \"" GOOD "\"",
	                          LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "dns", "not for that question", NULL);
}

static void dns01_answer_txt_at_another_owner_is_not_accepted(void **state)
{
	expect_problem(check_wire("_acme-challenge.x.example.",
	                          "other.example. 60 IN TXT \"" GOOD "\"", LDNS_RCODE_NOERROR),
	               ACMERA_ERR_REFUSED, "incorrectResponse", "no TXT record", NULL);
	expect_valid(check_wire("_acme-challenge.x.example.",
	                        "_ACME-Challenge.X.example. 60 IN TXT \"" GOOD "\"",
	                        LDNS_RCODE_NOERROR));
}

static void dns01_servfail_is_dns_problem(void **state)
{
	expect_problem(check_wire("_acme-challenge.x.example.", NULL, LDNS_RCODE_SERVFAIL),
	               ACMERA_ERR_REFUSED, "dns", "SERVFAIL", NULL);
}

static void dns01_malformed_answer_bytes_are_dns_problem(void **state)
{
	static const uint8_t junk[] = {0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0, 0x05};
	struct verdict v = {0};
	v.rc = ca_validate_dns01_answer(junk, sizeof(junk), "_acme-challenge.x.example.", GOOD,
	                                &v.problem, &v.detail, &v.e);
	expect_problem(v, ACMERA_ERR_REFUSED, "dns", "malformed DNS answer of 13 bytes", NULL);
}

/* ---- http-01 ---- */

static void http01_good_body_validates_and_asks_the_right_url(void **state)
{
	char want_host[64];
	expect_valid(http01("good", 2000));
	snprintf(want_host, sizeof(want_host), HOST ":%u", web.port);
	pthread_mutex_lock(&web.lock);
	assert_string_equal(web.last_path, CHALLENGE "good");
	assert_string_equal(web.last_host, want_host);
	pthread_mutex_unlock(&web.lock);
}

static void http01_wrong_body_is_incorrect_response_naming_the_body(void **state)
{
	expect_problem(http01("wrong", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "answered \"not-it\\x01\\\"\", not the key authorization", NULL);
}

static void http01_leading_whitespace_is_not_trimmed(void **state)
{
	expect_problem(http01("leadingspace", 2000), ACMERA_ERR_REFUSED, "incorrectResponse", NULL);
}

static void http01_not_found_is_unauthorized(void **state)
{
	expect_problem(http01("absent", 2000), ACMERA_ERR_REFUSED, "unauthorized",
	               "answered HTTP 404", NULL);
}

static void http01_body_over_8_kib_is_refused(void **state)
{
	expect_problem(http01("big", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "larger than 8192 bytes", NULL);
	expect_problem(http01("bignolength", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "larger than 8192 bytes", NULL);
}

static void http01_connection_refused_is_connection_problem(void **state)
{
	struct ca_validate_config c = cfg(2000);
	struct verdict v = {0};
	char resolve[64];
	uint16_t dead = free_port();
	assert_int_not_equal(dead, 0);
	c.http_port = dead;
	snprintf(resolve, sizeof(resolve), HOST ":%u:127.0.0.1", dead);
	v.rc =
	    ca_validate_http01(&c, HOST, "good", KEY_AUTHZ, resolve, &v.problem, &v.detail, &v.e);
	expect_problem(v, ACMERA_ERR_REFUSED, "connection", "fetching \"http://" HOST, NULL);
}

static void http01_slow_server_is_connection_problem_within_the_timeout(void **state)
{
	long long t0 = now_ms();
	expect_problem(http01("slow", 300), ACMERA_ERR_REFUSED, "connection", "fetching", NULL);
	assert_true(now_ms() - t0 < 900);
}

static void http01_redirects_on_the_same_host_are_followed(void **state)
{
	expect_valid(http01("relative", 2000));
	expect_valid(http01("absolute", 2000));
	pthread_mutex_lock(&web.lock);
	assert_string_equal(web.last_path, CHALLENGE "good");
	pthread_mutex_unlock(&web.lock);
}

static void http01_ten_redirects_are_followed_an_eleventh_is_not(void **state)
{
	expect_valid(http01("hop10", 3000));
	int before = atomic_load(&web.requests);
	expect_problem(http01("hop11", 3000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "more than 10 redirects", NULL);
	assert_int_equal(atomic_load(&web.requests) - before, 11);
	expect_problem(http01("loop", 3000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "more than 10 redirects", NULL);
}

static void http01_redirect_to_other_port_address_or_scheme_is_refused(void **state)
{
	int before = atomic_load(&web.requests);
	expect_problem(http01("toport", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "redirect to port 8080", NULL);
	expect_problem(http01("toip", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               "not a domain name", "\"http://127.0.0.1:", NULL);
	expect_problem(http01("toftp", 2000), ACMERA_ERR_REFUSED, "incorrectResponse", "scheme",
	               NULL);
	/* Only the first request of each went out. */
	assert_int_equal(atomic_load(&web.requests) - before, 3);
}

static void http01_bad_token_is_refused_before_any_request(void **state)
{
	const char *bad[] = {"../good", "good/../x", "a=", "a b", "%2e", ""};
	int before = atomic_load(&web.requests);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_problem(http01(bad[i], 2000), ACMERA_ERR_INVAL, "malformed", "token", NULL);
	assert_int_equal(atomic_load(&web.requests), before);
}

static void http01_bad_domain_is_refused_before_any_request(void **state)
{
	struct ca_validate_config c = cfg(2000);
	const char *bad[] = {"*." HOST, "127.0.0.1", "host/path", "user@" HOST, ""};
	int before = atomic_load(&web.requests);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct verdict v = {0};
		v.rc = ca_validate_http01(&c, bad[i], "good", KEY_AUTHZ, NULL, &v.problem,
		                          &v.detail, &v.e);
		expect_problem(v, ACMERA_ERR_INVAL, "malformed", NULL);
	}
	assert_int_equal(atomic_load(&web.requests), before);
}

/* ---- http-01 names asked of the resolver ---- */

static void resolve_gives_curl_entry_with_a_then_aaaa(void **state)
{
	char *entry = NULL;
	expect_valid(resolve("www." ZONE, 8080, &entry));
	assert_string_equal(entry, "www." ZONE ":8080:127.0.0.1");
	free(entry);
	expect_valid(resolve("v6." ZONE, 80, &entry));
	assert_string_equal(entry, "v6." ZONE ":80:[::1]");
	free(entry);
	expect_valid(resolve("both." ZONE, 443, &entry));
	assert_string_equal(entry, "both." ZONE ":443:127.0.0.1,[::1]");
	free(entry);
}

static void resolve_follows_cname_in_the_answer(void **state)
{
	char *entry = NULL;
	expect_valid(resolve("webalias." ZONE, 80, &entry));
	assert_string_equal(entry, "webalias." ZONE ":80:127.0.0.1");
	free(entry);
}

static void resolve_takes_at_most_8_addresses_of_an_answer_too_big_for_udp(void **state)
{
	char *entry = NULL;
	expect_valid(resolve("many." ZONE, 80, &entry));
	size_t commas = 0;
	for (const char *p = entry; *p; p++)
		commas += *p == ',';
	assert_int_equal(commas, 7);
	assert_non_null(strstr(entry, "many." ZONE ":80:127.0.1."));
	free(entry);
}

static void resolve_name_without_address_is_dns_problem_naming_it(void **state)
{
	char *entry = (char *)"untouched";
	expect_problem(resolve("noaddr." ZONE, 80, &entry), ACMERA_ERR_REFUSED, "dns",
	               "no A or AAAA record for \"noaddr." ZONE ".\"", NULL);
	assert_null(entry);
	expect_problem(resolve("outside." ZONE, 80, &entry), ACMERA_ERR_REFUSED, "dns",
	               "no A or AAAA record for \"outside." ZONE ".\"",
	               "(CNAME to \"www.other.test.\")", NULL);
	assert_null(entry);
}

static void resolve_missing_name_is_dns_problem(void **state)
{
	char *entry = NULL;
	expect_problem(resolve("missing." ZONE, 80, &entry), ACMERA_ERR_REFUSED, "dns",
	               "no such name: \"missing." ZONE ".\"", NULL);
	assert_null(entry);
}

static void resolve_bad_arguments_are_refused_as_malformed(void **state)
{
	char *entry = NULL;
	expect_problem(resolve("www." ZONE, 0, &entry), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(resolve("www." ZONE, 65536, &entry), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(resolve("127.0.0.1", 80, &entry), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(resolve("*.www." ZONE, 80, &entry), ACMERA_ERR_INVAL, "malformed", NULL);
	expect_problem(resolve("www." ZONE, 80, NULL), ACMERA_ERR_INVAL, "malformed", NULL);
	assert_null(entry);
}

static void http01_domain_is_resolved_by_the_configured_resolver(void **state)
{
	char want_host[64];
	expect_valid(http01_named(HOST, "good", 2000));
	assert_false(atomic_load(&web.last_v6));
	snprintf(want_host, sizeof(want_host), HOST ":%u", web.port);
	pthread_mutex_lock(&web.lock);
	assert_string_equal(web.last_host, want_host);
	pthread_mutex_unlock(&web.lock);
	expect_valid(http01_named("v6." ZONE, "good", 2000));
	assert_true(atomic_load(&web.last_v6));
	expect_valid(http01_named("webalias." ZONE, "good", 2000));
	assert_false(atomic_load(&web.last_v6));
	expect_valid(http01_named("both." ZONE, "good", 2000));
	/* The name as asked; curl's cache of resolve entries ignores case. */
	expect_valid(http01_named("WWW.Example.TEST", "good", 2000));
	expect_problem(http01_named(HOST, "wrong", 2000), ACMERA_ERR_REFUSED, "incorrectResponse",
	               NULL);
}

static void http01_name_without_address_is_dns_problem_and_no_request(void **state)
{
	int before = atomic_load(&web.requests);
	expect_problem(http01_named("noaddr." ZONE, "good", 2000), ACMERA_ERR_REFUSED, "dns",
	               "noaddr." ZONE, NULL);
	expect_problem(http01_named("missing." ZONE, "good", 2000), ACMERA_ERR_REFUSED, "dns",
	               "no such name", "missing." ZONE, NULL);
	assert_int_equal(atomic_load(&web.requests), before);
}

static void http01_never_asks_the_system_resolver(void **state)
{
	/* The system (and curl) map localhost to the loopback address; named refuses it. */
	int before = atomic_load(&web.requests);
	expect_problem(http01_named("localhost", "good", 2000), ACMERA_ERR_REFUSED, "dns",
	               "REFUSED", "\"localhost.\"", NULL);
	assert_int_equal(atomic_load(&web.requests), before);
	expect_problem(http01_named(HOST, "tolocalhost", 2000), ACMERA_ERR_REFUSED, "dns",
	               "REFUSED", "\"localhost.\"", NULL);
	assert_int_equal(atomic_load(&web.requests), before + 1);
}

static void http01_redirect_target_is_resolved_by_the_configured_resolver(void **state)
{
	int before = atomic_load(&web.requests);
	expect_valid(http01_named(HOST, "tov6", 2000));
	assert_true(atomic_load(&web.last_v6));
	pthread_mutex_lock(&web.lock);
	assert_string_equal(web.last_path, CHALLENGE "good");
	pthread_mutex_unlock(&web.lock);
	expect_problem(http01_named(HOST, "tonoaddr", 2000), ACMERA_ERR_REFUSED, "dns",
	               "noaddr." ZONE, NULL);
	assert_int_equal(atomic_load(&web.requests) - before, 3);
	/* Hops on the same host:port ask nothing more. */
	expect_valid(http01_named(HOST, "hop3", 2000));
}

static void http01_silent_resolver_is_dns_problem_within_the_timeout(void **state)
{
	struct ca_validate_config c = cfg(400);
	struct verdict v = {0};
	uint16_t dead = free_port();
	int before = atomic_load(&web.requests);
	assert_int_not_equal(dead, 0);
	c.resolver_port = dead;
	long long t0 = now_ms();
	v.rc = ca_validate_http01(&c, HOST, "good", KEY_AUTHZ, NULL, &v.problem, &v.detail, &v.e);
	long long took = now_ms() - t0;
	expect_problem(v, ACMERA_ERR_REFUSED, "dns", "no answer from the DNS resolver 127.0.0.1",
	               "for A \"" HOST ".\"", NULL);
	assert_true(took < 1000);
	assert_int_equal(atomic_load(&web.requests), before);
	c.resolver = "localhost"; /* not an address */
	v.rc = ca_validate_http01(&c, HOST, "good", KEY_AUTHZ, NULL, &v.problem, &v.detail, &v.e);
	expect_problem(v, ACMERA_ERR_INVAL, "malformed", "resolver", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(dns01_good_record_validates),
	    cmocka_unit_test(dns01_wrong_record_is_incorrect_response_naming_what_was_found),
	    cmocka_unit_test(dns01_record_split_into_two_strings_is_joined),
	    cmocka_unit_test(dns01_cname_to_name_holding_value_validates),
	    cmocka_unit_test(dns01_wildcard_asks_the_base_domain),
	    cmocka_unit_test(dns01_value_among_several_records_validates),
	    cmocka_unit_test(dns01_answer_too_big_for_udp_is_asked_again_over_tcp),
	    cmocka_unit_test(dns01_missing_name_is_incorrect_response),
	    cmocka_unit_test(dns01_name_without_txt_is_incorrect_response),
	    cmocka_unit_test(dns01_refused_query_is_dns_problem),
	    cmocka_unit_test(dns01_cname_loop_is_dns_problem),
	    cmocka_unit_test(dns01_silent_resolver_is_dns_problem_within_the_timeout),
	    cmocka_unit_test(dns01_bad_arguments_are_refused_as_malformed),
	    cmocka_unit_test(dns01_answer_values_are_escaped_in_the_detail),
	    cmocka_unit_test(dns01_answer_holding_only_a_prefix_of_the_value_is_refused),
	    cmocka_unit_test(dns01_answer_to_another_question_is_dns_problem),
	    cmocka_unit_test(dns01_answer_without_question_is_dns_problem),
	    cmocka_unit_test(dns01_answer_txt_at_another_owner_is_not_accepted),
	    cmocka_unit_test(dns01_answer_cname_chain_leads_to_the_txt_owner),
	    cmocka_unit_test(dns01_answer_cname_loop_is_dns_problem),
	    cmocka_unit_test(dns01_servfail_is_dns_problem),
	    cmocka_unit_test(dns01_malformed_answer_bytes_are_dns_problem),
	    cmocka_unit_test(http01_good_body_validates_and_asks_the_right_url),
	    cmocka_unit_test(http01_wrong_body_is_incorrect_response_naming_the_body),
	    cmocka_unit_test(http01_leading_whitespace_is_not_trimmed),
	    cmocka_unit_test(http01_not_found_is_unauthorized),
	    cmocka_unit_test(http01_body_over_8_kib_is_refused),
	    cmocka_unit_test(http01_connection_refused_is_connection_problem),
	    cmocka_unit_test(http01_slow_server_is_connection_problem_within_the_timeout),
	    cmocka_unit_test(http01_redirects_on_the_same_host_are_followed),
	    cmocka_unit_test(http01_ten_redirects_are_followed_an_eleventh_is_not),
	    cmocka_unit_test(http01_redirect_to_other_port_address_or_scheme_is_refused),
	    cmocka_unit_test(http01_bad_token_is_refused_before_any_request),
	    cmocka_unit_test(http01_bad_domain_is_refused_before_any_request),
	    cmocka_unit_test(resolve_gives_curl_entry_with_a_then_aaaa),
	    cmocka_unit_test(resolve_follows_cname_in_the_answer),
	    cmocka_unit_test(resolve_takes_at_most_8_addresses_of_an_answer_too_big_for_udp),
	    cmocka_unit_test(resolve_name_without_address_is_dns_problem_naming_it),
	    cmocka_unit_test(resolve_missing_name_is_dns_problem),
	    cmocka_unit_test(resolve_bad_arguments_are_refused_as_malformed),
	    cmocka_unit_test(http01_domain_is_resolved_by_the_configured_resolver),
	    cmocka_unit_test(http01_name_without_address_is_dns_problem_and_no_request),
	    cmocka_unit_test(http01_never_asks_the_system_resolver),
	    cmocka_unit_test(http01_redirect_target_is_resolved_by_the_configured_resolver),
	    cmocka_unit_test(http01_silent_resolver_is_dns_problem_within_the_timeout),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
