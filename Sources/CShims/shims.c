#ifndef __linux__
#error "esafety builds on Linux only (SO_PEERCRED, accept4, eventfd)"
#endif
#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "CShims.h"

int esafety_peercred(int fd, int *pid, unsigned int *uid, unsigned int *gid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int esafety_accept(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK); }

int esafety_accept_blocking(int fd) { return accept4(fd, 0, 0, SOCK_CLOEXEC); }

int esafety_eventfd(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

void esafety_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }

int esafety_set_thread_nice(int nice) { return setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice); }
