/* ca_key_cache: account keys by their JWK text, made once and shared, with their
 * verifiers. */
#include "acme/jws.h"
#include "ca/key_cache.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *jwk_text(EVP_PKEY *k)
{
	json_t *j = jws_jwk(k);
	assert_non_null(j);
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	assert_non_null(t);
	return t;
}

/* Two P-256 account keys and their JWK texts. */
struct two_keys {
	EVP_PKEY *a, *b;
	char *ta, *tb;
};

static void two_keys_make(struct two_keys *k)
{
	k->a = EVP_EC_gen("P-256");
	k->b = EVP_EC_gen("P-256");
	assert_non_null(k->a);
	assert_non_null(k->b);
	k->ta = jwk_text(k->a);
	k->tb = jwk_text(k->b);
}

static void two_keys_free(struct two_keys *k)
{
	free(k->ta);
	free(k->tb);
	EVP_PKEY_free(k->a);
	EVP_PKEY_free(k->b);
}

static void same_text_gives_the_same_key_and_another_text_another(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	struct two_keys two;
	two_keys_make(&two);
	EVP_PKEY *a = two.a, *b = two.b;
	const char *ta = two.ta, *tb = two.tb;
	EVP_PKEY *k1 = NULL, *k2 = NULL, *k3 = NULL;
	/* One slot: b replaces a, and a is made again afterwards. */
	assert_int_equal(ca_key_cache_new(1, &c, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, ta, &k1, NULL, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, ta, &k2, NULL, NULL), 0);
	assert_ptr_equal(k1, k2); /* a hit */
	assert_int_equal(EVP_PKEY_eq(k1, a), 1);
	assert_int_equal(ca_key_cache_get(c, tb, &k3, NULL, NULL), 0);
	assert_int_equal(EVP_PKEY_eq(k3, b), 1);
	EVP_PKEY_free(k2);
	assert_int_equal(ca_key_cache_get(c, ta, &k2, NULL, NULL), 0);
	assert_ptr_not_equal(k1, k2);
	assert_int_equal(EVP_PKEY_eq(k2, a), 1);
	/* Keys handed out outlive the cache. */
	ca_key_cache_free(c);
	assert_int_equal(EVP_PKEY_eq(k1, a), 1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	two_keys_free(&two);
}

static void unusable_jwk_is_refused_and_not_kept(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	struct acmera_errmsg e = {{0}};
	EVP_PKEY *k = NULL;
	assert_int_equal(ca_key_cache_new(8, &c, NULL), 0);
	struct ca_jws_verifier *v = NULL;
	assert_int_equal(ca_key_cache_get(c, "not json", &k, &v, &e), ACMERA_ERR_INVAL);
	assert_null(k);
	assert_null(v);
	assert_int_equal(ca_key_cache_get(c, "{\"kty\":\"EC\",\"crv\":\"P-256\"}", &k, &v, &e),
	                 ACMERA_ERR_INVAL);
	assert_null(k);
	assert_null(v);
	ca_key_cache_free(c);
	assert_int_equal(ca_key_cache_new(0, &c, &e), ACMERA_ERR_INVAL);
	assert_null(c);
}

/* A JWS by k as the ACME client sends it, parsed. */
static void client_jws(EVP_PKEY *k, struct ca_jws *j)
{
	char *body =
	    jws_sign(k, "https://ca.test/acct/1", "bm9uY2U", "https://ca.test/x", "{}", NULL);
	assert_non_null(body);
	assert_int_equal(ca_jws_parse(body, strlen(body), j, NULL, NULL), 0);
	free(body);
}

static void each_caller_gets_a_verifier_of_its_own_on_a_miss_and_a_hit(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	EVP_PKEY *a = EVP_EC_gen("P-384"), *b = EVP_RSA_gen(2048);
	assert_non_null(a);
	assert_non_null(b);
	char *ta = jwk_text(a);
	struct ca_jws ja, jb;
	client_jws(a, &ja);
	client_jws(b, &jb);
	EVP_PKEY *k1 = NULL, *k2 = NULL;
	struct ca_jws_verifier *v1 = NULL, *v2 = NULL;
	assert_int_equal(ca_key_cache_new(4, &c, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, ta, &k1, &v1, NULL), 0); /* a miss */
	assert_int_equal(ca_key_cache_get(c, ta, &k2, &v2, NULL), 0); /* a hit */
	assert_ptr_equal(k1, k2);
	assert_non_null(v1);
	assert_non_null(v2);
	assert_ptr_not_equal(v1, v2);
	assert_ptr_equal(ca_jws_verifier_key(v1), k1);
	assert_ptr_equal(ca_jws_verifier_key(v2), k1);
	ca_key_cache_free(c); /* verifiers handed out outlive it */
	const char *problem = NULL;
	assert_int_equal(ca_jws_verify_with(&ja, v1, &problem, NULL), 0);
	assert_int_equal(ca_jws_verify_with(&ja, v2, &problem, NULL), 0);
	assert_int_equal(ca_jws_verify_with(&jb, v2, &problem, NULL), ACMERA_ERR_INVAL);
	assert_string_equal(problem, "badSignatureAlgorithm");
	ca_jws_verifier_free(v1);
	ca_jws_verifier_free(v2);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	ca_jws_free(&ja);
	ca_jws_free(&jb);
	free(ta);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

/* Workers of acmera ca share the cache; under ASan this also checks that every
 * verifier and key handed out is freed once. */
struct worker {
	struct ca_key_cache *c;
	const char *texts[2];
	const struct ca_jws *jws[2];
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 200; i++) {
		EVP_PKEY *k = NULL;
		struct ca_jws_verifier *v = NULL;
		int n = i % 2;
		if (ca_key_cache_get(w->c, w->texts[n], &k, &v, NULL) != 0 || !v ||
		    ca_jws_verify_with(w->jws[n], v, NULL, NULL) != 0 ||
		    ca_jws_verify_with(w->jws[1 - n], v, NULL, NULL) == 0)
			w->failures++;
		ca_jws_verifier_free(v);
		EVP_PKEY_free(k);
	}
	return NULL;
}

static void workers_verify_at_once_with_the_keys_they_share(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	struct two_keys two;
	two_keys_make(&two);
	struct ca_jws ja, jb;
	client_jws(two.a, &ja);
	client_jws(two.b, &jb);
	/* One slot: the two keys also keep replacing each other. */
	for (size_t slots = 1; slots <= 8; slots += 7) {
		assert_int_equal(ca_key_cache_new(slots, &c, NULL), 0);
		struct worker w[4];
		pthread_t t[4];
		for (int i = 0; i < 4; i++) {
			w[i] = (struct worker){c, {two.ta, two.tb}, {&ja, &jb}, 0};
			assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
		}
		for (int i = 0; i < 4; i++) {
			assert_int_equal(pthread_join(t[i], NULL), 0);
			assert_int_equal(w[i].failures, 0);
		}
		ca_key_cache_free(c);
	}
	ca_jws_free(&ja);
	ca_jws_free(&jb);
	two_keys_free(&two);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(same_text_gives_the_same_key_and_another_text_another),
	    cmocka_unit_test(unusable_jwk_is_refused_and_not_kept),
	    cmocka_unit_test(each_caller_gets_a_verifier_of_its_own_on_a_miss_and_a_hit),
	    cmocka_unit_test(workers_verify_at_once_with_the_keys_they_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
