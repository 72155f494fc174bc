/* timeit N CMD [ARG...]: runs CMD N times (stdout and stderr to /dev/null, stdin from
 * $TIMEIT_STDIN or /dev/null) and prints "best_ms=B median_ms=M status=S" (S: the last
 * run's exit status). For make bench-kvm-arm64 inside the nested VM, where busybox's clocks
 * have 10 ms steps. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3 || atoi(argv[1]) < 1 || atoi(argv[1]) > 100) {
        fprintf(stderr, "usage: timeit N(1..100) CMD [ARG...]\n");
        return 2;
    }
    int n = atoi(argv[1]), status = 0;
    double ms[100];
    const char *in = getenv("TIMEIT_STDIN");
    for (int i = 0; i < n; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid_t p = fork();
        if (p == 0) {
            int fd = open(in ? in : "/dev/null", O_RDONLY), nul = open("/dev/null", O_WRONLY);
            dup2(fd, 0);
            dup2(nul, 1);
            dup2(nul, 2);
            execv(argv[2], argv + 2);
            _exit(127);
        }
        if (p < 0 || waitpid(p, &status, 0) < 0) {
            perror("timeit");
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ms[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    }
    qsort(ms, (size_t)n, sizeof(ms[0]), cmp);
    printf("best_ms=%.1f median_ms=%.1f status=%d\n", ms[0], ms[n / 2],
           WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return 0;
}
