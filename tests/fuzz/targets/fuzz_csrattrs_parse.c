/* est_csrattrs_parse over arbitrary bytes. What it reads, when the builder
 * accepts it, must survive a build and a second parse unchanged. */
#include "est/csrattrs.h"

#include <stdlib.h>
#include <string.h>

static void round_trip(const struct est_csrattrs_out *o)
{
	struct est_csrattrs_in in = {
	    .subject_cn = o->subject_cn,
	    .dns_names = (const char *const *)o->dns_names,
	    .n_dns_names = o->n_dns_names,
	    .key = o->key,
	    .rsa_bits = o->rsa_bits,
	};
	uint8_t *der = NULL;
	size_t len = 0;
	struct est_csrattrs_out back;
	if (!o->have_key || est_csrattrs_build(&in, &der, &len, NULL) != 0)
		return;
	if (est_csrattrs_parse(der, len, &back, NULL) != 0)
		abort();
	if (!back.have_key || back.key != o->key || back.rsa_bits != o->rsa_bits ||
	    back.n_dns_names != o->n_dns_names || !back.subject_cn != !o->subject_cn ||
	    (o->subject_cn && strcmp(back.subject_cn, o->subject_cn) != 0))
		abort();
	for (size_t i = 0; i < o->n_dns_names; i++)
		if (strcmp(back.dns_names[i], o->dns_names[i]) != 0)
			abort();
	est_csrattrs_out_free(&back);
	free(der);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct est_csrattrs_out o;
	struct acmera_errmsg e;
	if (est_csrattrs_parse(data, size, &o, &e) != 0) {
		if (o.subject_cn || o.dns_names || o.n_dns_names)
			abort();
		return 0;
	}
	round_trip(&o);
	est_csrattrs_out_free(&o);
	return 0;
}
