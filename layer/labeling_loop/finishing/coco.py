"""The reviewed boxes as COCO object-detection JSON (`coco.json` beside `output.manifest`), the
format most training tools read (https://cocodataset.org/#format-data: `images`, `annotations`,
`categories`; `bbox` = [x, y, width, height] in pixels from the top-left corner).

Written from the manifest's own lines as they are built, so COCO and the manifest hold the same
boxes. Streamed: images and annotations are spooled to two temporary files and joined into one
JSON document on upload, so memory stays flat. Image ids follow the manifest's line order (1..n);
category ids are the manifest's class ids + 1 (COCO reserves 0). `file_name` is the S3 key,
`coco_url` the source-ref. Object detection only: COCO has no image-level label.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING, Any

from labeling_loop.finishing.manifest.rules import DETECTION_ATTRIBUTE
from labeling_loop.kernel.s3_uri import S3Uri

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


class CocoWriter:
    def __init__(self, s3: S3Client, uri: S3Uri, labels: Iterable[str], description: str = "") -> None:
        self._s3 = s3
        self.uri = uri
        self._labels = list(labels)
        self._description = description
        self._images: IO[bytes] = tempfile.TemporaryFile()
        self._annotations: IO[bytes] = tempfile.TemporaryFile()
        self.images = 0
        self.annotations = 0

    def add(self, line: Mapping[str, Any]) -> None:
        """One object-detection manifest line (docs/aws-facts.md §2.1)."""
        value = line.get(DETECTION_ATTRIBUTE)
        metadata = line.get(f"{DETECTION_ATTRIBUTE}-metadata") or {}
        if not isinstance(value, Mapping):
            return
        size = (value.get("image_size") or [{}])[0]
        source = S3Uri.parse(str(line["source-ref"]))
        self.images += 1
        image_id = self.images
        self._write(
            self._images,
            {
                "id": image_id,
                "file_name": source.key,
                "coco_url": str(source),
                "width": int(size["width"]),
                "height": int(size["height"]),
            },
            self.images,
        )
        class_map = metadata.get("class-map") or {}
        for annotation in value.get("annotations") or []:
            name = class_map.get(str(annotation["class_id"]))
            if name not in self._labels:
                continue
            self.annotations += 1
            x, y, w, h = (annotation[k] for k in ("left", "top", "width", "height"))
            self._write(
                self._annotations,
                {
                    "id": self.annotations,
                    "image_id": image_id,
                    "category_id": self._labels.index(name) + 1,
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                },
                self.annotations,
            )

    @staticmethod
    def _write(target: IO[bytes], item: dict[str, Any], n: int) -> None:
        target.write((b"," if n > 1 else b"") + json.dumps(item, separators=(",", ":")).encode("utf-8"))

    def close(self) -> None:
        head = {
            "info": {"description": self._description, "version": "1.0"},
            "categories": [
                {"id": i + 1, "name": name, "supercategory": "object"} for i, name in enumerate(self._labels)
            ],
        }
        with tempfile.TemporaryFile() as document:
            document.write(json.dumps(head, separators=(",", ":"))[:-1].encode("utf-8"))
            for key, part in (("images", self._images), ("annotations", self._annotations)):
                document.write(f',"{key}":['.encode())
                part.seek(0)
                while chunk := part.read(1 << 20):
                    document.write(chunk)
                document.write(b"]")
            document.write(b"}")
            document.seek(0)
            self._s3.upload_fileobj(
                document, self.uri.bucket, self.uri.key, ExtraArgs={"ContentType": "application/json"}
            )
        self._images.close()
        self._annotations.close()

    def __enter__(self) -> CocoWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._images.close()
            self._annotations.close()
