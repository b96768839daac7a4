/* The EST service (RFC 7030, RFC 8951, RFC 9908) of `acmera serve`: routes
 * /.well-known/est/[LABEL/]OPERATION to the operations, authenticates, applies
 * the label's profile, and turns enrollments into jobs of the issuer, answering
 * 200 with the certificate, or 202 with Retry-After while the issuer works. */
#ifndef ACMERA_EST_SERVICE_H
#define ACMERA_EST_SERVICE_H

#include "base/config.h"
#include "base/err.h"
#include "http/server.h"

struct est_service;

/* Loads what the profiles need (trust anchors, password file, CA chain) and
 * checks them; cfg must outlive the service. */
int est_service_new(const struct config *cfg, struct est_service **out, struct acmera_errmsg *e);
void est_service_free(struct est_service *s);

/* The http_handler of the service (arg is the struct est_service). */
void est_service_handle(struct http_request *req, void *arg);

#endif
