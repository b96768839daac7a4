/* What every subcommand shares: the configuration file, the flags that override
 * it, logging and the store. */
#ifndef ACMERA_CLI_COMMON_H
#define ACMERA_CLI_COMMON_H

#include "base/config.h"
#include "store/store.h"

#include <getopt.h>

/* A subcommand's own options: called for each option getopt_long returns that is
 * not a common one. Returns 0, or 2 for a usage error (after printing why). */
typedef int (*cli_option_fn)(int opt, const char *arg, void *ctx);

/* Parses argv (argv[0] is the subcommand's name): the common flags, then
 * subcommand options through fn. Loads --config FILE when given, then applies
 * the flag overrides, then sets up logging. Returns 0, 1 for a configuration
 * error, 2 for a usage error, or -1 after printing --help (exit 0). On return
 * optind indexes the first operand. */
int cli_setup(int argc, char **argv, const struct option *own, const char *own_short,
              cli_option_fn fn, void *ctx, const char *usage, struct config *cfg);

/* Opens the store named by the configuration, printing the error. */
int cli_open_store(const struct config *cfg, struct store **s);

/* Writes data to path atomically (temporary file, fsync, rename) with mode. */
int cli_write_file(const char *path, const void *data, size_t len, int mode);
/* Many files written with one disk sync: cli_files_add writes each under a
 * temporary name; cli_files_commit syncs the file system once, renames them into
 * place in order and returns how many it placed (when not all, *failed names the
 * first file left out and errno says why); cli_files_free removes the temporary
 * files left. */
struct cli_files {
	char **tmp, **path;
	size_t n, cap;
};
int cli_files_add(struct cli_files *f, const char *path, const void *data, size_t len, int mode);
size_t cli_files_commit(struct cli_files *f, const char **failed);
void cli_files_free(struct cli_files *f);

/* The help text of the common flags. */
extern const char cli_common_help[];

#endif
