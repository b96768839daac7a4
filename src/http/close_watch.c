/* The watch for a client that closes while the handler holds its request.
 *
 * The watch is on a dup of the socket, so that it has a registration of its own,
 * edge-triggered: pipelined data wakes it once per arrival, not on every loop turn
 * while it waits to be read. The dup's number is ours until we close it, whereas
 * evhttp closes the socket, whose number may be reused by the next accept.
 *
 * The worker's event base batches its epoll changes (the changelist, see
 * server.c). Its epoll registration of the socket survives the socket's close for
 * as long as a dup keeps the file open, and its batched delete then fails: events
 * would come in under the socket's old number. Hence two rules:
 *   - the watch is not in the base, but in an epoll of the worker's own, where
 *     adding and removing are immediate epoll_ctl calls and the dup is removed
 *     before it is closed;
 *   - the dup is closed in the same loop turn as the socket at the latest (in
 *     evhttp's close callback of the connection, or in conn_free right after the
 *     socket), before the base applies its batched delete.
 * The base watches this epoll's descriptor, readable while a watch has fired. */
#include "http/internal.h"

#include <errno.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define FIRED_PER_WAKE 32 /* the rest wait for the next loop turn */

/* The client went away while its request was held: evhttp detaches the request
 * and frees the connection, whose close callback tells the handler. Data (a
 * pipelined request) is left to wait for the answer. */
static void seen(struct conn *c, uint32_t events)
{
	int err = 0;
	socklen_t elen = sizeof(err);
	char b;
	if (!conn_alive(c) || c->state != CONN_BUSY || c->closed_fd < 0)
		return;
	if (!(events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) &&
	    getsockopt(c->closed_fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0) {
		ssize_t n = recv(c->closed_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
			return;
	}
	bufferevent_trigger_event(c->bev, BEV_EVENT_READING | BEV_EVENT_EOF, 0);
}

/* One event per epoll_wait: handling one may end another connection's watch,
 * whose removal then keeps the kernel from reporting it. */
static void on_fired(evutil_socket_t fd, short what, void *arg)
{
	struct epoll_event ev;
	(void)what;
	(void)arg;
	for (int i = 0; i < FIRED_PER_WAKE && epoll_wait(fd, &ev, 1, 0) == 1; i++)
		seen(ev.data.ptr, ev.events);
}

int close_watch_open(struct worker *w, struct acmera_errmsg *e)
{
	if ((w->close_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return acmera_fail(e, ACMERA_ERR_IO, "epoll_create1: %s", strerror(errno));
	if (!(w->close_ev = event_new(w->base, w->close_epfd, EV_READ | EV_PERSIST, on_fired, w)) ||
	    event_add(w->close_ev, NULL))
		return acmera_fail(e, ACMERA_ERR_NOMEM, "out of memory");
	return 0;
}

void conn_watch_close(struct conn *c, int on)
{
	struct worker *w = c->w;
	if (c->closed_fd >= 0) {
		epoll_ctl(w->close_epfd, EPOLL_CTL_DEL, c->closed_fd, NULL);
		close(c->closed_fd);
		c->closed_fd = -1;
	}
	if (!on || !conn_alive(c) || w->close_epfd < 0)
		return;
	evutil_socket_t fd = bufferevent_getfd(c->bev);
	if (fd < 0 || (c->closed_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
		return;
	struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c};
	if (epoll_ctl(w->close_epfd, EPOLL_CTL_ADD, c->closed_fd, &ev) < 0) {
		close(c->closed_fd);
		c->closed_fd = -1;
	}
}
