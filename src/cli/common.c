/* Common flags, configuration loading and helpers of the subcommands. */
#include "cli/common.h"

#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_CONFIG = 1000,
	OPT_DIRECTORY,
	OPT_CA_BUNDLE,
	OPT_DNS_SERVER,
	OPT_TSIG_KEYFILE,
	OPT_ZONE,
	OPT_STATE,
	OPT_PREAUTHORIZE,
	OPT_PARALLEL,
	OPT_LOG_LEVEL,
	OPT_HELP,
};

static const struct option common_options[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"directory", required_argument, NULL, OPT_DIRECTORY},
    {"ca-bundle", required_argument, NULL, OPT_CA_BUNDLE},
    {"dns-server", required_argument, NULL, OPT_DNS_SERVER},
    {"tsig-keyfile", required_argument, NULL, OPT_TSIG_KEYFILE},
    {"zone", required_argument, NULL, OPT_ZONE},
    {"state", required_argument, NULL, OPT_STATE},
    {"preauthorize", required_argument, NULL, OPT_PREAUTHORIZE},
    {"parallel", required_argument, NULL, OPT_PARALLEL},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
};

#define N_COMMON (sizeof(common_options) / sizeof(common_options[0]))
#define MAX_OVERRIDES 64

const char cli_common_help[] =
    "common options (override the configuration file):\n"
    "  --config FILE         configuration file (see acmera.conf(5))\n"
    "  --directory URL       ACME directory URL\n"
    "  --ca-bundle FILE      PEM certificates trusted for the ACME server's TLS\n"
    "  --dns-server HOST:PORT  DNS primary that takes RFC 2136 updates\n"
    "  --tsig-keyfile FILE   BIND key file (tsig-keygen) signing the updates\n"
    "  --zone ZONE           zone acmera may publish in (repeatable)\n"
    "  --state PATH          the store (SQLite file)\n"
    "  --preauthorize DOMAIN parent domain to pre-authorize (repeatable)\n"
    "  --parallel N          jobs driven at once\n"
    "  --log-level LEVEL     debug, info, warn or error\n";

struct override {
	int opt;
	const char *arg;
};

static int apply(struct config *cfg, const struct override *o)
{
	struct acmera_errmsg e = {{0}};
	char *end = NULL;
	switch (o->opt) {
	case OPT_DIRECTORY:
		/* The same rule as the file's key: the account key never travels in clear. */
		if (strncmp(o->arg, "https://", 8) != 0) {
			fprintf(stderr, "acmera: --directory: '%s' is not an https:// URL\n",
			        o->arg);
			return -1;
		}
		return config_set_str(&cfg->acme.directory, o->arg);
	case OPT_CA_BUNDLE:
		return config_set_str(&cfg->acme.ca_bundle, o->arg);
	case OPT_DNS_SERVER:
		return config_set_str(&cfg->dns.server, o->arg);
	case OPT_TSIG_KEYFILE:
		return config_set_str(&cfg->dns.tsig_keyfile, o->arg);
	case OPT_STATE:
		return config_set_str(&cfg->store.path, o->arg);
	case OPT_LOG_LEVEL:
		if (log_level_parse(o->arg) < 0) {
			fprintf(stderr,
			        "acmera: --log-level: '%s' is not debug, info, warn or error\n",
			        o->arg);
			return -1;
		}
		return config_set_str(&cfg->log.level, o->arg);
	case OPT_ZONE:
		if (config_list_add(cfg->dns.zones, &cfg->dns.n_zones, o->arg, &e)) {
			fprintf(stderr, "acmera: --zone: %s\n", e.text);
			return -1;
		}
		return 0;
	case OPT_PREAUTHORIZE:
		if (config_list_add(cfg->acme.preauthorize, &cfg->acme.n_preauthorize, o->arg,
		                    &e)) {
			fprintf(stderr, "acmera: --preauthorize: %s\n", e.text);
			return -1;
		}
		return 0;
	case OPT_PARALLEL: {
		errno = 0;
		long v = strtol(o->arg, &end, 10);
		if (errno || !end || *end || v < 1 || v > 10000) {
			fprintf(stderr,
			        "acmera: --parallel: '%s' is not a number from 1 to 10000\n",
			        o->arg);
			return -1;
		}
		cfg->issuer.parallel = (int)v;
		return 0;
	}
	}
	return 0;
}

int cli_setup(int argc, char **argv, const struct option *own, const char *own_short,
              cli_option_fn fn, void *ctx, const char *usage, struct config *cfg)
{
	size_t n_own = 0;
	while (own && own[n_own].name)
		n_own++;
	struct option *all = calloc(N_COMMON + n_own + 1, sizeof(*all));
	struct override ov[MAX_OVERRIDES];
	size_t n_ov = 0;
	const char *config_path = NULL;
	int rc = 0;
	if (!all)
		return 1;
	memcpy(all, common_options, sizeof(common_options));
	if (n_own)
		memcpy(all + N_COMMON, own, n_own * sizeof(*own));
	config_init(cfg);
	optind = 1;
	int opt;
	while ((opt = getopt_long(argc, argv, own_short ? own_short : "", all, NULL)) != -1) {
		if (opt == OPT_HELP) {
			printf("%s\n%s", usage, cli_common_help);
			rc = -1;
			goto out;
		}
		if (opt == OPT_CONFIG) {
			config_path = optarg;
		} else if (opt >= OPT_DIRECTORY && opt < OPT_HELP) {
			if (n_ov == MAX_OVERRIDES) {
				fprintf(stderr, "acmera: too many options\n");
				rc = 2;
				goto out;
			}
			ov[n_ov++] = (struct override){opt, optarg};
		} else if (opt == '?' || !fn) {
			fprintf(stderr, "%s\n(--help lists the options)\n", usage);
			rc = 2;
			goto out;
		} else if ((rc = fn(opt, optarg, ctx)) != 0) {
			goto out;
		}
	}
	if (config_path) {
		struct acmera_errmsg e = {{0}};
		if (config_load(cfg, config_path, &e)) {
			fprintf(stderr, "acmera: %s\n", e.text);
			rc = 1;
			goto out;
		}
	}
	for (size_t i = 0; i < n_ov; i++)
		if (apply(cfg, &ov[i])) {
			rc = ov[i].opt == OPT_PARALLEL || ov[i].opt == OPT_LOG_LEVEL ? 2 : 1;
			goto out;
		}
	int level = log_level_parse(cfg->log.level ? cfg->log.level : "info");
	if (log_init(cfg->log.destination, level < 0 ? LOG_LVL_INFO : (enum log_level)level)) {
		fprintf(stderr, "acmera: log destination '%s' is not stderr or syslog\n",
		        cfg->log.destination);
		rc = 1;
	}
out:
	free(all);
	return rc;
}

int cli_open_store(const struct config *cfg, struct store **s)
{
	struct acmera_errmsg e = {{0}};
	if (store_open(cfg->store.path, s, &e)) {
		fprintf(stderr, "acmera: store %s: %s\n", cfg->store.path, e.text);
		return 1;
	}
	return 0;
}

/* Writes data to a new temporary file beside path (its name into tmp); synced
 * when sync is set. 0, or -1 with errno and nothing left behind. */
static int write_temp(const char *path, const void *data, size_t len, int mode, int sync,
                      char tmp[4096])
{
	if ((size_t)snprintf(tmp, 4096, "%s.tmp.%d", path, (int)getpid()) >= 4096)
		return -1;
	/* O_EXCL|O_NOFOLLOW: never write through a link someone planted at the name. */
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			close(fd);
			unlink(tmp);
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	int synced = !sync || fsync(fd) == 0;
	if (close(fd) != 0 || !synced) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int cli_write_file(const char *path, const void *data, size_t len, int mode)
{
	char tmp[4096];
	if (write_temp(path, data, len, mode, 1, tmp) != 0)
		return -1;
	if (rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int cli_files_add(struct cli_files *f, const char *path, const void *data, size_t len, int mode)
{
	char tmp[4096];
	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 16;
		char **t = realloc(f->tmp, cap * sizeof(*t));
		if (t)
			f->tmp = t;
		char **p = t ? realloc(f->path, cap * sizeof(*p)) : NULL;
		if (!p) {
			errno = ENOMEM;
			return -1;
		}
		f->path = p;
		f->cap = cap;
	}
	if (write_temp(path, data, len, mode, 0, tmp) != 0)
		return -1;
	f->tmp[f->n] = strdup(tmp);
	f->path[f->n] = strdup(path);
	if (!f->tmp[f->n] || !f->path[f->n]) {
		unlink(tmp);
		free(f->tmp[f->n]);
		free(f->path[f->n]);
		errno = ENOMEM;
		return -1;
	}
	f->n++;
	return 0;
}

size_t cli_files_commit(struct cli_files *f, const char **failed)
{
	size_t done = 0;
	*failed = NULL;
	if (f->n == 0)
		return 0;
	/* One sync of the file system for all of them: their data is on disk before
	 * any name points at it. */
	int fd = open(f->tmp[0], O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int ok = fd >= 0 && syncfs(fd) == 0;
	if (fd >= 0)
		close(fd);
	for (; ok && done < f->n; done++) {
		if (rename(f->tmp[done], f->path[done]) != 0)
			break;
		free(f->tmp[done]);
		f->tmp[done] = NULL;
	}
	if (done < f->n)
		*failed = f->path[done];
	return done;
}

void cli_files_free(struct cli_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		if (f->tmp[i])
			unlink(f->tmp[i]);
		free(f->tmp[i]);
		free(f->path[i]);
	}
	free(f->tmp);
	free(f->path);
	memset(f, 0, sizeof(*f));
}
