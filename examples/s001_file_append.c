/* s001_file_append: seed 001, 六 mulitprocess模块, 同时对一个文件进行写操作.
 *
 * The Python starts ten processes that each open can_do_girl_lists.txt for
 * appending, print their pid and the file position they got
 * ('当前进程PID拿到的文件的光标位置>>N'), and write '姑娘i'; after joining
 * them it reads the file, finds every number with re.findall('\d+') and
 * prints them with their count, then '不要钱~~~~~~~~~~~~~~~~!'. Here the file
 * is a new temporary file under /tmp (removed at the end), the numbers are
 * found by scanning for digits, and the list is printed as Python prints a
 * list of strings. Append mode puts every write at the end, so no write is
 * lost: the count is always 10, checked; the order varies from run to run.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

#define N_PROCESSES 10

/* The arguments (x, y), copied into the child. */
typedef struct func_args {
    char x[64]; /* the file's name */
    char y[32]; /* what to append */
} func_args;

/* Process(target=fn, args=...) followed by start(). */
static conc_process *
start(conc_process_fn fn, const void *arg, size_t len,
      const conc_process_opts *opts)
{
    conc_process *p;
    check(conc_process_new(fn, arg, len, opts, &p), "conc_process_new");
    check(conc_process_start(p), "conc_process_start");
    return p;
}

/* p.join(), then makes sure the child ended well (exitcode 0). */
static void
join(conc_process *p)
{
    check(conc_process_join(p, CONC_FOREVER), "conc_process_join");
    int code = 0;
    int rc = conc_process_exitcode(p, &code);
    check(rc < 0 ? rc : 0, "conc_process_exitcode");
    if (code != 0) {
        fflush(stdout);
        fprintf(stderr, "%s: exitcode %d\n", conc_process_name(p), code);
        _Exit(EXIT_FAILURE);
    }
    conc_process_free(p);
}

static int
func(const void *arg, size_t len)
{
    (void)len;
    const func_args *a = arg;
    FILE *f = fopen(a->x, "a");
    check(f ? 0 : CONC_ENOENT, "fopen");
    check(fseek(f, 0, SEEK_END) == 0 ? 0 : CONC_EINVAL, "fseek");
    printf("当前进程%d拿到的文件的光标位置>>%ld\n", (int)getpid(), ftell(f));
    fputs(a->y, f);
    check(fclose(f) == 0 ? 0 : CONC_EINVAL, "fclose");
    return 0;
}

/* re.findall('\d+', data), printed as Python prints the list; returns the
 * count. */
static int
print_numbers(const char *data)
{
    int n = 0;
    printf(">>>>> [");
    for (const char *s = data; *s;) {
        if (!isdigit((unsigned char)*s)) {
            s++;
            continue;
        }
        size_t digits = strspn(s, "0123456789");
        printf("%s'%.*s'", n ? ", " : "", (int)digits, s);
        s += digits;
        n++;
    }
    printf("] .....%d\n", n);
    return n;
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    func_args a;
    snprintf(a.x, sizeof a.x, "/tmp/can_do_girl_lists-XXXXXX");
    int fd = mkstemp(a.x);
    check(fd < 0 ? CONC_ENOENT : 0, "mkstemp");
    close(fd);

    conc_process *p_list[N_PROCESSES];
    for (int i = 0; i < N_PROCESSES; i++) {
        snprintf(a.y, sizeof a.y, "姑娘%d", i);
        p_list[i] = start(func, &a, sizeof a, NULL);
    }
    for (int i = 0; i < N_PROCESSES; i++)
        join(p_list[i]);

    char data[1024];
    FILE *f = fopen(a.x, "r");
    check(f ? 0 : CONC_ENOENT, "fopen");
    size_t got = fread(data, 1, sizeof data - 1, f);
    data[got] = '\0';
    fclose(f);
    remove(a.x);
    int n = print_numbers(data);
    printf("不要钱~~~~~~~~~~~~~~~~!\n");
    return n == N_PROCESSES ? 0 : EXIT_FAILURE;
}
