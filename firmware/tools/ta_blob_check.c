/*
 * Loads, prepares and runs every model blob named on the command line, with
 * zeroed inputs, and prints one status per file. Built with ASan/UBSan by the
 * tests to show that corrupt blobs give status codes, never a crash; the blob,
 * the arena and external inputs are exact-size heap blocks (ta_run_exact.h).
 */
#define _POSIX_C_SOURCE 200112L

#include <stdio.h>
#include <stdlib.h>

#include "ta_run_exact.h"

/* The whole file in a heap block of exactly its size; NULL (and *size 0) when unreadable. */
static uint8_t *read_file(const char *path, size_t *size)
{
    *size = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    uint8_t *data = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = (uint8_t *)malloc(n > 0 ? (size_t)n : 1u);
        if (data != NULL && fread(data, 1, (size_t)n, f) != (size_t)n) {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (data != NULL) {
        *size = (size_t)n;
    }
    return data;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i) {
        size_t n;
        uint8_t *data = read_file(argv[i], &n);
        if (data == NULL) {
            printf("%s ERROR_OPEN\n", argv[i]);
            continue;
        }
        printf("%s %s\n", argv[i], ta_status_name(ta_run_exact(data, n, 0, NULL)));
        free(data);
    }
    return 0;
}
