/* Delta debugging (Zeller's ddmin) over the requests of a trace: find a small set of
 * requests for which the user's check still fails (exits non-zero). */
#include "tools.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct mz {
    const struct trace_header *h;
    const struct trace_event *ev;
    size_t n;
    size_t *starts;             /* request boundaries (trace_requests) */
    const struct trace_minimize_opts *o;
    char cand[4096];
    struct trace_event *buf;    /* the candidate's events */
    unsigned tests;
    char *err;
    size_t errlen;
};

/* Writes the requests listed in keep[0..k) (plus the END event) to path. */
static int mz_write(struct mz *m, const char *path, const size_t *keep, size_t k)
{
    size_t c = 0;

    for (size_t i = 0; i < k; i++)
        for (size_t e = m->starts[keep[i]]; e < m->starts[keep[i] + 1]; e++)
            m->buf[c++] = m->ev[e];
    if (m->n && m->ev[m->n - 1].kind == TRACE_EV_END)
        m->buf[c++] = m->ev[m->n - 1];
    return trace_write_file_disks(path, m->h, m->o->disks, m->o->ndisks, m->buf, c, m->err,
                                  m->errlen);
}

/* 1 if the check fails (the candidate is still "interesting"), 0 if it passes, <0 error. */
static int mz_test(struct mz *m, const size_t *keep, size_t k)
{
    int rc = mz_write(m, m->cand, keep, k), status;
    pid_t pid;

    if (rc)
        return rc;
    m->tests++;
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        snprintf(m->err, m->errlen, "minimize: fork: %s", strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        setenv("TRACE", m->cand, 1);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl("/bin/sh", "sh", "-c", m->o->check, (char *)NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(m->err, m->errlen, "minimize: waitpid: %s", strerror(errno));
            return -errno;
        }
    return !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int trace_minimize(const struct trace_header *h, const struct trace_event *ev, size_t n,
                   const struct trace_minimize_opts *o, char *err, size_t errlen)
{
    struct mz m = { .h = h, .ev = ev, .n = n, .o = o, .err = err, .errlen = errlen };
    unsigned max_tests = o->max_tests ? o->max_tests : 2000;
    size_t nreq = trace_requests(ev, n, &m.starts), k, gran = 2;
    size_t *cur = NULL, *tmp = NULL;
    int rc;

    if (!m.starts || !(m.buf = malloc((n + 1) * sizeof(*m.buf))) ||
        !(cur = malloc((nreq + 1) * sizeof(*cur))) || !(tmp = malloc((nreq + 1) * sizeof(*tmp)))) {
        snprintf(err, errlen, "minimize: out of memory");
        rc = -ENOMEM;
        goto out;
    }
    snprintf(m.cand, sizeof(m.cand), "%s.candidate", o->out);
    for (k = 0; k < nreq; k++)
        cur[k] = k;
    rc = mz_test(&m, cur, k);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        snprintf(err, errlen, "minimize: the check passes (exits 0) on the original trace, "
                 "so there is nothing to minimise");
        rc = -EINVAL;
        goto out;
    }
    if (o->log)
        fprintf(o->log, "minimize: %zu requests, %zu events\n", nreq, n);

    /* ddmin: try each of `gran` pieces alone, then each complement; on success shrink,
     * otherwise refine the granularity until it reaches single requests. */
    while (k >= 2 && m.tests < max_tests) {
        int reduced = 0;
        size_t piece = (k + gran - 1) / gran;
        for (size_t p = 0; p * piece < k && !reduced && m.tests < max_tests; p++) {
            size_t lo = p * piece, hi = lo + piece < k ? lo + piece : k;
            rc = mz_test(&m, cur + lo, hi - lo);
            if (rc < 0)
                goto out;
            if (rc) {
                memmove(cur, cur + lo, (hi - lo) * sizeof(*cur));
                k = hi - lo;
                gran = 2;
                reduced = 1;
            }
        }
        for (size_t p = 0; p * piece < k && !reduced && gran > 2 && m.tests < max_tests; p++) {
            size_t lo = p * piece, hi = lo + piece < k ? lo + piece : k, t = 0;
            for (size_t i = 0; i < k; i++)
                if (i < lo || i >= hi)
                    tmp[t++] = cur[i];
            rc = mz_test(&m, tmp, t);
            if (rc < 0)
                goto out;
            if (rc) {
                memcpy(cur, tmp, t * sizeof(*cur));
                k = t;
                gran = gran - 1 > 2 ? gran - 1 : 2;
                reduced = 1;
            }
        }
        if (!reduced) {
            if (gran >= k)
                break;
            gran = gran * 2 < k ? gran * 2 : k;
        }
        if (o->log && reduced)
            fprintf(o->log, "minimize: %zu requests left after %u tests\n", k, m.tests);
    }
    /* A single remaining request may be removable too (the check may need none). */
    if (k == 1 && m.tests < max_tests) {
        rc = mz_test(&m, cur, 0);
        if (rc < 0)
            goto out;
        if (rc)
            k = 0;
    }
    rc = mz_write(&m, o->out, cur, k);
    if (!rc && o->log) {
        size_t events = 0;
        for (size_t i = 0; i < k; i++)
            events += m.starts[cur[i] + 1] - m.starts[cur[i]];
        fprintf(o->log, "minimize: kept %zu of %zu requests (%zu events) after %u tests%s; "
                "wrote %s\n", k, nreq, events, m.tests,
                m.tests >= max_tests ? " (test limit reached)" : "", o->out);
    }
out:
    unlink(m.cand);
    free(m.starts);
    free(m.buf);
    free(cur);
    free(tmp);
    return rc;
}
