"""ListImages core against moto S3 and DynamoDB: what is listed, skipped, ignored, batched and claimed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from fixtures_aws import IMAGES_BUCKET, OUTPUT_BUCKET, put_object, read_jsonl
from labeling_loop.inference import claims
from labeling_loop.inference.images import MAX_BYTES
from labeling_loop.inference.listing import ListingResult, list_images
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.layout import RunLayout
from labeling_loop.kernel.s3_uri import S3Uri

NOW = 1_760_000_000
DAY = 86_400


def layout_of(run_id: str, output: S3Uri) -> RunLayout:
    return RunLayout.for_run(output, run_id)


def run_listing(
    aws: SimpleNamespace,
    *,
    images: str = f"s3://{IMAGES_BUCKET}/photos/",
    output: str = f"s3://{OUTPUT_BUCKET}/labeling-runs/",
    run_id: str = "run-1",
    incremental: bool = False,
    now: float = NOW,
    claim_seconds: int = DAY,
    max_images: int = 250_000,
) -> tuple[ListingResult, RunLayout]:
    output_uri = S3Uri.parse(output)
    layout = layout_of(run_id, output_uri)
    result = list_images(
        aws.s3,
        aws.dynamodb,
        aws.table,
        images=S3Uri.parse(images),
        layout=layout,
        output_prefix=output_uri,
        run_id=run_id,
        incremental=incremental,
        claim_seconds=claim_seconds,
        max_images=max_images,
        now=now,
    )
    return result, layout


def listed_refs(aws: SimpleNamespace, layout: RunLayout) -> list[str]:
    return [line["source-ref"] for line in read_jsonl(aws.s3, layout.inventory)]


def put(aws: SimpleNamespace, key: str, content_type: str | None = None, body: bytes = b"x") -> str:
    return put_object(aws.s3, IMAGES_BUCKET, key, body, content_type)


def ref(key: str) -> str:
    return f"s3://{IMAGES_BUCKET}/{key}"


# What is an image -------------------------------------------------------------------------------


def test_jpeg_and_png_are_listed_whatever_the_extensions_case(aws: SimpleNamespace) -> None:
    # GIVEN JPEG and PNG images named with extensions in any case
    keys = ["photos/a.jpg", "photos/b.JPG", "photos/c.jpeg", "photos/d.JPEG", "photos/e.png", "photos/f.PnG"]
    for key in keys:
        put(aws, key)

    # WHEN the prefix is listed
    result, layout = run_listing(aws)

    # THEN every one is in the inventory and a batch
    assert sorted(listed_refs(aws, layout)) == sorted(ref(k) for k in keys)
    assert sorted(listed_refs(aws, layout)) == sorted(ref(k) for k in keys)
    assert result.to_dict() == {
        "imagesListed": 6,
        "imagesToInfer": 6,
        "skippedAtListing": 0,
        "alreadyClaimed": 0,
        "objectsIgnored": 0,
        "deferredBefore": 0,
        "deferredAtListing": 0,
    }


def test_objects_without_extension_are_judged_by_content_type(aws: SimpleNamespace) -> None:
    # GIVEN objects without an extension: a JPEG, a PNG, a GIF and a text file by content type
    put(aws, "photos/camera-0001", "image/jpeg")
    put(aws, "photos/scan-0002", "image/PNG")
    put(aws, "photos/anim-0003", "image/gif")
    put(aws, "photos/README", "text/plain")

    # WHEN the prefix is listed
    result, layout = run_listing(aws)

    # THEN JPEG and PNG are listed, the GIF is skipped, the text file ignored
    assert sorted(listed_refs(aws, layout)) == [ref("photos/camera-0001"), ref("photos/scan-0002")]
    skips = read_jsonl(aws.s3, layout.skipped_part("listing", 0))
    assert [s["source-ref"] for s in skips] == [ref("photos/anim-0003")]
    assert (result.images_listed, result.skipped_at_listing, result.objects_ignored) == (3, 1, 1)


def test_other_image_formats_are_listed_as_skipped_unsupported(aws: SimpleNamespace) -> None:
    # GIVEN images Custom Labels cannot read next to a JPEG
    for key in [
        "photos/a.gif",
        "photos/b.TIFF",
        "photos/c.tif",
        "photos/d.webp",
        "photos/e.heic",
        "photos/ok.jpg",
    ]:
        put(aws, key)

    # WHEN the prefix is listed
    result, layout = run_listing(aws)

    # THEN the user sees each one skipped with a reason (listed, not silently dropped)
    skips = read_jsonl(aws.s3, layout.skipped_part("listing", 0))
    assert {s["source-ref"] for s in skips} == {
        ref(k) for k in ["photos/a.gif", "photos/b.TIFF", "photos/c.tif", "photos/d.webp", "photos/e.heic"]
    }
    assert all(s["stage"] == "listing" and s["reason"] == "unsupported-format" for s in skips)
    # AND only the JPEG goes to inference; the listed count covers both
    assert listed_refs(aws, layout) == [ref("photos/ok.jpg")]
    assert (result.images_listed, result.images_to_infer, result.skipped_at_listing) == (6, 1, 5)


def test_an_image_over_the_size_limit_is_skipped_on_its_listed_size(aws: SimpleNamespace) -> None:
    # GIVEN an upload one byte over Custom Labels' 15 MB limit next to a small image
    put(aws, "photos/huge.jpg", body=b"\xff\xd8" + b"\0" * (MAX_BYTES - 1))
    put(aws, "photos/ok.jpg")
    result, layout = run_listing(aws)
    # THEN it is listed and skipped as too large here, never handed to inference (which would read it)
    [skip] = read_jsonl(aws.s3, layout.skipped_part("listing", 0))
    assert (skip["source-ref"], skip["reason"]) == (ref("photos/huge.jpg"), "image-too-large")
    assert str(MAX_BYTES + 1) in skip["detail"]
    assert listed_refs(aws, layout) == [ref("photos/ok.jpg")]
    assert (result.images_listed, result.images_to_infer, result.skipped_at_listing) == (2, 1, 1)


def test_non_image_files_and_folder_markers_are_ignored(aws: SimpleNamespace) -> None:
    # GIVEN notes, manifests and a console "folder" next to an image
    for key in [
        "photos/",
        "photos/sub/",
        "photos/notes.txt",
        "photos/train.manifest",
        "photos/meta.json",
        "photos/labels.csv",
        "photos/archive.zip",
        "photos/a.jpg",
    ]:
        put(aws, key)

    # WHEN the prefix is listed
    result, layout = run_listing(aws)

    # THEN only the image counts; the others are neither listed nor skipped
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]
    assert read_jsonl(aws.s3, layout.skipped_part("listing", 0)) == []
    assert (result.images_listed, result.objects_ignored) == (1, 7)


def test_only_the_images_prefix_is_listed(aws: SimpleNamespace) -> None:
    # GIVEN images under the prefix, under a sibling whose name starts the same, and elsewhere
    put(aws, "photos/a.jpg")
    put(aws, "photos/2024/b.jpg")
    put(aws, "photos-old/c.jpg")
    put(aws, "other/d.jpg")

    # WHEN photos/ is listed
    _, layout = run_listing(aws)

    # THEN nested images are in, the rest out
    assert sorted(listed_refs(aws, layout)) == [ref("photos/2024/b.jpg"), ref("photos/a.jpg")]


def test_keys_are_listed_exactly_as_s3_stores_them(aws: SimpleNamespace) -> None:
    # GIVEN keys with spaces, plus signs, percent signs and non-ASCII characters
    keys = [
        "photos/with space.jpg",
        "photos/a+b.jpg",
        "photos/100%.jpg",
        "photos/a%20b.jpg",
        "photos/café-猫.jpg",
        "photos/dir with space/ünï.png",
    ]
    for key in keys:
        put(aws, key)

    # WHEN the prefix is listed
    _, layout = run_listing(aws)

    # THEN each source-ref names the object, never URL-encoded or decoded
    inventory = read_jsonl(aws.s3, layout.inventory)
    assert sorted(line["source-ref"] for line in inventory) == sorted(ref(k) for k in keys)
    assert sorted(line["key"] for line in inventory) == sorted(keys)
    for line in inventory:  # and they can be fetched with the key as written
        assert aws.s3.head_object(Bucket=IMAGES_BUCKET, Key=line["key"])["ContentLength"] == 1


def test_the_runs_own_output_under_the_images_prefix_is_excluded(aws: SimpleNamespace) -> None:
    # GIVEN output written under the images prefix (same bucket), including images it copied
    put(aws, "photos/a.jpg")
    put(aws, "photos/labeling-runs/run-0/review/preview.jpg")
    put(aws, "photos/labeling-runs/run-0/inventory.jsonl")

    # WHEN a run lists photos/ with output s3://images-bucket/photos/labeling-runs/
    result, layout = run_listing(aws, output=f"s3://{IMAGES_BUCKET}/photos/labeling-runs/")

    # THEN nothing of the run folders is listed, not even as ignored
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]
    assert result.objects_ignored == 0
    # AND the run's own files (written after listing) are there, so a later run would see them
    assert layout.inventory.key.startswith("photos/labeling-runs/run-1/")


def test_a_same_named_prefix_in_the_output_bucket_excludes_nothing(aws: SimpleNamespace) -> None:
    # GIVEN images under photos/ and an output prefix photos/ in ANOTHER bucket
    put(aws, "photos/a.jpg")
    # WHEN listed
    _, layout = run_listing(aws, output=f"s3://{OUTPUT_BUCKET}/photos/")
    # THEN the image is listed
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]


@pytest.mark.parametrize(
    ("images", "output"),
    [("data/incoming/", "data/"), ("photos/", "photos/")],
    ids=["output-above-images", "output-is-images"],
)
def test_an_output_prefix_at_or_above_the_images_prefix_does_not_hide_the_images(
    aws: SimpleNamespace, images: str, output: str
) -> None:
    # GIVEN images directly under the images prefix, and run folders at <output>/<runId>/
    put(aws, f"{images}a.jpg")
    # WHEN listed
    _, layout = run_listing(
        aws, images=f"s3://{IMAGES_BUCKET}/{images}", output=f"s3://{IMAGES_BUCKET}/{output}"
    )
    # THEN the image is listed (it is not inside any run folder)
    assert listed_refs(aws, layout) == [ref(f"{images}a.jpg")]


# Batches and inventory ----------------------------------------------------------------------------


def test_the_inventory_lists_every_image_in_listing_order(aws: SimpleNamespace) -> None:
    # GIVEN 7 images
    keys = [f"photos/img-{i:02d}.jpg" for i in range(7)]
    for key in keys:
        put(aws, key, body=b"0123456789")

    # WHEN listed
    result, layout = run_listing(aws)

    # THEN inventory.jsonl lists them in key order (the fan-out's batches are slices of its lines)
    assert listed_refs(aws, layout) == [ref(k) for k in keys]
    assert result.images_to_infer == 7
    # AND each inventory line says where the image is and what it was
    inventory = read_jsonl(aws.s3, layout.inventory)
    assert inventory[0] == {
        "source-ref": ref("photos/img-00.jpg"),
        "key": "photos/img-00.jpg",
        "size": 10,
        "etag": aws.s3.head_object(Bucket=IMAGES_BUCKET, Key="photos/img-00.jpg")["ETag"],
    }


def test_a_prefix_without_images_is_refused_in_one_line_saying_what_it_holds(aws: SimpleNamespace) -> None:
    # GIVEN a prefix holding GIFs, a note, a folder marker and a JPEG over 15 MB, but no image to infer
    for key in ["photos/a.gif", "photos/b.GIF", "photos/notes.json", "photos/sub/"]:
        put(aws, key)
    put_object(aws.s3, IMAGES_BUCKET, "photos/huge.jpg", b"x" * (MAX_BYTES + 1), None)
    # WHEN it is listed
    with pytest.raises(InvalidInput) as caught:
        run_listing(aws, incremental=True)
    # THEN the run is refused with one line naming the prefix, what it holds and why each kind was not taken
    message = str(caught.value)
    assert message == (
        f"images: s3://{IMAGES_BUCKET}/photos/: no JPEG or PNG image: 5 objects, 2 .gif (unsupported), "
        "1 .jpg (over 15 MB), 1 .json (not an image), 1 (no extension) (folder)"
    ), message
    assert "\n" not in message
    # AND nothing was claimed
    assert claim_state(aws, ref("photos/a.gif")) is None and claim_state(aws, ref("photos/huge.jpg")) is None


def test_an_empty_prefix_is_refused_naming_it(aws: SimpleNamespace) -> None:
    with pytest.raises(
        InvalidInput, match=f"^images: s3://{IMAGES_BUCKET}/nothing-here/: no JPEG or PNG image: no object"
    ):
        run_listing(aws, images=f"s3://{IMAGES_BUCKET}/nothing-here/")


def test_every_listing_page_is_read(aws: SimpleNamespace) -> None:
    # GIVEN S3 answering ListObjectsV2 two keys per page (as it does 1000 per page for big prefixes)
    pages: list[int] = []

    def two_per_page(params: dict[str, Any], **_: Any) -> None:
        params["MaxKeys"] = 2
        pages.append(1)

    aws.s3.meta.events.register("provide-client-params.s3.ListObjectsV2", two_per_page)
    keys = [f"photos/{i:02d}.jpg" for i in range(7)]
    for key in keys:
        put(aws, key)

    # WHEN listed
    result, layout = run_listing(aws)

    # THEN images of every page are listed
    assert result.images_to_infer == 7
    assert listed_refs(aws, layout) == [ref(k) for k in keys]
    assert len(pages) >= 4


# Incremental runs ---------------------------------------------------------------------------------


def claim_state(aws: SimpleNamespace, source_ref: str) -> dict[str, Any] | None:
    item = aws.dynamodb.get_item(TableName=aws.table, Key={"pk": {"S": f"image#{source_ref}"}}).get("Item")
    return None if item is None else {k: next(iter(v.values())) for k, v in item.items()}


def test_incremental_run_claims_what_it_lists(aws: SimpleNamespace) -> None:
    # GIVEN two images
    put(aws, "photos/a.jpg")
    put(aws, "photos/b.jpg")
    # WHEN an incremental run lists them
    result, _ = run_listing(aws, incremental=True, claim_seconds=3600)
    # THEN each is claimed by the run until the claim lapses
    assert result.images_to_infer == 2
    assert claim_state(aws, ref("photos/a.jpg")) == {
        "pk": f"image#{ref('photos/a.jpg')}",
        "state": "claimed",
        "runId": "run-1",
        "expiresAt": str(NOW + 3600),
    }


def test_images_claimed_by_another_live_run_are_not_listed(aws: SimpleNamespace) -> None:
    # GIVEN run A lists two images; later a third image arrives
    put(aws, "photos/a.jpg")
    put(aws, "photos/b.jpg")
    run_listing(aws, run_id="run-a", incremental=True)
    put(aws, "photos/c.jpg")

    # WHEN run B lists the same prefix while A's claims are live
    result, layout = run_listing(aws, run_id="run-b", incremental=True, now=NOW + 60)

    # THEN B gets only the new image, and says how many were taken
    assert listed_refs(aws, layout) == [ref("photos/c.jpg")]
    assert listed_refs(aws, layout) == [ref("photos/c.jpg")]
    assert (result.images_listed, result.images_to_infer, result.already_claimed) == (1, 1, 2)
    assert claim_state(aws, ref("photos/a.jpg"))["runId"] == "run-a"


def test_a_second_run_lists_nothing_once_the_first_labeled_everything(aws: SimpleNamespace) -> None:
    # GIVEN run A listed the images and put them in its manifest (marked labeled)
    for key in ["photos/a.jpg", "photos/b.png"]:
        put(aws, key)
    _, layout_a = run_listing(aws, run_id="run-a", incremental=True)
    for source_ref in listed_refs(aws, layout_a):
        claims.mark_labeled(aws.dynamodb, aws.table, source_ref, "run-a")

    # WHEN run B lists the prefix long after A's claims would have lapsed
    result, layout_b = run_listing(aws, run_id="run-b", incremental=True, now=NOW + 365 * DAY)

    # THEN there is nothing to infer: labeled images never come back
    assert listed_refs(aws, layout_b) == []
    assert (result.images_listed, result.images_to_infer, result.already_claimed) == (0, 0, 2)


def test_expired_claims_are_taken_over(aws: SimpleNamespace) -> None:
    # GIVEN run A claimed an image for one hour and then died without releasing it
    put(aws, "photos/a.jpg")
    run_listing(aws, run_id="run-a", incremental=True, claim_seconds=3600)

    # WHEN run B lists after the claim expired
    result, layout = run_listing(aws, run_id="run-b", incremental=True, now=NOW + 3601)

    # THEN B takes the image over
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]
    assert result.already_claimed == 0
    assert claim_state(aws, ref("photos/a.jpg"))["runId"] == "run-b"


def test_a_retried_listing_keeps_its_own_claims(aws: SimpleNamespace) -> None:
    # GIVEN run A listed (and claimed) an image
    put(aws, "photos/a.jpg")
    run_listing(aws, run_id="run-a", incremental=True)
    # WHEN the same step of run A is retried
    result, layout = run_listing(aws, run_id="run-a", incremental=True, now=NOW + 30)
    # THEN it lists the image again rather than losing it to itself
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]
    assert result.already_claimed == 0


def test_non_incremental_runs_ignore_the_ledger(aws: SimpleNamespace) -> None:
    # GIVEN an image another run has labeled
    put(aws, "photos/a.jpg")
    claims.mark_labeled(aws.dynamodb, aws.table, ref("photos/a.jpg"), "run-a")
    # WHEN a full (non-incremental) run lists
    result, layout = run_listing(aws, run_id="run-b")
    # THEN it relabels everything and claims nothing
    assert listed_refs(aws, layout) == [ref("photos/a.jpg")]
    assert claim_state(aws, ref("photos/a.jpg"))["state"] == "labeled"
    assert result.already_claimed == 0


def test_unsupported_images_are_skipped_but_never_claimed(aws: SimpleNamespace) -> None:
    # GIVEN a GIF in an incremental run
    # WHEN listed
    # THEN it is skipped and not claimed (it never reaches a manifest)
    put(aws, "photos/a.gif")
    put(aws, "photos/b.jpg")
    result, _ = run_listing(aws, incremental=True)
    assert result.skipped_at_listing == 1
    assert claim_state(aws, ref("photos/a.gif")) is None


# A run's limit ----------------------------------------------------------------------------------


def deferred_refs(aws: SimpleNamespace, layout: RunLayout) -> list[str]:
    return [line["source-ref"] for line in read_jsonl(aws.s3, layout.deferred_part("listing", 0))]


def test_images_over_the_runs_limit_are_deferred_at_listing(aws: SimpleNamespace) -> None:
    # GIVEN seven images and a run that takes at most five
    keys = [f"photos/{i}.jpg" for i in range(7)]
    for key in keys:
        put(aws, key)
    # WHEN an incremental run lists them
    result, layout = run_listing(aws, incremental=True, max_images=5)
    # THEN the first five (listing order) are inferred, the last two deferred with their reason
    assert listed_refs(aws, layout) == [ref(k) for k in keys[:5]]
    assert deferred_refs(aws, layout) == [ref(k) for k in keys[5:]]
    (record, _) = read_jsonl(aws.s3, layout.deferred_part("listing", 0))
    assert record["stage"] == "listing" and record["reason"] == "over-manifest-limit"
    assert "at most 5 images (maxImagesPerRun)" in record["detail"]
    # AND every image is counted: listed = inferred + deferred
    assert (result.images_listed, result.images_to_infer, result.deferred_at_listing) == (7, 5, 2)
    # AND the deferred ones are free for the next run at once (even if this run fails), since now
    assert claim_state(aws, ref(keys[6])) == {
        "pk": f"image#{ref(keys[6])}",
        "state": "deferred",
        "runId": "run-1",
        "reason": "over-manifest-limit",
        "deferredSince": str(NOW),
    }


def test_the_next_run_takes_the_deferred_images_first_oldest_first(aws: SimpleNamespace) -> None:
    # GIVEN a run of limit 2 over a..e that labeled a and b and deferred c, d and e; then a new
    # image arrives, which lists before all of them
    for key in ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg", "photos/d.jpg", "photos/e.jpg"]:
        put(aws, key)
    _, first = run_listing(aws, run_id="run-1", incremental=True, max_images=2)
    for source_ref in listed_refs(aws, first):
        claims.mark_labeled(aws.dynamodb, aws.table, source_ref, "run-1")
    put(aws, "photos/0-new.jpg")
    # WHEN the next run, limit 2, lists the prefix
    result, layout = run_listing(aws, run_id="run-2", incremental=True, max_images=2, now=NOW + DAY)
    # THEN it takes two of the deferred images (listing order among equal dates) before the new
    # image; the new image and e wait for the run after, e keeping the date it was first deferred
    assert listed_refs(aws, layout) == [ref("photos/c.jpg"), ref("photos/d.jpg")]
    assert deferred_refs(aws, layout) == [ref("photos/0-new.jpg"), ref("photos/e.jpg")]
    assert (result.deferred_before, result.deferred_at_listing) == (3, 2)
    assert claim_state(aws, ref("photos/0-new.jpg"))["deferredSince"] == str(NOW + DAY)
    assert claim_state(aws, ref("photos/e.jpg"))["deferredSince"] == str(NOW)


def test_an_older_deferral_goes_before_a_younger_one(aws: SimpleNamespace) -> None:
    # GIVEN z deferred long ago and a deferred yesterday (z lists last)
    for key in ["photos/a.jpg", "photos/m.jpg", "photos/z.jpg"]:
        put(aws, key)
    for key, since in (("photos/z.jpg", NOW - 30 * DAY), ("photos/a.jpg", NOW - DAY)):
        claims.claim(aws.dynamodb, aws.table, ref(key), "old", since, since + 60)
        claims.defer(aws.dynamodb, aws.table, ref(key), "old", "over-manifest-limit", since)
    # WHEN a run of limit 1 lists
    _, layout = run_listing(aws, run_id="run-2", incremental=True, max_images=1)
    # THEN it takes the oldest deferral
    assert listed_refs(aws, layout) == [ref("photos/z.jpg")]
    assert deferred_refs(aws, layout) == [ref("photos/a.jpg"), ref("photos/m.jpg")]


def test_a_full_run_over_its_limit_defers_without_the_ledger(aws: SimpleNamespace) -> None:
    for key in ["photos/a.jpg", "photos/b.jpg", "photos/c.jpg"]:
        put(aws, key)
    result, layout = run_listing(aws, max_images=2)
    assert deferred_refs(aws, layout) == [ref("photos/c.jpg")]
    assert claim_state(aws, ref("photos/c.jpg")) is None
    assert (result.images_listed, result.images_to_infer, result.deferred_at_listing) == (3, 2, 1)
