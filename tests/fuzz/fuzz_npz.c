// fuzz_npz: .npz archives through xb_npz_read and the weights loader
#include "fuzz_common.h"
#include "npz.h"
#include "weights.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200];
    fuzz_write(fuzz_dir(NULL, NULL, 0), data, size, path, sizeof path);
    xb_error err = {0};
    xb_npz *z = NULL;
    int rc = xb_npz_read(path, &z, &err);
    fuzz_check_status(rc, &err);
    if (rc == XB_OK) {
        xb_mlp *m = NULL;
        xb_error e2 = {0};
        rc = xb_weights_load_npz(path, XB_ACT_SIGMOID, &m, &e2);
        fuzz_check_status(rc, &e2);
        xb_mlp_free(&m);
    }
    xb_npz_free(&z);
    unlink(path);
    return 0;
}
