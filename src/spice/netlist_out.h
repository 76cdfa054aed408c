// netlist_out: `xbarsim netlist` after its options: the review decks of a chip, or one tile's deck with its expected currents
#ifndef XB_NETLIST_OUT_H
#define XB_NETLIST_OUT_H

#include <stddef.h>

#include "chip.h"
#include "device.h"
#include "error.h"
#include "pool.h"

/* Which decks to write. Strings are borrowed for the call. */
typedef struct xb_deck_spec {
    const char *out;        /* folder for the decks (created when missing) */
    const char *note;       /* a line written into every deck's header (the command line) */
    int all;                /* every tile of every layer, every row at v_read, no expected currents */
    size_t layer;           /* 1-based; checked against the chip (also with all) */
    size_t row_tile, col_tile; /* the tile of layer (when !all) */
    const char *dataset;    /* where the deck's test images come from (when !all) */
    size_t input, n_inputs; /* first test image and how many (when !all) */
} xb_deck_spec;

/* What was written, for printing. */
typedef struct xb_deck_outcome {
    size_t points; /* the deck's sweep points: inputs x patches of a conv layer */
    size_t decks;               /* with all: how many review decks */
    char path[4200], epath[4300]; /* without all: the deck and DECK.expected.csv */
    size_t rows, cols;          /* the tile's size */
    size_t n_failed;            /* inputs libngspice failed on (their expected currents are NaN) */
    char solver[32];            /* the solver that computed the expected currents */
} xb_deck_outcome;

/* Write the decks of s for chip (programmed or not) with dev's cells and po's netlist options. Without
 * all, the inputs are the test images (layer 1) or the behavioral model's activations of them, and
 * DECK.expected.csv holds the column currents of the same inputs through the worker pool with po
 * (atomically). XB_EINPUT names the option (--layer, --tile-index) or the inputs out of range. */
int xb_netlist_write_decks(const xb_deck_spec *s, const xb_chip *chip, const xb_device *dev,
                           const xb_pool_options *po, xb_deck_outcome *r, xb_error *err);

#endif
