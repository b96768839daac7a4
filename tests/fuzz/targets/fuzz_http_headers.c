/* Retry-After and Link header values: the first byte picks the parser and, for
 * Link, the relation looked for; the rest is the header value. */
#include "acme/resources.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const rels[] = {"up", "alternate", "index"};
	if (size < 1)
		return 0;
	char *v = strndup((const char *)data + 1, size - 1);
	if (!v)
		return 0;
	if (data[0] & 1) {
		int64_t s;
		if (http_retry_after_parse(v, 1795870800, &s) == 0 && (s < 0 || s > 86400))
			abort();
	} else {
		char **urls = NULL;
		size_t n = 0;
		if (http_link_parse(v, rels[(data[0] >> 1) % 3], &urls, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				free(urls[i]);
			free(urls);
		}
	}
	free(v);
	return 0;
}
