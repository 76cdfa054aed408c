// fuzz_npy: .npy images through xb_npy_parse, and what parses through the serializer again
#include "fuzz_common.h"
#include "npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xb_error err = {0};
    xb_ndarray *a = NULL;
    int rc = xb_npy_parse(data, size, "fuzz.npy", &a, &err);
    fuzz_check_status(rc, &err);
    if (rc == XB_OK) {
        unsigned char *buf = NULL;
        size_t len = 0;
        xb_error e2 = {0};
        int rc2 = xb_npy_serialize(a, XB_DT_F8, &buf, &len, &e2);
        fuzz_check_status(rc2, &e2);
        free(buf);
    }
    xb_ndarray_free(&a);
    return 0;
}
