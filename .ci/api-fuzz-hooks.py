"""Schemathesis hooks of .ci/api-fuzz.sh (loaded through SCHEMATHESIS_HOOKS).

The OpenAPI document types the upload and render bodies as binary strings, and random bytes
are almost never an image: left alone, Schemathesis sends only junk bodies, and only the
refusals (400, 413, 415, 422) are ever exercised. So about half of the
cases of those operations carry an image instead, sent raw or as the multipart field `file`:
  - a sample (JPEG, PNG, GIF, WebP) from the directory FUZZ_IMAGES, as is;
  - a PNG made here of generated size, colour type and pixels (new bytes: a new image, 201);
  - a sample truncated, or with a few bytes overwritten, for the decoders' error paths.
Uploads are then stored (and the stateful phase follows their links) and renders run the
engine with generated specs. The junk bodies stay: refusing them with problem+json is part of
what is checked.

One check is added: an image response's bytes are the format its Content-Type names (the
document types them `image/*`, which Schemathesis cannot validate itself).

Run as a program, it writes the two PNG samples the script seeds:
  python3 .ci/api-fuzz-hooks.py DIR
"""

import os
import pathlib
import struct
import sys
import zlib

# Bytes per pixel of the PNG colour types made here: gray, RGB, gray+alpha, RGBA.
CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def png(width, height, color_type, pixels):
    """A PNG of 8-bit samples; `pixels` holds the rows, top to bottom, without filter bytes."""
    stride = width * CHANNELS[color_type]
    rows = b"".join(b"\x00" + pixels[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def write_samples(directory):
    # 96x64 RGBA: a gradient with a translucent pattern; 16x40 gray.
    rgba = bytes(
        value
        for y in range(64)
        for x in range(96)
        for value in (x * 255 // 95, y * 255 // 63, (x ^ y) & 255, 128 + (x + y) % 128)
    )
    gray = bytes((x * 16 + y * 6) & 255 for y in range(40) for x in range(16))
    pathlib.Path(directory, "rgba.png").write_bytes(png(96, 64, 6, rgba))
    pathlib.Path(directory, "gray.png").write_bytes(png(16, 40, 0, gray))


if __name__ == "__main__":
    write_samples(sys.argv[1])
    sys.exit(0)

import schemathesis  # noqa: E402 (not needed to write the samples)
from hypothesis import strategies as st  # noqa: E402

SAMPLES = [path.read_bytes() for path in sorted(pathlib.Path(os.environ["FUZZ_IMAGES"]).iterdir())]
# The operations whose body is an image, raw or as the multipart field `file`.
IMAGE_BODIES = {("POST", "/v1/images"), ("POST", "/v1/render")}


@st.composite
def generated_png(draw):
    width = draw(st.integers(1, 48))
    height = draw(st.integers(1, 48))
    color_type = draw(st.sampled_from(sorted(CHANNELS)))
    pattern = draw(st.binary(min_size=1, max_size=64))
    size = width * height * CHANNELS[color_type]
    return png(width, height, color_type, (pattern * (size // len(pattern) + 1))[:size])


@st.composite
def damaged_sample(draw):
    sample = draw(st.sampled_from(SAMPLES))
    if draw(st.booleans()):
        return sample[: draw(st.integers(0, len(sample) - 1))]
    position = draw(st.integers(0, len(sample) - 1))
    patch = draw(st.binary(min_size=1, max_size=8))
    return sample[:position] + patch + sample[position + len(patch) :]


IMAGES = st.one_of(st.sampled_from(SAMPLES), generated_png(), damaged_sample())


def with_image(case, image):
    if case.media_type and case.media_type.startswith("multipart/"):
        case.body = {"file": image}
    else:
        case.body = image
    return case


@schemathesis.hook
def flatmap_case(context, case):
    if (case.method.upper(), case.operation.path) not in IMAGE_BODIES:
        return st.just(case)
    return st.one_of(st.just(case), IMAGES.map(lambda image: with_image(case, image)))


# The first bytes of each format the service writes.
SIGNATURES = {
    "image/jpeg": lambda data: data.startswith(b"\xff\xd8\xff"),
    "image/png": lambda data: data.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda data: data[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda data: data[:4] == b"RIFF" and data[8:12] == b"WEBP",
    "image/avif": lambda data: data[4:8] == b"ftyp" and b"avif" in data[8:32],
}


@schemathesis.check
def image_matches_content_type(ctx, response, case):
    """An image response is the format its Content-Type names."""
    if response.status_code != 200:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = (content_type[0] if isinstance(content_type, list) else content_type).split(";")[0].strip()
    if not content_type.startswith("image/"):
        return None
    matches = SIGNATURES.get(content_type)
    if matches is None:
        raise AssertionError(f"image response with an unexpected Content-Type `{content_type}`")
    if not matches(response.content):
        raise AssertionError(f"the body is not {content_type}: it starts with {response.content[:16]!r}")
    return None
