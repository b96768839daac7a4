/* Temporary: subcommands whose implementation lands in a later commit. */
#include "cli/cli.h"

#include <stdio.h>

static int not_yet(const char *name)
{
	fprintf(stderr, "acmera %s: not built yet\n", name);
	return 1;
}

int cli_issue(int argc, char **argv) { (void)argc; (void)argv; return not_yet("issue"); }
int cli_account(int argc, char **argv) { (void)argc; (void)argv; return not_yet("account"); }
int cli_revoke(int argc, char **argv) { (void)argc; (void)argv; return not_yet("revoke"); }
