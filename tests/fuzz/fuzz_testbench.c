// fuzz_testbench: testbench XML files through xb_tb_load and every point's configuration
#include "fuzz_common.h"
#include "testbench.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[4200];
    fuzz_write(fuzz_dir(NULL, NULL, 0), data, size, path, sizeof path);
    xb_error err = {0};
    xb_tb *tb = NULL;
    int rc = xb_tb_load(path, XB_SOURCE_DIR "/testbenches/testbench.xsd", &tb, &err);
    fuzz_check_status(rc, &err);
    /* load checks every point's values, so each configuration must now build */
    for (size_t k = 0; rc == XB_OK && k < xb_tb_n_points(tb) && k < 64; k++) {
        xb_tb_config cfg;
        xb_error e2 = {0};
        if (xb_tb_config_of(tb, k, k % 2, &cfg, &e2) != XB_OK)
            abort();
    }
    xb_tb_free(&tb);
    unlink(path);
    return 0;
}
