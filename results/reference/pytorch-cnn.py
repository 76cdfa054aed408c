#!/usr/bin/env python3
# pytorch-cnn.py: train the small reference CNN in PyTorch and write its weights in the pytorch and keras layouts
#
# Makes the reference files of the convolutional-network import test (results/reference/README-cnn.md):
#   mnist-cnn-pytorch.npz           weights as PyTorch holds them (layout "pytorch"), float32
#   mnist-cnn-keras.npz             the same float32 values rearranged to the keras layout (layout "keras")
#   mnist-cnn-pytorch-expected.npz  the model's outputs on the MNIST test images (float64 and float32)
#
# No Keras (or TensorFlow) ran: the keras-layout file is the PyTorch model's weights rearranged by this
# script (conv kernels (out, in, kh, kw) -> (kh, kw, in, out), dense kernels transposed, the first dense
# layer's input rows permuted from the (C, H, W) flatten order to (H, W, C)). An independent numpy forward
# pass in channels_last order, driven by the "layers" string read back from the written keras file, must
# reproduce the float64 PyTorch logits to 1e-9 before the script succeeds.
#
# Network (torch.manual_seed(1)):
#   Conv2d(1, 4, 3, stride=1, padding=1) -> relu -> MaxPool2d(2)
#   Conv2d(4, 8, 3, stride=1, padding=0) -> relu -> AvgPool2d(2)
#   flatten (8 x 6 x 6 = 288) -> Linear(288, 16) -> relu -> Linear(16, 10)   (logits)
# Training: 2 epochs on the 60,000 MNIST training images, Adam lr 1e-3, batch 64, shuffled by torch.randperm
# under the same seed, cross-entropy loss, CPU, torch.set_num_threads(2). Inputs are pixels / 255 (no mean/std
# normalization), the image row-major 28 x 28, one channel.
#
# Usage: python3 results/reference/pytorch-cnn.py [MNIST_DIR [OUT_DIR]]
#   MNIST_DIR (default data/mnist) holds the four IDX files, plain or gzip-compressed (NAME or NAME.gz);
#   OUT_DIR (default: this script's folder). Needs python3, numpy and torch (Debian: python3-torch).
# Training results are reproducible on one machine and torch build; other CPUs or torch versions may train
# to slightly different weights (the committed files are the reference, not this script's next run).

import copy
import gzip
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 1
EPOCHS = 2
BATCH = 64
LR = 1e-3
THREADS = 2
N_EXPECTED = 100  # test images whose logits are stored
LAYERS = "conv:4:3:1:1,maxpool:2,conv:8:3,avgpool:2,flatten,dense:16,dense:10"
ACTIVATION = "relu"
KERAS_TOL = 1e-9


def read_idx(path, magic, ndim):
    """One IDX file (NAME or NAME.gz) as a uint8 array, its header checked."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path += ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 + 4 * ndim:
        sys.exit(f"{path}: {len(data)} bytes, shorter than the IDX header ({4 + 4 * ndim} bytes)")
    got = int.from_bytes(data[0:4], "big")
    if got != magic:
        sys.exit(f"{path}: magic 0x{got:08x}, expected 0x{magic:08x}")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    off = 4 + 4 * ndim
    want = int(np.prod(dims))
    if len(data) - off != want:
        sys.exit(f"{path}: {len(data) - off} data bytes, the header's dimensions {dims} need {want}")
    return np.frombuffer(data, dtype=np.uint8, offset=off).reshape(dims)


def load_mnist(folder, split):
    images = read_idx(os.path.join(folder, f"{split}-images-idx3-ubyte"), 0x00000803, 3)
    labels = read_idx(os.path.join(folder, f"{split}-labels-idx1-ubyte"), 0x00000801, 1)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        sys.exit(f"{folder}: {split} images {images.shape} and labels {labels.shape} do not match 28 x 28 MNIST")
    return images, labels.astype(np.int64)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, stride=1, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=1, padding=0)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(288, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):  # x: (N, 1, 28, 28)
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = torch.flatten(x, 1)  # channel-major (C, H, W)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


def to_nchw(images, dtype):
    return torch.from_numpy((images.astype(np.float64) / 255.0).astype(dtype)).unsqueeze(1)


def weight_layers(model):
    return [model.conv1, model.conv2, model.fc1, model.fc2]


def meta(layout):
    return {
        "layout": np.array([layout]),
        "input": np.array([28, 28, 1], dtype=np.int64),
        "layers": np.array([LAYERS]),
        "activation": np.array([ACTIVATION]),
    }


def pytorch_arrays(model):
    out = {}
    for k, layer in enumerate(weight_layers(model), start=1):
        out[f"W{k}"] = layer.weight.detach().numpy().astype(np.float32).copy()
        out[f"b{k}"] = layer.bias.detach().numpy().astype(np.float32).copy()
    out.update(meta("pytorch"))
    return out


def keras_arrays(pt):
    """The pytorch-layout arrays rearranged (values unchanged) to the keras layout."""
    out = {}
    out["W1"] = np.ascontiguousarray(pt["W1"].transpose(2, 3, 1, 0))  # (out,in,kh,kw) -> (kh,kw,in,out)
    out["b1"] = pt["b1"].copy()
    out["W2"] = np.ascontiguousarray(pt["W2"].transpose(2, 3, 1, 0))
    out["b2"] = pt["b2"].copy()
    # Linear(288, 16).weight is (16, 288) with input index c*36 + h*6 + w; keras wants (288, 16) with row
    # index h*48 + w*8 + c.
    c, h, w = 8, 6, 6
    w3 = pt["W3"].T.reshape(c, h, w, 16).transpose(1, 2, 0, 3).reshape(h * w * c, 16)
    out["W3"] = np.ascontiguousarray(w3)
    out["b3"] = pt["b3"].copy()
    out["W4"] = np.ascontiguousarray(pt["W4"].T)
    out["b4"] = pt["b4"].copy()
    out.update(meta("keras"))
    return out


def text(arr):
    return str(np.asarray(arr).reshape(-1)[0])


def keras_forward(arrays, x):
    """Numpy forward pass in the keras layout, float64, channels_last; x: (N, H, W, C). Reads the
    network from the arrays' own "layers", "activation" and "input"."""
    assert text(arrays["layout"]) == "keras"
    assert list(arrays["input"]) == list(x.shape[1:])
    act = text(arrays["activation"])
    assert act == "relu"
    tokens = text(arrays["layers"]).split(",")
    n_weight = sum(1 for t in tokens if t.split(":")[0] in ("conv", "dense"))
    x = x.astype(np.float64)
    k = 0
    for t in tokens:
        f = t.split(":")
        kind, p = f[0], [int(v) for v in f[1:]]
        if kind == "conv":
            k += 1
            W = arrays[f"W{k}"].astype(np.float64)  # (kh, kw, in, out)
            b = arrays[f"b{k}"].astype(np.float64)
            filters, ksz = p[0], p[1]
            stride = p[2] if len(p) > 2 else 1
            pad = p[3] if len(p) > 3 else 0
            assert W.shape == (ksz, ksz, x.shape[3], filters)
            xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
            ho = (xp.shape[1] - ksz) // stride + 1
            wo = (xp.shape[2] - ksz) // stride + 1
            y = np.zeros((x.shape[0], ho, wo, filters))
            for i in range(ksz):
                for j in range(ksz):
                    patch = xp[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
                    y += patch @ W[i, j]
            x = y + b
        elif kind in ("maxpool", "avgpool"):
            ksz = p[0]
            stride = p[1] if len(p) > 1 else ksz
            ho = (x.shape[1] - ksz) // stride + 1
            wo = (x.shape[2] - ksz) // stride + 1
            win = np.stack([x[:, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride, :]
                            for i in range(ksz) for j in range(ksz)])
            x = win.max(axis=0) if kind == "maxpool" else win.mean(axis=0)
            continue  # the activation was applied after the conv layer
        elif kind == "flatten":
            x = x.reshape(x.shape[0], -1)  # (H, W, C) order
            continue
        elif kind == "dense":
            k += 1
            if x.ndim > 2:
                x = x.reshape(x.shape[0], -1)
            W = arrays[f"W{k}"].astype(np.float64)  # (in, out)
            assert W.shape == (x.shape[1], p[0])
            x = x @ W + arrays[f"b{k}"].astype(np.float64)
        else:
            raise AssertionError(f"unknown layer {t!r}")
        if k < n_weight:
            x = np.maximum(x, 0.0)
    assert k == n_weight
    return x


def save(path, arrays):
    np.savez_compressed(path, **arrays)
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def main():
    mnist = sys.argv[1] if len(sys.argv) > 1 else "data/mnist"
    outdir = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(os.path.abspath(__file__))
    torch.manual_seed(SEED)
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)

    train_x, train_y = load_mnist(mnist, "train")
    test_x, test_y = load_mnist(mnist, "t10k")
    xt = to_nchw(train_x, np.float32)
    yt = torch.from_numpy(train_y)

    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    n = xt.shape[0]
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(n)
        total = 0.0
        for s in range(0, n, BATCH):
            idx = perm[s:s + BATCH]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        print(f"epoch {epoch + 1}: mean training loss {total / n:.6f}")
    model.eval()

    pt = pytorch_arrays(model)
    n_params = sum(pt[f"{c}{k}"].size for c in "Wb" for k in range(1, 5))
    print(f"{n_params} parameters")

    # float64 model: the float32 weights cast to float64
    m64 = copy.deepcopy(model).double()
    with torch.no_grad():
        logits_all = m64(to_nchw(test_x, np.float64)).numpy()
        logits_f32 = model(to_nchw(test_x[:N_EXPECTED], np.float32)).numpy()
    assert logits_all.dtype == np.float64 and logits_f32.dtype == np.float32
    logits = logits_all[:N_EXPECTED].copy()
    pred_all = logits_all.argmax(axis=1).astype(np.int64)
    accuracy = float((pred_all == test_y).mean())
    print(f"float64 model test accuracy: {accuracy:.4f} ({int((pred_all == test_y).sum())}/{len(test_y)})")
    print(f"max |logits_f32 - logits| over the first {N_EXPECTED}: "
          f"{np.abs(logits_f32.astype(np.float64) - logits).max():.3e}")

    os.makedirs(outdir, exist_ok=True)
    p_pt = os.path.join(outdir, "mnist-cnn-pytorch.npz")
    p_ke = os.path.join(outdir, "mnist-cnn-keras.npz")
    p_ex = os.path.join(outdir, "mnist-cnn-pytorch-expected.npz")

    save(p_pt, pt)
    save(p_ke, keras_arrays(pt))

    # Check the keras file as written: its arrays through the numpy channels_last forward pass.
    with np.load(p_ke) as f:
        ke = {name: f[name] for name in f.files}
    x_hwc = (test_x.astype(np.float64) / 255.0)[:, :, :, None]
    k_logits = keras_forward(ke, x_hwc[:N_EXPECTED])
    diff = np.abs(k_logits - logits).max()
    print(f"keras-layout numpy forward vs float64 PyTorch, first {N_EXPECTED}: max |diff| {diff:.3e}")
    assert diff <= KERAS_TOL, f"keras-layout forward pass differs by {diff:.3e} > {KERAS_TOL}"
    k_all = keras_forward(ke, x_hwc)
    diff_all = np.abs(k_all - logits_all).max()
    print(f"keras-layout numpy forward vs float64 PyTorch, all {len(test_x)}: max |diff| {diff_all:.3e}")
    assert diff_all <= KERAS_TOL, f"keras-layout forward pass differs by {diff_all:.3e} > {KERAS_TOL}"
    assert (k_all.argmax(axis=1) == pred_all).all()

    save(p_ex, {
        "logits": logits.astype(np.float64),
        "logits_f32": logits_f32.astype(np.float32),
        "pred": logits.argmax(axis=1).astype(np.int64),
        "accuracy": np.array(accuracy, dtype=np.float64),
        "pred_all": pred_all,
    })
    print(f"torch {torch.__version__}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
