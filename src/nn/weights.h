// weights: MLP weights to and from NumPy .npz / .npy files
//
// Layout (what numpy.load sees): arrays W1, b1, W2, b2, ... where W_k has shape (fan_in, fan_out)
// and b_k shape (fan_out,) ((1, fan_out) is accepted too); float32 or float64, C or Fortran order.
// An optional string array "activation" holds the hidden layers' activations ("sigmoid"/"relu").
// Keras Dense kernels have this layout; PyTorch nn.Linear stores (fan_out, fan_in): save weight.T.
#ifndef XB_WEIGHTS_H
#define XB_WEIGHTS_H

#include "mlp.h"
#include "npy.h"

/* Save as float64 (or float32 when out_type is XB_DT_F4), atomically. */
int xb_weights_save_npz(const xb_mlp *m, const char *path, xb_dtype out_type, xb_error *err);

/* Load W1, b1, ... from an .npz. hidden: activation for hidden layers when the file has no
 * "activation" array (-1: the file must say, or the network must have no hidden layer). */
int xb_weights_load_npz(const char *path, int hidden, xb_mlp **out, xb_error *err);


/* Load from "file.npz" or a comma-separated list "W1.npy,b1.npy,..." (decided by the suffix). */
int xb_weights_load(const char *spec, int hidden, xb_mlp **out, xb_error *err);

#endif
