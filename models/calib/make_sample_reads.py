#!/usr/bin/env python3
"""make_sample_reads: write a SYNTHETIC sample of measured IGVVA read currents (not a measurement).

The layout of models/calib/sample_reads.csv, the file `xbarsim program --calib-reads` reads: one header
row `level,i_read_A`, then one row per cell. 128 cells on each of the 8 IGVVA levels of
models/hfo2_1t1r.xml (10..80 uA read at 0.2 V), each drawn as target * exp(N(0, 0.04)) + N(0, 0.3 uA)
from Python's seeded Mersenne Twister (random.Random(14)): a lognormal spread of 4 % with an additive
read-noise floor, so neither a pure normal nor a pure lognormal fits it exactly. Replace it by your own
array's reads. Run: python3 models/calib/make_sample_reads.py > models/calib/sample_reads.csv
"""
import math
import random

TARGETS_A = [10e-6, 20e-6, 30e-6, 40e-6, 50e-6, 60e-6, 70e-6, 80e-6]
CELLS = 128
rng = random.Random(14)
print("level,i_read_A")
for level, target in enumerate(TARGETS_A):
    for _ in range(CELLS):
        i = target * math.exp(rng.gauss(0.0, 0.04)) + rng.gauss(0.0, 0.3e-6)
        print("%d,%.6e" % (level, max(i, 1e-9)))
