/* The server's TLS: one SSL_CTX shared by all workers (SSL_new is thread-safe),
 * TLS 1.2 and 1.3 with OpenSSL's default ciphers and groups, client certificates
 * requested but not required, and the channel bindings of RFC 5929 / RFC 9266. */
#include "http/internal.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Resumable sessions: enough for thousands of devices retrying within the
 * hour; each holds its client certificate, a few KiB. */
enum { TLS_SESSION_CACHE_MAX = 8192, TLS_SESSION_LIFETIME_S = 3600 };

static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

/* OpenSSL calls this for each SSL when it is freed: the conn goes with it. */
static void conn_ex_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                         void *argp)
{
	(void)parent;
	(void)ad;
	(void)idx;
	(void)argl;
	(void)argp;
	if (ptr)
		conn_free(ptr);
}

static void conn_index_init(void)
{
	conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_ex_free);
}

int http_tls_conn_index(void)
{
	pthread_once(&conn_index_once, conn_index_init);
	return conn_index;
}

static struct conn *conn_of_ssl(const SSL *ssl)
{
	int idx = http_tls_conn_index();
	return idx < 0 ? NULL : SSL_get_ex_data(ssl, idx);
}

/* The last OpenSSL error as text (the queue is cleared). */
static const char *ssl_error(char *buf, size_t len)
{
	unsigned long err = ERR_peek_last_error();
	if (err)
		ERR_error_string_n(err, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* Takes any client certificate without building its chain: the handshake still
 * checks that the client holds its key (CertificateVerify), and the chain is
 * verified only when a handler asks (http_tls_chain_verified), against what it
 * trusts. An EST profile checks its own anchors, so a check here would be paid
 * twice for every device. */
static int accept_unverified(X509_STORE_CTX *x, void *arg)
{
	(void)x;
	(void)arg;
	return 1;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
	(void)ret;
	struct conn *c = conn_of_ssl(ssl);
	if (!c)
		return;
	if (where & SSL_CB_HANDSHAKE_START)
		conn_handshake_start(c, ssl);
	if (where & SSL_CB_HANDSHAKE_DONE)
		conn_handshake_done(c);
}

/* HTTP/1.1 when the client offers it; otherwise no ALPN at all (clients that
 * offer only h2 get a plain answer rather than an alert). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "http/1.1";
	(void)ssl;
	(void)arg;
	unsigned int i = 0;
	while (i < inlen) {
		unsigned int n = in[i];
		if (n == 0 || n > inlen - i - 1)
			return SSL_TLSEXT_ERR_NOACK;
		if (n == sizeof(http11) - 1 && memcmp(in + i + 1, http11, n) == 0) {
			*out = in + i + 1;
			*outlen = (unsigned char)n;
			return SSL_TLSEXT_ERR_OK;
		}
		i += n + 1;
	}
	return SSL_TLSEXT_ERR_NOACK;
}

/* Never prompt on a terminal for an encrypted key. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Reads the private key from the opened file itself, after checking that only
 * its owner may read it (no window between check and read). */
static int load_key(SSL_CTX *ctx, const char *path, struct acmera_errmsg *e)
{
	char err[256];
	struct stat st;
	EVP_PKEY *pkey = NULL;
	int rc = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "key %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "key %s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG,
		                 "key %s: mode %03o lets others read it; chmod 600 it", path,
		                 (unsigned)(st.st_mode & 0777));
		goto out;
	}
	pkey = PEM_read_PrivateKey(f, NULL, no_passphrase, NULL);
	if (!pkey) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "key %s: %s", path,
		                 ssl_error(err, sizeof(err)));
		goto out;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1)
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "key %s: %s", path,
		                 ssl_error(err, sizeof(err)));
out:
	EVP_PKEY_free(pkey);
	fclose(f);
	return rc;
}

/* Client certificates verify against their own store, so the server's chain is
 * never built from client CAs; the CA names go into the CertificateRequest. */
static int load_client_ca(SSL_CTX *ctx, const char *path, struct acmera_errmsg *e)
{
	char err[256];
	X509_STORE *store = X509_STORE_new();
	if (!store)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (X509_STORE_load_file(store, path) != 1) {
		X509_STORE_free(store);
		return acmera_fail(e, ACMERA_ERR_CONFIG, "client CA file %s: %s", path,
		                   ssl_error(err, sizeof(err)));
	}
	SSL_CTX_set0_verify_cert_store(ctx, store);
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(path);
	if (!names)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "client CA file %s: no certificate in it",
		                   path);
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, accept_unverified, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	return 0;
}

int http_tls_chain_verified(SSL_CTX *ctx, STACK_OF(X509) * chain)
{
	X509_STORE *store = NULL;
	if (!ctx || !chain || sk_X509_num(chain) < 1 ||
	    !SSL_CTX_get0_verify_cert_store(ctx, &store) || !store)
		return 0;
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	int ok =
	    x && X509_STORE_CTX_init(x, store, sk_X509_value(chain, 0), chain) == 1 &&
	    X509_STORE_CTX_set_default(x, "ssl_client") == 1 &&
	    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(x), SSL_CTX_get0_param(ctx)) == 1 &&
	    X509_verify_cert(x) == 1;
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return ok;
}

int http_tls_ctx_new(const struct http_server_opts *o, SSL_CTX **out, struct acmera_errmsg *e)
{
	static const unsigned char sid_ctx[] = "acmera-https";
	char err[256];
	int rc = 0;

	if (http_tls_conn_index() < 0)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	if (!o->cert_file || !o->key_file)
		return acmera_fail(e, ACMERA_ERR_CONFIG, "the server needs a certificate and key");
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return acmera_fail(e, ACMERA_ERR_NOMEM, "SSL_CTX_new: %s",
		                   ssl_error(err, sizeof(err)));
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_COMPRESSION);
	/* Idle keep-alive connections should not hold 2 x 16 KiB of TLS buffers. */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
	/* Sessions stay in this process's cache, and a ticket only names one: a
	 * stateless ticket costs OpenSSL an i2d and a d2i of the session, which
	 * decodes the client certificate's key again (about 0.2 ms an IDevID
	 * handshake here). One ticket is enough for a device's retry after 202. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_sess_set_cache_size(ctx, TLS_SESSION_CACHE_MAX);
	SSL_CTX_set_timeout(ctx, TLS_SESSION_LIFETIME_S);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
	SSL_CTX_set_info_callback(ctx, info_cb);

	if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
		rc = acmera_fail(e, ACMERA_ERR_CONFIG, "certificate %s: %s", o->cert_file,
		                 ssl_error(err, sizeof(err)));
		goto out;
	}
	if ((rc = load_key(ctx, o->key_file, e)))
		goto out;
	if (o->client_ca_file && (rc = load_client_ca(ctx, o->client_ca_file, e)))
		goto out;
	*out = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	return rc;
}

void http_tls_close_notify(SSL *ssl)
{
	if (!ssl || !SSL_is_init_finished(ssl) || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
		return;
	/* Non-blocking: if the alert does not fit the socket now it is lost, which
	 * the client takes as a TCP close (TLS 1.1 on keeps the session either way). */
	SSL_shutdown(ssl);
	ERR_clear_error();
}

STACK_OF(X509) * http_tls_peer_chain(SSL *ssl)
{
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	if (!leaf)
		return NULL;
	STACK_OF(X509) *sk = sk_X509_new_null();
	if (!sk || !sk_X509_push(sk, leaf)) {
		sk_X509_free(sk);
		return NULL;
	}
	X509_up_ref(leaf);
	/* On a server the peer chain may or may not repeat the leaf: skip it. */
	STACK_OF(X509) *rest = SSL_get_peer_cert_chain(ssl);
	for (int i = 0; rest && i < sk_X509_num(rest); i++) {
		X509 *x = sk_X509_value(rest, i);
		if (X509_cmp(x, leaf) == 0)
			continue;
		if (!sk_X509_push(sk, x)) {
			sk_X509_pop_free(sk, X509_free);
			return NULL;
		}
		X509_up_ref(x);
	}
	return sk;
}

int http_tls_channel_binding(SSL *ssl, uint8_t *buf, size_t cap, size_t *len, const char **type)
{
	static const char label[] = "EXPORTER-Channel-Binding";
	if (cap < 32)
		return -1;
	if (SSL_version(ssl) == TLS1_3_VERSION) {
		/* RFC 9266: 32 bytes, no context. */
		if (SSL_export_keying_material(ssl, buf, 32, label, sizeof(label) - 1, NULL, 0,
		                               0) != 1)
			return -1;
		*len = 32;
		*type = "tls-exporter";
		return 0;
	}
	/* tls-unique is only safe with the extended master secret (RFC 7627 and
	 * the triple handshake attack). */
	if (SSL_version(ssl) != TLS1_2_VERSION || SSL_get_extms_support(ssl) != 1)
		return -1;
	/* RFC 5929: the first Finished of the latest handshake, the client's in a
	 * full handshake and the server's own in a resumed one. */
	size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, buf, cap)
	                                   : SSL_get_peer_finished(ssl, buf, cap);
	if (n == 0 || n > cap)
		return -1;
	*len = n;
	*type = "tls-unique";
	return 0;
}
