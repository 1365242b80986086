"""The COCO export, streamed."""

from __future__ import annotations

import json
from typing import Any

from labeling_loop.finishing.coco import CocoWriter
from labeling_loop.kernel.s3_uri import S3Uri


def test_coco_writer_streams_a_valid_document(moto_s3: Any) -> None:
    moto_s3.create_bucket(Bucket="out")
    uri = S3Uri("out", "run/coco.json")
    line = {
        "source-ref": "s3://images/a b/c.jpg",
        "bounding-box": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [{"class_id": 1, "left": 10, "top": 20, "width": 30, "height": 40}],
        },
        "bounding-box-metadata": {"class-map": {"0": "cat", "1": "dog"}},
    }
    with CocoWriter(moto_s3, uri, ["cat", "dog"]) as coco:
        coco.add(line)
        coco.add({**line, "source-ref": "s3://images/d.jpg"})
    document = json.loads(moto_s3.get_object(Bucket="out", Key=uri.key)["Body"].read())
    assert [i["file_name"] for i in document["images"]] == ["a b/c.jpg", "d.jpg"]
    assert document["annotations"][0] == {
        "id": 1, "image_id": 1, "category_id": 2, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0,
    }  # fmt: skip
    assert [c["name"] for c in document["categories"]] == ["cat", "dog"]
