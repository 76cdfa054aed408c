// backend_spice: the circuit-level tile-current backends (backend.h) over the worker pool (pool.h)
//
// xb_backend_spice_exact solves every (tile, input) through libngspice; xb_backend_spice_linear uses
// the pool's SPICE-extracted linear mode (per tile, R unit-input solves give the transfer matrix, IR
// drop included; every input is then one product). Both take params.pool, a xb_pool the caller set up
// (chip, device, options) and owns; the backend sets the pool's linear option for the length of each
// call only, so one pool can serve both. Failures are the pool's (XB_ERUNTIME with its message); a
// solve that never converges gives 0 currents and flags the input in pool->failed.
#ifndef XB_BACKEND_SPICE_H
#define XB_BACKEND_SPICE_H

#include "backend.h"

extern const xb_backend_type *const xb_backend_spice_exact;
extern const xb_backend_type *const xb_backend_spice_linear;

#endif
