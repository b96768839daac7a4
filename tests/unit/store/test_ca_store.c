/* Unit tests of the CA's store (ca_store.h): accounts, authorizations and their
 * coverage (the name, wildcards, RFC 9444 ancestors with subdomains), challenges moving
 * authorizations and orders on, orders, certificates. Each on a fresh file. */
#include "store/ca_store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "db_dir.h"

#define T0 1700000000
#define LIFE 3600

struct fx {
	char dir[64];
	char path[128];
	struct ca_store *s;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};
	assert_non_null(f);
	db_dir_make(f->dir, f->path, "castore");
	if (ca_store_open(f->path, &f->s, &e) != 0)
		fail_msg("ca_store_open: %s", e.text);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ca_store_close(f->s);
	db_dir_remove(f->dir, f->path);
	free(f);
	return 0;
}

/* Ids of exactly CA_ID_LEN characters made from a short tag. */
static void mkid(char out[CA_ID_LEN + 1], const char *tag)
{
	size_t n = strlen(tag);
	for (size_t i = 0; i < CA_ID_LEN; i++)
		out[i] = i < n ? tag[i] : 'x';
	out[CA_ID_LEN] = '\0';
}

/* mkid into one of a few static buffers, for comparisons. */
static const char *id_of(const char *tag)
{
	static char ids[4][CA_ID_LEN + 1];
	static int next;
	char *out = ids[next++ % 4];
	if (!*tag)
		return "";
	mkid(out, tag);
	return out;
}

static void add_account(struct ca_store *s, const char *tag, const char *thumb)
{
	struct ca_account a = {0};
	mkid(a.id, tag);
	a.jwk = "{\"kty\":\"EC\"}";
	snprintf(a.thumbprint, sizeof(a.thumbprint), "%s", thumb);
	snprintf(a.status, sizeof(a.status), "valid");
	a.created = T0;
	assert_int_equal(ca_store_account_add(s, &a, NULL), 0);
}

/* An authorization of account tag with one dns-01 challenge (id "c" + tag). */
static void add_authz(struct ca_store *s, const char *acct, const char *tag, const char *name,
                      int wildcard, int subdomains, const char *status, int64_t expires)
{
	struct ca_authz a = {0};
	struct ca_challenge ch = {0};
	char ctag[32];
	mkid(a.id, tag);
	mkid(a.account, acct);
	snprintf(a.name, sizeof(a.name), "%s", name);
	a.wildcard = wildcard;
	a.subdomains = subdomains;
	snprintf(a.status, sizeof(a.status), "%s", status);
	a.expires = expires;
	a.created = T0;
	snprintf(ctag, sizeof(ctag), "c%s", tag);
	mkid(ch.id, ctag);
	memcpy(ch.authz, a.id, sizeof(ch.authz));
	snprintf(ch.type, sizeof(ch.type), "dns-01");
	snprintf(ch.token, sizeof(ch.token), "token-%s", tag);
	snprintf(ch.status, sizeof(ch.status), "pending");
	assert_int_equal(ca_store_authz_add(s, &a, &ch, 1, NULL), 0);
}

/* The id tag of the authorization covering name for account, or "" when none. */
static const char *covering(struct ca_store *s, const char *acct, const char *name, int64_t now)
{
	static char tag[CA_ID_LEN + 1];
	struct ca_authz a;
	char id[CA_ID_LEN + 1];
	mkid(id, acct);
	int rc = ca_store_authz_covering(s, id, name, now, &a, NULL);
	if (rc == ACMERA_ERR_NOTFOUND)
		return "";
	assert_int_equal(rc, 0);
	snprintf(tag, sizeof(tag), "%s", a.id);
	return tag;
}

static void ca_store_account_key_and_eab_kid_are_unique(void **state)
{
	struct fx *f = *state;
	struct ca_account a = {0}, b = {0};
	add_account(f->s, "acct1", "thumb-1");
	mkid(a.id, "acct2");
	a.jwk = "{}";
	snprintf(a.thumbprint, sizeof(a.thumbprint), "thumb-1");
	snprintf(a.status, sizeof(a.status), "valid");
	assert_int_equal(ca_store_account_add(f->s, &a, NULL), ACMERA_ERR_REFUSED);
	snprintf(a.thumbprint, sizeof(a.thumbprint), "thumb-2");
	a.eab_kid = "kid-1";
	assert_int_equal(ca_store_account_add(f->s, &a, NULL), 0);
	mkid(a.id, "acct3");
	snprintf(a.thumbprint, sizeof(a.thumbprint), "thumb-3");
	assert_int_equal(ca_store_account_add(f->s, &a, NULL), ACMERA_ERR_REFUSED);

	assert_int_equal(ca_store_account_by_thumbprint(f->s, "thumb-2", &b, NULL), 0);
	assert_string_equal(b.eab_kid, "kid-1");
	ca_account_free(&b);
	assert_int_equal(ca_store_account_by_thumbprint(f->s, "thumb-3", &b, NULL),
	                 ACMERA_ERR_NOTFOUND);
}

static void ca_store_account_update_and_key_change(void **state)
{
	struct fx *f = *state;
	struct ca_account a = {0};
	char id1[CA_ID_LEN + 1], id2[CA_ID_LEN + 1];
	mkid(id1, "acct1");
	mkid(id2, "acct2");
	add_account(f->s, "acct1", "thumb-1");
	add_account(f->s, "acct2", "thumb-2");
	assert_int_equal(ca_store_account_update(f->s, id1, "[\"mailto:a@b.test\"]", NULL, NULL),
	                 0);
	assert_int_equal(ca_store_account_set_key(f->s, id1, "{\"k\":1}", "thumb-2", NULL),
	                 ACMERA_ERR_REFUSED);
	assert_int_equal(ca_store_account_set_key(f->s, id1, "{\"k\":1}", "thumb-9", NULL), 0);
	assert_int_equal(ca_store_account_update(f->s, id1, NULL, "deactivated", NULL), 0);
	assert_int_equal(ca_store_account_by_thumbprint(f->s, "thumb-9", &a, NULL), 0);
	assert_string_equal(a.id, id1);
	assert_string_equal(a.status, "deactivated");
	assert_string_equal(a.contact, "[\"mailto:a@b.test\"]");
	assert_string_equal(a.jwk, "{\"k\":1}");
	ca_account_free(&a);
	assert_int_equal(ca_store_account_by_thumbprint(f->s, "thumb-1", &a, NULL),
	                 ACMERA_ERR_NOTFOUND);
	mkid(id1, "nobody");
	assert_int_equal(ca_store_account_update(f->s, id1, NULL, "deactivated", NULL),
	                 ACMERA_ERR_NOTFOUND);
}

static void ca_store_authz_covers_exact_name_only_without_subdomains(void **state)
{
	struct fx *f = *state;
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "exact", "dev.example.test", 0, 0, "valid", T0 + LIFE);
	assert_string_equal(covering(f->s, "acct1", "dev.example.test", T0), id_of("exact"));
	assert_string_equal(covering(f->s, "acct1", "a.dev.example.test", T0), id_of(""));
	assert_string_equal(covering(f->s, "acct1", "*.dev.example.test", T0), id_of(""));
	/* expired, or another account's: not covering */
	assert_string_equal(covering(f->s, "acct1", "dev.example.test", T0 + LIFE), id_of(""));
	add_account(f->s, "acct2", "t2");
	assert_string_equal(covering(f->s, "acct2", "dev.example.test", T0), id_of(""));
}

static void ca_store_authz_with_subdomains_covers_descendants_on_whole_labels(void **state)
{
	struct fx *f = *state;
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "parent", "iot.example.test", 0, 1, "valid", T0 + LIFE);
	assert_string_equal(covering(f->s, "acct1", "iot.example.test", T0), id_of("parent"));
	assert_string_equal(covering(f->s, "acct1", "d1.iot.example.test", T0), id_of("parent"));
	assert_string_equal(covering(f->s, "acct1", "a.b.iot.example.test", T0), id_of("parent"));
	assert_string_equal(covering(f->s, "acct1", "*.iot.example.test", T0), id_of("parent"));
	assert_string_equal(covering(f->s, "acct1", "*.x.iot.example.test", T0), id_of("parent"));
	/* not on a label boundary, or above it */
	assert_string_equal(covering(f->s, "acct1", "xiot.example.test", T0), id_of(""));
	assert_string_equal(covering(f->s, "acct1", "example.test", T0), id_of(""));
	assert_string_equal(covering(f->s, "acct1", "d1.iot.example.test", T0 + LIFE), id_of(""));
}

static void ca_store_authz_pending_or_invalid_ancestor_does_not_cover(void **state)
{
	struct fx *f = *state;
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "pend", "iot.example.test", 0, 1, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "bad", "example.test", 0, 1, "invalid", T0 + LIFE);
	assert_string_equal(covering(f->s, "acct1", "d1.iot.example.test", T0), id_of(""));
	struct ca_authz a;
	char id[CA_ID_LEN + 1];
	mkid(id, "acct1");
	assert_int_equal(ca_store_authz_pending(f->s, id, "iot.example.test", 0, 1, T0, &a, NULL),
	                 0);
	assert_int_equal(ca_store_authz_pending(f->s, id, "iot.example.test", 0, 0, T0, &a, NULL),
	                 ACMERA_ERR_NOTFOUND);
}

static void ca_store_wildcard_authz_covers_only_the_wildcard(void **state)
{
	struct fx *f = *state;
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "wild", "w.example.test", 1, 0, "valid", T0 + LIFE);
	assert_string_equal(covering(f->s, "acct1", "*.w.example.test", T0), id_of("wild"));
	assert_string_equal(covering(f->s, "acct1", "w.example.test", T0), id_of(""));
	assert_string_equal(covering(f->s, "acct1", "a.w.example.test", T0), id_of(""));
}

/* An order on two authorizations (ids "az1", "az2") for account acct1. */
static void add_order(struct ca_store *s, const char *tag)
{
	struct ca_order o = {0};
	char authzs[2][CA_ID_LEN + 1];
	mkid(o.id, tag);
	mkid(o.account, "acct1");
	snprintf(o.status, sizeof(o.status), "pending");
	o.expires = T0 + LIFE;
	o.created = T0;
	o.identifiers = "[{\"type\":\"dns\",\"value\":\"a.example.test\"}]";
	mkid(authzs[0], "az1");
	mkid(authzs[1], "az2");
	o.authzs = authzs;
	o.n_authzs = 2;
	assert_int_equal(ca_store_order_add(s, &o, NULL), 0);
}

static const char *order_status(struct ca_store *s, const char *tag)
{
	static char st[16];
	struct ca_order o;
	char id[CA_ID_LEN + 1];
	mkid(id, tag);
	assert_int_equal(ca_store_order_get(s, id, &o, NULL), 0);
	snprintf(st, sizeof(st), "%s", o.status);
	assert_int_equal(o.n_authzs, 2);
	ca_order_free(&o);
	return st;
}

static void ca_store_order_becomes_ready_when_every_authz_is_valid(void **state)
{
	struct fx *f = *state;
	char c1[CA_ID_LEN + 1], c2[CA_ID_LEN + 1];
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "pending", T0 + LIFE);
	add_order(f->s, "ord1");
	mkid(c1, "caz1");
	mkid(c2, "caz2");
	/* not processing yet: no verdict possible */
	assert_int_equal(ca_store_challenge_finish(f->s, c1, NULL, T0, 100, NULL),
	                 ACMERA_ERR_AGAIN);
	assert_int_equal(ca_store_challenge_begin(f->s, c1, T0, NULL), 0);
	assert_int_equal(ca_store_challenge_begin(f->s, c1, T0, NULL), ACMERA_ERR_AGAIN);
	char ids[4][CA_ID_LEN + 1];
	size_t n = 0;
	assert_int_equal(ca_store_challenges_processing(f->s, ids, 4, &n, NULL), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], c1);
	assert_int_equal(ca_store_challenge_finish(f->s, c1, NULL, T0 + 5, 100, NULL), 0);
	assert_string_equal(order_status(f->s, "ord1"), "pending");
	assert_int_equal(ca_store_challenge_begin(f->s, c2, T0, NULL), 0);
	assert_int_equal(ca_store_challenge_finish(f->s, c2, NULL, T0 + 6, 100, NULL), 0);
	assert_string_equal(order_status(f->s, "ord1"), "ready");

	struct ca_authz a;
	char id[CA_ID_LEN + 1];
	mkid(id, "az1");
	assert_int_equal(ca_store_authz_get(f->s, id, &a, NULL), 0);
	assert_string_equal(a.status, "valid");
	assert_int_equal(a.expires, T0 + 5 + 100);
	struct ca_challenge ch;
	assert_int_equal(ca_store_challenge_get(f->s, c1, &ch, NULL), 0);
	assert_string_equal(ch.status, "valid");
	assert_int_equal(ch.validated, T0 + 5);
	ca_challenge_free(&ch);
}

static void ca_store_failed_challenge_invalidates_authz_and_order(void **state)
{
	struct fx *f = *state;
	char c1[CA_ID_LEN + 1];
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "pending", T0 + LIFE);
	add_order(f->s, "ord1");
	mkid(c1, "caz1");
	assert_int_equal(ca_store_challenge_begin(f->s, c1, T0, NULL), 0);
	assert_int_equal(ca_store_challenge_finish(f->s, c1, "{\"type\":\"x\"}", T0, 100, NULL), 0);
	assert_string_equal(order_status(f->s, "ord1"), "invalid");
	struct ca_challenge ch;
	assert_int_equal(ca_store_challenge_get(f->s, c1, &ch, NULL), 0);
	assert_string_equal(ch.status, "invalid");
	assert_string_equal(ch.error, "{\"type\":\"x\"}");
	ca_challenge_free(&ch);
	/* an expired authorization's challenge cannot start */
	char c2[CA_ID_LEN + 1];
	mkid(c2, "caz2");
	assert_int_equal(ca_store_challenge_begin(f->s, c2, T0 + LIFE, NULL), ACMERA_ERR_AGAIN);
}

static void ca_store_deactivated_authz_invalidates_pending_orders(void **state)
{
	struct fx *f = *state;
	char id[CA_ID_LEN + 1];
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "pending", T0 + LIFE);
	add_order(f->s, "ord1");
	mkid(id, "az2");
	assert_int_equal(ca_store_authz_deactivate(f->s, id, NULL), 0);
	assert_int_equal(ca_store_authz_deactivate(f->s, id, NULL), ACMERA_ERR_AGAIN);
	assert_string_equal(order_status(f->s, "ord1"), "invalid");
}

static const char *authz_status(struct ca_store *s, const char *tag)
{
	static char st[16];
	struct ca_authz a;
	char id[CA_ID_LEN + 1];
	mkid(id, tag);
	assert_int_equal(ca_store_authz_get(s, id, &a, NULL), 0);
	snprintf(st, sizeof(st), "%s", a.status);
	return st;
}

static void ca_store_deactivated_account_cancels_its_orders_and_authzs(void **state)
{
	struct fx *f = *state;
	char id[CA_ID_LEN + 1];
	struct ca_order o;
	add_account(f->s, "acct1", "t1");
	add_account(f->s, "acct2", "t2");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "valid", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "az3", "c.example.test", 0, 0, "invalid", T0 + LIFE);
	add_authz(f->s, "acct2", "az4", "a.example.test", 0, 0, "valid", T0 + LIFE);
	add_order(f->s, "ord1"); /* pending: az2 is */
	add_order(f->s, "ord2");
	mkid(id, "ord2");
	assert_int_equal(ca_store_order_transition(f->s, id, "pending", "ready", NULL, NULL), 0);
	add_order(f->s, "ord3");
	mkid(id, "ord3");
	assert_int_equal(ca_store_order_transition(f->s, id, "pending", "invalid", NULL, NULL), 0);
	mkid(id, "acct1");
	assert_int_equal(ca_store_account_update(f->s, id, NULL, "deactivated", NULL), 0);
	assert_string_equal(order_status(f->s, "ord1"), "invalid");
	assert_string_equal(order_status(f->s, "ord2"), "invalid");
	assert_string_equal(order_status(f->s, "ord3"), "invalid");
	mkid(id, "ord1");
	assert_int_equal(ca_store_order_get(f->s, id, &o, NULL), 0);
	assert_non_null(strstr(o.error, "urn:ietf:params:acme:error:unauthorized"));
	assert_non_null(strstr(o.error, "deactivated"));
	ca_order_free(&o);
	assert_string_equal(authz_status(f->s, "az1"), "deactivated");
	assert_string_equal(authz_status(f->s, "az2"), "deactivated");
	assert_string_equal(authz_status(f->s, "az3"), "invalid");
	/* Another account's work is not touched. */
	assert_string_equal(authz_status(f->s, "az4"), "valid");
	assert_string_equal(covering(f->s, "acct2", "a.example.test", T0), id_of("az4"));
	assert_string_equal(covering(f->s, "acct1", "a.example.test", T0), "");
}

static void ca_store_order_list_pages_and_skips_invalid(void **state)
{
	struct fx *f = *state;
	char ids[3][CA_ID_LEN + 1], id[CA_ID_LEN + 1];
	size_t n = 0;
	int more = 0;
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "pending", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "pending", T0 + LIFE);
	add_order(f->s, "ord1");
	add_order(f->s, "ord2");
	add_order(f->s, "ord3");
	mkid(id, "ord2");
	assert_int_equal(ca_store_order_transition(f->s, id, "pending", "invalid", NULL, NULL), 0);
	assert_int_equal(ca_store_order_transition(f->s, id, "pending", "ready", NULL, NULL),
	                 ACMERA_ERR_AGAIN);
	mkid(id, "acct1");
	assert_int_equal(ca_store_order_list(f->s, id, 0, 1, ids, &n, &more, NULL), 0);
	assert_int_equal(n, 1);
	assert_true(more);
	mkid(id, "ord1");
	assert_string_equal(ids[0], id);
	mkid(id, "acct1");
	assert_int_equal(ca_store_order_list(f->s, id, 1, 1, ids, &n, &more, NULL), 0);
	assert_int_equal(n, 1);
	assert_false(more);
	mkid(id, "ord3");
	assert_string_equal(ids[0], id);
}

static void ca_store_cert_issue_needs_ready_order_and_revokes_once(void **state)
{
	struct fx *f = *state;
	struct ca_cert c = {0}, got;
	char oid[CA_ID_LEN + 1];
	add_account(f->s, "acct1", "t1");
	add_authz(f->s, "acct1", "az1", "a.example.test", 0, 0, "valid", T0 + LIFE);
	add_authz(f->s, "acct1", "az2", "b.example.test", 0, 0, "valid", T0 + LIFE);
	add_order(f->s, "ord1");
	mkid(oid, "ord1");
	mkid(c.id, "cert1");
	mkid(c.account, "acct1");
	memcpy(c.order_id, oid, sizeof(c.order_id));
	snprintf(c.serial, sizeof(c.serial), "4000000000000000000000000000000a");
	c.chain_pem = "PEM";
	c.not_after = T0 + 100;
	c.issued = T0;
	assert_int_equal(ca_store_cert_issued(f->s, &c, NULL), ACMERA_ERR_AGAIN);
	assert_int_equal(ca_store_cert_get(f->s, c.id, &got, NULL), ACMERA_ERR_NOTFOUND);
	assert_int_equal(ca_store_order_transition(f->s, oid, "pending", "ready", NULL, NULL), 0);
	assert_int_equal(ca_store_cert_issued(f->s, &c, NULL), 0);
	/* A second finalize that lost the race records nothing. */
	struct ca_cert late = c;
	mkid(late.id, "cert2");
	snprintf(late.serial, sizeof(late.serial), "4000000000000000000000000000000b");
	assert_int_equal(ca_store_cert_issued(f->s, &late, NULL), ACMERA_ERR_AGAIN);
	assert_int_equal(ca_store_cert_get(f->s, late.id, &got, NULL), ACMERA_ERR_NOTFOUND);
	struct ca_order o;
	assert_int_equal(ca_store_order_get(f->s, oid, &o, NULL), 0);
	assert_string_equal(o.status, "valid");
	assert_string_equal(o.cert, c.id);
	ca_order_free(&o);
	assert_int_equal(ca_store_cert_by_serial(f->s, c.serial, &got, NULL), 0);
	assert_string_equal(got.chain_pem, "PEM");
	assert_false(got.revoked);
	ca_cert_free(&got);
	assert_int_equal(ca_store_cert_revoke(f->s, c.id, 4, T0 + 1, NULL), 0);
	assert_int_equal(ca_store_cert_revoke(f->s, c.id, 4, T0 + 2, NULL), ACMERA_ERR_REFUSED);
	assert_int_equal(ca_store_cert_get(f->s, c.id, &got, NULL), 0);
	assert_true(got.revoked);
	assert_int_equal(got.reason, 4);
	assert_int_equal(got.revoked_at, T0 + 1);
	ca_cert_free(&got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	    T(ca_store_account_key_and_eab_kid_are_unique),
	    T(ca_store_account_update_and_key_change),
	    T(ca_store_deactivated_account_cancels_its_orders_and_authzs),
	    T(ca_store_authz_covers_exact_name_only_without_subdomains),
	    T(ca_store_authz_with_subdomains_covers_descendants_on_whole_labels),
	    T(ca_store_authz_pending_or_invalid_ancestor_does_not_cover),
	    T(ca_store_wildcard_authz_covers_only_the_wildcard),
	    T(ca_store_order_becomes_ready_when_every_authz_is_valid),
	    T(ca_store_failed_challenge_invalidates_authz_and_order),
	    T(ca_store_deactivated_authz_invalidates_pending_orders),
	    T(ca_store_order_list_pages_and_skips_invalid),
	    T(ca_store_cert_issue_needs_ready_order_and_revokes_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
