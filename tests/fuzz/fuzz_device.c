// fuzz_device: device XML files through xb_device_load (the shipped schema and model files beside it)
#include "device.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const links[] = {"nmos_l1.lib", "rram.lib"};
    static const char *const targets[] = {XB_SOURCE_DIR "/models/nmos_l1.lib", XB_SOURCE_DIR "/models/rram.lib"};
    char path[4200];
    fuzz_write(fuzz_dir(links, targets, 2), data, size, path, sizeof path);
    xb_error err = {0};
    xb_device d;
    int rc = xb_device_load(path, XB_SOURCE_DIR "/models/device.xsd", &d, &err);
    fuzz_check_status(rc, &err);
    unlink(path);
    return 0;
}
