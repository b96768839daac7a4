/* Unit tests of cli_load_csr_files: CSRs read on several threads, the error of
 * the first bad file in argument order. */
#include "cli/csr_files.h"
#include "../pki/pki_test_util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N 100

struct fx {
	char *paths[N];
	struct csr_info out[N];
};

/* N CSR files, each for its own name; those at the indexes in bad[] hold a
 * CSR whose last byte (in its signature) was changed. */
static void make_files(struct fx *f, const size_t *bad, size_t n_bad)
{
	EVP_PKEY *key = tu_key(TU_EC_P256);
	for (size_t i = 0; i < N; i++) {
		char san[64];
		uint8_t *der = NULL;
		size_t len = 0;
		snprintf(san, sizeof(san), "DNS:d%zu.example.com", i);
		tu_csr(key, NULL, san, &der, &len);
		for (size_t j = 0; j < n_bad; j++)
			if (bad[j] == i)
				der[len - 1] ^= 0x01;
		f->paths[i] = tu_temp_file(der, len);
		free(der);
	}
	EVP_PKEY_free(key);
}

static void free_files(struct fx *f)
{
	for (size_t i = 0; i < N; i++) {
		csr_info_free(&f->out[i]);
		unlink(f->paths[i]);
		free(f->paths[i]);
	}
}

static void every_file_loads_in_its_place_on_any_number_of_threads(void **state)
{
	(void)state;
	static const int threads[] = {1, 2, 4, 64};
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		struct fx f = {0};
		size_t failed = 999;
		make_files(&f, NULL, 0);
		assert_int_equal(cli_load_csr_files((const char *const *)f.paths, N, f.out,
		                                    threads[t], &failed, NULL),
		                 0);
		assert_int_equal(failed, 999);
		for (size_t i = 0; i < N; i++) {
			char want[64];
			snprintf(want, sizeof(want), "d%zu.example.com", i);
			assert_int_equal(f.out[i].n_names, 1);
			assert_string_equal(f.out[i].names[0], want);
		}
		free_files(&f);
	}
}

static void the_first_bad_file_in_argument_order_is_reported(void **state)
{
	(void)state;
	static const size_t bad[] = {71, 40, 97};
	static const int threads[] = {1, 2, 8};
	for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
		struct fx f = {0};
		struct acmera_errmsg e = {{0}};
		size_t failed = 0;
		make_files(&f, bad, sizeof(bad) / sizeof(bad[0]));
		assert_int_not_equal(cli_load_csr_files((const char *const *)f.paths, N, f.out,
		                                        threads[t], &failed, &e),
		                     0);
		assert_int_equal(failed, 40);
		assert_non_null(strstr(e.text, "signature"));
		assert_non_null(strstr(e.text, f.paths[40]));
		free_files(&f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_file_loads_in_its_place_on_any_number_of_threads),
	    cmocka_unit_test(the_first_bad_file_in_argument_order_is_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
