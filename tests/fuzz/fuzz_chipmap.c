// fuzz_chipmap: conductance maps (chip.npz) through xb_chip_load
#include "chip.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200];
    fuzz_write(fuzz_dir(NULL, NULL, 0), data, size, path, sizeof path);
    xb_error err = {0};
    xb_chip *c = NULL;
    int rc = xb_chip_load(path, &c, &err);
    fuzz_check_status(rc, &err);
    xb_chip_free(&c);
    unlink(path);
    return 0;
}
