// fuzz_idx: IDX files (raw or gzip) through xb_idx_read
#include "fuzz_common.h"
#include "idx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200];
    fuzz_write(fuzz_dir(NULL, NULL, 0), data, size, path, sizeof path);
    xb_error err = {0};
    xb_idx *a = NULL;
    int rc = xb_idx_read(path, &a, &err);
    fuzz_check_status(rc, &err);
    if (rc == XB_OK && (!a || a->count == 0 || !a->data))
        abort();
    xb_idx_free(&a);
    unlink(path);
    return 0;
}
