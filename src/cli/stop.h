/* How the long-running commands (serve, ca, issue) stop: SIGINT or SIGTERM sets
 * cli_stop_requested and stops the server being run, if any. SIGPIPE is ignored,
 * so that a peer that leaves costs a failed write, not the process. */
#ifndef ACMERA_CLI_STOP_H
#define ACMERA_CLI_STOP_H

#include "http/server.h"

#include <signal.h>

extern volatile sig_atomic_t cli_stop_requested;

void cli_stop_on_signals(void);

/* Runs s until it is stopped (by a signal, or http_server_stop from elsewhere),
 * then sets cli_stop_requested for the command's other threads. */
void cli_run_until_stopped(struct http_server *s);

#endif
