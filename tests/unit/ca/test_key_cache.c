/* ca_key_cache: account keys by their JWK text, made once and shared. */
#include "acme/jws.h"
#include "ca/key_cache.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <stdlib.h>

static char *jwk_text(EVP_PKEY *k)
{
	json_t *j = jws_jwk(k);
	assert_non_null(j);
	char *t = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	assert_non_null(t);
	return t;
}

static void same_text_gives_the_same_key_and_another_text_another(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	EVP_PKEY *a = EVP_EC_gen("P-256"), *b = EVP_EC_gen("P-256");
	assert_non_null(a);
	assert_non_null(b);
	char *ta = jwk_text(a), *tb = jwk_text(b);
	EVP_PKEY *k1 = NULL, *k2 = NULL, *k3 = NULL;
	/* One slot: b replaces a, and a is made again afterwards. */
	assert_int_equal(ca_key_cache_new(1, &c, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, ta, &k1, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, ta, &k2, NULL), 0);
	assert_ptr_equal(k1, k2); /* a hit */
	assert_int_equal(EVP_PKEY_eq(k1, a), 1);
	assert_int_equal(ca_key_cache_get(c, tb, &k3, NULL), 0);
	assert_int_equal(EVP_PKEY_eq(k3, b), 1);
	EVP_PKEY_free(k2);
	assert_int_equal(ca_key_cache_get(c, ta, &k2, NULL), 0);
	assert_ptr_not_equal(k1, k2);
	assert_int_equal(EVP_PKEY_eq(k2, a), 1);
	/* Keys handed out outlive the cache. */
	ca_key_cache_free(c);
	assert_int_equal(EVP_PKEY_eq(k1, a), 1);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(k3);
	free(ta);
	free(tb);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void unusable_jwk_is_refused_and_not_kept(void **state)
{
	(void)state;
	struct ca_key_cache *c = NULL;
	struct acmera_errmsg e = {{0}};
	EVP_PKEY *k = NULL;
	assert_int_equal(ca_key_cache_new(8, &c, NULL), 0);
	assert_int_equal(ca_key_cache_get(c, "not json", &k, &e), ACMERA_ERR_INVAL);
	assert_null(k);
	assert_int_equal(ca_key_cache_get(c, "{\"kty\":\"EC\",\"crv\":\"P-256\"}", &k, &e),
	                 ACMERA_ERR_INVAL);
	assert_null(k);
	ca_key_cache_free(c);
	assert_int_equal(ca_key_cache_new(0, &c, &e), ACMERA_ERR_INVAL);
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(same_text_gives_the_same_key_and_another_text_another),
	    cmocka_unit_test(unusable_jwk_is_refused_and_not_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
