#!/usr/bin/env python3
"""Draws Natter's app icon (a speech bubble on a rounded teal square) into icons/*.png.

Pure Python (zlib + struct) so it runs anywhere; 4x4 supersampling smooths the edges.
Run: python3 scripts/make-icons.py
"""
import math
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(__file__), "..", "icons")


def inside_rounded(x, y, x0, y0, x1, y1, r):
    cx = min(max(x, x0 + r), x1 - r)
    cy = min(max(y, y0 + r), y1 - r)
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r and x0 <= x <= x1 and y0 <= y <= y1


def inside_tail(x, y):
    # A triangle under the bubble's lower left.
    ax, ay, bx, by, cx, cy = 0.30, 0.62, 0.44, 0.62, 0.26, 0.80
    d = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
    a = ((by - cy) * (x - cx) + (cx - bx) * (y - cy)) / d
    b = ((cy - ay) * (x - cx) + (ax - cx) * (y - cy)) / d
    return a >= 0 and b >= 0 and a + b <= 1


def pixel(x, y):
    """RGBA of the icon at unit coordinates (x, y)."""
    if not inside_rounded(x, y, 0.04, 0.04, 0.96, 0.96, 0.22):
        return (0, 0, 0, 0)
    t = (x + y) / 2
    bg = (int(18 + 20 * t), int(163 - 40 * t), int(184 - 20 * t))
    if inside_rounded(x, y, 0.20, 0.24, 0.80, 0.66, 0.14) or inside_tail(x, y):
        for dx in (0.36, 0.50, 0.64):
            if (x - dx) ** 2 + (y - 0.45) ** 2 <= 0.045 ** 2:
                return bg + (255,)
        return (255, 255, 255, 255)
    return bg + (255,)


def render(size):
    rows = []
    n = 4
    for j in range(size):
        row = bytearray([0])
        for i in range(size):
            acc = [0, 0, 0, 0]
            for sj in range(n):
                for si in range(n):
                    p = pixel((i + (si + 0.5) / n) / size, (j + (sj + 0.5) / n) / size)
                    acc[0] += p[0] * p[3]
                    acc[1] += p[1] * p[3]
                    acc[2] += p[2] * p[3]
                    acc[3] += p[3]
            a = acc[3]
            if a:
                row += bytes([acc[0] // a, acc[1] // a, acc[2] // a, a // (n * n)])
            else:
                row += bytes(4)
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, size in [("32x32.png", 32), ("128x128.png", 128), ("128x128@2x.png", 256), ("icon.png", 512)]:
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(render(size))
        print("wrote", name)
