/* See file_watch.h. */
#include "base/file_watch.h"

#include "base/clock.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

/* Once a second the answer is "maybe" whatever inotify says (NFS and the like). */
#define FILE_WATCH_RECHECK_MS 1000

/* On the file: whatever changes its bytes, mode or owner. On the directories:
 * only changes of their entries (a file replaced, a link along the path swapped),
 * so that writes to other files there (the store's, say) cost nothing. */
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)
#define DIR_EVENTS                                                                                 \
	(IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |     \
	 IN_ONLYDIR)

struct file_watch {
	char *path;
	int fd;          /* inotify; -1 after a failure to re-arm: "maybe" every time */
	int64_t checked; /* mono_ms of the last "maybe" */
	int pending;     /* the next call answers "maybe" */
};

static int watch_dir_of(int fd, const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash)
		return inotify_add_watch(fd, ".", DIR_EVENTS) < 0 ? -1 : 0;
	size_t n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(dir))
		return -1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return inotify_add_watch(fd, dir, DIR_EVENTS) < 0 ? -1 : 0;
}

/* A new inotify instance for w->path as it resolves now. The file itself may be
 * missing (it is being replaced): its directories are enough. */
static int arm(struct file_watch *w)
{
	char real[PATH_MAX];
	if (w->fd >= 0)
		close(w->fd);
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return -1;
	inotify_add_watch(w->fd, w->path, FILE_EVENTS);
	int linked = realpath(w->path, real) && strcmp(real, w->path) != 0;
	if (watch_dir_of(w->fd, w->path) != 0 || (linked && watch_dir_of(w->fd, real) != 0)) {
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	return 0;
}

struct file_watch *file_watch_new(const char *path)
{
	struct file_watch *w = calloc(1, sizeof(*w));
	if (!w || !(w->path = strdup(path))) {
		free(w);
		return NULL;
	}
	w->fd = -1;
	if (arm(w) != 0) {
		file_watch_free(w);
		return NULL;
	}
	w->pending = 1;
	return w;
}

int file_watch_maybe_changed(struct file_watch *w)
{
	/* Room for many events; at least one with the longest name, as inotify(7) asks. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int64_t now = mono_ms();
	int maybe = w->pending || w->fd < 0 || now - w->checked >= FILE_WATCH_RECHECK_MS;
	ssize_t n;
	/* Every event counts (the masks keep only relevant ones); the queue is drained. */
	while (w->fd >= 0 && (n = read(w->fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		maybe = 1;
		if (n < 0)
			break;
	}
	if (!maybe)
		return 0;
	/* Re-armed before the caller looks, so that a change after this call is seen
	 * by the new watches and one before it by the caller; a link may now point
	 * into another directory. */
	arm(w);
	w->pending = 0;
	w->checked = now;
	return 1;
}

void file_watch_free(struct file_watch *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w);
}
