// replay_main: run a fuzz target as a plain program over every file of corpus folders (or files)
//
// Each input runs with stderr sent to a temporary file: a reader reports through its xb_error, so
// anything written to stderr (a library printing on its own) fails the replay and is shown.
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cannot open %s\n", path);
        return 1;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(fp);
            fprintf(stderr, "out of memory reading %s\n", path);
            return 1;
        }
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        unsigned char *nb = realloc(buf, cap *= 2);
        if (!nb)
            free(buf);
        buf = nb;
    }
    fclose(fp);
    fflush(stderr);
    int saved = dup(2);
    FILE *sink = tmpfile();
    if (saved < 0 || !sink || dup2(fileno(sink), 2) < 0) {
        fprintf(stderr, "cannot capture stderr\n");
        free(buf);
        return 1;
    }
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fseek(sink, 0, SEEK_END);
    long written = ftell(sink);
    int rc = 0;
    if (written > 0) {
        char text[2048];
        rewind(sink);
        size_t k = fread(text, 1, sizeof text - 1, sink);
        text[k] = '\0';
        fprintf(stderr, "FAIL %s: %ld bytes written to stderr:\n%s\n", path, written, text);
        rc = 1;
    }
    fclose(sink);
    return rc;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    int failed = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "no such file or folder: %s\n", argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            failed |= replay_file(argv[i]);
            count++;
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d)
            return 1;
        char **names = NULL;
        size_t n = 0;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.')
                continue;
            char **nn = realloc(names, (n + 1) * sizeof *names);
            if (!nn)
                return 1;
            names = nn;
            size_t len = strlen(argv[i]) + strlen(e->d_name) + 2;
            names[n] = malloc(len);
            if (!names[n])
                return 1;
            snprintf(names[n++], len, "%s/%s", argv[i], e->d_name);
        }
        closedir(d);
        qsort(names, n, sizeof *names, cmp);
        for (size_t k = 0; k < n; k++) {
            failed |= replay_file(names[k]);
            count++;
            free(names[k]);
        }
        free(names);
    }
    if (count == 0) {
        fprintf(stderr, "no inputs replayed\n");
        return 1;
    }
    printf("replayed %d inputs\n", count);
    return failed;
}
