#include "base/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECRET_MAX 4096

int read_secret_file(const char *path, char **out, struct acmera_errmsg *e)
{
	struct stat st;
	char buf[SECRET_MAX + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return acmera_fail(e, ACMERA_ERR_IO, "%s: not a regular file", path);
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		close(fd);
		return acmera_fail(e, ACMERA_ERR_CONFIG,
		                   "%s: readable by others (mode %03o); chmod 600 it", path,
		                   (unsigned)(st.st_mode & 0777));
	}
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "%s: %s", path, strerror(errno));
	if (n > SECRET_MAX)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "%s: larger than %d bytes", path,
		                   SECRET_MAX);
	size_t a = 0, b = (size_t)n;
	while (a < b && strchr(" \t\r\n", buf[a]))
		a++;
	while (b > a && strchr(" \t\r\n", buf[b - 1]))
		b--;
	*out = strndup(buf + a, b - a);
	explicit_bzero(buf, sizeof(buf));
	if (!*out)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	return 0;
}

void secret_free(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}
