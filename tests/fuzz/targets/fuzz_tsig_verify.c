/* tsig_verify_response on arbitrary answers to a fixed request signed with a fixed
 * hmac-sha384 key: the answer comes from the network. The seeds in
 * tests/fuzz/corpus/tsig_verify/ answer exactly this request at NOW. */
#include "dns/tsig.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1700000000ULL

/* An UPDATE of zone example.test (id 0x1234) adding one TXT record. */
static const uint8_t update[] = {
    0x12, 0x34, 0x28, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 7,    'e',  'x',  'a',
    'm',  'p',  'l',  'e',  4,    't',  'e',  's',  't',  0,    0x00, 0x06, 0x00, 0x01, 15,   '_',
    'a',  'c',  'm',  'e',  '-',  'c',  'h',  'a',  'l',  'l',  'e',  'n',  'g',  'e',  0xc0, 0x0c,
    0x00, 0x10, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x06, 5,    'h',  'e',  'l',  'l',  'o',
};

static struct tsig_key key;
static uint8_t *req;
static size_t req_len;

static void setup(void)
{
	static const char text[] = "key fuzz { algorithm hmac-sha384; "
	                           "secret \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"; };";
	if (tsig_key_parse(text, sizeof(text) - 1, "fuzz", &key, NULL) != 0 ||
	    tsig_sign(update, sizeof(update), &key, NOW, &req, &req_len, NULL) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acmera_errmsg e;
	if (!req)
		setup();
	int rc = tsig_verify_response(req, req_len, data, size, &key, NOW, &e);
	/* Only the outcomes the header promises; anything else is a bug. */
	if (rc != 0 && rc != ACMERA_ERR_NOTFOUND && rc != ACMERA_ERR_REFUSED &&
	    rc != ACMERA_ERR_PROTO)
		abort();
	if (rc != 0 && !memchr(e.text, '\0', sizeof(e.text)))
		abort();
	return 0;
}
