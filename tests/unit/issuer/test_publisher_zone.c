/* Which configured zone holds a name's _acme-challenge record: the longest
 * matching suffix, without regard to case; names outside every zone are refused
 * before anything is sent. */
#include "issuer/publisher.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	struct config cfg;
	struct store *store;
	struct publisher *pub;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct acmera_errmsg e = {{0}};
	char path[128];
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/acmera-issuer-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(path, sizeof(path), "%s/acmera.db", f->dir);
	assert_int_equal(store_open(path, &f->store, &e), 0);

	assert_int_equal(config_init(&f->cfg), 0);
	/* The broader zone first: a first-match lookup would pick it. */
	assert_int_equal(config_list_add(f->cfg.dns.zones, &f->cfg.dns.n_zones, "example.test", &e),
	                 0);
	assert_int_equal(
	    config_list_add(f->cfg.dns.zones, &f->cfg.dns.n_zones, "sub.example.test", &e), 0);
	/* A hook instead of RFC 2136: no TSIG key and no server needed. */
	assert_int_equal(config_set_str(&f->cfg.dns.hook, "/bin/true"), 0);

	int rc = publisher_new(&f->cfg, f->store, &f->pub, &e);
	if (rc)
		fail_msg("publisher_new: %s", e.text);
	*state = f;
	return 0;
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *ent;
	char path[512];
	assert_non_null(d);
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, ent->d_name);
		unlink(path);
	}
	closedir(d);
	assert_int_equal(rmdir(dir), 0);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	publisher_free(f->pub);
	store_close(f->store);
	config_free(&f->cfg);
	remove_dir(f->dir);
	free(f);
	return 0;
}

static void assert_zone(struct publisher *p, const char *name, const char *want)
{
	char zone[256];
	struct acmera_errmsg e = {{0}};
	memset(zone, 'x', sizeof(zone));
	int rc = publisher_zone_of(p, name, zone, sizeof(zone), &e);
	if (rc)
		fail_msg("zone of %s: %s", name, e.text);
	assert_string_equal(zone, want);
}

static void assert_outside(struct publisher *p, const char *name)
{
	char zone[256] = "";
	struct acmera_errmsg e = {{0}};
	assert_int_equal(publisher_zone_of(p, name, zone, sizeof(zone), &e), ACMERA_ERR_INVAL);
	assert_non_null(strstr(e.text, name));
	assert_non_null(strstr(e.text, "outside the configured zones"));
}

static void zone_of_picks_the_longest_suffix(void **state)
{
	struct fixture *f = *state;
	assert_zone(f->pub, "a.sub.example.test", "sub.example.test");
	assert_zone(f->pub, "b.a.sub.example.test", "sub.example.test");
	assert_zone(f->pub, "a.example.test", "example.test");
}

static void zone_of_ignores_case(void **state)
{
	struct fixture *f = *state;
	assert_zone(f->pub, "A.Example.Test", "example.test");
	assert_zone(f->pub, "X.SUB.Example.TEST", "sub.example.test");
}

static void zone_of_the_apex_is_the_zone_itself(void **state)
{
	struct fixture *f = *state;
	assert_zone(f->pub, "example.test", "example.test");
	assert_zone(f->pub, "sub.example.test", "sub.example.test");
}

static void zone_of_a_name_outside_every_zone_is_refused(void **state)
{
	struct fixture *f = *state;
	/* A suffix of the text but not of the labels. */
	assert_outside(f->pub, "xexample.test");
	assert_outside(f->pub, "xsub.example.test.other");
	assert_outside(f->pub, "other.test");
	assert_outside(f->pub, "test");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(zone_of_picks_the_longest_suffix, setup, teardown),
	    cmocka_unit_test_setup_teardown(zone_of_ignores_case, setup, teardown),
	    cmocka_unit_test_setup_teardown(zone_of_the_apex_is_the_zone_itself, setup, teardown),
	    cmocka_unit_test_setup_teardown(zone_of_a_name_outside_every_zone_is_refused, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
