/* acmera: one binary, a table of subcommands. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
    {"serve", cli_serve, "serve EST and issue the certificates through the ACME CA"},
    {"issue", cli_issue, "obtain certificates for CSRs from the ACME CA"},
    {"account", cli_account, "show, create, roll over or deactivate the ACME account"},
    {"revoke", cli_revoke, "revoke a certificate"},
    {"enroll", cli_enroll, "obtain a device certificate from an EST server (RFC 7030)"},
    {"passwd", cli_passwd, "set a password of an EST HTTP Basic user"},
    {"ca", cli_ca, "run an ACME CA (RFC 8555, RFC 9444 subdomains) for private PKIs"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: acmera <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(
	    f, "\n'acmera <command> --help' describes a command; man acmera-<command> in docs/.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("acmera 0.1.0\n");
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (strcmp(argv[1], subcommands[i].name) == 0)
			return subcommands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "acmera: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
