/* s002_condition_dialogue: seed 002, section 4.2 (condition).
 *
 * The Python has two Thread subclasses, 小爱 and 天猫精灵, recite a poem in
 * turns on one threading.Condition: each says a line, notify()s the other
 * and wait()s for its reply, inside `with cond:`. conc_cond is the
 * Condition (with its own RLock, as Python's default), conc_cond_acquire and
 * conc_cond_release are the `with`, and the threads carry the seed's names,
 * so every line, the tracing letters A to G included, comes out exactly as
 * the seed prints it.
 *
 * The seed notes that the start order matters: 小爱 must be waiting before
 * 天猫精灵 first notifies, or that notify wakes nobody and both wait
 * forever. As in Python, main starts them back to back: conc_thread_start
 * returns only once the new thread has run until it first sleeps, here in
 * 小爱's wait, so 天猫精灵 always finds 小爱 waiting and the output is
 * always the seed's.
 */
#include <stdio.h>

#include "conc.h"
#include "example_util.h"

static conc_cond *cond;

/* print("{} : line ".format(self.name)) */
static void
say(const char *line)
{
    conc_thread *self = conc_thread_current();
    if (!self)
        check(CONC_ENOMEM, "conc_thread_current");
    printf("%s : %s \n", conc_thread_name(self), line);
}

static void
wait_turn(void)
{
    check(conc_cond_wait(cond, CONC_FOREVER), "conc_cond_wait");
}

static void
pass_turn(void)
{
    check(conc_cond_notify(cond, 1), "conc_cond_notify");
}

static int
xiaoai(void *arg)
{
    static const char *const lines[] = {"君住长江尾", "共饮长江水",
                                        "此恨何时已", "定不负相思意"};
    (void)arg;
    printf("A\n");
    check(conc_cond_acquire(cond, CONC_FOREVER), "conc_cond_acquire");
    printf("B\n");
    wait_turn();
    say("在");
    pass_turn();
    printf("F\n");
    wait_turn();
    say("好啊");
    pass_turn();
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        wait_turn();
        say(lines[i]);
        pass_turn();
    }
    check(conc_cond_release(cond), "conc_cond_release");
    return 0;
}

static int
tianmao(void *arg)
{
    static const char *const lines[] = {"我住长江头", "日日思君不见君",
                                        "此水几时休", "只愿君心似我心"};
    (void)arg;
    printf("C\n");
    check(conc_cond_acquire(cond, CONC_FOREVER), "conc_cond_acquire");
    printf("D\n");
    say("小爱同学");
    pass_turn();
    printf("E\n");
    wait_turn();
    printf("G\n");
    say("我们来对古诗吧");
    pass_turn();
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        wait_turn();
        say(lines[i]);
        pass_turn();
    }
    wait_turn();
    check(conc_cond_release(cond), "conc_cond_release");
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
    check(conc_cond_new(NULL, &cond), "conc_cond_new");

    conc_thread *t1, *t2;
    conc_thread_opts o1 = {.name = "小爱"}, o2 = {.name = "天猫精灵"};
    /* xiaoai.start(); tianmao.start() */
    check(conc_thread_start(xiaoai, NULL, &o1, &t1), "conc_thread_start");
    check(conc_thread_start(tianmao, NULL, &o2, &t2), "conc_thread_start");
    join(t1);
    join(t2);

    conc_cond_free(cond);
    return 0;
}
