/*
 * STAND-IN server for tests only -- no model runs here.
 *
 * One static binary (gcc -static) that goes into the from-scratch stand-in
 * container images built by tests/standins/image.py.  It picks its personality
 * from the name it is started as (argv[0]'s basename, through symlinks in the
 * image), or from its first argument when started as `standin-server`:
 *
 *   vllm serve MODEL [--host H] [--port P] [--api-key K] [--served-model-name N..]
 *       vLLM's OpenAI server: GET /health, /ping, /version, /metrics (open);
 *       GET /v1/models, POST /v1/chat/completions, POST /v1/completions
 *       (Bearer check when --api-key / VLLM_API_KEY is set).
 *   llamafactory-cli version | env | train CFG | export CFG | webui | api [CFG]
 *       | standin-serve (web UI on $GRADIO_SERVER_PORT and API on $API_PORT)
 *   sh / bash [-c "cmd ..."]   tiny shell: `;` `&&` `||` `&`, quotes, $VAR,
 *       VAR=value prefixes, exec, cd, echo, true, false, exit; no pipes or
 *       redirections.  No arguments: idles until SIGTERM (like `command: bash`).
 *   sleep N|infinity;  cat FILE..;  ls [-a] [DIR..];  mkdir [-p] DIR..   (for `docker exec` checks)
 *
 * Answers are deterministic text derived from the prompt, saying they come
 * from a stand-in.  Logs go to stderr; request headers and bodies are never
 * logged.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER (64 * 1024)
#define MAX_BODY (8 * 1024 * 1024)

static const char *g_version = "0.0.0";

/* ------------------------------------------------------------------ utils */

static void logmsg(const char *level, const char *fmt, ...) {
    char ts[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%m-%d %H:%M:%S", &tm);
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s [standin] %s\n", level, ts, buf);
    fflush(stderr);
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

typedef struct {
    char *p;
    size_t n, cap;
} sb;

static void sb_add(sb *s, const char *d, size_t n) {
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1) cap *= 2;
        char *np = realloc(s->p, cap);
        if (!np) die("out of memory");
        s->p = np;
        s->cap = cap;
    }
    memcpy(s->p + s->n, d, n);
    s->n += n;
    s->p[s->n] = 0;
}
static void sb_adds(sb *s, const char *d) { sb_add(s, d, strlen(d)); }
static void sb_printf(sb *s, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(s, tmp, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) die("out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb_add(s, big, (size_t)n);
    free(big);
}
static void sb_free(sb *s) {
    free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
}
static const char *sb_str(sb *s) { return s->p ? s->p : ""; }

/* Append a JSON string literal (with quotes). */
static void sb_json(sb *s, const char *str) {
    sb_add(s, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
        switch (*c) {
        case '"': sb_adds(s, "\\\""); break;
        case '\\': sb_adds(s, "\\\\"); break;
        case '\n': sb_adds(s, "\\n"); break;
        case '\r': sb_adds(s, "\\r"); break;
        case '\t': sb_adds(s, "\\t"); break;
        default:
            if (*c < 0x20) sb_printf(s, "\\u%04x", *c);
            else sb_add(s, (const char *)c, 1);
        }
    }
    sb_add(s, "\"", 1);
}

static uint64_t fnv1a(const char *a, const char *b) {
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *c = (const unsigned char *)a; *c; c++) h = (h ^ *c) * 1099511628211ULL;
    h = (h ^ 0) * 1099511628211ULL;
    for (const unsigned char *c = (const unsigned char *)b; *c; c++) h = (h ^ *c) * 1099511628211ULL;
    return h;
}

static int count_words(const char *s) {
    int n = 0, in = 0;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) in = 0;
        else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sb s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_add(&s, buf, n);
    fclose(f);
    if (!s.p) sb_add(&s, "", 0);
    if (len) *len = s.n;
    return s.p;
}

static int mkdir_p(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    size_t len = strlen(tmp);
    if (len && tmp[len - 1] == '/') tmp[len - 1] = 0;
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int write_file(const char *dir, const char *name, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "[ERROR] cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    fwrite(data, 1, len, f);
    fclose(f);
    return 0;
}
static int write_text(const char *dir, const char *name, const char *text) { return write_file(dir, name, text, strlen(text)); }

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}
static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ------------------------------------------------------------------ JSON reader */

static const char *jws(const char *p) {
    while (p && *p && isspace((unsigned char)*p)) p++;
    return p;
}

static const char *jskip_string(const char *p) {
    if (*p != '"') return NULL;
    for (p++; *p; p++) {
        if (*p == '\\') {
            if (!p[1]) return NULL;
            p++;
        } else if (*p == '"')
            return p + 1;
    }
    return NULL;
}

/* Skip one JSON value; returns the pointer after it, or NULL on bad input. */
static const char *jskip(const char *p) {
    p = jws(p);
    if (!p || !*p) return NULL;
    if (*p == '"') return jskip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = jws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = jskip_string(jws(p));
                if (!p) return NULL;
                p = jws(p);
                if (*p != ':') return NULL;
                p++;
            }
            p = jskip(p);
            if (!p) return NULL;
            p = jws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == close) return p + 1;
            return NULL;
        }
    }
    while (*p && (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.')) p++;
    return p;
}

/* Decode the JSON string at p into out; returns 1 on success. */
static int jstr(const char *p, sb *out) {
    p = jws(p);
    if (!p || *p != '"') return 0;
    for (p++; *p && *p != '"'; p++) {
        if (*p != '\\') {
            sb_add(out, p, 1);
            continue;
        }
        p++;
        switch (*p) {
        case 'n': sb_adds(out, "\n"); break;
        case 't': sb_adds(out, "\t"); break;
        case 'r': sb_adds(out, "\r"); break;
        case 'b': sb_adds(out, "\b"); break;
        case 'f': sb_adds(out, "\f"); break;
        case 'u': {
            unsigned cp = 0;
            if (sscanf(p + 1, "%4x", &cp) != 1) return 0;
            p += 4;
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                unsigned lo = 0;
                if (sscanf(p + 3, "%4x", &lo) == 1 && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                }
            }
            char u[4];
            int n;
            if (cp < 0x80) { u[0] = (char)cp; n = 1; }
            else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 0x3F)); n = 2; }
            else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[2] = (char)(0x80 | (cp & 0x3F)); n = 3; }
            else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); u[3] = (char)(0x80 | (cp & 0x3F)); n = 4; }
            sb_add(out, u, (size_t)n);
            break;
        }
        case 0: return 0;
        default: sb_add(out, p, 1);
        }
    }
    if (!out->p) sb_add(out, "", 0);
    return *p == '"';
}

/* Value of `key` in the object at p (top level only), or NULL. */
static const char *jget(const char *p, const char *key) {
    p = jws(p);
    if (!p || *p != '{') return NULL;
    p = jws(p + 1);
    size_t klen = strlen(key);
    while (*p == '"') {
        const char *kend = jskip_string(p);
        if (!kend) return NULL;
        int match = (size_t)(kend - p - 2) == klen && strncmp(p + 1, key, klen) == 0;
        p = jws(kend);
        if (*p != ':') return NULL;
        p = jws(p + 1);
        if (match) return p;
        p = jskip(p);
        if (!p) return NULL;
        p = jws(p);
        if (*p == ',') p = jws(p + 1);
        else break;
    }
    return NULL;
}

static int jget_str(const char *obj, const char *key, sb *out) {
    const char *v = jget(obj, key);
    return v ? jstr(v, out) : 0;
}

static int jget_bool(const char *obj, const char *key, int def) {
    const char *v = jget(obj, key);
    if (!v) return def;
    if (!strncmp(v, "true", 4)) return 1;
    if (!strncmp(v, "false", 5)) return 0;
    return def;
}

/* Text of a message's content: a string, or the text parts of an array. */
static void content_text(const char *msg, sb *out) {
    const char *c = jget(msg, "content");
    if (!c) return;
    if (*c == '"') {
        jstr(c, out);
        return;
    }
    if (*c != '[') return;
    const char *p = jws(c + 1);
    while (p && *p && *p != ']') {
        if (*p == '{') {
            sb t = {0};
            if (jget_str(p, "text", &t)) {
                if (out->n) sb_adds(out, " ");
                sb_adds(out, sb_str(&t));
            }
            sb_free(&t);
        }
        p = jws(jskip(p));
        if (p && *p == ',') p = jws(p + 1);
        else break;
    }
}

/* Last user message of a "messages" array, and the words of all messages. */
static int last_user_text(const char *body, sb *out, int *prompt_words) {
    const char *arr = jget(body, "messages");
    if (!arr || *arr != '[') return 0;
    const char *p = jws(arr + 1);
    int count = 0;
    *prompt_words = 0;
    while (p && *p && *p != ']') {
        if (*p == '{') {
            sb role = {0}, text = {0};
            jget_str(p, "role", &role);
            content_text(p, &text);
            *prompt_words += count_words(sb_str(&text));
            if (!strcmp(sb_str(&role), "user") || !out->n) {
                out->n = 0;
                sb_adds(out, sb_str(&text));
            }
            sb_free(&role);
            sb_free(&text);
            count++;
        }
        p = jws(jskip(p));
        if (p && *p == ',') p = jws(p + 1);
        else break;
    }
    if (!out->p) sb_add(out, "", 0);
    return count;
}

/* ------------------------------------------------------------------ HTTP */

struct request {
    char method[16];
    char path[2048];
    char auth[1024];
    char *body;
    size_t body_len;
    char client[64];
    int status; /* status sent, for the access log */
};

static int send_all(int fd, const char *d, size_t n) {
    while (n) {
        ssize_t w = send(fd, d, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        d += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *status_text(int s) {
    switch (s) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Payload Too Large";
    case 500: return "Internal Server Error";
    default: return "Unknown";
    }
}

static void send_response(int fd, struct request *r, int status, const char *ctype, const char *body, size_t len) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nServer: standin\r\nConnection: close\r\n\r\n",
                     status, status_text(status), ctype, len);
    r->status = status;
    send_all(fd, head, (size_t)n);
    if (strcmp(r->method, "HEAD") != 0) send_all(fd, body, len);
}

static void send_json(int fd, struct request *r, int status, const char *json) {
    send_response(fd, r, status, "application/json", json, strlen(json));
}

static void start_sse(int fd, struct request *r) {
    const char *h = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
                    "Server: standin\r\nConnection: close\r\n\r\n";
    r->status = 200;
    send_all(fd, h, strlen(h));
}

static int ci_prefix(const char *s, const char *prefix) { return strncasecmp(s, prefix, strlen(prefix)) == 0; }

/* Read one request. Returns 0 on success, an HTTP status on a bad request, -1 on a dead connection. */
static int read_request(int fd, struct request *r) {
    char *buf = malloc(MAX_HEADER + 1);
    if (!buf) return -1;
    size_t n = 0;
    char *end = NULL;
    while (!end) {
        if (n >= MAX_HEADER) {
            free(buf);
            return 413;
        }
        ssize_t k = recv(fd, buf + n, MAX_HEADER - n, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            free(buf);
            return -1;
        }
        n += (size_t)k;
        buf[n] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    *end = 0;
    size_t header_len = (size_t)(end - buf) + 4;
    char target[2048];
    if (sscanf(buf, "%15s %2047s", r->method, target) != 2) {
        free(buf);
        return 400;
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    snprintf(r->path, sizeof r->path, "%s", target);
    long clen = 0;
    int chunked = 0, expect = 0;
    for (char *line = strstr(buf, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (ci_prefix(line, "content-length:")) clen = strtol(line + 15, NULL, 10);
        else if (ci_prefix(line, "authorization:")) {
            char *v = line + 14;
            while (*v == ' ' || *v == '\t') v++;
            size_t l = strcspn(v, "\r\n");
            if (l >= sizeof r->auth) l = sizeof r->auth - 1;
            memcpy(r->auth, v, l);
            r->auth[l] = 0;
        } else if (ci_prefix(line, "transfer-encoding:") && strstr(line, "chunked"))
            chunked = 1;
        else if (ci_prefix(line, "expect:") && strstr(line, "100-continue"))
            expect = 1;
    }
    if (chunked) {
        free(buf);
        return 411;
    }
    if (clen < 0 || clen > MAX_BODY) {
        free(buf);
        return 413;
    }
    r->body = malloc((size_t)clen + 1);
    if (!r->body) {
        free(buf);
        return 413;
    }
    size_t have = n - header_len;
    if (have > (size_t)clen) have = (size_t)clen;
    memcpy(r->body, buf + header_len, have);
    free(buf);
    if (expect && have < (size_t)clen) send_all(fd, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    while (have < (size_t)clen) {
        ssize_t k = recv(fd, r->body + have, (size_t)clen - have, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        have += (size_t)k;
    }
    r->body[have] = 0;
    r->body_len = have;
    return 0;
}

typedef void (*handler_fn)(int fd, struct request *r, void *ctx);

struct listener {
    const char *host;
    int port;
    handler_fn fn;
    void *ctx;
    int fd;
};

struct conn {
    int fd;
    struct listener *l;
    char client[64];
};

static void *conn_thread(void *arg) {
    struct conn *c = arg;
    struct request r;
    memset(&r, 0, sizeof r);
    snprintf(r.client, sizeof r.client, "%s", c->client);
    struct timeval tv = {30, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = read_request(c->fd, &r);
    if (rc == 0) {
        c->l->fn(c->fd, &r, c->l->ctx);
    } else if (rc > 0) {
        snprintf(r.method, sizeof r.method, "-");
        char msg[128];
        snprintf(msg, sizeof msg, "{\"error\":\"%s\"}", status_text(rc));
        send_json(c->fd, &r, rc, msg);
    }
    if (rc >= 0)
        fprintf(stderr, "INFO:     %s - \"%s %s HTTP/1.1\" %d %s\n", r.client, r.method, r.path, r.status, status_text(r.status));
    fflush(stderr);
    shutdown(c->fd, SHUT_WR);
    close(c->fd);
    free(r.body);
    free(c);
    return NULL;
}

static void *accept_thread(void *arg) {
    struct listener *l = arg;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept(l->fd, (struct sockaddr *)&ss, &sl);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) {
                if (errno == EMFILE || errno == ENFILE) usleep(100000);
                continue;
            }
            logmsg("ERROR", "accept: %s", strerror(errno));
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->l = l;
        char addr[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
            port = ntohs(a->sin6_port);
        }
        snprintf(c->client, sizeof c->client, "%s:%d", addr, port);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&t, &attr, conn_thread, c) != 0) {
            close(fd);
            free(c);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

static int open_listener(const char *host, int port) {
    const char *h = host && *host ? host : "0.0.0.0";
    if (!strcmp(h, "localhost")) h = "127.0.0.1";
    int one = 1, fd;
    if (strchr(h, ':')) {
        struct sockaddr_in6 a6;
        memset(&a6, 0, sizeof a6);
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, h, &a6.sin6_addr) != 1) die("stand-in: cannot parse host %s (numeric addresses only)", h);
        fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&a6, sizeof a6) != 0) die("stand-in: bind [%s]:%d: %s", h, port, strerror(errno));
    } else {
        struct sockaddr_in a4;
        memset(&a4, 0, sizeof a4);
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, h, &a4.sin_addr) != 1) die("stand-in: cannot parse host %s (numeric addresses only)", h);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&a4, sizeof a4) != 0) die("stand-in: bind %s:%d: %s", h, port, strerror(errno));
    }
    if (listen(fd, 128) != 0) die("stand-in: listen: %s", strerror(errno));
    return fd;
}

/* Listen on every listener, serve until SIGTERM/SIGINT, then exit 0. */
static int run_servers(struct listener *ls, int n) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < n; i++) ls[i].fd = open_listener(ls[i].host, ls[i].port);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, accept_thread, &ls[i]) != 0) die("stand-in: pthread_create failed");
        pthread_detach(t);
        logmsg("INFO", "Uvicorn running on http://%s:%d (Press CTRL+C to quit)", ls[i].host && *ls[i].host ? ls[i].host : "0.0.0.0",
               ls[i].port);
    }
    logmsg("INFO", "Application startup complete.");
    int sig = 0;
    sigwait(&set, &sig);
    logmsg("INFO", "Shutting down (signal %d)", sig);
    for (int i = 0; i < n; i++) close(ls[i].fd);
    exit(0);
}

/* ------------------------------------------------------------------ OpenAI-shaped answers */

struct oai {
    const char *label;      /* "vLLM" or "LLaMA-Factory" */
    const char **names;     /* served model names */
    int nnames;
    const char *root;       /* the model path / id */
    const char *owned_by;
    const char *api_key;    /* NULL or "" = no check */
    int vllm_errors;        /* 1: vLLM error shapes and 404 on unknown models; 0: LLaMA-Factory (FastAPI) shapes */
    int max_model_len;
};

static void answer_text(const char *label, const char *model, const char *prompt, sb *out) {
    sb snip = {0};
    int space = 0;
    for (const char *c = prompt; *c; c++) {
        if (isspace((unsigned char)*c)) {
            space = 1;
            continue;
        }
        if (space && snip.n) sb_adds(&snip, " ");
        space = 0;
        sb_add(&snip, c, 1);
    }
    if (snip.n > 160) {
        size_t cut = 157;
        while (cut > 0 && ((unsigned char)snip.p[cut] & 0xC0) == 0x80) cut--;
        snip.n = cut;
        snip.p[cut] = 0;
        sb_adds(&snip, "...");
    }
    uint64_t h = fnv1a(model, prompt);
    sb_printf(out, "Stand-in answer from %s (%s stand-in, no model ran). You said: %s. Digest %012llx.", model, label,
              snip.n ? snip.p : "(empty)", (unsigned long long)(h & 0xFFFFFFFFFFFFULL));
    sb_free(&snip);
}

static int check_bearer(const char *auth, const char *key) {
    if (!key || !*key) return 1;
    if (!ci_prefix(auth, "bearer ")) return 0;
    const char *v = auth + 7;
    while (*v == ' ') v++;
    return strcmp(v, key) == 0;
}

static void send_unauthorized(int fd, struct request *r, struct oai *o) {
    if (o->vllm_errors) send_json(fd, r, 401, "{\"error\":\"Unauthorized\"}");
    else send_json(fd, r, 401, "{\"detail\":\"Invalid API key.\"}");
}

static void send_error(int fd, struct request *r, struct oai *o, int status, const char *type, const char *msg) {
    sb s = {0};
    if (o->vllm_errors) {
        sb_adds(&s, "{\"object\":\"error\",\"message\":");
        sb_json(&s, msg);
        sb_printf(&s, ",\"type\":\"%s\",\"param\":null,\"code\":%d}", type, status);
    } else {
        sb_adds(&s, "{\"detail\":");
        sb_json(&s, msg);
        sb_adds(&s, "}");
    }
    send_json(fd, r, status, sb_str(&s));
    sb_free(&s);
}

static void oai_models(int fd, struct request *r, struct oai *o) {
    sb s = {0};
    long now = (long)time(NULL);
    sb_adds(&s, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < o->nnames; i++) {
        if (i) sb_adds(&s, ",");
        sb_adds(&s, "{\"id\":");
        sb_json(&s, o->names[i]);
        sb_printf(&s, ",\"object\":\"model\",\"created\":%ld,\"owned_by\":", now);
        sb_json(&s, o->owned_by);
        if (o->vllm_errors) {
            sb_adds(&s, ",\"root\":");
            sb_json(&s, o->root);
            sb_printf(&s,
                      ",\"parent\":null,\"max_model_len\":%d,\"permission\":[{\"id\":\"modelperm-standin\",\"object\":\"model_permission\","
                      "\"created\":%ld,\"allow_create_engine\":false,\"allow_sampling\":true,\"allow_logprobs\":true,"
                      "\"allow_search_indices\":false,\"allow_view\":true,\"allow_fine_tuning\":false,\"organization\":\"*\","
                      "\"group\":null,\"is_blocking\":false}]",
                      o->max_model_len, now);
        }
        sb_adds(&s, ",\"standin\":true}");
    }
    sb_adds(&s, "]}");
    send_json(fd, r, 200, sb_str(&s));
    sb_free(&s);
}

/* POST /v1/chat/completions (chat=1) or /v1/completions (chat=0). */
static void oai_complete(int fd, struct request *r, struct oai *o, int chat) {
    const char *body = r->body ? r->body : "";
    const char *b = jws(body);
    if (!b || *b != '{' || !jskip(b)) {
        send_error(fd, r, o, 400, "BadRequestError", "Request body is not valid JSON");
        return;
    }
    sb model = {0};
    if (!jget_str(b, "model", &model) || !model.n) {
        model.n = 0;
        sb_adds(&model, o->names[0]);
    }
    int known = 0;
    for (int i = 0; i < o->nnames; i++)
        if (!strcmp(o->names[i], model.p)) known = 1;
    if (o->vllm_errors && !known) {
        sb m = {0};
        sb_printf(&m, "The model `%s` does not exist.", model.p);
        send_error(fd, r, o, 404, "NotFoundError", m.p);
        sb_free(&m);
        sb_free(&model);
        return;
    }
    sb prompt = {0};
    int prompt_words = 0;
    if (chat) {
        if (last_user_text(b, &prompt, &prompt_words) == 0) {
            send_error(fd, r, o, 400, "BadRequestError", "messages must be a non-empty list");
            sb_free(&model);
            sb_free(&prompt);
            return;
        }
    } else {
        if (!jget_str(b, "prompt", &prompt)) sb_adds(&prompt, "");
        prompt_words = count_words(prompt.p);
    }
    sb text = {0};
    answer_text(o->label, model.p, prompt.p, &text);
    int completion_words = count_words(text.p);
    uint64_t h = fnv1a(model.p, prompt.p);
    long now = (long)time(NULL);
    char id[64];
    snprintf(id, sizeof id, "%s-standin%016llx", chat ? "chatcmpl" : "cmpl", (unsigned long long)h);
    int stream = jget_bool(b, "stream", 0);
    sb s = {0};
    if (stream) {
        start_sse(fd, r);
        const char *obj = chat ? "chat.completion.chunk" : "text_completion";
        const char *p = text.p;
        int first = 1;
        while (*p || first) {
            const char *q = p;
            while (*q && !isspace((unsigned char)*q)) q++;
            while (*q && isspace((unsigned char)*q)) q++;
            char *piece = strndup(p, (size_t)(q - p));
            s.n = 0;
            sb_printf(&s, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", id, obj, now);
            sb_json(&s, model.p);
            if (chat) {
                sb_adds(&s, ",\"choices\":[{\"index\":0,\"delta\":{");
                if (first) sb_adds(&s, "\"role\":\"assistant\",");
                sb_adds(&s, "\"content\":");
                sb_json(&s, first ? "" : piece);
                sb_adds(&s, "},\"logprobs\":null,\"finish_reason\":null}]}\n\n");
            } else {
                sb_adds(&s, ",\"choices\":[{\"index\":0,\"text\":");
                sb_json(&s, piece);
                sb_adds(&s, ",\"logprobs\":null,\"finish_reason\":null}]}\n\n");
            }
            free(piece);
            if (send_all(fd, s.p, s.n) < 0) break;
            if (first && chat) {
                first = 0;
                continue;
            }
            first = 0;
            p = q;
        }
        s.n = 0;
        sb_printf(&s, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", id, obj, now);
        sb_json(&s, model.p);
        if (chat) sb_adds(&s, ",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},\"logprobs\":null,\"finish_reason\":\"stop\"}]");
        else sb_adds(&s, ",\"choices\":[{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"stop\"}]");
        sb_printf(&s, ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d}}\n\ndata: [DONE]\n\n", prompt_words,
                  completion_words, prompt_words + completion_words);
        send_all(fd, s.p, s.n);
    } else {
        sb_printf(&s, "{\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":", id, chat ? "chat.completion" : "text_completion", now);
        sb_json(&s, model.p);
        if (chat) {
            sb_adds(&s, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
            sb_json(&s, text.p);
            sb_adds(&s, ",\"tool_calls\":[]},\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}]");
        } else {
            sb_adds(&s, ",\"choices\":[{\"index\":0,\"text\":");
            sb_json(&s, text.p);
            sb_adds(&s, ",\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null}]");
        }
        sb_printf(&s, ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d},\"standin\":true}", prompt_words,
                  completion_words, prompt_words + completion_words);
        send_json(fd, r, 200, s.p);
    }
    sb_free(&s);
    sb_free(&text);
    sb_free(&prompt);
    sb_free(&model);
}

/* ------------------------------------------------------------------ vLLM personality */

static int oai_route(int fd, struct request *r, struct oai *o) {
    int is_get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    int is_post = !strcmp(r->method, "POST");
    if (!strcmp(r->path, "/v1/models") && is_get) {
        if (!check_bearer(r->auth, o->api_key)) return send_unauthorized(fd, r, o), 1;
        oai_models(fd, r, o);
        return 1;
    }
    if (!strcmp(r->path, "/v1/chat/completions") && is_post) {
        if (!check_bearer(r->auth, o->api_key)) return send_unauthorized(fd, r, o), 1;
        oai_complete(fd, r, o, 1);
        return 1;
    }
    if (!strcmp(r->path, "/v1/completions") && is_post && o->vllm_errors) {
        if (!check_bearer(r->auth, o->api_key)) return send_unauthorized(fd, r, o), 1;
        oai_complete(fd, r, o, 0);
        return 1;
    }
    return 0;
}

static void vllm_handler(int fd, struct request *r, void *ctx) {
    struct oai *o = ctx;
    int is_get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    if (is_get && !strcmp(r->path, "/health")) return send_response(fd, r, 200, "application/json", "", 0);
    if (is_get && !strcmp(r->path, "/ping")) return send_json(fd, r, 200, "{}");
    if (is_get && !strcmp(r->path, "/version")) {
        sb s = {0};
        sb_adds(&s, "{\"version\":");
        sb_json(&s, g_version);
        sb_adds(&s, ",\"standin\":true}");
        send_json(fd, r, 200, s.p);
        sb_free(&s);
        return;
    }
    if (is_get && !strcmp(r->path, "/metrics")) {
        sb s = {0};
        sb_adds(&s, "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
                    "# TYPE vllm:num_requests_running gauge\n");
        sb_adds(&s, "vllm:num_requests_running{model_name=");
        sb_json(&s, o->names[0]);
        sb_adds(&s, "} 0.0\n# stand-in: no model runs here\n");
        send_response(fd, r, 200, "text/plain; version=0.0.4; charset=utf-8", s.p, s.n);
        sb_free(&s);
        return;
    }
    /* vLLM guards every /v1, /v2 and /inference path with the API key, known route or not. */
    if ((!strncmp(r->path, "/v1", 3) || !strncmp(r->path, "/v2", 3) || !strncmp(r->path, "/inference", 10)) &&
        !check_bearer(r->auth, o->api_key))
        return send_unauthorized(fd, r, o);
    if (oai_route(fd, r, o)) return;
    send_json(fd, r, 404, "{\"detail\":\"Not Found\"}");
}

static const char *BOOL_FLAGS[] = {"--enforce-eager", "--trust-remote-code", "--disable-log-requests", "--disable-log-stats",
                                   "--enable-prefix-caching", "--no-enable-prefix-caching", "--enable-chunked-prefill",
                                   "--no-enable-chunked-prefill", "--enable-auto-tool-choice", "--disable-frontend-multiprocessing",
                                   "--enable-lora", "--disable-fastapi-docs", "--enable-log-requests", "--enable-request-id-headers",
                                   "--disable-custom-all-reduce", "--enable-prompt-tokens-details", "--headless", "--skip-tokenizer-init",
                                   "--disable-uvicorn-access-log", "--enable-server-load-tracking", "--enable-force-include-usage",
                                   "--enable-tokenizer-info-endpoint", "--enable-expert-parallel", "--async-scheduling", NULL};

static int is_bool_flag(const char *f) {
    for (int i = 0; BOOL_FLAGS[i]; i++)
        if (!strcmp(f, BOOL_FLAGS[i])) return 1;
    return 0;
}

/* The two entrypoints of the vllm/vllm-openai image (components/upstream.py, vllm.entrypoint):
 * `vllm serve [model_tag] ...` serves a positional model; `python3 -m vllm.entrypoints.openai.api_server`
 * (the entrypoint of the pinned v0.11.0 image) accepts a positional too but ignores it and serves
 * --model or the default model (vllm-project/vllm#32292), which is what this stand-in then reports
 * as the model's `root` in /v1/models. */
static int vllm_main_as(int argc, char **argv, int api_server);
static int vllm_main(int argc, char **argv) { return vllm_main_as(argc, argv, 0); }
static int python3_main(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[1], "-m") && !strcmp(argv[2], "vllm.entrypoints.openai.api_server"))
        return vllm_main_as(argc - 2, argv + 2, 1);
    fprintf(stderr, "python3 (stand-in): only `-m vllm.entrypoints.openai.api_server` is provided\n");
    return 2;
}
static int vllm_main_as(int argc, char **argv, int api_server) {
    int i = 1;
    if (i < argc && (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-v"))) {
        printf("%s\n", g_version);
        return 0;
    }
    for (int j = 1; j < argc; j++)
        if (!strcmp(argv[j], "--version")) {
            printf("%s\n", g_version);
            return 0;
        }
    if (api_server) { /* no subcommand */
    } else if (i < argc && !strcmp(argv[i], "serve")) i++;
    else if (i < argc && argv[i][0] != '-') {
        fprintf(stderr, "vllm (stand-in): unsupported command '%s' (only `serve` is provided)\n", argv[i]);
        return 2;
    }
    const char *model = NULL, *model_tag = NULL, *host = "0.0.0.0", *key = getenv("VLLM_API_KEY");
    int port = 8000, max_len = 4096;
    static const char *names[32];
    int nnames = 0;
    for (; i < argc; i++) {
        char *a = argv[i];
        char flag[128];
        const char *val = NULL;
        if (!strncmp(a, "--", 2)) {
            char *eq = strchr(a, '=');
            if (eq) {
                snprintf(flag, sizeof flag, "%.*s", (int)(eq - a), a);
                val = eq + 1;
            } else
                snprintf(flag, sizeof flag, "%s", a);
#define TAKE() (val ? val : (i + 1 < argc ? argv[++i] : (die("vllm (stand-in): %s needs a value", flag), "")))
            if (!strcmp(flag, "--model")) model = TAKE();
            else if (!strcmp(flag, "--host")) host = TAKE();
            else if (!strcmp(flag, "--port")) port = atoi(TAKE());
            else if (!strcmp(flag, "--api-key")) key = TAKE();
            else if (!strcmp(flag, "--max-model-len")) max_len = atoi(TAKE());
            else if (!strcmp(flag, "--served-model-name")) {
                if (val) {
                    if (nnames < 31) names[nnames++] = val;
                } else
                    while (i + 1 < argc && argv[i + 1][0] != '-')
                        if (nnames < 31) names[nnames++] = argv[++i];
                        else i++;
            } else if (!strcmp(flag, "--help")) {
                printf("usage: vllm serve [model_tag] [options]  (stand-in: --model --host --port --api-key --served-model-name "
                       "--max-model-len; other flags are accepted and ignored)\n");
                return 0;
            } else if (!val && !is_bool_flag(flag) && i + 1 < argc && argv[i + 1][0] != '-')
                i++; /* an ignored flag with a value */
#undef TAKE
        } else if (!model_tag)
            model_tag = a;
        else
            fprintf(stderr, "vllm (stand-in): ignoring extra argument '%s'\n", a);
    }
    if (!model && model_tag && !api_server) model = model_tag;
    if (!model) model = "Qwen/Qwen3-0.6B"; /* vLLM's default model (vllm-project/vllm#32292) */
    if (!nnames) names[nnames++] = model;
    if (port <= 0 || port > 65535) die("vllm (stand-in): bad --port");
    static struct oai o;
    o.label = "vLLM";
    o.names = names;
    o.nnames = nnames;
    o.root = model;
    o.owned_by = "vllm";
    o.api_key = key;
    o.vllm_errors = 1;
    o.max_model_len = max_len;
    logmsg("WARNING", "STAND-IN vLLM OpenAI server %s for tests: no model is loaded and answers are canned.", g_version);
    logmsg("INFO", "vLLM API server version %s (stand-in)", g_version);
    logmsg("INFO", "model=%s served_model_name=%s api_key=%s", model, names[0], key && *key ? "set" : "none");
    static struct listener l;
    l.host = host;
    l.port = port;
    l.fn = vllm_handler;
    l.ctx = &o;
    return run_servers(&l, 1);
}

/* ------------------------------------------------------------------ LLaMA-Factory personality */

static const char *WEBUI_HTML =
    "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>LLaMA Board (stand-in)</title></head>\n"
    "<body><h1>LLaMA-Factory stand-in</h1>\n<p>This is the LLaMA Board web UI <b>stand-in</b> used by the platform's tests. "
    "No model can be trained or served from here.</p>\n<p>Version: %s</p>\n</body></html>\n";

static void webui_handler(int fd, struct request *r, void *ctx) {
    (void)ctx;
    int is_get = !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
    if (is_get && (!strcmp(r->path, "/") || !strcmp(r->path, "/index.html"))) {
        sb s = {0};
        sb_printf(&s, WEBUI_HTML, g_version);
        send_response(fd, r, 200, "text/html; charset=utf-8", s.p, s.n);
        sb_free(&s);
        return;
    }
    if (is_get && !strcmp(r->path, "/config")) {
        sb s = {0};
        sb_adds(&s, "{\"version\":");
        sb_json(&s, g_version);
        sb_adds(&s, ",\"mode\":\"blocks\",\"title\":\"LLaMA Board\",\"standin\":true}");
        send_json(fd, r, 200, s.p);
        sb_free(&s);
        return;
    }
    send_json(fd, r, 404, "{\"detail\":\"Not Found\"}");
}

static void lf_api_handler(int fd, struct request *r, void *ctx) {
    struct oai *o = ctx;
    if (oai_route(fd, r, o)) return;
    send_json(fd, r, 404, "{\"detail\":\"Not Found\"}");
}

/* --- minimal YAML (flat `key: value`) + `key=value` overrides */

#define MAXKV 256
struct kv {
    char key[128];
    char val[1024];
};
static struct kv g_cfg[MAXKV];
static int g_ncfg;

static void cfg_set(const char *k, const char *v) {
    for (int i = 0; i < g_ncfg; i++)
        if (!strcmp(g_cfg[i].key, k)) {
            snprintf(g_cfg[i].val, sizeof g_cfg[i].val, "%s", v);
            return;
        }
    if (g_ncfg >= MAXKV) return;
    snprintf(g_cfg[g_ncfg].key, sizeof g_cfg[g_ncfg].key, "%s", k);
    snprintf(g_cfg[g_ncfg].val, sizeof g_cfg[g_ncfg].val, "%s", v);
    g_ncfg++;
}

static const char *cfg(const char *k) {
    for (int i = 0; i < g_ncfg; i++)
        if (!strcmp(g_cfg[i].key, k)) return g_cfg[i].val[0] ? g_cfg[i].val : NULL;
    return NULL;
}
static double cfg_num(const char *k, double def) {
    const char *v = cfg(k);
    return v ? atof(v) : def;
}
static int cfg_true(const char *k) {
    const char *v = cfg(k);
    return v && (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes"));
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    return s;
}

static char *unquote(char *v) {
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
        v[n - 1] = 0;
        return v + 1;
    }
    return v;
}

static int load_yaml(const char *path) {
    char *text = read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "[ERROR] cannot open config %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (isspace((unsigned char)line[0]) || line[0] == '#' || line[0] == '-') continue; /* nested / comments / lists */
        char *colon = strchr(line, ':');
        if (!colon) continue;
        *colon = 0;
        char *key = trim(line), *val = trim(colon + 1);
        if (*val != '"' && *val != '\'') { /* strip an inline comment */
            char *h = strstr(val, " #");
            if (h) *h = 0;
            val = trim(val);
        } else {
            char q = *val;
            char *end = strchr(val + 1, q);
            if (end) end[1] = 0;
        }
        cfg_set(key, unquote(val));
    }
    free(text);
    return 0;
}

static int load_config(int argc, char **argv, int first) {
    if (first >= argc) {
        fprintf(stderr, "[ERROR] usage: llamafactory-cli %s CONFIG.yaml [key=value ...]\n", argv[first - 1]);
        return -1;
    }
    const char *path = argv[first];
    size_t n = strlen(path);
    if (n > 5 && (!strcmp(path + n - 5, ".yaml") || !strcmp(path + n - 4, ".yml") || !strcmp(path + n - 5, ".json"))) {
        if (!strcmp(path + n - 5, ".json")) {
            fprintf(stderr, "[ERROR] stand-in reads YAML configs only\n");
            return -1;
        }
        if (load_yaml(path) != 0) return -1;
        first++;
    }
    for (int i = first; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) continue;
        char k[128];
        snprintf(k, sizeof k, "%.*s", (int)(eq - argv[i]), argv[i]);
        cfg_set(k, eq + 1);
    }
    return 0;
}

/* Number of records in a dataset file: elements of a JSON array, or lines of JSONL. */
static long count_records(const char *path) {
    size_t len = 0;
    char *text = read_file(path, &len);
    if (!text) return -1;
    long n = 0;
    const char *p = jws(text);
    if (*p == '[') {
        p = jws(p + 1);
        while (p && *p && *p != ']') {
            p = jskip(p);
            n++;
            p = jws(p);
            if (p && *p == ',') p = jws(p + 1);
            else break;
        }
    } else {
        int blank = 1;
        for (const char *c = text; *c; c++) {
            if (*c == '\n') {
                if (!blank) n++;
                blank = 1;
            } else if (!isspace((unsigned char)*c))
                blank = 0;
        }
        if (!blank) n++;
    }
    free(text);
    return n;
}

/* Check every dataset in `dataset` against <dataset_dir>/dataset_info.json; returns the records in all, or -1. */
static long dataset_records(void) {
    const char *datasets = cfg("dataset");
    if (!datasets) return 0;
    const char *dir = cfg("dataset_dir") ? cfg("dataset_dir") : "data";
    char info_path[4096];
    snprintf(info_path, sizeof info_path, "%s/dataset_info.json", dir);
    char *info = read_file(info_path, NULL);
    if (!info) {
        fprintf(stderr, "ValueError: Cannot open %s due to [Errno 2] No such file or directory: '%s'.\n", info_path, info_path);
        return -1;
    }
    long total = 0;
    long max_samples = (long)cfg_num("max_samples", 0);
    char list[1024];
    snprintf(list, sizeof list, "%s", datasets);
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        name = trim(name);
        const char *entry = jget(info, name);
        if (!entry) {
            fprintf(stderr, "ValueError: Undefined dataset %s in dataset_info.json.\n", name);
            free(info);
            return -1;
        }
        sb file = {0};
        long n = 100; /* hub / remote datasets: a nominal size */
        if (jget_str(entry, "file_name", &file)) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, file.p);
            if (!exists(path)) {
                fprintf(stderr, "ValueError: File %s not found.\n", path);
                sb_free(&file);
                free(info);
                return -1;
            }
            n = is_dir(path) ? 100 : count_records(path);
        }
        sb_free(&file);
        if (max_samples > 0 && n > max_samples) n = max_samples;
        printf("[INFO|loader] Loading dataset %s... (%ld examples, stand-in)\n", name, n);
        total += n;
    }
    free(info);
    return total;
}

static void hms(long s, char *out, size_t cap) { snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60); }

/* A tiny but valid safetensors file: 8-byte little-endian header size, JSON header, F32 data. */
static void write_safetensors(const char *dir, const char *file, const char *tensor, int rows, int cols, const char *meta_kind) {
    sb hdr = {0};
    int count = rows * cols;
    sb_printf(&hdr, "{\"__metadata__\":{\"format\":\"pt\",\"standin\":\"%s\"},\"%s\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%d]}}",
              meta_kind, tensor, rows, cols, count * 4);
    while (hdr.n % 8) sb_adds(&hdr, " ");
    sb out = {0};
    unsigned char len8[8];
    uint64_t hl = hdr.n;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    sb_add(&out, (const char *)len8, 8);
    sb_add(&out, hdr.p, hdr.n);
    for (int i = 0; i < count; i++) {
        float f = (float)((i % 7) - 3) / 64.0f;
        unsigned char b[4];
        memcpy(b, &f, 4);
        sb_add(&out, (const char *)b, 4);
    }
    write_file(dir, file, out.p, out.n);
    sb_free(&hdr);
    sb_free(&out);
}

static int ensure_dir(const char *d) {
    if (mkdir_p(d) != 0) {
        fprintf(stderr, "[ERROR] cannot create %s: %s\n", d, strerror(errno));
        return -1;
    }
    return 0;
}

static int dir_has_entries(const char *d) {
    DIR *dir = opendir(d);
    if (!dir) return 0;
    struct dirent *e;
    int n = 0;
    while ((e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dir);
    return n > 0;
}

static int lf_train(int argc, char **argv, int first) {
    if (load_config(argc, argv, first) != 0) return 1;
    const char *out = cfg("output_dir");
    const char *model = cfg("model_name_or_path");
    if (!model) {
        fprintf(stderr, "ValueError: Please provide `model_name_or_path`.\n");
        return 1;
    }
    if (!out) {
        fprintf(stderr, "ValueError: Please provide `output_dir`.\n");
        return 1;
    }
    if (dir_has_entries(out) && !cfg_true("overwrite_output_dir") && !cfg_true("resume_from_checkpoint")) {
        fprintf(stderr, "ValueError: Output directory already exists and is not empty. Please set `overwrite_output_dir`.\n");
        return 1;
    }
    long records = dataset_records();
    if (records < 0) return 1;
    if (!cfg("dataset")) {
        fprintf(stderr, "ValueError: Please specify `dataset` for training.\n");
        return 1;
    }
    double epochs = cfg_num("num_train_epochs", 3.0);
    double lr0 = cfg_num("learning_rate", 5e-5);
    long batch = (long)cfg_num("per_device_train_batch_size", 8);
    long accum = (long)cfg_num("gradient_accumulation_steps", 1);
    long logging = (long)cfg_num("logging_steps", 10);
    long max_steps = (long)cfg_num("max_steps", -1);
    if (batch < 1) batch = 1;
    if (accum < 1) accum = 1;
    if (logging < 1) logging = 1;
    long per_epoch = (records + batch * accum - 1) / (batch * accum);
    if (per_epoch < 1) per_epoch = 1;
    long total = max_steps > 0 ? max_steps : (long)ceil(per_epoch * epochs);
    if (total < 1) total = 1;
    if (total > 100000) total = 100000;
    if (ensure_dir(out) != 0) return 1;
    const char *ft = cfg("finetuning_type") ? cfg("finetuning_type") : "lora";
    long delay_ms = getenv("STANDIN_STEP_DELAY_MS") ? atol(getenv("STANDIN_STEP_DELAY_MS")) : 0;

    printf("[WARNING|standin] LLaMA-Factory %s STAND-IN: no model is loaded and no training runs.\n", g_version);
    printf("[INFO|trainer.py] ***** Running training *****\n");
    printf("[INFO|trainer.py]   Num examples = %ld\n[INFO|trainer.py]   Num Epochs = %g\n", records, epochs);
    printf("[INFO|trainer.py]   Instantaneous batch size per device = %ld\n", batch);
    printf("[INFO|trainer.py]   Gradient Accumulation steps = %ld\n[INFO|trainer.py]   Total optimization steps = %ld\n", accum, total);
    fflush(stdout);

    char logpath[4096];
    snprintf(logpath, sizeof logpath, "%s/trainer_log.jsonl", out);
    FILE *lf = fopen(logpath, "w");
    if (!lf) {
        fprintf(stderr, "[ERROR] cannot write %s: %s\n", logpath, strerror(errno));
        return 1;
    }
    double loss_sum = 0, last_loss = 0;
    long secs_per_step = 2;
    for (long step = 1; step <= total; step++) {
        double frac = (double)step / (double)total;
        double loss = 0.3 + 1.9 * exp(-3.0 * frac) + 0.02 * (double)((step * 7919) % 13) / 13.0;
        loss_sum += loss;
        last_loss = loss;
        if (delay_ms > 0) usleep((useconds_t)(delay_ms * 1000));
        if (step % logging != 0 && step != total) continue;
        double lr = lr0 * 0.5 * (1.0 + cos(M_PI * frac));
        double epoch = epochs * frac;
        char el[32], rem[32];
        hms(step * secs_per_step, el, sizeof el);
        hms((total - step) * secs_per_step, rem, sizeof rem);
        fprintf(lf,
                "{\"current_steps\": %ld, \"total_steps\": %ld, \"loss\": %.4f, \"lr\": %.6g, \"epoch\": %.2f, \"percentage\": %.2f, "
                "\"elapsed_time\": \"%s\", \"remaining_time\": \"%s\"}\n",
                step, total, loss, lr, epoch, 100.0 * frac, el, rem);
        fflush(lf);
        printf("{'loss': %.4f, 'grad_norm': %.4f, 'learning_rate': %.6g, 'epoch': %.2f}\n", loss, 0.5 + 0.3 * (1 - frac), lr, epoch);
        printf("[INFO|standin] {\"current_steps\": %ld, \"total_steps\": %ld, \"loss\": %.4f, \"percentage\": %.2f}\n", step, total, loss,
               100.0 * frac);
        fflush(stdout);
    }
    fclose(lf);
    double avg = loss_sum / (double)total;
    sb s = {0};
    if (!strcmp(ft, "lora")) {
        sb_adds(&s, "{\n  \"base_model_name_or_path\": ");
        sb_json(&s, model);
        sb_printf(&s, ",\n  \"peft_type\": \"LORA\",\n  \"task_type\": \"CAUSAL_LM\",\n  \"r\": %d,\n  \"lora_alpha\": %d,\n", (int)cfg_num("lora_rank", 8),
                  (int)cfg_num("lora_alpha", 2 * cfg_num("lora_rank", 8)));
        sb_printf(&s, "  \"lora_dropout\": %g,\n  \"target_modules\": [\"q_proj\", \"v_proj\"],\n  \"inference_mode\": true,\n  \"standin\": true\n}\n",
                  cfg_num("lora_dropout", 0.0));
        write_text(out, "adapter_config.json", s.p);
        write_safetensors(out, "adapter_model.safetensors", "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", 4, 8,
                          "llamafactory adapter");
    } else {
        sb_adds(&s, "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"_name_or_path\": ");
        sb_json(&s, model);
        sb_adds(&s, ", \"standin\": true}\n");
        write_text(out, "config.json", s.p);
        write_safetensors(out, "model.safetensors", "model.embed_tokens.weight", 8, 8, "llamafactory full");
    }
    s.n = 0;
    sb_printf(&s,
              "{\n    \"epoch\": %.1f,\n    \"total_flos\": 0,\n    \"train_loss\": %.6f,\n    \"train_runtime\": %ld.0,\n"
              "    \"train_samples_per_second\": 0.0,\n    \"train_steps_per_second\": 0.0,\n    \"standin\": true\n}\n",
              epochs, avg, total * secs_per_step);
    write_text(out, "train_results.json", s.p);
    write_text(out, "all_results.json", s.p);
    s.n = 0;
    sb_printf(&s, "{\"global_step\": %ld, \"epoch\": %.1f, \"max_steps\": %ld, \"logging_steps\": %ld, \"final_loss\": %.4f, \"standin\": true}\n", total,
              epochs, total, logging, last_loss);
    write_text(out, "trainer_state.json", s.p);
    write_text(out, "README.md", "# Stand-in adapter\n\nWritten by the LLaMA-Factory stand-in used in tests. Not a trained model.\n");
    sb_free(&s);
    printf("***** train metrics *****\n  epoch                    = %g\n  train_loss               = %.4f\n", epochs, avg);
    printf("[INFO|trainer.py] Saving model checkpoint to %s\n", out);
    fflush(stdout);
    return 0;
}

struct tmpl {
    const char *name;
    const char *template_;
    const char *system;
    const char *stops[3];
};

static const char *CHATML =
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ range .Messages }}{{ if eq .Role \"user\" }}<|im_start|>user\n"
    "{{ .Content }}<|im_end|>\n<|im_start|>assistant\n{{ else if eq .Role \"assistant\" }}{{ .Content }}<|im_end|>\n{{ end }}{{ end }}";
static const char *LLAMA3 =
    "<|begin_of_text|>{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}{{ range .Messages }}"
    "{{ if eq .Role \"user\" }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Content }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    "{{ else if eq .Role \"assistant\" }}{{ .Content }}<|eot_id|>{{ end }}{{ end }}";
static const char *DEFAULT_T =
    "{{ if .System }}System: {{ .System }}\n{{ end }}{{ range .Messages }}{{ if eq .Role \"user\" }}Human: {{ .Content }}\nAssistant:"
    "{{ else if eq .Role \"assistant\" }}{{ .Content }}</s>\n{{ end }}{{ end }}";

static struct tmpl pick_template(const char *name) {
    struct tmpl t = {"default", DEFAULT_T, NULL, {"</s>", NULL, NULL}};
    if (!name) return t;
    if (!strcmp(name, "qwen")) {
        struct tmpl q = {"qwen", CHATML, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.", {"<|im_end|>", NULL, NULL}};
        return q;
    }
    if (!strncmp(name, "qwen", 4) || !strcmp(name, "chatml") || !strcmp(name, "chatml_de")) {
        struct tmpl q = {name, CHATML, NULL, {"<|im_end|>", NULL, NULL}};
        return q;
    }
    if (!strncmp(name, "llama3", 6)) {
        struct tmpl l = {name, LLAMA3, NULL, {"<|eom_id|>", "<|eot_id|>", NULL}};
        return l;
    }
    return t;
}

static int lf_export(int argc, char **argv, int first) {
    if (load_config(argc, argv, first) != 0) return 1;
    const char *out = cfg("export_dir");
    const char *model = cfg("model_name_or_path");
    const char *adapters = cfg("adapter_name_or_path");
    if (!model) {
        fprintf(stderr, "ValueError: Please provide `model_name_or_path`.\n");
        return 1;
    }
    if (!out) {
        fprintf(stderr, "ValueError: Please specify `export_dir` to save model.\n");
        return 1;
    }
    if (adapters) {
        char list[1024];
        snprintf(list, sizeof list, "%s", adapters);
        for (char *a = strtok(list, ","); a; a = strtok(NULL, ",")) {
            a = trim(a);
            char p[4096];
            snprintf(p, sizeof p, "%s/adapter_config.json", a);
            int local = a[0] == '/' || a[0] == '.' || exists(a);
            if (local && !exists(p)) {
                fprintf(stderr, "ValueError: Can't find 'adapter_config.json' at '%s'\n", a);
                return 1;
            }
        }
    }
    if (ensure_dir(out) != 0) return 1;
    const char *lower_src = model;
    char lower[512];
    size_t k;
    for (k = 0; lower_src[k] && k < sizeof lower - 1; k++) lower[k] = (char)tolower((unsigned char)lower_src[k]);
    lower[k] = 0;
    const char *mtype = strstr(lower, "qwen3") ? "qwen3" : strstr(lower, "qwen") ? "qwen2" : strstr(lower, "gemma") ? "gemma" : "llama";
    const char *arch = !strcmp(mtype, "qwen3") ? "Qwen3ForCausalLM" : !strcmp(mtype, "qwen2") ? "Qwen2ForCausalLM"
                       : !strcmp(mtype, "gemma") ? "GemmaForCausalLM" : "LlamaForCausalLM";
    printf("[WARNING|standin] LLaMA-Factory %s STAND-IN: no weights are merged; writing small placeholder files.\n", g_version);
    sb s = {0};
    sb_printf(&s, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"_name_or_path\": ", arch, mtype);
    sb_json(&s, model);
    sb_adds(&s, ",\n  \"standin_adapters\": ");
    sb_json(&s, adapters ? adapters : "");
    sb_adds(&s, ",\n  \"hidden_size\": 8,\n  \"num_hidden_layers\": 1,\n  \"vocab_size\": 8,\n  \"torch_dtype\": \"bfloat16\",\n  \"standin\": true\n}\n");
    write_text(out, "config.json", s.p);
    write_text(out, "generation_config.json", "{\"do_sample\": true, \"standin\": true}\n");
    write_text(out, "tokenizer_config.json", "{\"tokenizer_class\": \"PreTrainedTokenizerFast\", \"model_max_length\": 4096, \"standin\": true}\n");
    write_text(out, "special_tokens_map.json", "{\"eos_token\": \"</s>\", \"pad_token\": \"</s>\"}\n");
    write_text(out, "tokenizer.json", "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}, \"standin\": true}\n");
    write_safetensors(out, "model.safetensors", "model.embed_tokens.weight", 8, 8, "llamafactory export");
    struct tmpl t = pick_template(cfg("template"));
    s.n = 0;
    sb_adds(&s, "# ollama modelfile auto-generated by llamafactory\n\nFROM .\n\nTEMPLATE \"\"\"");
    sb_adds(&s, t.template_);
    sb_adds(&s, "\"\"\"\n\n");
    if (t.system) sb_printf(&s, "SYSTEM \"\"\"%s\"\"\"\n\n", t.system);
    for (int i = 0; i < 3 && t.stops[i]; i++) sb_printf(&s, "PARAMETER stop \"%s\"\n", t.stops[i]);
    sb_adds(&s, "PARAMETER num_ctx 4096\n");
    write_text(out, "Modelfile", s.p);
    sb_free(&s);
    printf("[INFO|tuner.py] Model weights saved in %s (stand-in placeholders)\n", out);
    printf("[INFO|tuner.py] Ollama modelfile saved in %s/Modelfile\n", out);
    fflush(stdout);
    return 0;
}

static void lf_banner(void) {
    char line[128];
    snprintf(line, sizeof line, "Welcome to LLaMA Factory, version %s (stand-in)", g_version);
    const char *page = "Project page: https://github.com/hiyouga/LLaMA-Factory";
    int w = (int)strlen(line) > (int)strlen(page) ? (int)strlen(line) : (int)strlen(page);
    for (int i = 0; i < w + 4; i++) putchar('-');
    printf("\n| %-*s |\n| %-*s |\n| %-*s |\n", w, line, w, "", w, page);
    for (int i = 0; i < w + 4; i++) putchar('-');
    putchar('\n');
}

static const char *env_or(const char *k, const char *def) {
    const char *v = getenv(k);
    return v && *v ? v : def;
}

static int lf_serve(int webui, int api, int argc, char **argv, int first) {
    static struct listener ls[2];
    static struct oai o;
    static const char *names[1];
    int n = 0;
    if (api && first < argc && load_config(argc, argv, first) != 0) return 1;
    if (webui) {
        ls[n].host = env_or("GRADIO_SERVER_NAME", "0.0.0.0");
        ls[n].port = atoi(env_or("GRADIO_SERVER_PORT", "7860"));
        ls[n].fn = webui_handler;
        ls[n].ctx = NULL;
        logmsg("INFO", "LLaMA Board (stand-in) on port %d", ls[n].port);
        n++;
    }
    if (api) {
        names[0] = env_or("API_MODEL_NAME", "gpt-3.5-turbo");
        o.label = "LLaMA-Factory";
        o.names = names;
        o.nnames = 1;
        o.root = cfg("model_name_or_path") ? cfg("model_name_or_path") : names[0];
        o.owned_by = "owner";
        o.api_key = getenv("API_KEY");
        o.vllm_errors = 0;
        o.max_model_len = 4096;
        ls[n].host = env_or("API_HOST", "0.0.0.0");
        ls[n].port = atoi(env_or("API_PORT", "8000"));
        ls[n].fn = lf_api_handler;
        ls[n].ctx = &o;
        logmsg("INFO", "LLaMA-Factory API (stand-in) on port %d, api key %s; visit http://localhost:%d/docs for API document.", ls[n].port,
               o.api_key && *o.api_key ? "set" : "none", ls[n].port);
        n++;
    }
    logmsg("WARNING", "STAND-IN LLaMA-Factory %s for tests: no model is loaded and answers are canned.", g_version);
    return run_servers(ls, n);
}

static int lf_main(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "help";
    if (!strcmp(cmd, "version") || !strcmp(cmd, "-v") || !strcmp(cmd, "--version")) {
        lf_banner();
        return 0;
    }
    if (!strcmp(cmd, "env")) {
        printf("- `llamafactory` version: %s (stand-in)\n- Platform: Linux (static stand-in binary)\n- Python version: none\n"
               "- PyTorch version: none (stand-in)\n",
               g_version);
        return 0;
    }
    if (!strcmp(cmd, "train")) return lf_train(argc, argv, 2);
    if (!strcmp(cmd, "export")) return lf_export(argc, argv, 2);
    if (!strcmp(cmd, "webui")) return lf_serve(1, 0, argc, argv, 2);
    if (!strcmp(cmd, "api")) return lf_serve(0, 1, argc, argv, 2);
    if (!strcmp(cmd, "standin-serve")) return lf_serve(1, 1, argc, argv, 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        lf_banner();
        printf("Usage:\n"
               "    llamafactory-cli api -h: launch an OpenAI-style API server\n"
               "    llamafactory-cli export -h: merge LoRA adapters and export model\n"
               "    llamafactory-cli train -h: train models\n"
               "    llamafactory-cli webui: launch LlamaBoard\n"
               "    llamafactory-cli env: show environment info\n"
               "    llamafactory-cli version: show version info\n"
               "    llamafactory-cli standin-serve: web UI and API together (stand-in only)\n");
        return 0;
    }
    fprintf(stderr, "llamafactory-cli (stand-in): command '%s' is not provided by the stand-in\n", cmd);
    return 1;
}

/* ------------------------------------------------------------------ sleep / sh */

static double parse_seconds(const char *s) {
    if (!strcmp(s, "infinity") || !strcmp(s, "inf")) return -1;
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: break;
    }
    return v;
}

static volatile sig_atomic_t g_stop;
static void on_stop(int sig) {
    (void)sig;
    g_stop = 1;
}

static int idle_until_signal(double seconds) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    double left = seconds;
    while (!g_stop && (seconds < 0 || left > 0)) {
        double step = seconds < 0 || left > 1 ? 1 : left;
        struct timespec ts = {(time_t)step, (long)((step - (time_t)step) * 1e9)};
        nanosleep(&ts, NULL);
        left -= step;
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    return g_stop ? 143 : 0;
}

static int sleep_main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "sleep: missing operand\n");
        return 1;
    }
    double total = 0;
    for (int i = 1; i < argc; i++) {
        double v = parse_seconds(argv[i]);
        if (v < 0) return idle_until_signal(-1);
        total += v;
    }
    return idle_until_signal(total);
}

#define MAXTOK 128
enum { OP_END, OP_SEQ, OP_AND, OP_OR, OP_BG };

/* Parse one simple command from *pp into argv (malloc'd strings); returns the operator that ends it, or -1 on unsupported syntax. */
static int sh_parse(const char **pp, char **av, int *ac) {
    const char *p = *pp;
    *ac = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (!*p) {
            *pp = p;
            return OP_END;
        }
        if (*p == ';' || *p == '\n') {
            *pp = p + 1;
            return OP_SEQ;
        }
        if (p[0] == '&' && p[1] == '&') {
            *pp = p + 2;
            return OP_AND;
        }
        if (p[0] == '|' && p[1] == '|') {
            *pp = p + 2;
            return OP_OR;
        }
        if (*p == '&') {
            *pp = p + 1;
            return OP_BG;
        }
        if (*p == '|' || *p == '<' || *p == '>' || *p == '`' || *p == '(' || *p == ')') return -1;
        if (*p == '#' ) {
            while (*p && *p != '\n') p++;
            continue;
        }
        sb w = {0};
        while (*p && !strchr(" \t\n;&|<>`()", *p)) {
            if (*p == '\'') {
                const char *e = strchr(p + 1, '\'');
                if (!e) return -1;
                sb_add(&w, p + 1, (size_t)(e - p - 1));
                p = e + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1] && strchr("\"\\$`", p[1])) {
                        sb_add(&w, p + 1, 1);
                        p += 2;
                    } else if (*p == '$' && (isalpha((unsigned char)p[1]) || p[1] == '_' || p[1] == '{')) {
                        int brace = p[1] == '{';
                        const char *s = p + 1 + brace, *e = s;
                        while (isalnum((unsigned char)*e) || *e == '_') e++;
                        char name[128];
                        snprintf(name, sizeof name, "%.*s", (int)(e - s), s);
                        const char *v = getenv(name);
                        if (v) sb_adds(&w, v);
                        p = e + (brace && *e == '}');
                    } else if (*p == '$' && p[1] == '(') {
                        sb_free(&w);
                        return -1;
                    } else {
                        sb_add(&w, p, 1);
                        p++;
                    }
                }
                if (*p != '"') return -1;
                p++;
            } else if (*p == '\\' && p[1]) {
                sb_add(&w, p + 1, 1);
                p += 2;
            } else if (*p == '$' && (isalpha((unsigned char)p[1]) || p[1] == '_' || p[1] == '{')) {
                int brace = p[1] == '{';
                const char *s = p + 1 + brace, *e = s;
                while (isalnum((unsigned char)*e) || *e == '_') e++;
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)(e - s), s);
                const char *v = getenv(name);
                if (v) sb_adds(&w, v);
                p = e + (brace && *e == '}');
            } else if (*p == '$' && p[1] == '(') {
                sb_free(&w);
                return -1;
            } else {
                sb_add(&w, p, 1);
                p++;
            }
        }
        if (!w.p) sb_add(&w, "", 0);
        if (*ac < MAXTOK - 1) av[(*ac)++] = w.p;
        else sb_free(&w);
        av[*ac] = NULL;
    }
}

static int sh_run(char **av, int ac, int background, int do_exec) {
    int k = 0;
    while (k < ac && !strcmp(av[k], "exec")) {
        do_exec = 1;
        k++;
    }
    int assign_end = k;
    while (assign_end < ac && strchr(av[assign_end], '=') && (isalpha((unsigned char)av[assign_end][0]) || av[assign_end][0] == '_'))
        assign_end++;
    char **cmd = av + assign_end;
    int cn = ac - assign_end;
    if (cn == 0) { /* plain assignments set shell variables (= environment here) */
        for (int i = k; i < assign_end; i++) {
            char *eq = strchr(av[i], '=');
            *eq = 0;
            setenv(av[i], eq + 1, 1);
            *eq = '=';
        }
        return 0;
    }
    if (!strcmp(cmd[0], "true") || !strcmp(cmd[0], ":")) return 0;
    if (!strcmp(cmd[0], "false")) return 1;
    if (!strcmp(cmd[0], "exit")) exit(cn > 1 ? atoi(cmd[1]) : 0);
    if (!strcmp(cmd[0], "cd")) {
        if (chdir(cn > 1 ? cmd[1] : "/") != 0) {
            fprintf(stderr, "sh: cd: %s: %s\n", cn > 1 ? cmd[1] : "/", strerror(errno));
            return 1;
        }
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) setenv("PWD", cwd, 1);
        return 0;
    }
    if (!strcmp(cmd[0], "export")) {
        for (int i = 1; i < cn; i++) {
            char *eq = strchr(cmd[i], '=');
            if (!eq) continue;
            *eq = 0;
            setenv(cmd[i], eq + 1, 1);
            *eq = '=';
        }
        return 0;
    }
    if (!strcmp(cmd[0], "echo")) {
        for (int i = 1; i < cn; i++) printf("%s%s", i > 1 ? " " : "", cmd[i]);
        printf("\n");
        fflush(stdout);
        return 0;
    }
    if (!strcmp(cmd[0], "wait")) {
        int st = 0;
        while (wait(&st) > 0) {
        }
        return 0;
    }
    fflush(stdout);
    pid_t pid = do_exec && !background ? 0 : fork();
    if (pid < 0) {
        perror("fork");
        return 127;
    }
    if (pid == 0) {
        for (int i = k; i < assign_end; i++) putenv(strdup(av[i]));
        execvp(cmd[0], cmd);
        fprintf(stderr, "sh: %s: %s\n", cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    if (background) return 0;
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int sh_main(int argc, char **argv) {
    const char *script = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] && argv[i][1] != '-' && strchr(argv[i], 'c')) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sh: -c: option requires an argument\n");
                return 2;
            }
            script = argv[i + 1];
            break;
        }
        if (argv[i][0] != '-') {
            fprintf(stderr, "sh (stand-in): running script files is not supported (%s)\n", argv[i]);
            return 2;
        }
    }
    if (!script) return idle_until_signal(-1); /* `command: bash` in an idle container */
    const char *p = script;
    int status = 0, skip = 0;
    for (;;) {
        char *av[MAXTOK];
        int ac = 0;
        av[0] = NULL;
        int op = sh_parse(&p, av, &ac);
        if (op < 0) {
            fprintf(stderr, "sh (stand-in): unsupported syntax (pipes, redirections, subshells) in: %s\n", script);
            return 2;
        }
        if (ac > 0 && !skip) status = sh_run(av, ac, op == OP_BG, op == OP_END);
        for (int i = 0; i < ac; i++) free(av[i]);
        if (op == OP_END) break;
        skip = (op == OP_AND && status != 0) || (op == OP_OR && status == 0);
    }
    return status;
}

/* ------------------------------------------------------------------ cat / ls / mkdir (for `docker exec` checks) */

static int cat_main(int argc, char **argv) {
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        size_t len = 0;
        char *d = read_file(argv[i], &len);
        if (!d) {
            fprintf(stderr, "cat: %s: %s\n", argv[i], strerror(errno));
            rc = 1;
            continue;
        }
        fwrite(d, 1, len, stdout);
        free(d);
    }
    fflush(stdout);
    return rc;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int ls_main(int argc, char **argv) {
    int all = 0, rc = 0, n_paths = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') {
            if (strchr(argv[i], 'a')) all = 1;
        } else
            n_paths++;
    }
    for (int i = n_paths ? 1 : 0; i < argc; i++) {
        const char *path = n_paths ? argv[i] : ".";
        if (n_paths && argv[i][0] == '-') continue;
        if (!is_dir(path)) {
            if (exists(path)) printf("%s\n", path);
            else {
                fprintf(stderr, "ls: cannot access '%s': %s\n", path, strerror(errno));
                rc = 2;
            }
            if (!n_paths) break;
            continue;
        }
        DIR *d = opendir(path);
        if (!d) {
            fprintf(stderr, "ls: cannot open directory '%s': %s\n", path, strerror(errno));
            rc = 2;
            continue;
        }
        char **names = NULL;
        size_t n = 0;
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' && !all) continue;
            names = realloc(names, (n + 1) * sizeof *names);
            names[n++] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp_str);
        if (n_paths > 1) printf("%s:\n", path);
        for (size_t k = 0; k < n; k++) {
            printf("%s\n", names[k]);
            free(names[k]);
        }
        free(names);
        if (!n_paths) break;
    }
    fflush(stdout);
    return rc;
}

static int mkdir_main(int argc, char **argv) {
    int parents = 0, rc = 0;
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && strchr(argv[i], 'p')) parents = 1;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-') continue;
        int r = parents ? mkdir_p(argv[i]) : mkdir(argv[i], 0755);
        if (r != 0) {
            fprintf(stderr, "mkdir: cannot create directory '%s': %s\n", argv[i], strerror(errno));
            rc = 1;
        }
    }
    return rc;
}

/* ------------------------------------------------------------------ main */

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

int main(int argc, char **argv) {
    g_version = env_or("STANDIN_VERSION", "0.0.0");
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *me = base_name(argv[0]);
    if (!strncmp(me, "standin-server", 14) || !strcmp(me, "server")) { /* also the cached standin-server-<hash> */
        if (argc < 2) {
            fprintf(stderr, "usage: standin-server vllm|llamafactory-cli|sh|sleep|cat|ls|mkdir ARGS...  (stand-in for tests)\n");
            return 2;
        }
        argv++;
        argc--;
        me = base_name(argv[0]);
    }
    if (!strcmp(me, "vllm")) return vllm_main(argc, argv);
    if (!strcmp(me, "python3")) return python3_main(argc, argv);
    if (!strcmp(me, "llamafactory-cli") || !strcmp(me, "lmf") || !strcmp(me, "llamafactory")) return lf_main(argc, argv);
    if (!strcmp(me, "sh") || !strcmp(me, "bash")) return sh_main(argc, argv);
    if (!strcmp(me, "sleep")) return sleep_main(argc, argv);
    if (!strcmp(me, "cat")) return cat_main(argc, argv);
    if (!strcmp(me, "ls")) return ls_main(argc, argv);
    if (!strcmp(me, "mkdir")) return mkdir_main(argc, argv);
    fprintf(stderr, "standin-server: unknown personality '%s'\n", me);
    return 2;
}
