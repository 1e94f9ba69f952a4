/* s001_process_class: seed 001, 六 mulitprocess模块, 进程创建二 (a Process
 * subclass).
 *
 * The Python subclasses Process as MyProcess, keeps a `person` field set in
 * __init__, and overrides run() to print os.getpid(), self.pid twice and
 * "PERSON 正在和女主播聊天"; it starts three of them and joins them. C has
 * no subclasses: a struct holds the "base" conc_process and the fields, and
 * a function plays run(). start() copies the fields to the child as the
 * argument bytes, as Python pickles the object for the child. In the child,
 * self.pid is conc_process_pid(conc_process_current(), &pid). The three
 * children run at once, so their lines may interleave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conc.h"
#include "example_util.h"

/* The "subclass": the fields a MyProcess carries into its child. */
typedef struct my_process_fields {
    char person[32];
} my_process_fields;

typedef struct my_process {
    conc_process *base; /* the Process it extends */
    my_process_fields fields;
} my_process;

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

/* MyProcess.run(self) */
static int
my_process_run(const void *arg, size_t len)
{
    (void)len;
    const my_process_fields *self = arg;
    pid_t self_pid = 0;
    check(conc_process_pid(conc_process_current(), &self_pid),
          "conc_process_pid");
    printf("%d\n", (int)getpid());
    printf("%d\n", (int)self_pid);
    printf("%d\n", (int)self_pid);
    printf("%s 正在和女主播聊天\n", self->person);
    return 0;
}

/* MyProcess(person) */
static void
my_process_init(my_process *self, const char *person)
{
    snprintf(self->fields.person, sizeof self->fields.person, "%s", person);
    check(conc_process_new(my_process_run, &self->fields, sizeof self->fields,
                           NULL, &self->base),
          "conc_process_new");
}

int
main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0); /* whole lines, as they are printed */
    my_process p1, p2, p3;
    my_process_init(&p1, "Jedan");
    my_process_init(&p2, "太白");
    my_process_init(&p3, "alexDSB");
    /* start() calls run() in the new process */
    check(conc_process_start(p1.base), "conc_process_start");
    check(conc_process_start(p2.base), "conc_process_start");
    check(conc_process_start(p3.base), "conc_process_start");
    join(p1.base);
    join(p2.base);
    join(p3.base);
    return 0;
}
