#!/usr/bin/env python3
"""Counts pixels of given colours in a PNG (8-bit RGB or RGBA, as Chromium writes), for the
report's screenshot test. Usage: png_colors.py FILE RRGGBB... ; prints JSON
{"width":W,"height":H,"counts":{"RRGGBB":N,...},"distinct":D}. Standard library only."""
import json, struct, sys, zlib

def decode(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), "unsupported PNG format"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(height):
        f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line)); prev = line
    return width, height, bpp, rows

width, height, bpp, rows = decode(sys.argv[1])
wanted = {c.lower(): tuple(int(c[k:k + 2], 16) for k in (0, 2, 4)) for c in sys.argv[2:]}
counts = {c: 0 for c in wanted}
distinct = set()
for row in rows:
    for x in range(0, len(row), bpp):
        px = (row[x], row[x + 1], row[x + 2])
        if len(distinct) < 5000: distinct.add(px)
        for name, rgb in wanted.items():
            if all(abs(px[k] - rgb[k]) <= 6 for k in range(3)):
                counts[name] += 1
print(json.dumps({"width": width, "height": height, "counts": counts, "distinct": len(distinct)}))
