/* See stop.h. */
#include "cli/stop.h"

#include <sched.h>
#include <stdatomic.h>

volatile sig_atomic_t cli_stop_requested;

/* Read by the handler: set only while http_server_run runs. A signal may land on
 * any thread, so the server is freed only once no handler is inside (in_handler):
 * one that read the pointer just before it was cleared still writes to the
 * workers' eventfds, which must not have been closed (and their numbers reused). */
static _Atomic(struct http_server *) running;
static atomic_int in_handler;

static void on_stop_signal(int sig)
{
	(void)sig;
	cli_stop_requested = 1;
	atomic_fetch_add(&in_handler, 1);
	struct http_server *s = atomic_load(&running);
	if (s)
		http_server_stop(s);
	atomic_fetch_sub(&in_handler, 1);
}

void cli_stop_on_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
}

void cli_run_until_stopped(struct http_server *s)
{
	atomic_store(&running, s);
	/* A signal before this point only set the flag: the eventfds keep the stop. */
	if (cli_stop_requested)
		http_server_stop(s);
	http_server_run(s);
	atomic_store(&running, NULL);
	while (atomic_load(&in_handler) > 0)
		sched_yield();
	cli_stop_requested = 1;
}
