/* sse_bench.c - the paced-SSE mock upstream and the streaming-fidelity probe of S5, in C.
 *
 *   sse_bench mock PORT [N_EVENTS=50] [INTERVAL_MS=20]
 *   sse_bench probe URL KEY MODEL [REQUESTS=20] [CONCURRENCY=1] [TIME_LIMIT_S=60]
 *
 * The same protocol and output as tools/paced_sse_mock.py and tools/sse_probe.py (which stay as
 * the fallback when no C compiler is around), without their floor: both Python tools run every
 * connection on one interpreter thread, and with 32 streams starting together the first events
 * waited for the interpreter, not for the proxy (S5's added time to first event at c=32 measured
 * 7-9 ms for nginx and fluxgate alike). Here one epoll loop per process does the same work in
 * microseconds, so what is added between direct and proxied is the proxy's.
 *
 * mock: every request (any path, body by Content-Length or chunked) gets 401 unless it carries
 * `Authorization: Bearer $UPSTREAM_KEY` (default upstream-key); otherwise 200 text/event-stream,
 * chunked, N `data:` events (chat.completion.chunk JSON, the first with role, the last with
 * finish_reason stop) then `data: [DONE]`, event i sent at start + i * INTERVAL_MS (an absolute
 * schedule: no drift), then the last chunk. Keep-alive; `Connection: close` closes after the
 * response. Loopback only (binds 127.0.0.1).
 *
 * probe: CONCURRENCY keep-alive connections, each sending max(1, REQUESTS / CONCURRENCY)
 * streaming POSTs one after the other; every `data:` line is timestamped when its read returns.
 * Prints one JSON line: ok, errors, events_median, time to the first content event (event 1; event
 * 0 is the role) p50/p99, inter-event gaps p50/p99/max, bunched_pct (gaps < 2 ms: events held and
 * released together), total_p50_ms. Stops by itself at TIME_LIMIT_S.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* Case-insensitive search for a header line's value in head[0..len); returns its start or NULL. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *value_len) {
    size_t n = strlen(name);
    const char *p = head, *end = head + len;
    while (p < end) {
        const char *eol = memmem(p, end - p, "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
            *value_len = ve - v;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------- mock -- */

#define MAX_CONNS 4096
#define IN_CAP 65536

struct mconn {
    int fd;
    char in[IN_CAP];
    size_t in_len;
    int streaming;      /* a response is in progress: event `next` is due at start + next * interval */
    int next;
    double start;
    int close_after;
    char *out;          /* bytes not yet written (a slow reader) */
    size_t out_len;
};

static struct mconn *mconns[MAX_CONNS];
static int n_events = 50;
static double interval = 20.0;
static char **event_chunks;
static size_t *event_lens;
static const char *upstream_key;

static void build_events(void) {
    event_chunks = calloc(n_events + 1, sizeof *event_chunks);
    event_lens = calloc(n_events + 1, sizeof *event_lens);
    for (int i = 0; i <= n_events; i++) {
        char data[512];
        int dn;
        if (i == n_events) {
            dn = snprintf(data, sizeof data, "data: [DONE]\n\n");
        } else {
            char delta[64];
            if (i == 0) snprintf(delta, sizeof delta, "{\"role\":\"assistant\",\"content\":\"\"}");
            else snprintf(delta, sizeof delta, "{\"content\":\" tok%d\"}", i);
            dn = snprintf(data, sizeof data,
                          "data: {\"id\":\"chatcmpl-paced\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                          "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":%s,\"logprobs\":null,"
                          "\"finish_reason\":%s}]}\n\n", delta, i == n_events - 1 ? "\"stop\"" : "null");
        }
        event_chunks[i] = malloc(dn + 32);
        event_lens[i] = snprintf(event_chunks[i], dn + 32, "%x\r\n%s\r\n", dn, data);
    }
}

static void mclose(int epfd, struct mconn *c) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    mconns[c->fd] = NULL;
    free(c->out);
    free(c);
}

/* Writes (or queues) bytes; returns -1 when the connection failed. */
static int msend(int epfd, struct mconn *c, const char *b, size_t n) {
    if (c->out_len == 0) {
        ssize_t w = write(c->fd, b, n);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (w < 0) w = 0;
        b += w;
        n -= w;
        if (n == 0) return 0;
    }
    c->out = realloc(c->out, c->out_len + n);
    memcpy(c->out + c->out_len, b, n);
    c->out_len += n;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

/* Parses complete requests in the input; starts a stream (or answers 401) for the first. */
static int mparse(int epfd, struct mconn *c) {
    while (!c->streaming) {
        char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return c->in_len >= IN_CAP ? -1 : 0;
        size_t head_len = end + 4 - c->in;
        size_t vlen, body = 0;
        const char *v = header_value(c->in, head_len, "content-length", &vlen);
        int chunked = 0;
        if (v) body = strtoul(v, NULL, 10);
        else if ((v = header_value(c->in, head_len, "transfer-encoding", &vlen)) && vlen == 7 && !strncasecmp(v, "chunked", 7))
            chunked = 1;
        size_t total = head_len + body;
        if (chunked) {   /* find the last chunk's end: "0\r\n\r\n" after the head */
            char *last = memmem(c->in + head_len, c->in_len - head_len, "0\r\n\r\n", 5);
            if (!last) return c->in_len >= IN_CAP ? -1 : 0;
            total = last + 5 - c->in;
        }
        if (c->in_len < total) return total > IN_CAP ? -1 : 0;
        char expected[256];
        int en = snprintf(expected, sizeof expected, "Bearer %s", upstream_key);
        v = header_value(c->in, head_len, "authorization", &vlen);
        int authorised = v && vlen == (size_t)en && memcmp(v, expected, en) == 0;
        v = header_value(c->in, head_len, "connection", &vlen);
        c->close_after = v && vlen == 5 && !strncasecmp(v, "close", 5);
        memmove(c->in, c->in + total, c->in_len - total);
        c->in_len -= total;
        if (!authorised) {
            static const char r401[] = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n";
            if (msend(epfd, c, r401, sizeof r401 - 1) < 0) return -1;
            continue;
        }
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
        if (msend(epfd, c, head, sizeof head - 1) < 0) return -1;
        c->streaming = 1;
        c->next = 0;
        c->start = now_ms();
    }
    return 0;
}

/* Sends every event that is due; ends the response after [DONE]. */
static int mtick(int epfd, struct mconn *c, double now) {
    while (c->streaming && c->start + c->next * interval <= now) {
        if (msend(epfd, c, event_chunks[c->next], event_lens[c->next]) < 0) return -1;
        if (c->next++ == n_events) {
            if (msend(epfd, c, "0\r\n\r\n", 5) < 0) return -1;
            c->streaming = 0;
            if (c->close_after) return -1;
            if (mparse(epfd, c) < 0) return -1;
        }
    }
    return 0;
}

static int run_mock(int port) {
    upstream_key = getenv("UPSTREAM_KEY") ? getenv("UPSTREAM_KEY") : "upstream-key";
    build_events();
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(lfd, 1024) < 0) die("listen");
    set_nonblocking(lfd);
    int epfd = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event events[256];
    for (;;) {
        double now = now_ms(), due = -1;
        for (int fd = 0; fd < MAX_CONNS; fd++) {
            struct mconn *c = mconns[fd];
            if (c && c->streaming) {
                double t = c->start + c->next * interval;
                if (due < 0 || t < due) due = t;
            }
        }
        int timeout = due < 0 ? 1000 : (int)ceil(due - now);
        if (timeout < 0) timeout = 0;
        int n = epoll_wait(epfd, events, 256, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                int cfd;
                while ((cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (cfd >= MAX_CONNS) { close(cfd); continue; }
                    set_nonblocking(cfd);
                    struct mconn *c = calloc(1, sizeof *c);
                    c->fd = cfd;
                    mconns[cfd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
                }
                continue;
            }
            struct mconn *c = mconns[fd];
            if (!c) continue;
            if ((events[i].events & EPOLLOUT) && c->out_len) {
                ssize_t w = write(fd, c->out, c->out_len);
                if (w < 0 && errno != EAGAIN) { mclose(epfd, c); continue; }
                if (w > 0) {
                    memmove(c->out, c->out + w, c->out_len - w);
                    c->out_len -= w;
                }
                if (c->out_len == 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.fd = fd};
                    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &cev);
                }
            }
            if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                ssize_t r = read(fd, c->in + c->in_len, IN_CAP - c->in_len);
                if (r == 0 || (r < 0 && errno != EAGAIN)) { mclose(epfd, c); continue; }
                if (r > 0) {
                    c->in_len += r;
                    if (mparse(epfd, c) < 0) { mclose(epfd, c); continue; }
                }
            }
        }
        now = now_ms();
        for (int fd = 0; fd < MAX_CONNS; fd++) {
            struct mconn *c = mconns[fd];
            if (c && c->streaming && mtick(epfd, c, now) < 0) mclose(epfd, c);
        }
    }
    return 0;
}

/* --------------------------------------------------------------------------------- probe -- */

struct pconn {
    int fd;
    int index, sent;        /* which connection; requests sent on it so far */
    int left;               /* requests still to send on this connection */
    int active;             /* a request is in flight */
    double t0;
    char buf[65536];        /* unparsed response bytes */
    size_t len;
    int head_done, status, chunked;
    long remaining;         /* chunked: bytes left in the current chunk (+2 for its CRLF); else body bytes */
    int finished_chunks;
    char line[4096];        /* the SSE line being assembled across chunks */
    size_t line_len;
    double *times;
    int n_times, cap_times;
};

struct results {
    double *ttfe, *gaps, *total, *events;
    int n_ttfe, n_gaps, n_total, n_events, cap;
    int errors;
};

static void push(double **a, int *n, int *cap, double v) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *a = realloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* sse_probe.py's pct: sorted, index round(p/100 * (n-1)) with ties to even. */
static double pct(double *v, int n, double p) {
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    int i = (int)nearbyint(p / 100.0 * (n - 1));
    return v[i < n - 1 ? i : n - 1];
}

static void sse_bytes(struct pconn *c, const char *b, size_t n, double t) {
    for (size_t i = 0; i < n; i++) {
        if (b[i] == '\n') {
            if (c->line_len >= 5 && memcmp(c->line, "data:", 5) == 0) {
                if (c->n_times == c->cap_times) {
                    c->cap_times = c->cap_times ? c->cap_times * 2 : 64;
                    c->times = realloc(c->times, c->cap_times * sizeof *c->times);
                }
                c->times[c->n_times++] = t;
            }
            c->line_len = 0;
        } else if (c->line_len < sizeof c->line) {
            c->line[c->line_len++] = b[i];
        }
    }
}

/* Consumes what can be parsed; returns 1 when the response is complete, -1 on a protocol error. */
static int presponse(struct pconn *c, double t) {
    size_t off = 0;
    int done = 0;
    if (!c->head_done) {
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len >= sizeof c->buf ? -1 : 0;
        size_t head_len = end + 4 - c->buf;
        c->status = atoi(c->buf + 9);
        size_t vlen;
        const char *v = header_value(c->buf, head_len, "transfer-encoding", &vlen);
        c->chunked = v && vlen == 7 && !strncasecmp(v, "chunked", 7);
        c->remaining = 0;
        if (!c->chunked) {
            v = header_value(c->buf, head_len, "content-length", &vlen);
            c->remaining = v ? strtol(v, NULL, 10) : 0;
        }
        c->head_done = 1;
        off = head_len;
        if (!c->chunked && c->remaining == 0) done = 1;
    }
    while (!done && off < c->len) {
        if (!c->chunked) {
            size_t take = c->len - off < (size_t)c->remaining ? c->len - off : (size_t)c->remaining;
            sse_bytes(c, c->buf + off, take, t);
            off += take;
            c->remaining -= take;
            if (c->remaining == 0) done = 1;
        } else if (c->remaining > 0) {
            size_t take = c->len - off < (size_t)c->remaining ? c->len - off : (size_t)c->remaining;
            /* The chunk's data, without the CRLF that ends it (its last two bytes). */
            long data_left = c->remaining - 2;
            size_t data = data_left > 0 ? (take < (size_t)data_left ? take : (size_t)data_left) : 0;
            sse_bytes(c, c->buf + off, data, t);
            off += take;
            c->remaining -= take;
            if (c->remaining == 0 && c->finished_chunks) done = 1;
        } else {
            char *eol = memmem(c->buf + off, c->len - off, "\r\n", 2);
            if (!eol) break;
            long size = strtol(c->buf + off, NULL, 16);
            off = eol + 2 - c->buf;
            c->remaining = size + 2;
            if (size == 0) c->finished_chunks = 1;
        }
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return done;
}

/* `, "name": value` with two decimals; NaN (no sample) as sse_probe.py's json.dumps writes it. */
static void print_ms(const char *name, double v) {
    if (isnan(v)) printf(", \"%s\": NaN", name);
    else printf(", \"%s\": %.2f", name, v);
}

static int run_probe(const char *url, const char *key, const char *model, int requests, int conc, double limit_s) {
    char host[256] = "127.0.0.1", path[1024] = "/";
    int port = 80;
    if (sscanf(url, "http://%255[^:/]:%d%1023s", host, &port, path) < 2) {
        fprintf(stderr, "probe: URL must be http://host:port/path\n");
        return 2;
    }
    char body[512], req[2048];
    int bn = snprintf(body, sizeof body,
                      "{\"model\": \"%s\", \"stream\": true, \"max_tokens\": 64, "
                      "\"messages\": [{\"role\": \"user\", \"content\": \"stream please\"}]}", model);
    int rn = snprintf(req, sizeof req,
                      "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, host, port, key, bn, body);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int per = requests / conc > 0 ? requests / conc : 1;
    double deadline = now_ms() + limit_s * 1e3;
    int epfd = epoll_create1(0);
    struct pconn **cs = calloc(conc, sizeof *cs);
    struct results r = {0};
    const int samples = getenv("SSE_BENCH_SAMPLES") != NULL;   /* one stderr line per request */
    const double start = now_ms();
    int cap_t = 0, cap_g = 0, cap_o = 0, cap_e = 0;
    int open_conns = 0;
    for (int i = 0; i < conc; i++) {
        struct pconn *c = calloc(1, sizeof *c);
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0) { r.errors++; close(c->fd); free(c); continue; }
        set_nonblocking(c->fd);
        c->left = per;
        c->index = i;
        cs[i] = c;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
        open_conns++;
    }
    /* Start every connection's first request together, as asyncio.gather does. */
    for (int i = 0; i < conc; i++) {
        struct pconn *c = cs[i];
        if (!c) continue;
        c->t0 = now_ms();
        if (write(c->fd, req, rn) != rn) { r.errors++; c->left = 0; continue; }
        c->active = 1;
        c->left--;
        c->sent++;
    }
    struct epoll_event events[256];
    while (open_conns > 0) {
        double now = now_ms();
        /* Like sse_probe.py: a request may run until the deadline (at least 1 s), then it is an error. */
        int timeout = (int)(deadline + 1000 - now);
        if (timeout < 0) break;
        int n = epoll_wait(epfd, events, 256, timeout < 1000 ? timeout : 1000);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            struct pconn *c = events[i].data.ptr;
            if (!c->active) continue;
            ssize_t got = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            double t = now_ms();
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN) continue;
                r.errors++;
                c->active = 0;
                c->left = 0;
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                open_conns--;
                continue;
            }
            c->len += got;
            int state = presponse(c, t);
            if (state == 0) continue;
            if (state < 0 || c->status != 200 || c->n_times < 3) {
                r.errors++;
            } else {
                push(&r.ttfe, &r.n_ttfe, &cap_t, c->times[1] - c->t0);
                if (samples)
                    fprintf(stderr, "sample conn=%d request=%d sent_at_ms=%.3f ttfe_ms=%.3f total_ms=%.3f\n", c->index,
                            c->sent, c->t0 - start, c->times[1] - c->t0, c->times[c->n_times - 1] - c->t0);
                push(&r.total, &r.n_total, &cap_o, c->times[c->n_times - 1] - c->t0);
                for (int k = 2; k < c->n_times; k++) push(&r.gaps, &r.n_gaps, &cap_g, c->times[k] - c->times[k - 1]);
                push(&r.events, &r.n_events, &cap_e, c->n_times);
            }
            c->active = 0;
            c->head_done = 0;
            c->finished_chunks = 0;
            c->n_times = 0;
            c->line_len = 0;
            if (state > 0 && c->left > 0 && now_ms() <= deadline) {
                c->t0 = now_ms();
                if (write(c->fd, req, rn) == rn) {
                    c->active = 1;
                    c->left--;
                    c->sent++;
                    continue;
                }
                r.errors++;
            }
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            open_conns--;
        }
    }
    for (int i = 0; i < conc; i++) if (cs[i] && cs[i]->active) r.errors++;   /* cut by the time limit */
    int bunched = 0;
    double gap_max = 0;
    for (int k = 0; k < r.n_gaps; k++) {
        if (r.gaps[k] < 2.0) bunched++;
        if (r.gaps[k] > gap_max) gap_max = r.gaps[k];
    }
    double events_median = 0;
    if (r.n_events) {
        qsort(r.events, r.n_events, sizeof *r.events, cmp_double);
        events_median = r.n_events % 2 ? r.events[r.n_events / 2]
                                       : (r.events[r.n_events / 2 - 1] + r.events[r.n_events / 2]) / 2;
    }
    printf("{\"url\": \"%s\", \"conc\": %d, \"ok\": %d, \"errors\": %d, \"events_median\": %.1f",
           url, conc, r.n_ttfe, r.errors, events_median);
    print_ms("ttfe_p50_ms", pct(r.ttfe, r.n_ttfe, 50));
    print_ms("ttfe_p99_ms", pct(r.ttfe, r.n_ttfe, 99));
    print_ms("gap_p50_ms", pct(r.gaps, r.n_gaps, 50));
    print_ms("gap_p99_ms", pct(r.gaps, r.n_gaps, 99));
    if (r.n_gaps) printf(", \"gap_max_ms\": %.2f, \"bunched_pct\": %.1f", gap_max, 100.0 * bunched / r.n_gaps);
    else printf(", \"gap_max_ms\": null, \"bunched_pct\": null");
    print_ms("total_p50_ms", pct(r.total, r.n_total, 50));
    printf(", \"probe\": \"c\"}\n");
    return 0;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 3 && strcmp(argv[1], "mock") == 0) {
        if (argc > 3) n_events = atoi(argv[3]);
        if (argc > 4) interval = atof(argv[4]);
        return run_mock(atoi(argv[2]));
    }
    if (argc >= 5 && strcmp(argv[1], "probe") == 0) {
        return run_probe(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 20, argc > 6 ? atoi(argv[6]) : 1,
                         argc > 7 ? atof(argv[7]) : 60);
    }
    fprintf(stderr, "usage: sse_bench mock PORT [N_EVENTS [INTERVAL_MS]]\n"
                    "       sse_bench probe URL KEY MODEL [REQUESTS [CONCURRENCY [TIME_LIMIT_S]]]\n");
    return 2;
}
