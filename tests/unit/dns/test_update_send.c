/* dns_update_send against a scripted DNS server on 127.0.0.1 (a thread here): retries on
 * timeout, TCP for big messages and truncated answers, TSIG checks on the answer, and
 * the error text a user sees. The real BIND is tests/integration/test_dns_update.sh. */
#include "dns/tsig_key.h"
#include "dns/update.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#define SECRET "jdaIPOFuVovPUkWMYt3ORvwxG7NTeFcWld+7Y1Iu7t8="
#define SECRET64                                                                                   \
	"Mj8zTqGZ2QJxR3i7ThcZ2qjVYxwWmVnVb1XhsXBuZ0YaLzYt0QxCDNwRrbgpW8G0CBC2JbiAp2zKr2W4F0Av7A=="
#define OTHER_SECRET "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

enum mode {
	SILENT,           /* never answers */
	SIGNED_NOERROR,   /* the good case */
	SIGNED_REFUSED,   /* update-policy says no */
	UNSIGNED_REFUSED, /* e.g. a server without the key at all */
	UNSIGNED_NOERROR, /* must not be believed */
	BADKEY,           /* NOTAUTH + TSIG error 17, no MAC, as BIND sends it */
	WRONG_SECRET,     /* signed, but not with our secret */
	OTHER_KEY,        /* signed with a key of another name */
	WRONG_ID,         /* an answer to some other message */
	TRUNCATE,         /* UDP answer with TC; TCP answers SIGNED_NOERROR */
};

struct fake {
	int udp, tcp;
	uint16_t port;
	pthread_t thread;
	atomic_int stop;
	atomic_int mode; /* enum mode */
	atomic_int udp_msgs, tcp_msgs;
	atomic_int last_updates;
	atomic_int last_verified; /* ldns verified the request's TSIG */
};

static struct tsig_key key;

static ldns_pkt *respond(struct fake *f, const ldns_pkt *req, int udp)
{
	enum mode m = (enum mode)atomic_load(&f->mode);
	if (m == SILENT)
		return NULL;
	ldns_pkt *r = ldns_pkt_new();
	ldns_pkt_set_id(r, ldns_pkt_id(req) + (m == WRONG_ID));
	ldns_pkt_set_qr(r, true);
	ldns_pkt_set_opcode(r, LDNS_PACKET_UPDATE);
	if (ldns_rr_list_rr_count(ldns_pkt_question(req)) > 0)
		ldns_pkt_push_rr(r, LDNS_SECTION_QUESTION,
		                 ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(req), 0)));
	if (m == TRUNCATE && udp) {
		ldns_pkt_set_tc(r, true);
		return r;
	}
	const ldns_rdf *mac = ldns_pkt_tsig(req) ? ldns_rr_rdf(ldns_pkt_tsig(req), 3) : NULL;
	switch (m) {
	case SIGNED_REFUSED:
	case UNSIGNED_REFUSED:
		ldns_pkt_set_rcode(r, LDNS_RCODE_REFUSED);
		break;
	case BADKEY:
		ldns_pkt_set_rcode(r, LDNS_RCODE_NOTAUTH);
		break;
	default:
		break;
	}
	if (m == SIGNED_NOERROR || m == SIGNED_REFUSED || m == WRONG_ID || m == TRUNCATE)
		ldns_pkt_tsig_sign(r, key.name, key.secret_b64, 300, key.algorithm, mac);
	else if (m == WRONG_SECRET)
		ldns_pkt_tsig_sign(r, key.name, OTHER_SECRET, 300, key.algorithm, mac);
	else if (m == OTHER_KEY)
		ldns_pkt_tsig_sign(r, "other.", key.secret_b64, 300, key.algorithm, mac);
	if (m == BADKEY) {
		/* Sign, then strip the MAC and set the error, as RFC 8945 5.3.2 says. */
		ldns_pkt_tsig_sign(r, key.name, key.secret_b64, 300, key.algorithm, mac);
		ldns_rr *t = ldns_pkt_tsig(r);
		ldns_rdf_deep_free(ldns_rr_set_rdf(t, ldns_native2rdf_int16_data(0, NULL), 3));
		ldns_rdf_deep_free(
		    ldns_rr_set_rdf(t, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 17), 5));
	}
	return r;
}

/* Answers one message; returns the answer's wire form or NULL for none. */
static uint8_t *handle(struct fake *f, const uint8_t *w, size_t n, int udp, size_t *outlen)
{
	ldns_pkt *req = NULL, *r;
	uint8_t *out = NULL;
	ldns_pkt *copy = NULL;
	if (ldns_wire2pkt(&req, w, n) != LDNS_STATUS_OK)
		return NULL;
	atomic_store(&f->last_updates, ldns_update_upcount(req));
	/* ldns as a second implementation: it verifies what dns/tsig.c signed. */
	if (ldns_wire2pkt(&copy, w, n) == LDNS_STATUS_OK) {
		atomic_store(&f->last_verified,
		             ldns_pkt_tsig_verify(copy, w, n, key.name, key.secret_b64, NULL));
		ldns_pkt_free(copy);
	}
	r = respond(f, req, udp);
	if (r && ldns_pkt2wire(&out, r, outlen) != LDNS_STATUS_OK)
		out = NULL;
	ldns_pkt_free(r);
	ldns_pkt_free(req);
	return out;
}

static int read_full(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static void serve_tcp(struct fake *f)
{
	int c = accept(f->tcp, NULL, NULL);
	uint8_t hdr[2], *msg = NULL, *ans = NULL;
	size_t alen = 0;
	if (c < 0)
		return;
	if (read_full(c, hdr, 2) != 0)
		goto out;
	size_t n = (size_t)hdr[0] << 8 | hdr[1];
	msg = malloc(n ? n : 1);
	if (!msg || read_full(c, msg, n) != 0)
		goto out;
	atomic_fetch_add(&f->tcp_msgs, 1);
	ans = handle(f, msg, n, 0, &alen);
	if (ans) {
		uint8_t l[2] = {(uint8_t)(alen >> 8), (uint8_t)alen};
		if (write(c, l, 2) != 2 || write(c, ans, alen) != (ssize_t)alen)
			goto out;
	}
out:
	free(msg);
	free(ans);
	close(c);
}

static void *serve(void *arg)
{
	struct fake *f = arg;
	while (!atomic_load(&f->stop)) {
		struct pollfd p[2] = {{.fd = f->udp, .events = POLLIN},
		                      {.fd = f->tcp, .events = POLLIN}};
		if (poll(p, 2, 20) <= 0)
			continue;
		if (p[0].revents) {
			uint8_t buf[65536];
			struct sockaddr_storage from;
			socklen_t fl = sizeof(from);
			ssize_t n =
			    recvfrom(f->udp, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
			if (n > 0) {
				size_t alen = 0;
				atomic_fetch_add(&f->udp_msgs, 1);
				uint8_t *ans = handle(f, buf, (size_t)n, 1, &alen);
				if (ans)
					sendto(f->udp, ans, alen, 0, (struct sockaddr *)&from, fl);
				free(ans);
			}
		}
		if (p[1].revents)
			serve_tcp(f);
	}
	return NULL;
}

/* UDP and TCP on the same free port of 127.0.0.1. */
static int fake_start(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		socklen_t al = sizeof(a);
		int one = 1;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		f->udp = socket(AF_INET, SOCK_DGRAM, 0);
		f->tcp = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(f->tcp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(f->udp, (struct sockaddr *)&a, sizeof(a)) == 0 &&
		    getsockname(f->udp, (struct sockaddr *)&a, &al) == 0 &&
		    bind(f->tcp, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(f->tcp, 8) == 0) {
			f->port = ntohs(a.sin_port);
			break;
		}
		close(f->udp);
		close(f->tcp);
		f->udp = f->tcp = -1;
	}
	assert_true(f->port != 0);
	assert_int_equal(pthread_create(&f->thread, NULL, serve, f), 0);
	*state = f;
	return 0;
}

static int fake_stop(void **state)
{
	struct fake *f = *state;
	atomic_store(&f->stop, 1);
	pthread_join(f->thread, NULL);
	close(f->udp);
	close(f->tcp);
	free(f);
	return 0;
}

static const struct dns_txt two[] = {
    {"_acme-challenge.dev1.example.test", "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"},
    {"_acme-challenge.dev2.example.test", "9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"},
};

static int send_two(struct fake *f, enum mode m, struct acmera_errmsg *e)
{
	/* Only the silent server's case waits out the timeout: a short one keeps it quick,
	 * a long one keeps the others from timing out on a loaded machine. */
	struct dns_server srv = {
	    .port = f->port, .timeout_ms = m == SILENT ? 200 : 5000, .retries = 1};
	snprintf(srv.host, sizeof(srv.host), "127.0.0.1");
	atomic_store(&f->mode, (int)m);
	return dns_update_send(&srv, &key, "example.test", DNS_UPDATE_ADD, two, 2, 60, e);
}

/* e must start with the standard prefix naming zone, server and key, then want. */
static void assert_error(const struct fake *f, const struct acmera_errmsg *e, const char *want)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix),
	         "UPDATE of zone example.test at 127.0.0.1:%u with key acmera: ", f->port);
	if (strncmp(e->text, prefix, strlen(prefix)) != 0 || !strstr(e->text, want))
		fail_msg("error \"%s\" is not \"%s...%s...\"", e->text, prefix, want);
}

static void update_send_accepts_signed_noerror(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	int rc = send_two(f, SIGNED_NOERROR, &e);
	if (rc)
		fail_msg("%s", e.text);
	assert_int_equal(atomic_load(&f->udp_msgs), 1);
	assert_int_equal(atomic_load(&f->tcp_msgs), 0);
	assert_int_equal(atomic_load(&f->last_updates), 2);
	assert_int_equal(atomic_load(&f->last_verified), 1);
}

/* hmac-sha512 both ways, with ldns on the server side (ldns 1.8.3 cannot do sha384; the
 * real named does it in tests/integration/test_dns_update.sh). */
static void update_send_signs_and_verifies_hmac_sha512(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	struct tsig_key saved = key;
	static const char text[] =
	    "key acmera { algorithm hmac-sha512; secret \"" SECRET64 "\"; };";
	if (tsig_key_parse(text, sizeof(text) - 1, "test", &key, &e) != 0)
		fail_msg("%s", e.text);
	int rc = send_two(f, SIGNED_NOERROR, &e);
	int verified = atomic_load(&f->last_verified);
	int rc_bad = send_two(f, WRONG_SECRET, &e);
	key = saved;
	if (rc)
		fail_msg("%s", e.text);
	assert_int_equal(verified, 1);
	assert_int_equal(rc_bad, ACMERA_ERR_PROTO);
	assert_error(f, &e, "answer's TSIG does not verify with key 'acmera'");
}

static void update_send_retries_then_times_out_naming_server(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, SILENT, &e), ACMERA_ERR_TIMEOUT);
	assert_error(f, &e, "no answer after 2 attempts of 200 ms");
	assert_int_equal(atomic_load(&f->udp_msgs), 2);
}

static void update_send_reports_refused(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, SIGNED_REFUSED, &e), ACMERA_ERR_REFUSED);
	assert_error(f, &e, ": REFUSED (");
	assert_null(strstr(e.text, "not signed"));
}

static void update_send_reports_unsigned_refusal(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, UNSIGNED_REFUSED, &e), ACMERA_ERR_REFUSED);
	assert_error(f, &e, "REFUSED");
	assert_non_null(strstr(e.text, "(answer not signed)"));
}

static void update_send_distrusts_unsigned_success(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, UNSIGNED_NOERROR, &e), ACMERA_ERR_PROTO);
	assert_error(f, &e, "the answer is not signed: not trusted");
}

static void update_send_names_tsig_badkey(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, BADKEY, &e), ACMERA_ERR_REFUSED);
	assert_error(f, &e, "NOTAUTH, TSIG BADKEY (the server does not know key 'acmera'");
}

static void update_send_rejects_answer_signed_with_other_secret(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, WRONG_SECRET, &e), ACMERA_ERR_PROTO);
	assert_error(f, &e, "answer's TSIG does not verify with key 'acmera'");
}

static void update_send_rejects_answer_signed_with_other_key(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, OTHER_KEY, &e), ACMERA_ERR_PROTO);
	assert_error(f, &e, "answer is signed with another key");
}

static void update_send_ignores_answer_with_wrong_id(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	assert_int_equal(send_two(f, WRONG_ID, &e), ACMERA_ERR_PROTO);
	assert_error(f, &e, "2 answers with a wrong id");
	assert_int_equal(atomic_load(&f->udp_msgs), 2);
}

static void update_send_falls_back_to_tcp_on_truncation(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	int rc = send_two(f, TRUNCATE, &e);
	if (rc)
		fail_msg("%s", e.text);
	assert_int_equal(atomic_load(&f->udp_msgs), 1);
	assert_int_equal(atomic_load(&f->tcp_msgs), 1);
}

static void update_send_sends_many_records_in_one_tcp_message(void **state)
{
	struct fake *f = *state;
	enum { N = 300 };
	static struct dns_txt recs[N];
	static char names[N][64];
	struct acmera_errmsg e = {{0}};
	struct dns_server srv = {.port = f->port, .timeout_ms = 2000, .retries = 0};
	snprintf(srv.host, sizeof(srv.host), "127.0.0.1");
	for (int i = 0; i < N; i++) {
		snprintf(names[i], sizeof(names[i]), "_acme-challenge.host%d.example.test", i);
		recs[i].name = names[i];
		recs[i].value = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0";
	}
	atomic_store(&f->mode, SIGNED_NOERROR);
	int rc = dns_update_send(&srv, &key, "example.test", DNS_UPDATE_DELETE, recs, N, 60, &e);
	if (rc)
		fail_msg("%s", e.text);
	assert_int_equal(atomic_load(&f->tcp_msgs), 1);
	assert_int_equal(atomic_load(&f->udp_msgs), 0);
	assert_int_equal(atomic_load(&f->last_updates), N);
}

static void update_send_refuses_bad_name_without_sending(void **state)
{
	struct fake *f = *state;
	struct acmera_errmsg e = {{0}};
	struct dns_server srv = {.port = f->port, .timeout_ms = 200, .retries = 0};
	const struct dns_txt bad[] = {
	    {"_acme-challenge.dev1.example.test", "v"},
	    {"www.example.test", "v"},
	};
	snprintf(srv.host, sizeof(srv.host), "127.0.0.1");
	atomic_store(&f->mode, SIGNED_NOERROR);
	assert_int_equal(
	    dns_update_send(&srv, &key, "example.test", DNS_UPDATE_ADD, bad, 2, 60, &e),
	    ACMERA_ERR_INVAL);
	assert_error(f, &e, "refusing www.example.test");
	usleep(100 * 1000);
	assert_int_equal(atomic_load(&f->udp_msgs) + atomic_load(&f->tcp_msgs), 0);
}

static int load_key(void **state)
{
	(void)state;
	static const char text[] = "key acmera { algorithm hmac-sha256; secret \"" SECRET "\"; };";
	struct acmera_errmsg e = {{0}};
	if (tsig_key_parse(text, sizeof(text) - 1, "test", &key, &e) != 0)
		fail_msg("%s", e.text);
	return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fake_start, fake_stop)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(update_send_accepts_signed_noerror),
	    T(update_send_signs_and_verifies_hmac_sha512),
	    T(update_send_retries_then_times_out_naming_server),
	    T(update_send_reports_refused),
	    T(update_send_reports_unsigned_refusal),
	    T(update_send_distrusts_unsigned_success),
	    T(update_send_names_tsig_badkey),
	    T(update_send_rejects_answer_signed_with_other_secret),
	    T(update_send_rejects_answer_signed_with_other_key),
	    T(update_send_ignores_answer_with_wrong_id),
	    T(update_send_falls_back_to_tcp_on_truncation),
	    T(update_send_sends_many_records_in_one_tcp_message),
	    T(update_send_refuses_bad_name_without_sending),
	};
	return cmocka_run_group_tests(tests, load_key, NULL);
}
