#!/usr/bin/env python3
"""What a reader sees of an SVG figure: renders it with rsvg-convert (librsvg2-bin) and
measures the rendering, so that a test checks the picture, not the markup.

  svg_boxes.py boxes FIGURE.svg            JSON: every <text> label's ink box, each label
                                           rendered alone: [{"text", "class", "box": [x0, y0, x1, y1]}]
  svg_boxes.py colour FIGURE.svg RRGGBB    JSON: the pixels of exactly that colour in the
                                           whole rendering: {"pixels", "rows", "box"}
  svg_boxes.py png FIGURE.svg OUT.png      the rendering itself, to look at

Boxes are in pixels of the SVG's own size (x to the right, y down); a pixel counts as ink
when its alpha is above 40 of 255 (the faint anti-aliasing fringe of a glyph is left out).
Standard library only (the PNG is decoded here, with zlib).
"""
import copy
import json
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib

SVG = "http://www.w3.org/2000/svg"
ET.register_namespace("", SVG)


def render(svg_bytes):
    """PNG bytes of an SVG, from rsvg-convert."""
    r = subprocess.run(["rsvg-convert", "-f", "png"], input=svg_bytes, capture_output=True)
    if r.returncode != 0:
        sys.exit("rsvg-convert failed: " + r.stderr.decode(errors="replace"))
    return r.stdout


def decode(png):
    """(width, height, bytes per pixel, rows) of an 8-bit RGBA or RGB, non-interlaced PNG.

    A row whose filtered bytes and predecessor are all zero is zero whatever its filter:
    it is taken as it is (most rows of a label rendered alone), so that only the rows
    with ink are unfiltered byte by byte."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, bpp = 8, b"", 0, 0, 4
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and colour in (2, 6) and interlace == 0, f"unsupported PNG (depth {depth}, colour {colour})"
            bpp = 4 if colour == 6 else 3
        elif kind == b"IDAT":
            idat += data
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev, prev_zero = [], bytearray(stride), True
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if prev_zero and not any(line):
            rows.append(line)
            prev = line
            continue
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev, prev_zero = line, not any(line)
    return width, height, bpp, rows


def ink_box(png):
    """The box of the pixels whose alpha is above 40 (a label rendered on transparency)."""
    w, h, bpp, rows = decode(png)
    x0 = y0 = 1 << 30
    x1 = y1 = -1
    for y, row in enumerate(rows):
        if not any(row):
            continue
        xs = [x for x in range(w) if row[x * bpp + 3] > 40]
        if xs:
            x0, x1, y0, y1 = min(x0, xs[0]), max(x1, xs[-1]), min(y0, y), y
    return [x0, y0, x1 + 1, y1 + 1] if y1 >= 0 else None


def text_of(el):
    return "".join(el.itertext())


def number(v, default):
    try:
        return float(str(v).replace("px", ""))
    except (TypeError, ValueError):
        return default


def boxes(path):
    """Every label rendered alone, all in one rsvg-convert run: label k is drawn in a
    slot of its own, a band of the canvas around its baseline (the whole canvas for a
    rotated label), slots stacked below each other; the ink found in a slot is mapped
    back to the figure's coordinates."""
    root = ET.parse(path).getroot()
    width = number(root.get("width"), 960)
    height = number(root.get("height"), 600)
    base = number(root.get("font-size"), 12)
    texts = list(root.iter(f"{{{SVG}}}text"))
    slots, offset = [], 0.0
    sheet = ET.Element(f"{{{SVG}}}svg", {"width": str(int(width)), "height": "0"})
    for el in texts:
        size = number(el.get("font-size"), base)
        if el.get("transform"):
            top, tall = 0.0, height
        else:
            top, tall = number(el.get("y"), 0) - 3 * size, 5 * size
        view = ET.SubElement(sheet, f"{{{SVG}}}svg", {"x": "0", "y": str(offset), "width": str(width), "height": str(tall),
                                                     "viewBox": f"0 {top} {width} {tall}", "overflow": "hidden"})
        g = ET.SubElement(view, f"{{{SVG}}}g", {k: v for k, v in root.attrib.items() if k in ("font-family", "font-size")})
        g.append(copy.deepcopy(el))
        slots.append((el, offset, top, tall))
        offset += tall + 2
    sheet.set("height", str(int(offset) + 1))
    w, h, bpp, rows = decode(render(ET.tostring(sheet)))
    out = []
    for el, off, top, tall in slots:
        x0 = y0 = 1 << 30
        x1 = y1 = -1
        for y in range(int(off), min(h, int(off + tall))):
            row = rows[y]
            if not any(row):
                continue
            xs = [x for x in range(w) if row[x * bpp + 3] > 40]
            if xs:
                x0, x1, y0, y1 = min(x0, xs[0]), max(x1, xs[-1]), min(y0, y), y
        if y1 < 0:
            continue
        if not el.get("transform") and (y0 <= int(off) or y1 >= int(off + tall) - 1):
            sys.exit(f"label {text_of(el)!r} is taller than its slot: enlarge the slot in svg_boxes.py")
        out.append({"text": text_of(el), "class": el.get("class", ""),
                    "box": [x0, y0 - off + top, x1 + 1, y1 + 1 - off + top]})
    return out


def colour(path, hexcolour):
    want = bytes(int(hexcolour[i:i + 2], 16) for i in (0, 2, 4))
    w, h, bpp, rows = decode(render(open(path, "rb").read()))
    n, ys, xs = 0, set(), []
    for y, row in enumerate(rows):
        for x in range(w):
            if row[x * bpp:x * bpp + 3] == want and (bpp == 3 or row[x * bpp + 3] == 255):
                n += 1
                ys.add(y)
                xs.append(x)
    return {"pixels": n, "rows": len(ys), "box": [min(xs), min(ys), max(xs) + 1, max(ys) + 1] if xs else None}


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "boxes" and len(sys.argv) == 3:
        print(json.dumps(boxes(sys.argv[2])))
    elif cmd == "colour" and len(sys.argv) == 4:
        print(json.dumps(colour(sys.argv[2], sys.argv[3].lstrip("#"))))
    elif cmd == "png" and len(sys.argv) == 4:
        open(sys.argv[3], "wb").write(render(open(sys.argv[2], "rb").read()))
    else:
        sys.exit(__doc__)
