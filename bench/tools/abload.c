/* abload.c - paired A/B load in short alternating slices: two proxies measured in the same seconds.
 *
 *   abload URL_A PIDS_A URL_B PIDS_B KEY MODEL STREAM CONC SLICE_MS PAIRS [WARM_PAIRS=10] [THREADS=2] [SKIP_MS=0]
 *
 * Why: on these VMs the machine's speed moves by tens of per cent from one second to the next, so
 * two wrk runs a few seconds apart do not see the same machine, and a ratio a few per cent wide
 * needs hundreds of them (bench/run.sh's AB_PAIRS bursts are 1 s, the shortest wrk runs). Here one
 * process keeps CONC keep-alive connections open to each proxy and sends closed-loop load (a
 * connection sends its next request when its response has been read, as wrk does) to one side at
 * a time, switching every SLICE_MS: a pair is one slice of A and one of B, A first in even pairs
 * and B first in odd ones, so both sides of every ratio are measured within 2 x SLICE_MS.
 *
 * What is counted is each slice's window from SKIP_MS after its start to its end: a response
 * counts for the slice its request was sent in, if it was sent in the window, and a side's CPU
 * per request in a slice is the CPU time every thread of its process trees (PIDS: comma-separated
 * roots, e.g. the master; its workers are found under it) used over the window, from
 * /proc/TID/schedstat (nanoseconds), divided by those responses. The first milliseconds of a slice
 * are a transition (all CONC connections start at once while the other side's last requests are
 * still in flight), and with 100 ms slices the side that had just been idle measured ~5% slower
 * than the side continuing its run, so SKIP_MS leaves them out; throughput is the window's
 * responses over its length.
 *
 * Request: POST URL's path, body as tools/post.lua's (MODEL, STREAM "true"/"false"),
 * `Authorization: Bearer KEY`. Responses: Content-Length or chunked bodies, read and discarded; a
 * status other than 200 counts as an error. Prints, after WARM_PAIRS unrecorded pairs, one line
 * per pair: "pair<TAB>first<TAB>responses_a<TAB>responses_b<TAB>cpu_ns_a<TAB>cpu_ns_b<TAB>errors".
 * Loopback only in practice (URLs are http://HOST:PORT/path with a numeric IPv4 host). Stops by
 * itself: at most (WARM_PAIRS + PAIRS) x 2 x SLICE_MS plus 2 s for the last responses.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN 1024
#define MAX_THREADS 8
#define MAX_ROOTS 16

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

/* ------------------------------------------------------------------ the two sides */

struct side {
    struct sockaddr_in addr;
    char request[2048];
    size_t request_len;
    int roots[MAX_ROOTS], nroots;
};
static struct side sides[2];

static void parse_url(const char *url, struct side *s, const char *key, const char *body) {
    char host[64];
    int port;
    char path[512];
    if (sscanf(url, "http://%63[^:]:%d%511s", host, &port, path) != 3) {
        fprintf(stderr, "abload: URL %s is not http://IPV4:PORT/path\n", url);
        exit(2);
    }
    memset(&s->addr, 0, sizeof s->addr);
    s->addr.sin_family = AF_INET;
    s->addr.sin_port = htons(port);
    if (inet_pton(AF_INET, host, &s->addr.sin_addr) != 1) {
        fprintf(stderr, "abload: host %s is not an IPv4 address\n", host);
        exit(2);
    }
    int n = snprintf(s->request, sizeof s->request,
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     path, host, port, key, strlen(body), body);
    if (n <= 0 || (size_t)n >= sizeof s->request) {
        fprintf(stderr, "abload: request too long\n");
        exit(2);
    }
    s->request_len = (size_t)n;
}

static void parse_pids(const char *list, struct side *s) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *tok = strtok(buf, ","); tok && s->nroots < MAX_ROOTS; tok = strtok(NULL, ","))
        s->roots[s->nroots++] = atoi(tok);
}

/* CPU nanoseconds of every thread of every process under the side's roots. */
static int parent_of(int pid) {
    char p[64], b[512];
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    char *r = strrchr(b, ')');
    int ppid = -1;
    if (r) sscanf(r + 2, "%*c %d", &ppid);
    return ppid;
}

static int trees[2][256], ntrees[2];

static void find_trees(void) {
    for (int s = 0; s < 2; s++) {
        ntrees[s] = 0;
        for (int i = 0; i < sides[s].nroots; i++) trees[s][ntrees[s]++] = sides[s].roots[i];
    }
    DIR *d = opendir("/proc");
    if (!d) die("/proc");
    int pids[4096], ppids[4096], n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 4096) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        pids[n] = pid;
        ppids[n++] = parent_of(pid);
    }
    closedir(d);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < ntrees[s] && ntrees[s] < 256; i++)
            for (int k = 0; k < n; k++)
                if (ppids[k] == trees[s][i] && ntrees[s] < 256) trees[s][ntrees[s]++] = pids[k];
}

static long long side_cpu_ns(int s) {
    long long total = 0;
    char p[320], b[128];
    for (int i = 0; i < ntrees[s]; i++) {
        snprintf(p, sizeof p, "/proc/%d/task", trees[s][i]);
        DIR *d = opendir(p);
        if (!d) continue;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.') continue;
            snprintf(p, sizeof p, "/proc/%d/task/%s/schedstat", trees[s][i], e->d_name);
            FILE *f = fopen(p, "r");
            if (!f) continue;
            if (fgets(b, sizeof b, f)) total += atoll(b);
            fclose(f);
        }
        closedir(d);
    }
    return total;
}

/* ------------------------------------------------------------------ schedule */

static double t0, slice_s, skip_s;
static int total_pairs, warm_pairs;
static volatile int stopping;

/* The side loaded in slice k: pair k/2, A first in even pairs. */
static int side_of_slice(long k) {
    long pair = k / 2;
    int second = (int)(k % 2);
    return (pair % 2 == 0) ? second : 1 - second;
}

static long slice_at(double t) { return (long)((t - t0) / slice_s); }

/* ------------------------------------------------------------------ connections */

enum { IDLE, SENDING, HEAD, BODY_LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILER };

struct conn {
    int fd, side, state;
    size_t sent;
    long slice;                 /* the slice the request in flight was sent in, -1: not counted */
    long long remaining;        /* body bytes (or chunk bytes) left */
    int status;
    char head[4096];
    size_t head_len;
    char line[64];
    size_t line_len;
};

struct worker {
    pthread_t thread;
    int epfd;
    struct conn conns[MAX_CONN];
    int nconns;
    long *responses; /* per slice */
    long *errors;    /* per slice */
};

static long nslices;

static void send_request(struct worker *w, struct conn *c, long slice, double t) {
    c->state = SENDING;
    c->sent = 0;
    c->slice = t - (t0 + slice * slice_s) >= skip_s ? slice : -1;
    c->head_len = 0;
    struct side *s = &sides[c->side];
    while (c->sent < s->request_len) {
        ssize_t n = write(c->fd, s->request + c->sent, s->request_len - c->sent);
        if (n < 0) {
            if (errno == EAGAIN) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
            die("write");
        }
        c->sent += (size_t)n;
    }
    c->state = HEAD;
}

static void finish_response(struct worker *w, struct conn *c) {
    if (c->slice >= 0 && c->slice < nslices) {
        if (c->status == 200) w->responses[c->slice]++;
        else w->errors[c->slice]++;
    }
    c->state = IDLE;
    double t = now_s();
    long k = slice_at(t);
    if (!stopping && k < nslices && side_of_slice(k) == c->side) send_request(w, c, k, t);
}

/* Of `available` bytes, those the body (or chunk) still expects: counted off `remaining`. */
static size_t consume(struct conn *c, size_t available) {
    size_t take = available;
    if ((long long)take > c->remaining) take = (size_t)c->remaining;
    c->remaining -= (long long)take;
    return take;
}

/* Feeds n bytes of the response in flight (a closed-loop client has one per connection). */
static void feed(struct worker *w, struct conn *c, const char *b, size_t n) {
    size_t i = 0;
    while (i < n) {
        switch (c->state) {
        case HEAD: {
            /* the head's end searched in what this read added (and the three bytes before it) */
            size_t old = c->head_len, take = n - i;
            if (take > sizeof c->head - 1 - old) take = sizeof c->head - 1 - old;
            memcpy(c->head + old, b + i, take);
            size_t from = old >= 3 ? old - 3 : 0;
            char *end = memmem(c->head + from, old + take - from, "\r\n\r\n", 4);
            if (!end) {
                if (old + take >= sizeof c->head - 1) {
                    fprintf(stderr, "abload: response head too long\n");
                    exit(1);
                }
                c->head_len = old + take;
                return;
            }
            c->head_len = (size_t)(end - c->head) + 4;
            i += c->head_len - old;
            char *h = c->head;
            h[c->head_len] = 0;
            c->status = atoi(h + 9);
            char *cl = strcasestr(h, "\r\ncontent-length:");
            if (strcasestr(h, "\r\ntransfer-encoding: chunked")) {
                c->state = CHUNK_SIZE;
                c->line_len = 0;
            } else if (cl) {
                c->remaining = atoll(cl + 17);
                c->state = BODY_LENGTH;
                if (c->remaining == 0) finish_response(w, c);
            } else {
                fprintf(stderr, "abload: response without Content-Length or chunked\n");
                exit(1);
            }
            break;
        }
        case BODY_LENGTH:
            i += consume(c, n - i);
            if (c->remaining == 0) finish_response(w, c);
            break;
        case CHUNK_SIZE:
        case TRAILER:
            while (i < n) {
                char ch = b[i++];
                if (c->line_len < sizeof c->line - 1) c->line[c->line_len++] = ch;
                if (ch == '\n') break;
            }
            if (c->line_len == 0 || c->line[c->line_len - 1] != '\n') return;
            c->line[c->line_len] = 0;
            if (c->state == TRAILER) {
                int empty = c->line_len <= 2;
                c->line_len = 0;
                if (empty) finish_response(w, c);
                break;
            }
            c->remaining = strtoll(c->line, NULL, 16);
            c->line_len = 0;
            c->state = c->remaining == 0 ? TRAILER : CHUNK_DATA;
            break;
        case CHUNK_DATA:
            i += consume(c, n - i);
            if (c->remaining == 0) { c->state = CHUNK_CRLF; c->line_len = 0; }
            break;
        case CHUNK_CRLF:
            while (i < n && c->line_len < 2) { c->line_len++; i++; }
            if (c->line_len == 2) { c->state = CHUNK_SIZE; c->line_len = 0; }
            break;
        default:
            fprintf(stderr, "abload: bytes while no request was in flight\n");
            exit(1);
        }
    }
}

static void *run_worker(void *arg) {
    struct worker *w = arg;
    struct epoll_event evs[256];
    char buf[65536];
    long current = -1;
    for (;;) {
        double t = now_s();
        long k = slice_at(t);
        if (k != current && k >= 0) {
            current = k;
            if (k >= nslices) stopping = 1;
            if (!stopping) {
                int s = side_of_slice(k);
                for (int i = 0; i < w->nconns; i++)
                    if (w->conns[i].side == s && w->conns[i].state == IDLE) send_request(w, &w->conns[i], k, t);
            }
        }
        if (stopping) {
            int busy = 0;
            for (int i = 0; i < w->nconns; i++) busy |= w->conns[i].state != IDLE;
            if (!busy || t > t0 + nslices * slice_s + 2.0) return NULL;
        }
        double next = t0 + (k + 1) * slice_s;
        int timeout = (int)((next - t) * 1000.0) + 1;
        if (timeout < 1) timeout = 1;
        if (stopping) timeout = 50;
        int n = epoll_wait(w->epfd, evs, 256, timeout);
        for (int e = 0; e < n; e++) {
            struct conn *c = evs[e].data.ptr;
            if (c->state == SENDING && (evs[e].events & EPOLLOUT)) {
                struct side *s = &sides[c->side];
                ssize_t m = write(c->fd, s->request + c->sent, s->request_len - c->sent);
                if (m > 0) c->sent += (size_t)m;
                if (c->sent == s->request_len) {
                    c->state = HEAD;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t m = read(c->fd, buf, sizeof buf);
                    if (m > 0) { feed(w, c, buf, (size_t)m); continue; }
                    if (m == 0 || (m < 0 && errno != EAGAIN)) {
                        fprintf(stderr, "abload: a connection to side %c closed\n", "AB"[c->side]);
                        exit(1);
                    }
                    break;
                }
            }
        }
    }
}

static int connect_to(struct side *s) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&s->addr, sizeof s->addr) < 0) die("connect");
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

int main(int argc, char **argv) {
    if (argc < 11) {
        fprintf(stderr, "usage: abload URL_A PIDS_A URL_B PIDS_B KEY MODEL STREAM CONC SLICE_MS PAIRS [WARM_PAIRS=10] [THREADS=2]\n");
        return 2;
    }
    char body[1024];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},"
             "{\"role\":\"user\",\"content\":\"Say hello and explain in two sentences what a reverse proxy does.\"}],"
             "\"max_tokens\":64,\"temperature\":0}",
             argv[6], argv[7]);
    parse_url(argv[1], &sides[0], argv[5], body);
    parse_pids(argv[2], &sides[0]);
    parse_url(argv[3], &sides[1], argv[5], body);
    parse_pids(argv[4], &sides[1]);
    int conc = atoi(argv[8]);
    slice_s = atoi(argv[9]) / 1000.0;
    total_pairs = atoi(argv[10]);
    warm_pairs = argc > 11 ? atoi(argv[11]) : 10;
    int nthreads = argc > 12 ? atoi(argv[12]) : 2;
    skip_s = (argc > 13 ? atoi(argv[13]) : 0) / 1000.0;
    if (conc < 1 || slice_s <= 0 || skip_s < 0 || skip_s >= slice_s || total_pairs < 1 || nthreads < 1 || nthreads > MAX_THREADS ||
        conc * 2 > MAX_CONN * nthreads) {
        fprintf(stderr, "abload: bad CONC, SLICE_MS, PAIRS or THREADS\n");
        return 2;
    }
    nslices = 2L * (warm_pairs + total_pairs);
    find_trees();

    struct worker *ws = calloc((size_t)nthreads, sizeof *ws);
    for (int t = 0; t < nthreads; t++) {
        ws[t].epfd = epoll_create1(0);
        ws[t].responses = calloc((size_t)nslices, sizeof(long));
        ws[t].errors = calloc((size_t)nslices, sizeof(long));
    }
    /* connections dealt round robin over the threads, CONC to each side */
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < conc; i++) {
            struct worker *w = &ws[i % nthreads];
            struct conn *c = &w->conns[w->nconns++];
            memset(c, 0, sizeof *c);
            c->fd = connect_to(&sides[s]);
            c->side = s;
            c->state = IDLE;
            c->slice = -1;
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
            epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev);
        }

    long npairs = warm_pairs + total_pairs;
    /* per slice, the loaded side's CPU at the window's start and at the slice's end */
    long long *cpu_from = calloc((size_t)nslices, sizeof(long long));
    long long *cpu_to = calloc((size_t)nslices, sizeof(long long));
    t0 = now_s() + 0.05;
    for (int t = 0; t < nthreads; t++) pthread_create(&ws[t].thread, NULL, run_worker, &ws[t]);
    /* this thread samples the loaded side's CPU at every window's start and every slice's end */
    for (long k = 0; k < 2 * nslices; k++) {
        long slice = k / 2;
        double at = t0 + slice * slice_s + (k % 2 ? slice_s : skip_s);
        double t = now_s();
        if (at > t) {
            struct timespec d = {.tv_sec = (time_t)(at - t), .tv_nsec = (long)(((at - t) - (time_t)(at - t)) * 1e9)};
            nanosleep(&d, NULL);
        }
        long long v = side_cpu_ns(side_of_slice(slice));
        if (k % 2) cpu_to[slice] = v;
        else cpu_from[slice] = v;
    }
    for (int t = 0; t < nthreads; t++) pthread_join(ws[t].thread, NULL);

    for (long p = warm_pairs; p < npairs; p++) {
        long r[2] = {0, 0}, errors = 0;
        long long cpu[2] = {0, 0};
        for (int half = 0; half < 2; half++) {
            long k = p * 2 + half;
            int s = side_of_slice(k);
            for (int t = 0; t < nthreads; t++) {
                r[s] += ws[t].responses[k];
                errors += ws[t].errors[k];
            }
            cpu[s] += cpu_to[k] - cpu_from[k];
        }
        printf("%ld\t%c\t%ld\t%ld\t%lld\t%lld\t%ld\n", p - warm_pairs, "AB"[side_of_slice(p * 2)], r[0], r[1], cpu[0],
               cpu[1], errors);
    }
    return 0;
}
