/* file_watch: "maybe changed" after every kind of change to the file, its name
 * or its link, and "unchanged" when only other files of the directory change. */
#include "base/file_watch.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[] = "/tmp/acmera-file-watch-XXXXXX";
static const char dir_template[] = "/tmp/acmera-file-watch-XXXXXX";

static const char *in_dir(const char *name)
{
	static char p[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void put(const char *name, const char *text)
{
	FILE *f = fopen(in_dir(name), "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
	(void)state;
	memcpy(dir, dir_template, sizeof(dir));
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	const char *names[] = {"pw", "other", "pw.new", "sub/pw", "sub2/pw", "link"};
	for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
		unlink(in_dir(names[i]));
	rmdir(in_dir("sub"));
	rmdir(in_dir("sub2"));
	return rmdir(dir);
}

/* The first answer is "maybe"; an immediate second one "unchanged". */
static struct file_watch *settled(const char *path)
{
	struct file_watch *w = file_watch_new(path);
	assert_non_null(w);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	return w;
}

static void every_change_of_the_file_is_seen(void **state)
{
	(void)state;
	put("pw", "a\n");
	struct file_watch *w = settled(in_dir("pw"));
	put("pw", "b\n"); /* rewritten in place */
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	put("pw.new", "c\n"); /* replaced by rename, as acmera passwd does */
	assert_int_equal(rename(in_dir("pw.new"), in_dir("pw")), 0);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	put("pw", "d\n"); /* the renamed file is watched in turn */
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(chmod(in_dir("pw"), 0600), 0);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(unlink(in_dir("pw")), 0);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	put("pw", "e\n");
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	file_watch_free(w);
}

static void writes_to_other_files_do_not_count(void **state)
{
	(void)state;
	put("pw", "a\n");
	put("other", "x\n");
	struct file_watch *w = settled(in_dir("pw"));
	for (int i = 0; i < 3; i++) {
		put("other", "y\n");
		assert_int_equal(file_watch_maybe_changed(w), 0);
	}
	file_watch_free(w);
}

static void a_link_and_its_target_are_both_watched(void **state)
{
	(void)state;
	assert_int_equal(mkdir(in_dir("sub"), 0700), 0);
	assert_int_equal(mkdir(in_dir("sub2"), 0700), 0);
	put("sub/pw", "a\n");
	put("sub2/pw", "b\n");
	assert_int_equal(symlink("sub/pw", in_dir("link")), 0);
	struct file_watch *w = settled(in_dir("link"));
	put("sub/pw", "c\n"); /* the target, in another directory */
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	/* The link now points elsewhere: seen, and the new target is watched. */
	assert_int_equal(unlink(in_dir("link")), 0);
	assert_int_equal(symlink("sub2/pw", in_dir("link")), 0);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	put("sub2/pw", "d\n");
	assert_int_equal(file_watch_maybe_changed(w), 1);
	file_watch_free(w);
}

static void without_events_the_answer_is_maybe_once_a_second(void **state)
{
	(void)state;
	put("pw", "a\n");
	struct file_watch *w = settled(in_dir("pw"));
	usleep(1100 * 1000);
	assert_int_equal(file_watch_maybe_changed(w), 1);
	assert_int_equal(file_watch_maybe_changed(w), 0);
	file_watch_free(w);
}

static void a_missing_directory_gives_no_watch(void **state)
{
	(void)state;
	assert_null(file_watch_new(in_dir("no-such-dir/pw")));
	file_watch_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(every_change_of_the_file_is_seen, setup, teardown),
	    cmocka_unit_test_setup_teardown(writes_to_other_files_do_not_count, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_link_and_its_target_are_both_watched, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(without_events_the_answer_is_maybe_once_a_second, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_missing_directory_gives_no_watch, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
