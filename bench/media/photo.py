"""photo.py -- what a phone adds to its JPEGs, for bench/media's input: an sRGB ICC profile and EXIF.

  python3 photo.py icc OUT.icc         an ICC v2 sRGB display profile (matrix and 1024-entry
                                       curves, 2.6 KB, the shape of the common "sRGB IEC61966-2.1")
  python3 photo.py exif IN.jpg OUT.jpg IN.jpg with its JFIF APP0 replaced by an EXIF APP1 as a
                                       camera writes it: Orientation 6 (rotate 90 degrees clockwise
                                       to view), make, model, dates, exposure and GPS position

Standard library only: the machine has no exiftool and no ICC files.
"""

import struct
import sys


def s15(v):
    return struct.pack(">i", round(v * 65536))


def icc_profile():
    def xyz(x, y, z):
        return b"XYZ \0\0\0\0" + s15(x) + s15(y) + s15(z)

    def srgb_curve(n=1024):
        out = []
        for i in range(n):
            v = i / (n - 1)
            lin = v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
            out.append(round(lin * 65535))
        return b"curv\0\0\0\0" + struct.pack(">I", n) + struct.pack(">%dH" % n, *out)

    desc_text = b"sRGB IEC61966-2.1 (bench/media)"
    desc = (b"desc\0\0\0\0" + struct.pack(">I", len(desc_text) + 1) + desc_text + b"\0"
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + bytes(67))
    trc = srgb_curve()
    tags = [  # (signature, data); the three curves share one block, as most sRGB profiles do
        (b"desc", desc),
        (b"cprt", b"text\0\0\0\0No copyright, use freely\0"),
        (b"wtpt", xyz(0.9505, 1.0, 1.0891)),
        (b"bkpt", xyz(0, 0, 0)),
        (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)),
        (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
        (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    table, body, placed = b"", b"", {}
    at = 128 + 4 + 12 * len(tags)
    for sig, data in tags:
        if data not in placed:
            placed[data] = at + len(body)
            body += data + bytes(-len(data) % 4)
        table += sig + struct.pack(">II", placed[data], len(data))
    size = at + len(body)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + b"APPL" + bytes(4) + bytes(8)
              + bytes(8) + struct.pack(">I", 0) + s15(0.9642) + s15(1.0) + s15(0.8249) + b"lcms"
              + bytes(44))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# TIFF field types: BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED.
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 1, 2, 3, 4, 5, 7


def ifd(entries, start):
    """One little-endian IFD at offset start, its values longer than 4 bytes after it."""
    fixed = 2 + 12 * len(entries) + 4
    head, data = struct.pack("<H", len(entries)), b""
    for tag, kind, value in sorted(entries):
        if kind == ASCII:
            raw, count = value.encode() + b"\0", len(value) + 1
        elif kind in (BYTE, UNDEFINED):
            raw, count = bytes(value), len(value)
        elif kind == SHORT:
            raw, count = struct.pack("<%dH" % len(value), *value), len(value)
        elif kind == LONG:
            raw, count = struct.pack("<%dI" % len(value), *value), len(value)
        else:
            raw, count = b"".join(struct.pack("<II", n, d) for n, d in value), len(value)
        if len(raw) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + raw.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, count, start + fixed + len(data))
            data += raw + bytes(len(raw) % 2)
    return head + struct.pack("<I", 0) + data


def exif_app1():
    when = "2026:11:21 12:34:56"
    gps = [
        (0x0000, BYTE, [2, 3, 0, 0]),
        (0x0001, ASCII, "N"),
        (0x0002, RATIONAL, [(48, 1), (51, 1), (2412, 100)]),
        (0x0003, ASCII, "E"),
        (0x0004, RATIONAL, [(2, 1), (17, 1), (4020, 100)]),
        (0x0005, BYTE, [0]),
        (0x0006, RATIONAL, [(3512, 100)]),
        (0x0007, RATIONAL, [(11, 1), (34, 1), (56, 1)]),
        (0x001D, ASCII, "2026:11:21"),
    ]
    exif = [
        (0x829A, RATIONAL, [(1, 250)]),
        (0x829D, RATIONAL, [(18, 10)]),
        (0x8827, SHORT, [100]),
        (0x9000, UNDEFINED, b"0232"),
        (0x9003, ASCII, when),
        (0x9004, ASCII, when),
        (0x920A, RATIONAL, [(55, 10)]),
        (0xA001, SHORT, [1]),
        (0xA002, LONG, [4000]),
        (0xA003, LONG, [3000]),
    ]
    ifd0 = [
        (0x010F, ASCII, "BenchPhone"),
        (0x0110, ASCII, "BenchPhone 12 MP"),
        (0x0112, SHORT, [6]),
        (0x011A, RATIONAL, [(72, 1)]),
        (0x011B, RATIONAL, [(72, 1)]),
        (0x0128, SHORT, [2]),
        (0x0131, ASCII, "bench/media"),
        (0x0132, ASCII, when),
        (0x8769, LONG, [0]),
        (0x8825, LONG, [0]),
    ]
    size0 = len(ifd(ifd0, 8))  # the pointers' values do not change the size
    exif_at = 8 + size0
    exif_ifd = ifd(exif, exif_at)
    gps_at = exif_at + len(exif_ifd)
    ifd0 = [e for e in ifd0 if e[0] not in (0x8769, 0x8825)] + [(0x8769, LONG, [exif_at]), (0x8825, LONG, [gps_at])]
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd(ifd0, 8) + exif_ifd + ifd(gps, gps_at)
    body = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body


def with_exif(jpeg):
    """jpeg with APP1 EXIF right after SOI and without its APP0 JFIF (cameras write no JFIF)."""
    assert jpeg[:2] == b"\xff\xd8", "not a JPEG"
    out, at = [b"\xff\xd8", exif_app1()], 2
    while True:
        marker = jpeg[at + 1]
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data
            out.append(jpeg[at:])
            return b"".join(out)
        (seglen,) = struct.unpack(">H", jpeg[at + 2 : at + 4])
        if marker not in (0xE0, 0xE1):
            out.append(jpeg[at : at + 2 + seglen])
        at += 2 + seglen


if __name__ == "__main__":
    if sys.argv[1:2] == ["icc"] and len(sys.argv) == 3:
        open(sys.argv[2], "wb").write(icc_profile())
    elif sys.argv[1:2] == ["exif"] and len(sys.argv) == 4:
        open(sys.argv[3], "wb").write(with_exif(open(sys.argv[2], "rb").read()))
    else:
        sys.exit(__doc__)
