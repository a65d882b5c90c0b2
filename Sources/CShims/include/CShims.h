#ifndef ESAFETY_CSHIMS_H
#define ESAFETY_CSHIMS_H
// Small C helpers that Swift cannot spell itself.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/eventfd.h>
#include <pthread.h>

/// Hint the CPU to fetch the cache line at `p` (read, keep in all cache levels).
static inline void esafety_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// The credentials of the peer of a connected Unix socket (SO_PEERCRED needs _GNU_SOURCE).
static inline int esafety_peercred(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

/// accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK.
static inline int esafety_accept(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK); }

/// A non-blocking, close-on-exec eventfd.
static inline int esafety_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

/// Names the calling thread (up to 15 bytes), for top and gdb.
static inline void esafety_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

/// accept4 with SOCK_CLOEXEC only (a blocking connection, for the control socket).
static inline int esafety_accept_blocking(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC); }

#endif
