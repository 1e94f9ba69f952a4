/* s001_pool_callback_file: seed 001, 五 进程池, 回调函数的简单使用 (workers
 * fetch pages, a callback in the parent parses them into one file).
 *
 * The Python gives Pool(3) five get_page(url) with apply_async and
 * callback=pasrse_page. get_page prints '<进程PID> get URL', fetches the
 * page with requests.get and returns {'url': url, 'text': text};
 * pasrse_page, in the parent, prints '<进程PID> parse URL' and appends
 * 'url:<URL> size:[LEN]' to db.txt. After close() and join() main prints
 * every result (which the callback already handled). The slow part, the
 * network, runs in the workers; the parent only parses.
 *
 * There is no network here: a web server thread of this program, on a free
 * port of 127.0.0.1 (examples/support/local_web.c), stands in for the five
 * sites. A worker asks it for the seed's URL as a client asks a proxy ("GET
 * https://www.baidu.com HTTP/1.0") and the server answers after 20 ms with a
 * page of its own making. The result bytes are the URL, a NUL, then the text.
 * db.txt is a temporary file, printed and removed at the end; the results print
 * with their text cut short. The order of the get and parse lines varies; the
 * file's lines come in completion order.
 */
#define _POSIX_C_SOURCE 200809L /* getpid, mkstemp */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"
#include "local_web.h"

#define LATENCY 0.02 /* the network's delay for one page */
#define N_URLS  5

static const char *const urls[N_URLS] = {
    "https://www.baidu.com",     "https://www.python.org",
    "https://www.openstack.org", "https://help.github.com/",
    "http://www.sina.com.cn/",
};

typedef struct page_request {
    char url[64];
    uint16_t port; /* the local server's */
} page_request;

/* The local server's page callback: the page of a site, the same frame
 * with a body whose size depends on the URL. Returns 1, 0 for a URL not
 * served here, or a negative code. */
static int
make_page(const char *url, conc_buf *page)
{
    int known = 0;
    for (int i = 0; i < N_URLS; i++)
        known |= strcmp(url, urls[i]) == 0;
    if (!known)
        return 0;
    int rc = conc_buf_appendf(page,
                              "<!DOCTYPE html>\r\n<html><head><title>%s"
                              "</title></head><body>\r\n",
                              url);
    for (size_t i = 0; rc == 0 && i < 40 * strlen(url); i++)
        rc = conc_buf_appendf(page, "%c", 'a' + (int)(i % 26));
    if (rc == 0)
        rc = conc_buf_appendf(page, "\r\n</body></html>\r\n");
    return rc == 0 ? 1 : rc;
}

/* In a worker: the result is the URL, a NUL, then the page. */
static int
get_page(const void *arg, size_t len, conc_buf *result)
{
    const page_request *req = arg;
    if (len != sizeof *req)
        return conc_fail(CONC_EINVAL, "bad argument");
    printf("<进程%d> get %s\n", (int)getpid(), req->url);
    int rc = conc_buf_append(result, req->url, strlen(req->url) + 1);
    int status = 0;
    if (rc == 0)
        rc = http_get(req->port, req->url, &status, result);
    if (rc == 0 && status != 200)
        rc = conc_fail(CONC_EVALUE, "%s: status %d", req->url, status);
    return rc;
}

/* In the parent's result thread: one line per page into db.txt. */
static void
pasrse_page(void *arg, const void *data, size_t len)
{
    const char *db = arg;
    const char *url = data;
    size_t text_len = len - strlen(url) - 1;
    printf("<进程%d> parse %s\n", (int)getpid(), url);
    FILE *f = fopen(db, "a");
    check(f ? 0 : CONC_ENOENT, "fopen");
    fprintf(f, "url:<%s> size:[%zu]\n", url, text_len);
    check(fclose(f) == 0 ? 0 : -errno, "fclose");
}

/* print([res.get() for res in res_l]), with each text cut short. */
static void
print_results(conc_async_result **res_l)
{
    printf("[");
    for (int i = 0; i < N_URLS; i++) {
        const void *data;
        size_t len;
        check(conc_async_result_get(res_l[i], CONC_FOREVER, &data, &len),
              "get_page");
        const char *url = data, *text = url + strlen(url) + 1;
        printf("%s{'url': '%s', 'text': '%.15s\\r\\n...'}", i ? ", " : "", url,
               text);
        conc_async_result_free(res_l[i]);
    }
    printf("]\n");
}

static void
print_file(const char *path)
{
    char line[256];
    FILE *f = fopen(path, "r");
    check(f ? 0 : CONC_ENOENT, "fopen");
    printf("db.txt:\n");
    while (fgets(line, sizeof line, f))
        printf("  %s", line);
    fclose(f);
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    char db[] = "/tmp/db.txt-XXXXXX";
    int fd = mkstemp(db);
    check(sys(fd), "mkstemp");
    close(fd);
    /* The pool before the server: workers forked before any other thread
     * exists inherit no lock held by one. */
    conc_pool *p;
    check(conc_pool_new(&(conc_pool_opts){.processes = 3}, &p),
          "conc_pool_new");
    web_server server;
    web_server_start(&server, make_page, LATENCY);

    conc_async_result *res_l[N_URLS];
    conc_apply_opts cb = {.callback = pasrse_page, .arg = db};
    for (int i = 0; i < N_URLS; i++) {
        page_request req = {.port = server.port};
        snprintf(req.url, sizeof req.url, "%s", urls[i]);
        check(conc_pool_apply_async(p, get_page, &req, sizeof req, &cb,
                                    &res_l[i]),
              "conc_pool_apply_async");
    }
    check(conc_pool_close(p), "conc_pool_close");
    check(conc_pool_join(p, CONC_FOREVER), "conc_pool_join");
    print_results(res_l);
    conc_pool_free(p);
    web_server_stop(&server);
    print_file(db);
    remove(db);
    return 0;
}
