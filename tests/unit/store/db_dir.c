/* See db_dir.h. */
#include "db_dir.h"

#include "store/store.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int64_t db_claimed_job(struct store *s, int i, const char *owner, int64_t now, char digest[65])
{
	uint8_t der[32];
	int64_t id = 0;
	int created = 0;
	struct store_job *jobs = NULL;
	size_t n = 0;
	memset(der, 0x30, sizeof(der));
	memcpy(der + 4, &i, sizeof(i));
	assert_int_equal(
	    store_job_submit(s, der, sizeof(der), "dev.example.com", now, &id, &created, NULL), 0);
	assert_int_equal(store_job_claim_ids(s, owner, &id, 1, now, 600, 1, &jobs, &n, NULL), 0);
	assert_int_equal(n, 1);
	if (digest)
		memcpy(digest, jobs[0].csr_sha256, 65);
	store_jobs_free(jobs, n);
	return id;
}
