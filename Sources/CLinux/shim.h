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

// A lock in memory shared between processes that survives its holder's death: the 8-byte word
// holds the holder's process id (0: free). Taking a free lock is one compare-and-swap; a robust
// pthread mutex (pthread_mutexattr_setrobust(3)) took glibc's pthread_mutex_lock_full path, its
// robust list kept per lock and unlock (~110 instructions per limited request,
// docs/performance.md "gateway3"). A locker that finds the lock held spins, then yields, and
// asks whether the holder still lives (kill(2) with signal 0: ESRCH once it has died and been
// reaped; the master reaps its workers at once, and a zombie still counts as alive): it then
// takes the lock over and is told so, as EOWNERDEAD told it before. Processes are made with
// posix_spawn (exec: never a fork that keeps the parent's cached id). The rate-limit segment
// keeps one per limit (docs/rate-limits.md "Locking").
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <time.h>

static inline int64_t fluxgate_lock_owner_id(void) {
    static int64_t cached = 0;
    int64_t id = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (id == 0) {
        id = (int64_t)getpid();
        __atomic_store_n(&cached, id, __ATOMIC_RELAXED);
    }
    return id;
}

static inline int fluxgate_robust_mutex_init(void *memory) {
    __atomic_store_n((int64_t *)memory, 0, __ATOMIC_SEQ_CST);
    return 0;
}

// The lock is held, by this process's `self` from now on: 0; 1 when it was taken over from a
// holder that died holding it (the data it guards may be half-updated: the caller repairs what
// it can).
// Out of line, so the uncontended lock below (one load, one compare-exchange) is inlined into its
// Swift callers: with this loop in it, it was a call with its own frame (~20 instructions per
// limited request, docs/performance.md "session 16, gateway2").
__attribute__((noinline)) static int fluxgate_robust_mutex_lock_contended(int64_t *word, int64_t self) {
    for (unsigned spins = 0;; spins++) {
        int64_t holder = __atomic_load_n(word, __ATOMIC_RELAXED);
        int64_t expected = holder;
        if (holder == 0) {
            if (__atomic_compare_exchange_n(word, &expected, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
            continue;
        }
        if (spins < 64) continue;
        if (holder != self && kill((pid_t)holder, 0) == -1 && errno == ESRCH) {
            if (__atomic_compare_exchange_n(word, &expected, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 1;
            continue;
        }
        sched_yield();
    }
}

__attribute__((always_inline)) static inline int fluxgate_robust_mutex_lock(void *memory) {
    int64_t *word = (int64_t *)memory;
    int64_t self = fluxgate_lock_owner_id();
    int64_t expected = 0;
    if (__atomic_compare_exchange_n(word, &expected, self, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
    return fluxgate_robust_mutex_lock_contended(word, self);
}

static inline void fluxgate_robust_mutex_unlock(void *memory) { __atomic_store_n((int64_t *)memory, 0, __ATOMIC_RELEASE); }

static inline unsigned long fluxgate_mutex_size(void) { return sizeof(int64_t); }

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
