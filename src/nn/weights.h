// weights: MLP weights to and from NumPy .npz / .npy files
//
// Layout (what numpy.load sees): arrays W1, b1, W2, b2, ... where W_k has shape (fan_in, fan_out)
// and b_k shape (fan_out,) ((1, fan_out) is accepted too); float32 or float64, C or Fortran order.
// An optional string array "activation" holds the hidden layers' activations ("sigmoid"/"relu").
// Keras Dense kernels have this layout; PyTorch nn.Linear stores (fan_out, fan_in): save weight.T, or
// say layout="pytorch".
// Convolutional networks (docs/cnn.md) add a string array "layers" (xb_layer_list_parse's list, every
// weight layer), "input" (height, width, channels) and "layout": "keras" (conv W (kh, kw, in, out), dense
// (in, out), flatten in (H, W, C) order) or "pytorch" (Conv2d.weight (out, in, kh, kw), Linear.weight
// (out, in), flatten in (C, H, W) order). Saved files use the keras layout, the project's own order.
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

/* What a file may leave to its user: the network's description from the command line. The file's own
 * "activation", "layers", "input" and "layout" arrays come first. */
typedef struct xb_net_desc {
    int hidden;         /* hidden activation (-1: the file must say, or there is no hidden layer) */
    const char *layers; /* layer list, every weight layer (NULL: the file's, or dense from the shapes) */
    size_t input[3];    /* (height, width, channels) (zeros: the file's) */
    const char *layout; /* "keras" or "pytorch" (NULL: the file's; dense files default to keras) */
} xb_net_desc;
int xb_weights_load_desc(const char *spec, const xb_net_desc *d, xb_mlp **out, xb_error *err);
int xb_weights_load_npz_desc(const char *path, const xb_net_desc *d, xb_mlp **out, xb_error *err);

#endif
