#pragma once
// Linux interfaces that Glibc's Swift module does not export.
#include <sys/signalfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <stdint.h>
#include <unistd.h>
#include <sys/syscall.h>

// memfd_create(2) is declared only under _GNU_SOURCE, which Swift's Glibc module does not set;
// the raw system call needs no feature macro (Linux >= 3.17).
static inline int fluxgate_memfd_create(const char *name, unsigned int flags) {
    return (int)syscall(SYS_memfd_create, name, flags);
}

// Sequentially consistent atomics on memory shared between processes (an mmap'd segment):
// Swift's `Atomic` must own its storage, so it cannot sit on a pointer into a mapping.
static inline int64_t fluxgate_atomic_add(int64_t *p, int64_t v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
static inline int64_t fluxgate_atomic_load(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void fluxgate_atomic_store(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static inline int fluxgate_atomic_cas(int64_t *p, int64_t expected, int64_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

// The log timestamp's first 20 bytes ("2026-11-22T03:09:25.") change once a second: each thread
// keeps the last ones it formatted, so a request line does not call gmtime_r (~1,200 of its
// instructions). Per thread, because any thread may log.
struct fluxgate_second_text { int64_t seconds; unsigned char text[20]; };
static inline struct fluxgate_second_text *fluxgate_second_text_cache(void) {
    static __thread struct fluxgate_second_text cache = { -1, { 0 } };
    return &cache;
}

// pidfd_open(2) and pidfd_getfd(2) (Linux >= 5.6), which glibc 2.36 does not wrap: the process
// tests look at a worker's own sockets with them.
static inline int fluxgate_pidfd_open(int pid) { return (int)syscall(434, pid, 0); }
static inline int fluxgate_pidfd_getfd(int pidfd, int fd) { return (int)syscall(438, pidfd, fd, 0); }

// SCM_RIGHTS (unix(7)) needs the CMSG_* macros, which Swift cannot expand: one descriptor and a
// few bytes per message, as the master lends a listening socket to a worker.
#include <sys/socket.h>
#include <string.h>

// Room for a few descriptors, aligned for cmsghdr.
union fluxgate_rights { char buffer[CMSG_SPACE(4 * sizeof(int))]; struct cmsghdr align; };

static inline struct msghdr fluxgate_rights_message(struct iovec *iov, union fluxgate_rights *control, size_t space) {
    struct msghdr message;
    memset(&message, 0, sizeof message);
    memset(control, 0, sizeof *control);
    message.msg_iov = iov;
    message.msg_iovlen = 1;
    message.msg_control = control->buffer;
    message.msg_controllen = space;
    return message;
}

static inline long fluxgate_send_descriptor(int socket, int descriptor, const void *bytes, unsigned long count) {
    struct iovec iov = { (void *)bytes, count };
    union fluxgate_rights control;
    struct msghdr message = fluxgate_rights_message(&iov, &control, CMSG_SPACE(sizeof(int)));
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &descriptor, sizeof(int));
    return (long)sendmsg(socket, &message, MSG_NOSIGNAL);
}

// Receives one message without blocking; `*descriptor` is the one it carried (close-on-exec),
// -1 when none came. Any further descriptors in it are closed.
static inline long fluxgate_receive_descriptor(int socket, void *bytes, unsigned long count, int *descriptor) {
    struct iovec iov = { bytes, count };
    union fluxgate_rights control;
    struct msghdr message = fluxgate_rights_message(&iov, &control, sizeof control.buffer);
    *descriptor = -1;
    long n = (long)recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        int received = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int i = 0; i < received; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
            if (*descriptor < 0) *descriptor = fd; else close(fd);
        }
    }
    return n;
}

// A mutex in memory shared between processes that survives its holder's death
// (pthread_mutexattr_setrobust(3)): the next locker gets EOWNERDEAD, marks it consistent, and
// goes on. The rate-limit segment keeps one per limit (docs/rate-limits.md "Locking").
#include <pthread.h>
#include <errno.h>
#include <time.h>

static inline int fluxgate_robust_mutex_init(void *memory) {
    pthread_mutexattr_t attributes;
    pthread_mutexattr_init(&attributes);
    pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&attributes, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init((pthread_mutex_t *)memory, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return rc;
}

// 0 when locked; 1 when locked after the previous holder died holding it (the data it guards
// may be half-updated: the caller repairs what it can); another errno value on failure.
static inline int fluxgate_robust_mutex_lock(void *memory) {
    int rc = pthread_mutex_lock((pthread_mutex_t *)memory);
    if (rc == EOWNERDEAD) {
        pthread_mutex_consistent((pthread_mutex_t *)memory);
        return 1;
    }
    return rc;
}

static inline void fluxgate_robust_mutex_unlock(void *memory) { pthread_mutex_unlock((pthread_mutex_t *)memory); }

static inline unsigned long fluxgate_mutex_size(void) { return sizeof(pthread_mutex_t); }

// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the host (clock_gettime(2)).
static inline int64_t fluxgate_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}
// Counters with one writer (a worker's own metrics region, docs/observability.md "How the
// counters are shared"): a relaxed load and store, no locked instruction; the master reads them
// with relaxed loads (a value may be a few requests old, never torn: aligned 8-byte accesses).
static inline void fluxgate_counter_add(int64_t *p, int64_t v) {
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED);
}
static inline int64_t fluxgate_counter_load(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
// Publishing a table entry: its other words are written first, this one last (release); the
// reader loads it first (acquire) and reads the rest only when it is set.
static inline void fluxgate_publish(int64_t *p, int64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline int64_t fluxgate_published(const int64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
