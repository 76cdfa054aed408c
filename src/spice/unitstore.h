// unitstore: finished (layer, tile, input chunk) units of the circuit solves, on disk: a stopped run resumes mid-layer
//
// A store is a folder (xb_pool_options.unit_dir). The pool opens it for one layer call (xb_unit_store_open),
// loads every unit found there before the scheduler runs (xb_unit_store_load) and saves each unit it accepts
// (xb_unit_store_save); whoever owns the folder removes it once the results it serves are complete
// (xb_unit_store_remove). A unit's file is named by its coordinates and a hash of its key, and the key is
// everything the unit's result depends on:
//   - the caller's key (unit_key: a testbench point's configuration hash and its trial, for example);
//   - layer, row and column tile, the input range [k0, k1), the layer call's n, rows and chunk;
//   - SHA-256 of the layer call's row voltages (all n x rows doubles, bit for bit), so a changed input, or an
//     earlier layer whose currents changed, never reuses a stale result;
//   - SHA-256 of the tile's deck as the workers load it (conductances, device, wires, solver options) and of
//     the content of every model file it includes (the MOSFET card, rram.lib, the gap model of gap cells,
//     and the files those pull in with .include / .lib, 4 deep), and the row-drive options.
// File format (version 1; native byte order: the store is a cache for the machine that wrote it):
//   "XBSUNIT\n", uint32 version, uint32 header bytes (136), 64 hex characters of the key's SHA-256,
//   uint64 layer, rt, ct, k0, k1, nc, payload bytes; the payload (the worker's result block of the unit:
//   worker.h, header, k x nc currents, k statuses); then 64 hex characters: SHA-256 of all that precedes.
// A file is written under a temporary name and renamed into place (xb_atomic_open), so a kill leaves either
// the whole unit or none. On load every field is checked; a file that is truncated, damaged or for another
// key is ignored, with a notice, and its unit solved again: a stored unit is never trusted blindly.
// Ownership: the store borrows chip, device, options and V (they must outlive it); loaded results go into
// the caller's buffer.
#ifndef XB_UNITSTORE_H
#define XB_UNITSTORE_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "error.h"
#include "executor.h"
#include "netlist.h"

#define XB_UNIT_STORE_VERSION 1

typedef struct xb_unit_store xb_unit_store;

/* Open the store in folder dir (made if missing; temporaries of stopped runs removed) for one layer call:
 * layer l of chip c solved with device dev and options net for the n x rows row voltages V in units of at
 * most chunk inputs. key: the caller's part of the key ("" is allowed). quiet: no notices on stderr.
 * XB_ERUNTIME when the folder cannot be made, XB_ENOMEM. */
int xb_unit_store_open(const char *dir, const char *key, const xb_chip *c, const xb_device *dev,
                       const xb_netlist_options *net, int l, const double *V, size_t n, size_t chunk, int quiet,
                       xb_unit_store **out, xb_error *err);

/* The bytes of unit u's result block (worker.h): header, k x nc currents, k statuses. */
size_t xb_unit_store_result_bytes(const xb_unit_store *s, const xb_unit *u);

/* Unit u's stored result into result (cap bytes). 1: loaded; 0: none stored, or a file that failed a check
 * (then a notice names the file and what is wrong, the file is removed and *rejected is incremented). */
int xb_unit_store_load(xb_unit_store *s, const xb_unit *u, void *result, size_t cap, size_t *rejected);

/* Store unit u's result block (xb_unit_store_result_bytes(s, u) bytes of result), atomically. */
int xb_unit_store_save(xb_unit_store *s, const xb_unit *u, const void *result, xb_error *err);

/* The file that holds (or would hold) unit u: DIR/L<layer>-<rt>-<ct>-<k0>-<k1>-<hash>.unit. */
void xb_unit_store_path(xb_unit_store *s, const xb_unit *u, char *path, size_t len);

void xb_unit_store_free(xb_unit_store **s);

/* Remove folder dir and the unit files (and temporaries) in it; a missing folder is fine. XB_ERUNTIME
 * naming the path when something cannot be removed. */
int xb_unit_store_remove(const char *dir, xb_error *err);

#endif
