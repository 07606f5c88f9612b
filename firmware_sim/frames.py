"""Camera frames carrying card QR codes, for the real zbar and zxing-cpp decoders.

Payloads are card QR strings (docs/cccd.md §5) of synthetic people (``firmware_sim.card.people``),
UTF-8 in QR byte mode, made by segno. A frame is a grey 640x480 scene: a textured background,
zero, one or two codes at a module size, rotation and perspective of their own, then blur,
sensor noise, reduced contrast and JPEG compression, drawn with numpy and OpenCV.

``generate_corpus(out_dir, count, seed)`` writes the frames and ``manifest.json`` (the expected
payloads of each frame, in hex and text, and the rendering parameters)::

    python -m firmware_sim.frames --out DIR --count 200 [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import segno

from firmware_sim.card.people import Person, make_people

Image = npt.NDArray[np.uint8]
WIDTH, HEIGHT = 640, 480


# -- payloads ---------------------------------------------------------------------------------

def card_qr_payload(person: Person, *, extra_fields: int = 0) -> bytes:
    """The card QR of a synthetic person, UTF-8 (``ID|old ID|name|DOB|sex|address|issued``).

    ``extra_fields`` empty fields are appended, as on cards issued from 2024.
    """
    fields = [
        person.id_number,
        person.old_id or "",
        person.full_name,
        person.dob_qr,
        person.sex,
        person.residence,
        person.issue_date.strftime("%d%m%Y"),
    ]
    return "|".join(fields + [""] * extra_fields).encode("utf-8")


def synthetic_payloads(count: int, seed: int = 0) -> list[bytes]:
    """``count`` card QR payloads of synthetic people; about one in five has 2024 extras."""
    rng = random.Random(seed ^ 0x51C0DE)
    return [card_qr_payload(p, extra_fields=4 if rng.random() < 0.2 else 0)
            for p in make_people(count, seed)]


# -- rendering --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CodeParams:
    """One QR code in a frame: size of a module in pixels, where, rotated and skewed how."""

    payload: bytes
    module_px: float = 4.0
    center: tuple[float, float] = (WIDTH / 2, HEIGHT / 2)
    angle_deg: float = 0.0
    perspective: float = 0.0  # corner jitter as a fraction of the code's side


@dataclass(frozen=True, slots=True)
class FrameParams:
    """A whole frame: its codes and the camera's degradations."""

    codes: tuple[CodeParams, ...] = ()
    width: int = WIDTH
    height: int = HEIGHT
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    contrast: float = 1.0
    jpeg_quality: int | None = None  # None: PNG
    seed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Rendering parameters for the manifest (payloads as hex)."""
        d = asdict(self)
        d["codes"] = [dict(c, payload=c["payload"].hex()) for c in d["codes"]]
        return d


def qr_modules(payload: bytes, border: int = 4) -> npt.NDArray[np.bool_]:
    """The QR matrix (True = dark) of ``payload`` in byte mode, error level M, with a quiet
    zone of ``border`` modules."""
    qr = segno.make_qr(payload, mode="byte", error="m", boost_error=False)
    rows = list(qr.matrix_iter(scale=1, border=border))
    return np.array(rows, dtype=bool)


def code_side_px(code: CodeParams) -> float:
    """The side of the code (quiet zone included) in pixels before perspective."""
    return float(qr_modules(code.payload).shape[0]) * code.module_px


def _background(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    base = float(rng.uniform(90, 200))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    gx, gy = rng.uniform(-0.08, 0.08, size=2)
    gradient = gx * (xx - width / 2) + gy * (yy - height / 2)
    small = rng.normal(0, 25, size=(height // 32 + 1, width // 32 + 1)).astype(np.float32)
    texture = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    out: npt.NDArray[np.float32] = (base + gradient + texture).astype(np.float32)
    return out


def _place_code(canvas: npt.NDArray[np.float32], code: CodeParams,
                rng: np.random.Generator) -> None:
    modules = qr_modules(code.payload)
    side = modules.shape[0] * code.module_px
    size = max(round(side), modules.shape[0])
    sheet = np.where(modules, 20.0, 235.0).astype(np.float32)
    sheet = np.asarray(cv2.resize(sheet, (size, size), interpolation=cv2.INTER_NEAREST),
                       dtype=np.float32)
    half = size / 2
    angle = math.radians(code.angle_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    cx, cy = code.center
    src = np.array([[0, 0], [size, 0], [size, size], [0, size]], dtype=np.float32)
    dst = []
    for x, y in src:
        dx, dy = x - half, y - half
        jx, jy = rng.uniform(-code.perspective, code.perspective, size=2) * size
        dst.append([cx + cos * dx - sin * dy + jx, cy + sin * dx + cos * dy + jy])
    matrix = cv2.getPerspectiveTransform(src, np.array(dst, dtype=np.float32))
    h, w = canvas.shape
    warped = cv2.warpPerspective(sheet, matrix, (w, h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones_like(sheet), matrix, (w, h), flags=cv2.INTER_LINEAR)
    canvas *= 1.0 - mask
    canvas += warped * mask


def render_frame(params: FrameParams) -> Image:
    """Draw a grey frame (uint8, height x width) as the parameters say."""
    rng = np.random.default_rng(params.seed)
    canvas = _background(rng, params.width, params.height)
    for code in params.codes:
        _place_code(canvas, code, rng)
    mean = float(canvas.mean())
    canvas = (canvas - mean) * params.contrast + mean
    if params.blur_sigma > 0:
        canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), params.blur_sigma),
                            dtype=np.float32)
    if params.noise_sigma > 0:
        canvas += rng.normal(0, params.noise_sigma, size=canvas.shape).astype(np.float32)
    out: Image = np.clip(canvas, 0, 255).astype(np.uint8)
    return out


def write_frame(path: Path, params: FrameParams) -> Path:
    """Render and write one frame; PNG unless ``jpeg_quality`` is set (then ``.jpg``)."""
    image = render_frame(params)
    if params.jpeg_quality is not None:
        path = path.with_suffix(".jpg")
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, params.jpeg_quality])
    else:
        path = path.with_suffix(".png")
        ok = cv2.imwrite(str(path), image)
    if not ok:
        raise OSError(f"cannot write frame {path}")
    return path


def random_frame(rng: random.Random, payloads: Sequence[bytes]) -> FrameParams:
    """A frame with the given codes (0, 1 or 2) at random but decodable-looking poses."""
    n = len(payloads)
    codes = []
    for i, payload in enumerate(payloads):
        modules = qr_modules(payload).shape[0]
        region_w = WIDTH / max(n, 1)
        max_px = min(region_w, HEIGHT) / (modules * 1.5)
        module_px = min(rng.uniform(2.2, 6.0), max_px)
        side = modules * module_px
        reach = side * 0.75
        cx = rng.uniform(region_w * i + reach, region_w * (i + 1) - reach)
        cy = rng.uniform(reach, HEIGHT - reach)
        codes.append(CodeParams(
            payload=payload,
            module_px=round(module_px, 2),
            center=(round(cx, 1), round(cy, 1)),
            angle_deg=round(rng.uniform(-180, 180) if rng.random() < 0.5 else
                            rng.uniform(-15, 15), 1),
            perspective=round(rng.uniform(0, 0.08), 3),
        ))
    return FrameParams(
        codes=tuple(codes),
        blur_sigma=round(rng.choice([0.0, 0.0, rng.uniform(0.4, 1.6)]), 2),
        noise_sigma=round(rng.uniform(0, 14), 1),
        contrast=round(rng.uniform(0.3, 1.0), 2),
        jpeg_quality=rng.choice([None, None, rng.randint(40, 90)]),
        seed=rng.randrange(2**31),
    )


@dataclass
class Manifest:
    """What :func:`generate_corpus` wrote: per frame, the file and its expected payloads."""

    seed: int
    frames: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The manifest as written to ``manifest.json``."""
        return {"version": 1, "seed": self.seed, "count": len(self.frames),
                "frames": self.frames}


def frame_entry(path: Path, params: FrameParams) -> dict[str, Any]:
    """One manifest entry (payloads in hex and, being UTF-8, as text)."""
    payloads = [c.payload for c in params.codes]
    return {
        "file": path.name,
        "payloads_hex": [p.hex() for p in payloads],
        "texts": [p.decode("utf-8") for p in payloads],
        "params": params.to_json(),
    }


def generate_corpus(out_dir: str | Path, count: int, seed: int = 0) -> Manifest:
    """Write ``count`` frames and ``manifest.json`` into ``out_dir``: about 80 % with one code,
    10 % with two, 10 % with none. Reproducible from ``seed``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    people_payloads = synthetic_payloads(count * 2 + 2, seed)
    manifest = Manifest(seed=seed)
    next_payload = 0
    for index in range(count):
        roll = rng.random()
        n = 0 if roll < 0.1 else 2 if roll < 0.2 else 1
        payloads = people_payloads[next_payload:next_payload + n]
        next_payload += n
        params = random_frame(rng, payloads)
        path = write_frame(out / f"frame_{index:04d}", params)
        manifest.frames.append(frame_entry(path, params))
    (out / "manifest.json").write_text(
        json.dumps(manifest.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    return manifest


def write_sequence(out_dir: str | Path, frames: Sequence[Sequence[bytes]], seed: int = 0,
                   *, module_px: float = 4.0) -> list[Path]:
    """Frames as a camera would see them in turn (``frames[i]`` = the payloads in view in frame
    i), written ``seq_0000.png``...; lightly degraded so that every code decodes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for index, payloads in enumerate(frames):
        n = max(len(payloads), 1)
        codes = tuple(
            CodeParams(payload=p, module_px=module_px if n == 1 else module_px * 0.8,
                       center=(WIDTH * (2 * i + 1) / (2 * n) + rng.uniform(-8, 8),
                               HEIGHT / 2 + rng.uniform(-8, 8)),
                       angle_deg=rng.uniform(-10, 10))
            for i, p in enumerate(payloads))
        params = FrameParams(codes=codes, noise_sigma=3.0, contrast=0.9,
                             seed=rng.randrange(2**31))
        paths.append(write_frame(out / f"seq_{index:04d}", params))
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m firmware_sim.frames --out DIR --count N [--seed S]``."""
    parser = argparse.ArgumentParser(prog="python -m firmware_sim.frames",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    manifest = generate_corpus(args.out, args.count, args.seed)
    codes = sum(len(f["payloads_hex"]) for f in manifest.frames)
    sys.stdout.write(json.dumps({"out": str(args.out), "frames": len(manifest.frames),
                                 "codes": codes, "seed": args.seed}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
