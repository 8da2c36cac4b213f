"""medialib.py -- images for the upload tests, made on the fly with Pillow, and checks of what
the store holds."""
import functools
import io
import os
import struct
import uuid
import zlib

from PIL import Image, ImageCms, JpegImagePlugin

from conftest import VAR

MEDIA_DIR = os.path.join(VAR, "media")
RED, BLUE = (220, 20, 20), (20, 20, 220)
VARIANTS = {"thumb": 150, "small": 320, "medium": 640, "large": 1080}


@functools.lru_cache(maxsize=None)
def icc_profile():
    """A real ICC profile (sRGB, made by LittleCMS) to follow through the pipeline; made once
    (its header holds the time it was made)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def upright(width, height):
    """The picture as it should be seen: a red block at the top left, blue elsewhere."""
    im = Image.new("RGB", (width, height), BLUE)
    im.paste(RED, (0, 0, width // 3, height // 3))
    return im


def exif_with_gps(orientation=1):
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x0132] = "2026:11:21 10:00:00"  # DateTime
    gps = exif.get_ifd(0x8825)
    gps[1], gps[2] = "N", (52.0, 22.0, 12.5)
    gps[3], gps[4] = "E", (4.0, 54.0, 3.25)
    return exif


def jpeg(width=1600, height=1200, orientation=1, quality=90, icc=True, comment=True):
    """A JPEG that displays as upright(width, height): stored rotated so that the EXIF
    orientation (6: turn 90 degrees clockwise to display) brings it back."""
    im = upright(width, height)
    if orientation == 6:
        im = im.transpose(Image.Transpose.ROTATE_90)  # counter-clockwise: stored sideways
    elif orientation != 1:
        raise ValueError("orientation 1 or 6")
    out = io.BytesIO()
    kw = {"quality": quality, "exif": exif_with_gps(orientation).tobytes()}
    if icc:
        kw["icc_profile"] = icc_profile()
    if comment:
        kw["comment"] = b"shot at home, 52.37N 4.90E"
    im.save(out, "JPEG", **kw)
    return out.getvalue()


def png(width=400, height=300, alpha=False, text=True):
    im = upright(width, height)
    if alpha:
        im = im.convert("RGBA")
        im.putalpha(128)
    out = io.BytesIO()
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    if text:
        info.add_text("Comment", "private note")
        info.add_text("Author", "someone")
    im.save(out, "PNG", pnginfo=info)
    return out.getvalue()


def webp(width=500, height=400):
    out = io.BytesIO()
    upright(width, height).save(out, "WEBP", quality=90, exif=exif_with_gps().tobytes(), icc_profile=icc_profile())
    return out.getvalue()


def heic(width=640, height=480):
    import pillow_heif
    pillow_heif.register_heif_opener()
    out = io.BytesIO()
    upright(width, height).save(out, "HEIF", quality=90)
    return out.getvalue()


def png_bomb(side=20000):
    """A side x side 1-bit PNG of zeros: about 50 KB on the wire, 400 megapixels decoded."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    raw = b"".join(z.compress(row * 1000) for _ in range(side // 1000)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def multipart(parts, boundary=None):
    """A multipart/form-data body from [(name, filename or None, content type or None, bytes)].
    Returns (content type, body)."""
    boundary = boundary or "----photo" + uuid.uuid4().hex
    out = b""
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", out


def stored_files():
    """Every file of the local store (relative paths)."""
    found = set()
    for root, _dirs, files in os.walk(MEDIA_DIR):
        for f in files:
            found.add(os.path.relpath(os.path.join(root, f), MEDIA_DIR))
    return found


def open_image(data):
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def jpeg_sampling(im):
    """0: 4:4:4 (no chroma subsampling), 1: 4:2:2, 2: 4:2:0."""
    return JpegImagePlugin.get_sampling(im)


def near(c, want, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(c[:3], want))
