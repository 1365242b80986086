"""Synthetic demo and test images with known objects, plus their ground truth as a Custom Labels manifest.

The emulated Custom Labels model predicts from this ground truth (with noise), and tests and the demo
measure the loop against it, so every box here must be exactly where the object is drawn, in the
coordinates of the image *as displayed* (after its EXIF orientation), like Rekognition's own.

`source-ref` values in `truth.manifest` are paths relative to the output folder: whoever uploads the
images to S3 turns them into `s3://bucket/<prefix>/<path>`.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import random
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageDraw

from localcloud.data.imaging import (
    DISPLAY_TRANSPOSE,
    add_grain,
    background,
    displayed_size,
    gradient,
    jitter_colour,
    save_oriented_jpeg,
)
from localcloud.data.truth import CLASSIFICATION_TYPE, DETECTION_TYPE, TruthBox

logger = logging.getLogger(__name__)

Task = Literal["detection", "classification"]

DETECTION_CLASSES: tuple[str, ...] = ("circle", "square", "triangle")
CLASSIFICATION_LABELS: tuple[str, ...] = ("day", "night", "striped")
MANIFEST_NAME = "truth.manifest"
TRUTH_ATTRIBUTE = "truth"
# Fixed rather than "now": the manifest of a seed must be byte-identical from run to run.
CREATION_DATE = "2025-01-01T00:00:00.000000"
JOB_NAME = "labeling-job/synthetic-truth"
DEPTH = 3  # Custom Labels requires `depth` and ignores it.

MIN_OBJECT_PX = 16  # Custom Labels rejects boxes that become < 1 px after its resize to 1280 px.
MAX_OBJECTS = 4
EXIF_ORIENTATIONS = (3, 6, 8)  # the ones cameras and phones actually write
STRIPED_PROBABILITY = 0.35
PNG_COMPRESS_LEVEL = 1  # noisy pixels barely compress; level 1 is several times faster than 6
JPEG_QUALITY = 88
# Below this many images a process pool costs more (start-up, imports) than it saves.
PARALLEL_THRESHOLD = 300

# Base fill per detection class: saturated, far from the muted backgrounds, so the shapes are obvious.
_CLASS_COLOURS: dict[str, tuple[int, int, int]] = {
    "circle": (215, 40, 45),
    "square": (35, 85, 225),
    "triangle": (40, 175, 60),
}


@dataclass(frozen=True)
class _ImagePlan:
    """What to write for one image; decided up front so workers need no shared state."""

    index: int
    path: str
    fmt: Literal["JPEG", "PNG"]
    orientation: int  # 1 = no EXIF written
    empty: bool


# ---------------------------------------------------------------------------------------------------
# Manifest lines


def detection_record(source_ref: str, size: tuple[int, int], boxes: Sequence[TruthBox]) -> dict[str, Any]:
    """A Custom Labels object-detection line (docs/aws-facts.md §2.1); the class map is the same on
    every line so class ids are stable across the manifest."""
    class_ids = {name: i for i, name in enumerate(DETECTION_CLASSES)}
    extra = sorted({b.label for b in boxes} - class_ids.keys())
    for name in extra:  # labels outside the demo classes still get an id
        class_ids[name] = len(class_ids)
    return {
        "source-ref": source_ref,
        TRUTH_ATTRIBUTE: {
            "image_size": [{"width": size[0], "height": size[1], "depth": DEPTH}],
            "annotations": [
                {
                    "class_id": class_ids[b.label],
                    "left": b.left,
                    "top": b.top,
                    "width": b.width,
                    "height": b.height,
                }
                for b in boxes
            ],
        },
        f"{TRUTH_ATTRIBUTE}-metadata": {
            "objects": [{"confidence": 1.0} for _ in boxes],
            "class-map": {str(i): name for name, i in class_ids.items()},
            "type": DETECTION_TYPE,
            "human-annotated": "yes",
            "creation-date": CREATION_DATE,
            "job-name": JOB_NAME,
        },
    }


def classification_record(source_ref: str, labels: Sequence[str]) -> dict[str, Any]:
    """A Custom Labels image-level line (docs/aws-facts.md §2.2): one attribute/metadata pair per
    label (`truth0`, `truth1`, ...), which is how Custom Labels takes multi-label images."""
    record: dict[str, Any] = {"source-ref": source_ref}
    for i, label in enumerate(labels):
        attribute = f"{TRUTH_ATTRIBUTE}{i}"
        record[attribute] = CLASSIFICATION_LABELS.index(label) if label in CLASSIFICATION_LABELS else i
        record[f"{attribute}-metadata"] = {
            "class-name": label,
            "confidence": 1.0,
            "type": CLASSIFICATION_TYPE,
            "human-annotated": "yes",
            "creation-date": CREATION_DATE,
            "job-name": JOB_NAME,
        }
    return record


def dumps_line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------
# Drawing


def _shape_mask(label: str, width: int, height: int, rng: random.Random) -> Image.Image:
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    if label == "circle":
        draw.ellipse((0, 0, width - 1, height - 1), fill=255)
    elif label == "square":
        draw.rectangle((0, 0, width - 1, height - 1), fill=255)
    else:
        apex = rng.randint(0, width - 1)
        draw.polygon([(apex, 0), (0, height - 1), (width - 1, height - 1)], fill=255)
        # Point the apex any way; quarter turns only when they keep the mask's size.
        turns = (
            list(DISPLAY_TRANSPOSE.values())
            if width == height
            else [
                Image.Transpose.FLIP_LEFT_RIGHT,
                Image.Transpose.FLIP_TOP_BOTTOM,
                Image.Transpose.ROTATE_180,
            ]
        )
        mask = mask.transpose(rng.choice(turns))
    return mask


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int], gap: int) -> bool:
    return not (a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1])


def draw_objects(image: Image.Image, count: int, rng: random.Random) -> list[TruthBox]:
    """Draw up to `count` non-overlapping shapes; each box is the tight bounding box of the drawn pixels,
    read back from the shape's own mask, so it is exact whatever the shape."""
    width, height = image.size
    short = min(width, height)
    low, high = max(MIN_OBJECT_PX, short // 12), max(MIN_OBJECT_PX, short // 3)
    boxes: list[TruthBox] = []
    taken: list[tuple[int, int, int, int]] = []
    if short < MIN_OBJECT_PX + 2:
        return boxes
    for _ in range(count):
        label = rng.choice(DETECTION_CLASSES)
        side = rng.randint(low, high)
        # Squares and circles stay regular (their names say so); triangles get some aspect variety.
        other = side if label != "triangle" else rng.randint(max(MIN_OBJECT_PX, side * 2 // 3), side)
        obj_w, obj_h = (side, other) if rng.random() < 0.5 else (other, side)
        obj_w, obj_h = min(obj_w, width - 2), min(obj_h, height - 2)
        for _attempt in range(30):  # rejection sampling: few objects, plenty of room
            x, y = rng.randint(1, width - obj_w - 1), rng.randint(1, height - obj_h - 1)
            if not any(_overlaps((x, y, x + obj_w, y + obj_h), t, 4) for t in taken):
                break
        else:
            continue
        mask = _shape_mask(label, obj_w, obj_h, rng)
        bbox = mask.getbbox()
        if bbox is None or bbox[2] - bbox[0] < MIN_OBJECT_PX or bbox[3] - bbox[1] < MIN_OBJECT_PX:
            continue
        image.paste(jitter_colour(_CLASS_COLOURS[label], rng), (x, y, x + obj_w, y + obj_h), mask)
        taken.append((x, y, x + obj_w, y + obj_h))
        boxes.append(TruthBox(label, x + bbox[0], y + bbox[1], bbox[2] - bbox[0], bbox[3] - bbox[1]))
    return boxes


def _sky(
    rng: random.Random, top: tuple[int, int, int], bottom: tuple[int, int, int]
) -> list[tuple[int, int, int]]:
    # Darker/paler at the top, as skies are; the jitter keeps every scene a little different.
    return [
        jitter_colour(top, rng),
        jitter_colour(top, rng),
        jitter_colour(bottom, rng),
        jitter_colour(bottom, rng),
    ]


def _draw_scene(size: tuple[int, int], labels: Sequence[str], rng: random.Random) -> Image.Image:
    """Day: pale sky and a sun; night: dark sky, stars and a moon; striped: translucent diagonal bands."""
    width, height = size
    if "night" in labels:
        image = gradient(size, _sky(rng, (10, 12, 40), (35, 40, 80)))
        draw = ImageDraw.Draw(image)
        for _ in range(max(10, width * height // 4000)):
            x, y, r = rng.randrange(width), rng.randrange(height), rng.randint(1, 2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(235, 235, 210))
        sun_colour = (225, 225, 200)
    else:
        image = gradient(size, _sky(rng, (120, 180, 240), (225, 235, 250)))
        sun_colour = (250, 210, 60)
    draw = ImageDraw.Draw(image)
    radius = max(4, min(width, height) // rng.randint(8, 12))
    cx, cy = rng.randint(radius, width - radius), rng.randint(radius, height - radius)
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=sun_colour)
    if "striped" in labels:
        overlay = Image.new("RGB", size, (255, 255, 255) if "night" in labels else (40, 40, 40))
        stripes = Image.new("L", size, 0)
        band = max(4, min(width, height) // 16)
        stripe_draw = ImageDraw.Draw(stripes)
        for offset in range(-height, width, band * 2):
            stripe_draw.polygon(
                [
                    (offset, 0),
                    (offset + band, 0),
                    (offset + band + height, height),
                    (offset + height, height),
                ],
                fill=110,
            )
        image = Image.composite(overlay, image, stripes)
    return add_grain(image, rng, 0.08)


# ---------------------------------------------------------------------------------------------------
# Generation


def _relative_path(index: int, ext: str) -> str:
    """`img-00001.jpg`, with a few in sub folders and two whose names need care in S3 keys and URLs."""
    stem = f"img-{index:05d}"
    if index == 2:
        return f"{stem} copy.{ext}"  # a space
    if index == 3:
        return f"{stem}-été-猫.{ext}"  # non-ASCII, NFC as typed
    if index % 50 == 9:
        return f"sub/deeper/{stem}.{ext}"
    if index % 10 == 4:
        return f"sub/{stem}.{ext}"
    return f"{stem}.{ext}"


def _pick(rng: random.Random, population: Sequence[int], fraction: float) -> set[int]:
    # Exact counts (not a coin per image) so small runs still get what the caller asked for.
    return set(rng.sample(list(population), round(len(population) * fraction)))


def _plan(
    count: int, task: Task, seed: int, empty_fraction: float, exif_fraction: float, png_fraction: float
) -> list[_ImagePlan]:
    rng = random.Random(f"{seed}/{task}/plan")
    indices = range(1, count + 1)
    pngs = _pick(rng, indices, png_fraction)
    jpegs = [i for i in indices if i not in pngs]
    oriented = _pick(rng, jpegs, exif_fraction)
    # Image-level tasks need >= 1 label per image, so there is no "empty" image for classification.
    empties = _pick(rng, indices, empty_fraction) if task == "detection" else set()
    plans = []
    for i in indices:
        fmt: Literal["JPEG", "PNG"] = "PNG" if i in pngs else "JPEG"
        plans.append(
            _ImagePlan(
                index=i,
                path=_relative_path(i, "png" if fmt == "PNG" else "jpg"),
                fmt=fmt,
                orientation=rng.choice(EXIF_ORIENTATIONS) if i in oriented else 1,
                empty=i in empties,
            )
        )
    return plans


def _write_image(out_dir: Path, task: Task, seed: int, size: tuple[int, int], plan: _ImagePlan) -> str:
    """Render and save one image; return its manifest line. Runs in worker processes."""
    # A string seed is hashed the same way in every process, so parallel output equals serial output.
    rng = random.Random(f"{seed}/{task}/{plan.index}")
    shown = displayed_size(size, plan.orientation)
    if task == "detection":
        image = background(shown, rng)
        boxes = [] if plan.empty else draw_objects(image, rng.randint(1, MAX_OBJECTS), rng)
        record = detection_record(plan.path, shown, boxes)
    else:
        labels = [rng.choice(("day", "night"))]
        if rng.random() < STRIPED_PROBABILITY:
            labels.append("striped")
        image = _draw_scene(shown, labels, rng)
        record = classification_record(plan.path, labels)
    target = out_dir / plan.path
    target.parent.mkdir(parents=True, exist_ok=True)
    if plan.fmt == "PNG":
        image.save(target, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    else:
        save_oriented_jpeg(
            image, target, plan.orientation if plan.orientation != 1 else None, quality=JPEG_QUALITY
        )
    return dumps_line(record)


def _check_args(count: int, size: tuple[int, int], fractions: dict[str, float]) -> None:
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (width, height) in pixels, got {size}")
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be within [0, 1], got {value}")


def generate(
    out_dir: Path,
    count: int,
    *,
    task: Task = "detection",
    seed: int = 7,
    size: tuple[int, int] = (640, 480),
    empty_fraction: float = 0.1,
    exif_fraction: float = 0.0,
    png_fraction: float = 0.2,
    workers: int | None = None,
) -> Path:
    """Write `count` synthetic images under out_dir and their ground truth to `out_dir/truth.manifest`.

    `size` is the stored (sensor) size; images with an EXIF orientation of 6 or 8 display turned, and
    the manifest gives their displayed size. `empty_fraction` applies to detection only. `workers`
    (default: CPU count, used only for large runs) never changes the output. Returns the manifest path.
    """
    if task not in ("detection", "classification"):
        raise ValueError(f"task must be 'detection' or 'classification', got {task!r}")
    _check_args(
        count,
        size,
        {"empty_fraction": empty_fraction, "exif_fraction": exif_fraction, "png_fraction": png_fraction},
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = _plan(count, task, seed, empty_fraction, exif_fraction, png_fraction)
    size = (int(size[0]), int(size[1]))
    workers = workers if workers is not None else (os.cpu_count() or 1)
    manifest = out_dir / MANIFEST_NAME
    with manifest.open("w", encoding="utf-8", newline="\n") as out:
        if workers > 1 and count >= PARALLEL_THRESHOLD:
            # spawn, not fork: callers (the local cloud) run threads, and forking those can deadlock.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                lines = pool.map(partial(_write_image, out_dir, task, seed, size), plans, chunksize=32)
                for line in lines:  # map keeps input order: the manifest is in index order either way
                    out.write(line + "\n")
        else:
            for plan in plans:
                out.write(_write_image(out_dir, task, seed, size, plan) + "\n")
    logger.info("wrote %d %s images and %s", count, task, manifest)
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcloud.data.dataset",
        description="Write synthetic images with known objects and their Custom Labels ground truth.",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--count", type=int, required=True, help="number of images")
    parser.add_argument("--task", choices=("detection", "classification"), default="detection")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"), default=(640, 480))
    parser.add_argument("--empty-fraction", type=float, default=0.1)
    parser.add_argument("--exif-fraction", type=float, default=0.0)
    parser.add_argument("--png-fraction", type=float, default=0.2)
    args = parser.parse_args(argv)
    try:
        manifest = generate(
            args.out,
            args.count,
            task=args.task,
            seed=args.seed,
            size=tuple(args.size),
            empty_fraction=args.empty_fraction,
            exif_fraction=args.exif_fraction,
            png_fraction=args.png_fraction,
        )
    except ValueError as error:
        parser.error(str(error))
    print(f"wrote {args.count} {args.task} images under {args.out}")
    print(f"ground truth: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
