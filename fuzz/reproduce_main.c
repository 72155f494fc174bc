/* Plain reproducer for the fuzz targets: no fuzzing engine. Every argument is a file (run
 * once) or a directory (every regular file in it, in name order, so runs are repeatable).
 * Built with gcc + ASan/UBSan by fuzz/module.mk into $(BUILD)/fuzz-repro/<target>; this is
 * what `make test` uses to replay the corpora and the saved crashes.
 * Exit status: 0 if every input ran (a sanitizer report or abort() ends the process
 * earlier), 2 if an argument could not be read. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Targets that sample an expensive check while fuzzing (fuzz_control.c) do it for every
 * input when this is 1 (a weak reference there: absent under a fuzzing engine). */
extern const int fz_reproducer;
const int fz_reproducer = 1;

static int run_file(const char *path, int verbose)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f) {
        fprintf(stderr, "reproduce: cannot open %s\n", path);
        return -1;
    }
    do {
        if (len == cap) {
            uint8_t *nb;

            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap);
            if (!nb) {
                fclose(f);
                free(buf);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    fclose(f);
    if (verbose)
        fprintf(stderr, "reproduce: %s (%zu bytes)\n", path, len);
    /* An exact-size copy, so ASan catches a read one byte past the input as libFuzzer does. */
    {
        uint8_t *exact = malloc(len ? len : 1);

        if (!exact) {
            free(buf);
            return -1;
        }
        memcpy(exact, buf, len);
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, int verbose, unsigned *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    int rc = 0;

    if (!d) {
        fprintf(stderr, "reproduce: cannot open directory %s\n", dir);
        return -1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);

            if (!nn)
                abort();
            names = nn;
        }
        if (asprintf(&names[n++], "%s/%s", dir, e->d_name) < 0)
            abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    for (i = 0; i < n; i++) {
        struct stat st;

        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(names[i], verbose) < 0)
                rc = -1;
            else
                ++*count;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    int verbose = getenv("REPRODUCE_VERBOSE") != NULL, rc = 0, i;
    unsigned count = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...  (runs each input through the fuzz target)\n",
                argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "reproduce: cannot stat %s\n", argv[i]);
            rc = 2;
        } else if (S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], verbose, &count) < 0)
                rc = 2;
        } else if (run_file(argv[i], verbose) < 0) {
            rc = 2;
        } else {
            count++;
        }
    }
    fprintf(stderr, "reproduce: %u input(s) ran\n", count);
    return rc;
}
