"""Draws the app icons (PNG) from the same shapes as static/icons/icon.svg, without Pillow.

Run once after changing the design: `python -m diary.patient.icons`; the PNGs are committed.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

ICONS = Path(__file__).resolve().parents[2] / "static" / "icons"
BLUE, WHITE, LIGHT = (0x0B, 0x5C, 0xAD), (0xFF, 0xFF, 0xFF), (0x9C, 0xC3, 0xEE)
# (x, y, width, height, corner radius, colour) on the SVG's 64 × 64 grid, painted in order.
CAPSULE = [(14, 24, 36, 16, 8, WHITE), (32, 24, 18, 16, 8, LIGHT)]
SAMPLES = 3  # supersampling per axis: smooth edges without a graphics library


def _inside(x: float, y: float, rect) -> bool:
    left, top, width, height, radius, _colour = rect
    if not (left <= x <= left + width and top <= y <= top + height):
        return False
    # Distance from the nearest corner centre decides the rounded corners.
    cx = min(max(x, left + radius), left + width - radius)
    cy = min(max(y, top + radius), top + height - radius)
    return (x - cx) ** 2 + (y - cy) ** 2 <= radius ** 2


def draw(size: int, maskable: bool = False) -> bytes:
    """RGBA pixels of the icon at `size` px; a maskable icon fills the square to the edge."""
    background = (0, 0, 64, 64, 0 if maskable else 12, BLUE)
    shapes = [background, *CAPSULE]
    scale = 64 / size
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter type 0 for this row
        for px in range(size):
            totals, hits = [0, 0, 0], 0
            for sy in range(SAMPLES):
                for sx in range(SAMPLES):
                    x = (px + (sx + 0.5) / SAMPLES) * scale
                    y = (py + (sy + 0.5) / SAMPLES) * scale
                    colour = None
                    for shape in shapes:
                        if _inside(x, y, shape):
                            colour = shape[5]
                    if colour is not None:
                        hits += 1
                        for i in range(3):
                            totals[i] += colour[i]
            if hits:
                rows.extend(round(t / hits) for t in totals)
                rows.append(round(255 * hits / SAMPLES ** 2))
            else:
                rows.extend((0, 0, 0, 0))
    return bytes(rows)


def png(size: int, rgba: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rgba, 9))
            + chunk(b"IEND", b""))


def main() -> None:
    for name, size, maskable in (("icon-192.png", 192, False), ("icon-512.png", 512, False),
                                 ("maskable-512.png", 512, True)):
        (ICONS / name).write_bytes(png(size, draw(size, maskable)))
        print(name, (ICONS / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
