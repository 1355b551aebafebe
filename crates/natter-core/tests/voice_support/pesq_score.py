"""PESQ wideband MOS-LQO of a degraded 16 kHz WAV against its reference (both mono, 16-bit).

Usage: python3 pesq_score.py REF.wav DEG.wav  -> prints the score. Exits non-zero when numpy or
the `pesq` package is missing, so the Rust caller falls back to its own scores.
"""

import sys
import wave

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path, "rb") as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0


ref, deg = read(sys.argv[1]), read(sys.argv[2])
n = min(len(ref), len(deg))
print(f"{pesq(16000, ref[:n], deg[:n], 'wb'):.3f}")
