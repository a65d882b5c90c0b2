#ifndef ESAFETY_CSHIMS_H
#define ESAFETY_CSHIMS_H
// Small C helpers that Swift cannot spell itself. No system headers here: they would
// clash with the Glibc module; the functions that need _GNU_SOURCE live in shims.c.

/// Hint the CPU to fetch the cache line at `p` (read, keep in all cache levels).
static inline void esafety_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// The credentials of the peer of a connected Unix socket (SO_PEERCRED). 0 or -1.
int esafety_peercred(int fd, int *pid, unsigned int *uid, unsigned int *gid);

/// accept4 with SOCK_CLOEXEC | SOCK_NONBLOCK.
int esafety_accept(int fd);

/// accept4 with SOCK_CLOEXEC only (a blocking connection, for the control socket).
int esafety_accept_blocking(int fd);

/// A non-blocking, close-on-exec eventfd.
int esafety_eventfd(void);

/// Names the calling thread (up to 15 bytes), for top and gdb.
void esafety_set_thread_name(const char *name);
/// Sets the calling thread's own nice value (Linux: per thread); 0 or -1 with errno.
int esafety_set_thread_nice(int nice);

#endif
