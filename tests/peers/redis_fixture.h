/* A real redis-server for the scale-out tests: started on a free loopback
 * port with append-only persistence in a temporary directory, optionally
 * with a password; killed, restarted on the same port and directory, and
 * stopped (its directory removed) by the test. */
#ifndef CONC_TEST_REDIS_FIXTURE_H
#define CONC_TEST_REDIS_FIXTURE_H

#include <sys/types.h>

struct redis_fixture {
    pid_t pid; /* 0 while not running */
    int port;
    char dir[64];
    char url[64];         /* redis://127.0.0.1:PORT */
    const char *password; /* NULL for none */
    const char *fsync;    /* "always" or "everysec" */
};

/* The redis-server program, or NULL if it is not installed. */
const char *redis_fixture_program(void);

/* Starts a server (fsync "always" unless given). Returns 0, or -1 if it
 * could not be started (the reason goes to stderr). */
int redis_fixture_start(struct redis_fixture *r, const char *password,
                        const char *fsync);

/* Kills the server with SIGKILL and reaps it; its data stays. */
void redis_fixture_kill(struct redis_fixture *r);

/* Starts the server again on the same port and directory. Returns 0 or
 * -1. */
int redis_fixture_restart(struct redis_fixture *r);

/* Kills the server and removes its directory. */
void redis_fixture_stop(struct redis_fixture *r);

/* Starts the program `argv[0]` (a path) with `argv`, its standard output
 * and error going to the test's; it is killed if the test dies. Returns
 * its pid, or -1. */
pid_t redis_fixture_spawn(char *const argv[]);

#endif
