/* s000_thread_local: seed 000, section 7 (ThreadLocal).
 *
 * The Python binds a student's name to a global threading.local in each of
 * two threads, "Thread-1" and "Thread-2", and a helper reads it back without
 * being passed it: "Hello,Willard (in Thread-1)", "Hello,WenYu (in
 * Thread-2)". conc_local is threading.local: one slot, a value per thread.
 *
 * Under the GIL the first thread has usually finished before the second
 * begins. conc's threads run at once, so to show that the slot really holds
 * two values at the same moment, both threads bind their student and meet at
 * a barrier before either reads it. Thread-2 then waits for Thread-1's line,
 * which keeps the seed's output order.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

typedef struct student_thread {
    const char *student;
    conc_event *wait_for; /* print only once this is set (NULL: at once) */
    conc_event *then_set; /* set after printing (NULL: none) */
} student_thread;

static conc_local *local_school;
static conc_barrier *both_bound;

static const char *
current_name(void)
{
    conc_thread *self = conc_thread_current();
    if (!self)
        check(CONC_ENOMEM, "conc_thread_current");
    return conc_thread_name(self);
}

static void
process_student(void)
{
    const char *std = conc_local_get(local_school);
    printf("Hello,%s (in %s)\n", std, current_name());
}

static int
process_thread(void *arg)
{
    student_thread *self = arg;
    /* The slot has no destructor: the names are string literals. */
    check(conc_local_set(local_school, (void *)self->student),
          "conc_local_set");
    check(conc_barrier_wait(both_bound, CONC_FOREVER, NULL),
          "conc_barrier_wait");
    if (self->wait_for)
        check(conc_event_wait(self->wait_for, CONC_FOREVER), "conc_event_wait");
    process_student();
    if (self->then_set)
        conc_event_set(self->then_set);
    return 0;
}

static void
join(conc_thread *t)
{
    int status;
    check(conc_thread_join(t, CONC_FOREVER, &status), "conc_thread_join");
    check(status, conc_thread_name(t));
    conc_thread_free(t);
}

int
main(void)
{
    conc_event *first_done;
    check(conc_local_new(NULL, &local_school), "conc_local_new");
    check(conc_barrier_new(2, NULL, &both_bound), "conc_barrier_new");
    check(conc_event_new(NULL, &first_done), "conc_event_new");

    student_thread s1 = {.student = "Willard", .then_set = first_done};
    student_thread s2 = {.student = "WenYu", .wait_for = first_done};
    conc_thread *thread1, *thread2;
    conc_thread_opts o1 = {.name = "Thread-1"}, o2 = {.name = "Thread-2"};
    check(conc_thread_start(process_thread, &s1, &o1, &thread1),
          "conc_thread_start");
    check(conc_thread_start(process_thread, &s2, &o2, &thread2),
          "conc_thread_start");
    join(thread1);
    join(thread2);

    conc_event_free(first_done);
    conc_barrier_free(both_bound);
    conc_local_free(local_school);
    return 0;
}
