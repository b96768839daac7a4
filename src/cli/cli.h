/* Subcommands: each parses its own arguments and wires modules together.
 * Each returns a process exit status (0 success, 1 failure, 2 usage error). */
#ifndef ACMERA_CLI_H
#define ACMERA_CLI_H

int cli_issue(int argc, char **argv);
int cli_account(int argc, char **argv);
int cli_revoke(int argc, char **argv);
int cli_serve(int argc, char **argv);
int cli_enroll(int argc, char **argv);
int cli_passwd(int argc, char **argv);
int cli_ca(int argc, char **argv);

#endif
