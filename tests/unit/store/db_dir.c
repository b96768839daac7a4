/* See db_dir.h. */
#include "db_dir.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void db_dir_make(char dir[64], char path[128], const char *tag)
{
	snprintf(dir, 64, "/tmp/acmera-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(dir));
	snprintf(path, 128, "%s/acmera.db", dir);
}

int db_dir_remove(const char *dir, const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[160];
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
	return rmdir(dir);
}
