/* est_passwd_check over arbitrary Authorization values, against a small fixed
 * password file (cheap yescrypt cost, so the fuzzer is not all hashing). */
#include "est/auth.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Users "dev" and "robot 7", both with password "dummy". */
static const char passwd_text[] =
    "# fuzz fixture\n"
    "dev:$y$j75$rpMS.6wzlsCfGgkcj.4Yo.$nA/aliH2.v/KT8L.G/ZbgmuoLoEodnSa7aAM9DBHq04\n"
    "robot 7:$y$j75$rpMS.6wzlsCfGgkcj.4Yo.$nA/aliH2.v/KT8L.G/ZbgmuoLoEodnSa7aAM9DBHq04\n";

static struct est_passwd *pw;

static void load_fixture(void)
{
	char path[] = "/tmp/acmera-fuzz-passwd-XXXXXX";
	struct acmera_errmsg e;
	int fd = mkstemp(path);
	if (fd < 0 ||
	    write(fd, passwd_text, sizeof(passwd_text) - 1) != (ssize_t)(sizeof(passwd_text) - 1)) {
		perror("fixture");
		abort();
	}
	close(fd);
	if (est_passwd_load(path, &pw, &e) != 0) {
		fprintf(stderr, "fixture: %s\n", e.text);
		abort();
	}
	/* Loaded; a vanished file keeps the table (no reload without a stat). */
	unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[128];
	struct acmera_errmsg e;
	if (!pw)
		load_fixture();
	if (size > 4096)
		return 0;
	char *h = malloc(size + 1);
	if (!h)
		return 0;
	memcpy(h, data, size);
	h[size] = '\0';
	if (est_passwd_check(pw, h, user, sizeof(user), &e) == 0 && strcmp(user, "dev") != 0 &&
	    strcmp(user, "robot 7") != 0)
		abort();
	free(h);
	return 0;
}
