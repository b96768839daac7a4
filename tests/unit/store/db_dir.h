/* A private directory holding one store file for a store unit test, and claimed
 * jobs to fill it with. */
#ifndef ACMERA_TESTS_STORE_DB_DIR_H
#define ACMERA_TESTS_STORE_DB_DIR_H

/* Makes /tmp/acmera-TAG-XXXXXX in dir and names path = dir/acmera.db (not
 * created). Fails the running test when the directory cannot be made. */
void db_dir_make(char dir[64], char path[128], const char *tag);
/* Removes path with what SQLite keeps beside it (-wal, -shm, -journal), then dir,
 * which must then be empty; 0, or -1 when dir could not be removed. */
int db_dir_remove(const char *dir, const char *path);

#include <stdint.h>

struct store;

/* Submits, at now, a job for a fake CSR made from i (the store only hashes its
 * bytes) and claims it for owner with a 600 s lease; returns its id, and its CSR's
 * digest in digest unless NULL. Fails the running test on any error. */
int64_t db_claimed_job(struct store *s, int i, const char *owner, int64_t now, char digest[65]);

#endif
