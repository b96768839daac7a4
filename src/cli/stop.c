/* See stop.h. */
#include "cli/stop.h"

volatile sig_atomic_t cli_stop_requested;

/* Read by the handler: set only while http_server_run runs. */
static struct http_server *volatile running;

static void on_stop_signal(int sig)
{
	(void)sig;
	cli_stop_requested = 1;
	struct http_server *s = running;
	if (s)
		http_server_stop(s);
}

void cli_stop_on_signals(void)
{
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_stop_signal);
	signal(SIGTERM, on_stop_signal);
}

void cli_run_until_stopped(struct http_server *s)
{
	running = s;
	http_server_run(s);
	running = NULL;
	cli_stop_requested = 1;
}
