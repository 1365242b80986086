"""Label Studio backend, pure parts: label configs, task conversion, percent <-> pixels, statuses,
token detection. No server."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import pytest
from labeling_loop.kernel.errors import ReviewBackendError
from labeling_loop.kernel.geometry import PixelBox, box_to_percent, percent_to_box, snap_to_pixels
from labeling_loop.review.answers import InvalidAnswer
from labeling_loop.review.labelstudio import client as ls_client
from labeling_loop.review.labelstudio import convert as ls
from labeling_loop.review.labelstudio import project as ls_project

W, H = 640, 480


def _jwt(payload: dict) -> str:
    def seg(doc: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{seg({'alg': 'HS256', 'typ': 'JWT'})}.{seg(payload)}.c2lnbmF0dXJl"


def _answer_box(label: str, left: float, top: float, width: float, height: float, **extra: float) -> dict:
    value = {
        **box_to_percent({"left": left, "top": top, "width": width, "height": height}, W, H),
        **extra,
    }
    return {
        "type": "rectanglelabels",
        "from_name": ls.BOX_TAG,
        "to_name": ls.IMAGE_TAG,
        "original_width": W,
        "original_height": H,
        "value": {**value, "rectanglelabels": [label]},
    }


def _exported(task: dict, answers: list[dict] | None) -> dict:
    """A task as Label Studio's JSON export returns it, after our import."""
    exported = {"id": 7, "data": ls.to_labelstudio_task(task)["data"], "predictions": [1], "annotations": []}
    if answers is not None:
        exported["annotations"] = [
            {"id": 1, "result": answers, "was_cancelled": False, "updated_at": "2026-01-01"}
        ]
    return exported


# The run's label set (review/plan.json): what the labeling UI offered.
RUN_LABELS = frozenset({"a", "beach", "bird", "cat", "dog", "fox", "indoor", "outdoor", "sofa"})


def review(task: dict, exported: dict, project_id: int, labels: frozenset[str] = RUN_LABELS) -> dict | None:
    """What collect makes of an exported task: its latest submitted answer, read against the run's
    own review task (never the exported task's data)."""
    annotation = ls.submitted_annotation(exported)
    return None if annotation is None else ls.reviewed_record(annotation, task, project_id, labels)


DETECTION_TASK = {
    "source-ref": "s3://b/photos/a.jpg",
    "taskType": "detection",
    "image_size": {"width": W, "height": H, "depth": 3},
    "predictions": [
        {"label": "cat", "confidence": 87.5, "box": {"left": 64, "top": 96, "width": 192, "height": 120}},
        {"label": "dog", "confidence": 55.0, "box": {"left": 400, "top": 300, "width": 100, "height": 100}},
        {"label": "cat", "confidence": 51.0, "box": {"left": 10, "top": 10, "width": 30, "height": 40}},
    ],
}


class TestLabelConfig:
    def test_detection_config_has_one_rectangle_label_per_class(self) -> None:
        root = ET.fromstring(ls.label_config("detection", ["cat", "dog & co"]))
        image = root.find("Image")
        control = root.find("RectangleLabels")
        assert image is not None and image.get("value") == "$image"
        assert control is not None and control.get("toName") == image.get("name")
        assert [label.get("value") for label in control.findall("Label")] == ["cat", "dog & co"]

    def test_classification_config_is_multiple_choice(self) -> None:
        root = ET.fromstring(ls.label_config("classification", ['in"door', "outdoor"]))
        choices = root.find("Choices")
        assert choices is not None and choices.get("choice") == "multiple"
        assert [c.get("value") for c in choices.findall("Choice")] == ['in"door', "outdoor"]

    def test_empty_label_set_is_refused(self) -> None:
        with pytest.raises(ValueError):
            ls.label_config("detection", [])


class TestTaskConversion:
    def test_detection_predictions_become_percent_rectangles(self) -> None:
        task = ls.to_labelstudio_task(DETECTION_TASK)
        assert task["data"]["image"] == "s3://b/photos/a.jpg"
        assert task["data"]["source_ref"] == "s3://b/photos/a.jpg"
        (prediction,) = task["predictions"]
        first = prediction["result"][0]
        assert first["type"] == "rectanglelabels"
        assert (first["from_name"], first["to_name"]) == (ls.BOX_TAG, ls.IMAGE_TAG)
        assert (first["original_width"], first["original_height"]) == (W, H)
        assert first["value"] == {
            "x": 10.0,
            "y": 20.0,
            "width": 30.0,
            "height": 25.0,
            "rotation": 0,
            "rectanglelabels": ["cat"],
        }
        assert first["score"] == pytest.approx(0.875)
        assert prediction["score"] == pytest.approx(0.51)  # the least sure label sorts the queue

    def test_classification_predictions_become_choices(self) -> None:
        task = ls.to_labelstudio_task(
            {
                "source-ref": "s3://b/x.jpg",
                "taskType": "classification",
                "image_size": {"width": 100, "height": 80, "depth": 3},
                "predictions": [
                    {"label": "outdoor", "confidence": 64.0},
                    {"label": "beach", "confidence": 90},
                ],
            }
        )
        (item,) = task["predictions"][0]["result"]
        assert item["type"] == "choices" and item["from_name"] == ls.CHOICES_TAG
        assert item["value"] == {"choices": ["outdoor", "beach"]}

    def test_task_without_predictions_has_no_prediction(self) -> None:
        task = ls.to_labelstudio_task({**DETECTION_TASK, "predictions": []})
        assert "predictions" not in task

    @pytest.mark.parametrize(
        ("size", "box"),
        [
            ((640, 480), {"left": 64, "top": 96, "width": 192, "height": 120}),
            ((1023, 767), {"left": 1, "top": 766, "width": 1022, "height": 1}),
            ((4096, 64), {"left": 4095, "top": 0, "width": 1, "height": 64}),
            ((333, 777), {"left": 111, "top": 222, "width": 111, "height": 333}),
        ],
    )
    def test_pixels_survive_the_round_trip_through_percent(self, size: tuple[int, int], box: dict) -> None:
        width, height = size
        back = percent_to_box(box_to_percent(box, width, height), width, height)
        for key in ("left", "top", "width", "height"):
            assert back[key] == pytest.approx(box[key], abs=1e-9)
        assert snap_to_pixels(back, width, height) == PixelBox.from_dict(box)


class TestPercentToPixels:
    def test_rotated_box_becomes_its_axis_aligned_hull(self) -> None:
        # 90 degrees clockwise around the top-left corner (x, y): the box now extends to the left.
        value = {"x": 50.0, "y": 25.0, "width": 10.0, "height": 10.0, "rotation": 90}
        box = percent_to_box(value, 200, 100)  # 20 x 10 px box at (100, 25)
        assert box == pytest.approx({"left": 90.0, "top": 25.0, "width": 10.0, "height": 20.0})

    def test_a_rotated_answer_becomes_its_hull_in_the_record(self) -> None:
        task = {**DETECTION_TASK, "predictions": []}
        answer = _answer_box("cat", 100, 25, 20, 10, rotation=90)
        record = review(task, _exported(task, [answer]), 1)
        assert record is not None
        assert record["boxes"] == [
            {"label": "cat", "left": 90, "top": 25, "width": 10, "height": 20, "status": "added"}
        ]

    def test_record_edges_are_rounded_half_up_and_clipped(self) -> None:
        # Since issue 22 (one rounding rule with every other stage): an edge at 12.5 px is 13, not
        # 12 as round() made it; 22.5 -> 23, so the width stays 10.
        task = {**DETECTION_TASK, "predictions": []}
        answers = [_answer_box("cat", 12.5, 13.5, 10, 10), _answer_box("dog", W - 20.4, 96, 50, 10.4)]
        record = review(task, _exported(task, answers), 1)
        assert record is not None
        assert record["boxes"] == [
            {"label": "cat", "left": 13, "top": 14, "width": 10, "height": 10, "status": "added"},
            {"label": "dog", "left": W - 20, "top": 96, "width": 20, "height": 10, "status": "added"},
        ]

    def test_a_box_of_one_pixel_stays_in_the_record_for_the_manifest_to_drop(self) -> None:
        # The record holds what the person drew; the manifest applies Custom Labels' > 1 px rule
        # (after the training resize) and counts the dropped box among the report's fixes.
        task = {**DETECTION_TASK, "predictions": []}
        record = review(task, _exported(task, [_answer_box("cat", 10, 10, 1, 30)]), 1)
        assert record is not None
        assert record["boxes"] == [
            {"label": "cat", "left": 10, "top": 10, "width": 1, "height": 30, "status": "added"}
        ]


class TestBoxStatuses:
    def _record(self, answers: list[dict]) -> dict:
        record = review(DETECTION_TASK, _exported(DETECTION_TASK, answers), 3)
        assert record is not None
        return record

    def test_prediction_accepted_unchanged_is_kept_with_its_exact_pixels(self) -> None:
        record = self._record([_answer_box("cat", 64.3, 95.6, 192.4, 120.0)])
        assert record["boxes"][0] == {
            "label": "cat",
            "left": 64,
            "top": 96,
            "width": 192,
            "height": 120,
            "status": "kept",
        }
        assert record["reviewer"] == "labelstudio:3" and record["humanReviewed"] is True
        assert record["image_size"] == {"width": W, "height": H, "depth": 3}
        assert record["labels"] == []

    def test_moved_box_is_adjusted(self) -> None:
        record = self._record([_answer_box("cat", 60, 90, 200, 125)])
        assert record["boxes"][0] == {
            "label": "cat",
            "left": 60,
            "top": 90,
            "width": 200,
            "height": 125,
            "status": "adjusted",
        }

    def test_relabelled_box_in_place_is_adjusted(self) -> None:
        record = self._record([_answer_box("fox", 400, 300, 100, 100)])
        assert record["boxes"][0]["status"] == "adjusted"
        assert record["boxes"][0]["label"] == "fox"

    def test_just_over_half_a_pixel_is_adjusted_not_kept(self) -> None:
        record = self._record([_answer_box("cat", 64.6, 96, 192, 120)])
        assert record["boxes"][0]["status"] == "adjusted"

    def test_new_box_is_added_and_unanswered_predictions_are_removed(self) -> None:
        record = self._record([_answer_box("bird", 500, 10, 50, 50)])
        assert [b["status"] for b in record["boxes"]] == ["added"]
        assert record["removed"] == [
            {"label": "cat", "left": 64, "top": 96, "width": 192, "height": 120},
            {"label": "dog", "left": 400, "top": 300, "width": 100, "height": 100},
            {"label": "cat", "left": 10, "top": 10, "width": 30, "height": 40},
        ]

    def test_far_move_is_a_delete_plus_an_add(self) -> None:
        record = self._record([_answer_box("cat", 300, 300, 192, 120)])
        assert [b["status"] for b in record["boxes"]] == ["added"]
        assert {"label": "cat", "left": 64, "top": 96, "width": 192, "height": 120} in record["removed"]

    def test_every_prediction_is_accounted_for_once(self) -> None:
        answers = [
            _answer_box("cat", 64, 96, 192, 120),  # kept
            _answer_box("dog", 405, 305, 100, 100),  # adjusted
            _answer_box("cat", 66, 98, 190, 118),  # overlaps the kept one: nothing left to adjust
        ]
        record = self._record(answers)
        assert [b["status"] for b in record["boxes"]] == ["kept", "adjusted", "added"]
        assert record["removed"] == [{"label": "cat", "left": 10, "top": 10, "width": 30, "height": 40}]

    def test_best_overlap_wins_the_adjustment(self) -> None:
        outcome = ls.derive_box_statuses(
            [{"label": "a", "left": 0, "top": 0, "width": 100, "height": 100}],
            [
                {"label": "a", "left": 30, "top": 0, "width": 100, "height": 100},  # IoU 0.54
                {"label": "a", "left": 5, "top": 0, "width": 100, "height": 100},  # IoU 0.90
            ],
            W,
            H,
        )
        assert [b["status"] for b in outcome.boxes] == ["added", "adjusted"]
        assert outcome.removed == []

    def test_empty_answer_removes_everything(self) -> None:
        record = self._record([])
        assert record["boxes"] == [] and len(record["removed"]) == 3

    def test_task_without_predictions_only_adds(self) -> None:
        task = {**DETECTION_TASK, "predictions": []}
        record = review(task, _exported(task, [_answer_box("cat", 1, 2, 3, 4)]), 1)
        assert record is not None
        assert record["boxes"] == [
            {"label": "cat", "left": 1, "top": 2, "width": 3, "height": 4, "status": "added"}
        ]
        assert record["removed"] == []


class TestAnnotationChoice:
    def test_task_without_answer_is_not_reviewed(self) -> None:
        assert review(DETECTION_TASK, _exported(DETECTION_TASK, None), 1) is None

    def test_skipped_task_is_not_reviewed(self) -> None:
        exported = _exported(DETECTION_TASK, [])
        exported["annotations"][0]["was_cancelled"] = True
        assert review(DETECTION_TASK, exported, 1) is None
        assert ls.was_skipped(exported)

    def test_latest_submitted_answer_wins(self) -> None:
        exported = _exported(DETECTION_TASK, [])
        exported["annotations"].append(
            {"id": 2, "result": [_answer_box("cat", 64, 96, 192, 120)], "updated_at": "2026-02-01"}
        )
        record = review(DETECTION_TASK, exported, 1)
        assert record is not None and [b["status"] for b in record["boxes"]] == ["kept"]


class TestLabelStatuses:
    def test_kept_added_removed(self) -> None:
        labels, removed = ls.derive_label_statuses(["indoor", "cat"], ["cat", "sofa", "cat"])
        assert labels == [{"label": "cat", "status": "kept"}, {"label": "sofa", "status": "added"}]
        assert removed == [{"label": "indoor"}]

    def test_classification_record(self) -> None:
        task = {
            "source-ref": "s3://b/x.jpg",
            "taskType": "classification",
            "image_size": {"width": 100, "height": 80, "depth": 3},
            "predictions": [
                {"label": "outdoor", "confidence": 64.0},
                {"label": "indoor", "confidence": 55.0},
            ],
        }
        answer = [
            {
                "type": "choices",
                "from_name": ls.CHOICES_TAG,
                "to_name": ls.IMAGE_TAG,
                "value": {"choices": ["outdoor", "beach"]},
            }
        ]
        record = review(task, _exported(task, answer), 9)
        assert record is not None
        assert record["labels"] == [
            {"label": "outdoor", "status": "kept"},
            {"label": "beach", "status": "added"},
        ]
        assert record["removed"] == [{"label": "indoor"}]
        assert record["boxes"] == []


class TestTokensAndTitles:
    def test_personal_access_token_is_detected(self) -> None:
        client = ls_client.LabelStudioClient(
            "http://127.0.0.1:1", _jwt({"token_type": "refresh", "exp": 9e9})
        )
        assert client.token_kind == "personal"

    def test_anything_else_is_a_legacy_token(self) -> None:
        assert ls_client.LabelStudioClient("http://127.0.0.1:1", "a" * 40).token_kind == "legacy"
        assert ls_client.LabelStudioClient("http://127.0.0.1:1", "not.a.jwt").token_kind == "legacy"

    def test_access_token_expiry_is_read_from_the_jwt(self) -> None:
        assert ls_client._jwt_expiry(_jwt({"exp": 1234})) == 1234.0
        assert ls_client._jwt_expiry("garbage") is None

    def test_url_must_be_http(self) -> None:
        with pytest.raises(ReviewBackendError):
            ls_client.LabelStudioClient("ftp://example.com", "x")

    def test_titles_fit_labelstudio_and_stay_unique(self) -> None:
        short = ls_project.review_title("run-1")
        long_a, long_b = ls_project.review_title("r" * 60 + "a"), ls_project.review_title("r" * 60 + "b")
        assert short == "Review run-1"
        assert len(long_a) <= 50 and len(long_b) <= 50 and long_a != long_b


class TestAnswersAreNotTrusted:
    """An export is data anyone with access to the project (or a script) can edit: what cannot be
    read skips that image (`invalid-annotation`), never the run, and never reaches the manifest."""

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("x", "nan"),
            ("x", float("inf")),
            ("width", 1e400),
            ("y", None),
            ("height", True),
            ("rotation", "90"),
        ],
    )
    def test_a_coordinate_that_is_not_a_finite_number_is_refused(self, field: str, value: object) -> None:
        answer = _answer_box("cat", 64, 96, 192, 120)
        if value is None:
            del answer["value"][field]
        else:
            answer["value"][field] = value
        with pytest.raises(InvalidAnswer, match=f"rectangle {field}"):
            review(DETECTION_TASK, _exported(DETECTION_TASK, [answer]), 1)

    @pytest.mark.parametrize("labels", ["cat", [["cat"]], [], [{"label": "cat"}], None])
    def test_labels_that_are_not_a_list_of_names_are_refused(self, labels: object) -> None:
        answer = _answer_box("cat", 64, 96, 192, 120)
        answer["value"]["rectanglelabels"] = labels
        with pytest.raises(InvalidAnswer):
            review(DETECTION_TASK, _exported(DETECTION_TASK, [answer]), 1)

    @pytest.mark.parametrize("choices", [{"outdoor": True}, "outdoor", [1, 2]])
    def test_choices_that_are_not_a_list_of_names_are_refused(self, choices: object) -> None:
        task = {**DETECTION_TASK, "taskType": "classification", "predictions": [{"label": "outdoor"}]}
        answer = [{"type": "choices", "from_name": ls.CHOICES_TAG, "value": {"choices": choices}}]
        with pytest.raises(InvalidAnswer, match="choices"):
            review(task, _exported(task, answer), 1)

    def test_boxes_are_scaled_by_the_runs_own_image_size(self) -> None:
        # GIVEN an answer that claims the image was ten times larger than the run measured it
        answer = _answer_box("cat", 64, 96, 192, 120)
        answer["original_width"], answer["original_height"] = W * 10, H * 10
        # THEN its percentages are read against the run's own size: the box is where it was drawn
        record = review(DETECTION_TASK, _exported(DETECTION_TASK, [answer]), 1)
        assert record is not None and record["boxes"][0]["status"] == "kept"

    def test_the_exported_tasks_data_is_never_read(self) -> None:
        # GIVEN an export whose task data was edited to point at another image, with another size
        exported = _exported(DETECTION_TASK, [_answer_box("cat", 64, 96, 192, 120)])
        exported["data"] = {**exported["data"], "source_ref": "s3://b/secret.jpg", "image_size": {"width": 1}}
        # THEN the record is the run's own image, at its own size
        record = review(DETECTION_TASK, exported, 1)
        assert record is not None
        assert record["source-ref"] == DETECTION_TASK["source-ref"]
        assert record["image_size"] == {"width": W, "height": H, "depth": 3}

    @pytest.mark.parametrize(
        ("box", "reason", "says"),
        [
            ((64, 96, -40, 120), "invalid-box", "positive width and height"),
            ((64, 96, 192, 0), "invalid-box", "positive width and height"),
            ((W + 10, 96, 50, 50), "invalid-box", "outside"),
            ((-80, 96, 50, 50), "invalid-box", "outside"),
        ],
    )
    def test_a_box_with_no_size_or_off_the_image_skips_the_image(
        self, box: tuple[float, float, float, float], reason: str, says: str
    ) -> None:
        # GIVEN an answer with one box of no area, or wholly off the image, next to a good one
        answers = [_answer_box("cat", 64, 96, 192, 120), _answer_box("dog", *box)]
        # WHEN it is read THEN the image is refused with its reason (a skip record, not a failure)
        with pytest.raises(InvalidAnswer, match=says) as caught:
            review(DETECTION_TASK, _exported(DETECTION_TASK, answers), 1)
        assert caught.value.reason == reason

    def test_a_box_partly_off_the_image_is_kept_for_the_manifest_to_clip(self) -> None:
        record = review(
            DETECTION_TASK, _exported(DETECTION_TASK, [_answer_box("cat", W - 20, 96, 50, 50)]), 1
        )
        assert record is not None and record["boxes"][0]["width"] == 20

    def test_more_boxes_than_custom_labels_takes_skips_the_image(self) -> None:
        answers = [_answer_box("cat", i % 600, 10, 5, 5) for i in range(51)]
        with pytest.raises(InvalidAnswer, match="51 boxes; Custom Labels takes at most 50") as caught:
            review(DETECTION_TASK, _exported(DETECTION_TASK, answers), 1)
        assert caught.value.reason == "too-many-boxes"
        # 50 is allowed
        assert review(DETECTION_TASK, _exported(DETECTION_TASK, answers[:50]), 1) is not None

    def test_a_label_outside_the_runs_label_set_skips_the_image(self) -> None:
        answers = [_answer_box("unicorn", 64, 96, 192, 120)]
        with pytest.raises(InvalidAnswer, match="'unicorn' is not one of the run's labels") as caught:
            review(DETECTION_TASK, _exported(DETECTION_TASK, answers), 1)
        assert caught.value.reason == "unknown-label"
        task = {**DETECTION_TASK, "taskType": "classification", "predictions": [{"label": "outdoor"}]}
        answer = [{"type": "choices", "from_name": ls.CHOICES_TAG, "value": {"choices": ["outdoor", "moon"]}}]
        with pytest.raises(InvalidAnswer, match="'moon'") as caught:
            review(task, _exported(task, answer), 1)
        assert caught.value.reason == "unknown-label"


def test_a_label_holding_a_dollar_sign_is_shown_through_html_and_answered_as_written() -> None:
    # Label Studio's editor reads `$name` in a value as a reference to the task's data, with no escape
    config = ls.label_config("detection", ["${image}", "a <b> & $5", "cat"])
    assert '<Label value="${image}" alias="${image}" html="${image}"/>' in config
    assert (
        '<Label value="a &lt;b&gt; &amp; $5" alias="a &lt;b&gt; &amp; $5" '
        'html="a &amp;lt;b&amp;gt; &amp;amp; $5"/>' in config
    )
    assert '<Label value="cat"/>' in config
    assert '<Choice value="${image}" alias="${image}" html="${image}"/>' in ls.label_config(
        "classification", ["${image}", "x"]
    )
