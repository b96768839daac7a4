/* est_policy_name over arbitrary identity values and templates, and
 * est_policy_check_csr over arbitrary CSR DER (through csr_parse_der).
 *
 * Input: "serialNumber\tcn\tuser\ttemplate" up to the first NUL byte, then the
 * CSR DER. A missing template uses one of each placeholder. */
#include "est/policy.h"

#include <stdlib.h>
#include <string.h>

static void field(const char **p, const char *end, char *out, size_t outlen)
{
	const char *tab = memchr(*p, '\t', (size_t)(end - *p));
	const char *stop = tab ? tab : end;
	size_t n = (size_t)(stop - *p);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = tab ? tab + 1 : end;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t binding[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
	                                    12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
	                                    23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
	struct est_identity id;
	struct est_policy pol = {
	    .allow_p256 = 1,
	    .allow_p384 = 1,
	    .allow_ed25519 = 1,
	    .rsa_min_bits = 2048,
	};
	struct acmera_errmsg e;
	char tmpl[512], name[254];
	struct csr_info csr;
	const uint8_t *nul = memchr(data, 0, size);
	const char *p = (const char *)data;
	const char *end = nul ? (const char *)nul : p + size;

	memset(&id, 0, sizeof(id));
	field(&p, end, id.serial_number, sizeof(id.serial_number));
	field(&p, end, id.cn, sizeof(id.cn));
	field(&p, end, id.user, sizeof(id.user));
	field(&p, end, tmpl, sizeof(tmpl));
	pol.name_template = tmpl[0] ? tmpl : "{serialNumber}-{cn}.{user}.iot.example.com";
	if (est_policy_name(&pol, &id, name, sizeof(name), &e) != 0)
		strcpy(name, "dev1.iot.example.com");
	else if (strlen(name) > 253)
		abort();
	if (!nul)
		return 0;
	if (csr_parse_der(nul + 1, size - (size_t)(nul + 1 - data), &csr, &e) != 0)
		return 0;
	pol.require_channel_binding = 0;
	est_policy_check_csr(&pol, &csr, name, NULL, 0, &e);
	pol.require_channel_binding = 1;
	est_policy_check_csr(&pol, &csr, name, binding, sizeof(binding), &e);
	csr_info_free(&csr);
	return 0;
}
