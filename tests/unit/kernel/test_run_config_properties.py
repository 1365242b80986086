"""Properties of the input validation, over generated inputs (hypothesis).

- Every input generated within the documented bounds is accepted, and its values are kept.
- Every input with one malformed field (wrong type, out-of-range number, malformed ARN / S3 URI /
  URL / name, unknown key) is rejected with InvalidInput, and the message names that field.

Three defects these properties once missed (trailing newlines accepted by `$`, non-ASCII digits
accepted by `\\d`, JSON booleans taken as numbers) have their own tests in test_run_config.py.
"""

from __future__ import annotations

import json
import math
import re
import string
from typing import Any
from urllib.parse import urlsplit

import pytest
from fixtures_aws import numeric_stack_defaults
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from labeling_loop.kernel.errors import InvalidInput
from labeling_loop.kernel.run_config import (
    PROJECT_VERSION_ARN,
    RUN_ID,
    SECRET_ARN,
    RunConfig,
    numeric_bounds,
)
from labeling_loop.kernel.run_input import RunInput, run_id_for, validate_input
from labeling_loop.kernel.s3_uri import S3Uri
from labeling_loop.kernel.settings import StackSettings
from labeling_loop.review.labelstudio.endpoint import endpoint

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOWER = string.ascii_lowercase
DIGITS = string.digits
NAME_CHARS = string.ascii_letters + DIGITS + "_.-"
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2", "ap-northeast-1"]

# Numeric fields: (low, high, integer?), as the field types define them (autoAcceptConfidence is
# generated on its own: it must be at least minConfidence).
NUMBERS = {k: v for k, v in numeric_bounds().items() if k != "autoAcceptConfidence"}


NUMERIC_DEFAULTS = numeric_stack_defaults()


def _bucket(uri: Any, fallback: str) -> str:
    try:
        return S3Uri.parse(uri).bucket
    except ValueError:
        return fallback


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def validate(raw: dict[str, Any], execution_name: str = "exec") -> RunConfig:
    """Validate against a stack deployed over the input's own buckets, model's project and Label
    Studio, in its model's region, granting every workforce type and as many inference units as the
    API allows, with no location defaults: what is left is the input's own validity."""
    arn = PROJECT_VERSION_ARN.fullmatch(_text(raw.get("projectVersionArn")))
    # The project's ARN up to its name, as the ARN's own groups say: a project or version named
    # "version" puts "/version/" earlier in the text than where the version starts.
    project = arn.string[: arn.end("project")] if arn else ""
    # The stack's Label Studio is the input's when that one is a valid stack setting.
    url, secret = _text(raw.get("labelStudioUrl")), _text(raw.get("labelStudioTokenSecretArn"))
    http_host = urlsplit(url).hostname or "" if url.startswith("http://") else ""
    try:
        endpoint(url, http_host)
    except ValueError:
        url, http_host = "https://ls.example.com", ""
    if not SECRET_ARN.fullmatch(secret):
        secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ls-token"
    stack = StackSettings.model_validate(
        {
            "AWS_REGION": arn["region"] if arn else "us-east-1",
            "IMAGES_BUCKET": _bucket(raw.get("images"), "images-bucket"),
            "OUTPUT_BUCKET": _bucket(raw.get("output"), "output-bucket"),
            "RUN_DEFAULTS": json.dumps(NUMERIC_DEFAULTS),
            "ALLOWED_PROJECT_ARNS": f"{project}/*" if arn else "",
            "INFERENCE_UNITS_LIMIT": "100",
            "WORKTEAM_TYPES": "private-crowd,vendor-crowd,public-crowd",
            "LABEL_STUDIO_URL": url,
            "LABEL_STUDIO_HTTP_HOST": http_host,
            "LABEL_STUDIO_TOKEN_SECRET_ARN": secret,
        }
    )
    arn = f"arn:aws:states:us-east-1:123456789012:execution:sm:{abs(hash(execution_name))}"
    return validate_input(raw, execution_name=execution_name, execution_arn=arn, stack=stack)


# Valid values --------------------------------------------------------------------------------------


def hyphenated(max_parts: int) -> st.SearchStrategy[str]:
    """[a-z0-9](-?[a-z0-9]){0,n}: lower-case alphanumerics with single inner hyphens."""
    return st.lists(
        st.tuples(st.booleans(), st.sampled_from(LOWER + DIGITS)), min_size=0, max_size=max_parts
    ).flatmap(
        lambda parts: st.sampled_from(LOWER + DIGITS).map(
            lambda first: first + "".join(("-" if hy else "") + ch for hy, ch in parts)
        )
    )


job_prefixes = hyphenated(9).filter(lambda s: len(s) <= 10)
accounts = st.text(DIGITS, min_size=12, max_size=12)
names = st.text(NAME_CHARS, min_size=1, max_size=40)


@st.composite
def model_arns(draw: st.DrawFn) -> str:
    return (
        f"arn:aws:rekognition:{draw(st.sampled_from(REGIONS))}:{draw(accounts)}:project/{draw(names)}"
        f"/version/{draw(names)}/{draw(st.integers(0, 10**14))}"
    )


@st.composite
def bucket_names(draw: st.DrawFn) -> str:
    inner = draw(st.text(LOWER + DIGITS + ".-", min_size=1, max_size=40))
    name = draw(st.sampled_from(LOWER + DIGITS)) + inner + draw(st.sampled_from(LOWER + DIGITS))
    assume(".." not in name)
    return name


@st.composite
def s3_uris(draw: st.DrawFn) -> str:
    key = draw(st.text(st.characters(blacklist_categories=["Cs"]), max_size=40))
    return f"s3://{draw(bucket_names())}/{key}"


workteam_arns = st.builds(
    lambda region, account, team: f"arn:aws:sagemaker:{region}:{account}:workteam/private-crowd/{team}",
    st.sampled_from(REGIONS),
    accounts,
    st.text(string.ascii_letters + DIGITS + "_.-", min_size=1, max_size=30),
)
secret_arns = st.builds(
    lambda region, account, name: f"arn:aws:secretsmanager:{region}:{account}:secret:{name}",
    st.sampled_from(REGIONS),
    accounts,
    st.text(string.ascii_letters + DIGITS + "/+=.@-_", min_size=1, max_size=30),
)
# Host names start with a letter: a numeric host is an address (and 0 is the unspecified one).
urls = st.builds(
    lambda scheme, first, host, port, path: f"{scheme}://{first}{host}{port}{path}",
    st.sampled_from(["http", "https"]),
    st.sampled_from(LOWER),
    st.text(LOWER + DIGITS + ".-", max_size=30),
    st.sampled_from(["", ":8080", ":443"]),
    st.sampled_from(["", "/", "/label-studio", "/a/b/"]),
)
# Visible characters and spaces (control, format and separator characters are refused).
labels = st.lists(
    st.text(
        st.one_of(st.characters(blacklist_categories=["C", "Z"]), st.just(" ")), min_size=1, max_size=30
    ).filter(lambda s: 1 <= len(s.strip()) <= 256),
    max_size=20,
)


@st.composite
def valid_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """An execution input within every documented bound (sparse: optional fields may be absent)."""
    raw: dict[str, Any] = {
        "projectVersionArn": draw(model_arns()),
        "images": draw(s3_uris()),
        "output": draw(s3_uris()),
    }
    backend = draw(st.sampled_from(["groundtruth", "labelstudio"]))
    if backend == "groundtruth":
        raw["workteamArn"] = draw(workteam_arns)
        if draw(st.booleans()):
            raw["reviewBackend"] = "groundtruth"
    else:
        raw.update(
            reviewBackend="labelstudio",
            labelStudioUrl=draw(urls),
            labelStudioTokenSecretArn=draw(secret_arns),
        )
    for field, (low, high, integer) in NUMBERS.items():
        if field in ("reviewPollSeconds", "reviewDeadlineHours") or not draw(st.booleans()):
            continue
        raw[field] = draw(st.integers(int(low), int(high)) if integer else st.floats(low, high))
    # The history guard ties the poll intervals to the deadlines: at most 500 model polls and
    # 1,000 review polls per review wave (two when the audit gate may send auto-accepted images to
    # people) keep every execution of the run far under 25,000 events.
    timeout = raw.get("modelStartTimeoutMinutes", NUMERIC_DEFAULTS["modelStartTimeoutMinutes"])
    model_poll = raw.get("modelPollSeconds", NUMERIC_DEFAULTS["modelPollSeconds"])
    raw["modelPollSeconds"] = max(model_poll, math.ceil(timeout * 60 / 500))
    deadline = draw(st.integers(1, 720))
    raw["reviewDeadlineHours"] = deadline
    fastest = max(math.ceil((deadline + 2) * 3600 / 1000), int(NUMBERS["reviewPollSeconds"][0]))
    raw["reviewPollSeconds"] = draw(st.integers(fastest, 86_400))
    min_confidence = raw.get("minConfidence", 50.0)
    if draw(st.booleans()):
        raw["autoAcceptConfidence"] = draw(st.floats(min_confidence, 100))
    # A review budget holds the audit of auto-accept, which it always includes.
    if "reviewBudget" in raw and "autoAcceptConfidence" in raw:
        audit = raw.get("auditMinImages", NUMERIC_DEFAULTS["auditMinImages"])
        raw["reviewBudget"] = max(raw["reviewBudget"], audit)
    optional = {
        "taskType": st.sampled_from(["auto", "detection", "classification"]),
        "auditGateAction": st.sampled_from(["review", "defer"]),
        "incremental": st.booleans(),
        "jobNamePrefix": job_prefixes,
        "labels": labels,
    }
    for field, strategy in optional.items():
        if draw(st.booleans()):
            raw[field] = draw(strategy)
    # A review offers at most maxLabelsPerJob labels.
    if "labels" in raw and "maxLabelsPerJob" in raw:
        raw["maxLabelsPerJob"] = max(raw["maxLabelsPerJob"], len({label.strip() for label in raw["labels"]}))
    # What Step Functions hands the function: JSON.
    return json.loads(json.dumps(raw))


@PROFILE
@given(raw=valid_inputs(), execution_name=st.text(max_size=80))
def test_no_valid_input_is_rejected(raw: dict[str, Any], execution_name: str) -> None:
    # GIVEN an input within the documented bounds
    # WHEN it is validated (no stack defaults, no bucket restriction)
    config = validate(raw, execution_name)
    # THEN it is accepted with its values kept, and the run has a valid id
    for field in ("projectVersionArn", "reviewDeadlineHours", "reviewPollSeconds", *NUMBERS):
        if field in raw:
            assert getattr(config, field) == raw[field]
    assert config.runId is not None and RUN_ID.fullmatch(config.runId)


# Malformed values ---------------------------------------------------------------------------------

NOT_A_STRING = st.one_of(
    st.integers(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Letters only: never a number (pydantic parses "1e3" or " 5 "); "nan"/"inf" are out of every range.
WORD = st.text(string.ascii_letters, min_size=1, max_size=8)
BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "t", "f", "y", "n", "1", "0"}


def bad_number(low: float, high: float, integer: bool) -> st.SearchStrategy[Any]:
    out_of_range = st.one_of(
        st.integers(max_value=int(low) - 1),
        st.integers(min_value=int(high) + 1),
        st.floats(max_value=low, exclude_max=True, allow_nan=False),
        st.floats(min_value=high, exclude_min=True, allow_nan=False),
    )
    wrong_type = st.one_of(
        WORD, st.lists(st.integers(), max_size=2), st.dictionaries(WORD, st.integers(), max_size=2)
    )
    strategies = [out_of_range, wrong_type]
    if integer:  # a fraction is not a count
        strategies.append(st.floats(low, high).filter(lambda v: not float(v).is_integer()))
    return st.one_of(*strategies)


def mutated(valid: st.SearchStrategy[str], alphabet: str) -> st.SearchStrategy[str]:
    """A valid value with a piece cut, replaced or inserted (ASCII only, no line breaks)."""

    @st.composite
    def build(draw: st.DrawFn) -> str:
        value = draw(valid)
        start = draw(st.integers(0, len(value)))
        end = draw(st.integers(start, len(value)))
        return value[:start] + draw(st.text(alphabet, max_size=4)) + value[end:]

    return build()


ASCII_NO_NEWLINE = "".join(chr(c) for c in range(32, 127))
PROJECT_VERSION_REFERENCE = re.compile(
    r"arn:aws[a-z-]*:rekognition:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:"
    r"project/[a-zA-Z0-9_.\-]{1,255}/version/[a-zA-Z0-9_.\-]{1,255}/[0-9]+"
)


def not_matching(pattern: str) -> Any:
    compiled = re.compile(pattern)
    return lambda value: not compiled.fullmatch(value)


def bad_bucket_uri() -> st.SearchStrategy[str]:
    bad_bucket = st.one_of(
        st.text(LOWER, max_size=2),  # too short
        st.text(LOWER, min_size=64, max_size=70),  # too long
        st.builds(
            lambda a, b: a + b,
            st.sampled_from(["A", "_", " ", "!", "é"]),
            st.text(LOWER, min_size=3, max_size=8),
        ),
        st.builds(lambda b: "-" + b, st.text(LOWER, min_size=3, max_size=8)),
        st.builds(lambda b: b + ".", st.text(LOWER, min_size=3, max_size=8)),
        st.builds(
            lambda a, b: a + ".." + b,
            st.text(LOWER, min_size=1, max_size=5),
            st.text(LOWER, min_size=1, max_size=5),
        ),
    )
    return st.one_of(
        st.builds(lambda bucket, key: f"s3://{bucket}/{key}", bad_bucket, st.text(LOWER, max_size=5)),
        st.text(ASCII_NO_NEWLINE, max_size=30).filter(lambda s: not s.startswith("s3://")),
        st.sampled_from(
            ["https://bucket-name.s3.amazonaws.com/key", "S3://bucket-name/key", "s3:/bucket-name/"]
        ),
    )


def malformed_values(field: str) -> st.SearchStrategy[Any]:
    """Values of one field that must be rejected (given an otherwise valid input)."""
    if field == "reviewBudget":  # a count, or the word "none"
        return bad_number(*NUMBERS[field]).filter(lambda v: v != "none")
    if field in NUMBERS:
        low, high, integer = NUMBERS[field]
        return bad_number(low, high, integer)
    if field == "autoAcceptConfidence":
        return bad_number(0, 100, False)
    if field == "projectVersionArn":
        return st.one_of(
            NOT_A_STRING,
            mutated(model_arns(), ASCII_NO_NEWLINE).filter(
                lambda v: not PROJECT_VERSION_REFERENCE.fullmatch(v)
            ),
            st.text(ASCII_NO_NEWLINE, max_size=60).filter(
                lambda v: not PROJECT_VERSION_REFERENCE.fullmatch(v)
            ),
        )
    if field in ("images", "output"):
        return st.one_of(NOT_A_STRING, bad_bucket_uri())
    if field == "workteamArn":
        return st.one_of(
            st.integers(),
            st.text(ASCII_NO_NEWLINE, min_size=1, max_size=60).filter(
                not_matching(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:workteam/[a-z-]+-crowd/[\w.-]+")
            ),
            st.just(""),  # empty counts as missing: required for Ground Truth
        )
    if field == "labelStudioUrl":
        return st.one_of(
            st.integers(),
            st.text(ASCII_NO_NEWLINE, min_size=1, max_size=40).filter(
                not_matching(r"https?://[^\s/]+(:[0-9]+)?(/.*)?")
            ),
        )
    if field == "labelStudioTokenSecretArn":
        return st.one_of(
            st.integers(),
            st.text(ASCII_NO_NEWLINE, min_size=1, max_size=60).filter(
                not_matching(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[\w/+=.@-]+")
            ),
        )
    if field == "jobNamePrefix":
        longest = 10
        return st.one_of(
            st.integers(),
            st.text(ASCII_NO_NEWLINE, max_size=longest + 5).filter(
                lambda v: not (re.fullmatch(r"[a-z0-9](-?[a-z0-9])*", v) and len(v) <= longest)
            ),
        )
    if field == "reviewBackend":
        return st.one_of(
            st.integers(), st.text(max_size=12).filter(lambda v: v not in ("groundtruth", "labelstudio"))
        )
    if field == "auditGateAction":
        return st.one_of(st.integers(), st.text(max_size=12).filter(lambda v: v not in ("review", "defer")))
    if field == "taskType":
        return st.one_of(
            st.integers(),
            st.text(max_size=12).filter(lambda v: v not in ("auto", "detection", "classification")),
        )
    if field == "autoAcceptConfidenceByLabel":
        return st.one_of(
            st.integers(),
            st.lists(st.integers(), min_size=1, max_size=2),
            st.dictionaries(WORD, st.floats(min_value=100, exclude_min=True, allow_nan=False), min_size=1),
            st.dictionaries(WORD, WORD, min_size=1, max_size=2),
        )
    if field in ("incremental", "train", "promoteIfBetter"):
        return st.one_of(
            WORD.filter(lambda v: v.lower() not in BOOL_WORDS),
            st.integers().filter(lambda v: v not in (0, 1)),
            st.lists(st.booleans(), max_size=2),
        )
    if field == "labels":
        return st.one_of(
            st.text(max_size=5),
            st.integers(),
            st.lists(
                st.one_of(st.integers(), st.none(), st.just("   "), st.just("x" * 257)),
                min_size=1,
                max_size=3,
            ),
            st.lists(st.just("bird"), min_size=51, max_size=260),
            st.lists(st.sampled_from(["a\nb", "tab\there", "zero\u200bwidth", "nb\u00a0sp"]), min_size=1),
        )
    raise AssertionError(f"no malformed values for {field}")


# Every input field (runId and executionArn come from the execution, not the input).
CHECKED_FIELDS = sorted(set(RunInput.model_fields))


def names_field(message: str, field: str) -> bool:
    """The message says which field is wrong: `field: ...`, `field.0: ...` (an item of a list), or
    a whole-input rule (`input: ...`) that mentions the field."""
    parts = message.split("; ")
    return any(
        part.startswith((f"{field}:", f"{field}.")) or (part.startswith("input: ") and field in part)
        for part in parts
    )


@st.composite
def one_bad_field(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    raw = draw(valid_inputs())
    field = draw(st.sampled_from(CHECKED_FIELDS))
    if field in ("labelStudioUrl", "labelStudioTokenSecretArn"):
        # Checked only for the Label Studio backend.
        raw.pop("workteamArn", None)
        raw.update(
            reviewBackend="labelstudio",
            labelStudioUrl=draw(urls),
            labelStudioTokenSecretArn=draw(secret_arns),
        )
    if field == "workteamArn":
        raw.update(reviewBackend="groundtruth")
        raw.pop("labelStudioUrl", None)
        raw.pop("labelStudioTokenSecretArn", None)
    if field == "autoAcceptConfidence":
        raw["minConfidence"] = 0
    raw[field] = draw(malformed_values(field))
    return raw, field


@PROFILE
@given(case=one_bad_field())
def test_every_malformed_field_is_rejected_and_named(case: tuple[dict[str, Any], str]) -> None:
    raw, field = case
    # GIVEN an input whose only fault is one field
    # WHEN it is validated
    with pytest.raises(InvalidInput) as caught:
        validate(raw)
    # THEN the error names that field
    assert names_field(str(caught.value), field), str(caught.value)


@PROFILE
@given(
    raw=valid_inputs(),
    key=st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20).filter(
        lambda k: k not in RunConfig.model_fields
    ),
    value=st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=2)),
)
def test_unknown_keys_are_rejected_by_name(raw: dict[str, Any], key: str, value: Any) -> None:
    # GIVEN a valid input with one extra key (a typo, or a field of another version)
    # WHEN it is validated
    with pytest.raises(InvalidInput) as caught:
        validate({**raw, key: value})
    # THEN the error names the key
    assert f"{key}: is not a known input field" in str(caught.value)


@PROFILE
@given(raw=valid_inputs(), data=st.data())
def test_review_polls_beyond_the_history_limit_are_rejected(raw: dict[str, Any], data: st.DataObject) -> None:
    # GIVEN a deadline and a poll interval that would take a run's execution (or a labeling job's)
    # past the 25,000 history events it keeps
    deadline = data.draw(st.integers(300, 720))
    fastest = validate(raw).model_copy(update={"reviewDeadlineHours": deadline}).fastest_review_poll()
    assume(fastest > 60)
    poll = data.draw(st.integers(0, fastest - 1))
    # WHEN it is validated
    with pytest.raises(InvalidInput) as caught:
        validate({**raw, "reviewDeadlineHours": deadline, "reviewPollSeconds": poll})
    # THEN the error names the poll interval
    assert names_field(str(caught.value), "reviewPollSeconds")


@PROFILE
@given(execution_name=st.text(max_size=120))
def test_any_execution_name_gives_a_valid_run_id(execution_name: str) -> None:
    # WHEN a run id is derived from any execution name
    run_id = run_id_for(execution_name, "arn:aws:states:us-east-1:123456789012:execution:sm:x")
    # THEN it is a valid run id: 1-40 lower-case letters, digits and single hyphens
    assert RUN_ID.fullmatch(run_id)
    assert re.fullmatch(r"[a-z0-9](-?[a-z0-9]){0,39}", run_id) and len(run_id) <= 40


# Wrongly typed values --------------------------------------------------------------------------
#
# Strict types: a value of the wrong JSON type is refused, naming its field, never converted. The
# values a lax parser would have taken are the point: " 2 " or "2" for a count, "on" or "1" or 1
# for a flag, "90" for a confidence, 7 for a name.

BOOL_FIELDS = ("incremental", "train", "promoteIfBetter")
TEXT_FIELDS = tuple(
    sorted(
        set(CHECKED_FIELDS)
        - set(NUMBERS)
        - set(BOOL_FIELDS)
        - {"labels", "autoAcceptConfidence", "autoAcceptConfidenceByLabel"}
    )
)
NUMBER_TEXT = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.integers(0, 1000).map(lambda n: f" {n} "),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e3", "0x10", "2_000", "50.0", "", " "]),
)
BOOL_TEXT = st.sampled_from(sorted(BOOL_WORDS | {"True", "FALSE", "On", " true "}))
CONTAINERS = st.one_of(
    st.lists(st.integers(0, 5), max_size=2), st.dictionaries(WORD, st.integers(0, 5), max_size=2)
)


def wrongly_typed(field: str) -> st.SearchStrategy[Any]:
    """Values of `field` of a JSON type it does not have (null is "absent", so never generated)."""
    if field == "autoAcceptConfidence":  # a number, or exactly "off" (a valid value, never generated)
        return st.one_of(NUMBER_TEXT, BOOL_TEXT.filter(lambda v: v != "off"), st.booleans(), CONTAINERS)
    if field in NUMBERS:
        return st.one_of(NUMBER_TEXT, BOOL_TEXT, st.booleans(), CONTAINERS)
    if field in BOOL_FIELDS:
        return st.one_of(BOOL_TEXT, NUMBER_TEXT, st.integers(), st.floats(allow_nan=False), CONTAINERS)
    if field in TEXT_FIELDS:
        return st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(), CONTAINERS)
    if field == "labels":
        return st.one_of(
            WORD,
            st.integers(),
            st.booleans(),
            st.dictionaries(WORD, WORD, max_size=2),
            st.lists(
                st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False)), min_size=1, max_size=3
            ),
        )
    if field == "autoAcceptConfidenceByLabel":
        return st.one_of(
            WORD,
            st.integers(),
            st.booleans(),
            st.lists(st.integers(0, 100), min_size=1, max_size=2),
            st.dictionaries(WORD, st.one_of(NUMBER_TEXT, st.booleans()), min_size=1, max_size=2),
        )
    raise AssertionError(f"no wrongly typed values for {field}")


@st.composite
def one_wrongly_typed_field(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    raw = draw(valid_inputs())
    field = draw(st.sampled_from(CHECKED_FIELDS))
    raw[field] = draw(wrongly_typed(field))
    return json.loads(json.dumps(raw)), field


@PROFILE
@given(case=one_wrongly_typed_field())
def test_every_wrongly_typed_value_is_refused_naming_its_field(case: tuple[dict[str, Any], str]) -> None:
    raw, field = case
    # GIVEN a valid input whose only fault is the JSON type of one field
    # WHEN it is validated
    with pytest.raises(InvalidInput) as caught:
        validate(raw)
    # THEN it is refused, never converted, and the error names that field first
    assert names_field(str(caught.value), field), str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("minInferenceUnits", " 2 "),
        ("minInferenceUnits", "2"),
        ("minInferenceUnits", 2.5),
        ("minConfidence", "60"),
        ("autoAcceptConfidence", "90"),
        ("train", "on"),
        ("train", 1),
        ("incremental", "true"),
        ("maxImagesPerRun", "100"),
        ("autoAcceptConfidenceByLabel", {"cat": "80"}),
        ("labels", [1, 2]),
    ],
)
def test_values_a_lax_parser_converted_are_refused(field: str, value: Any) -> None:
    # The inputs the fuzzing found accepted and converted (" 2 " started 2 units).
    raw = {
        "projectVersionArn": "arn:aws:rekognition:us-east-1:123456789012:project/p/version/v/1",
        "images": "s3://images-bucket/in/",
        "output": "s3://output-bucket/out/",
        "workteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
        "minConfidence": 0,
        field: value,
    }
    with pytest.raises(InvalidInput) as caught:
        validate(raw)
    assert str(caught.value).startswith(f"{field}"), str(caught.value)


@PROFILE
@given(
    raw=valid_inputs(),
    key=st.one_of(
        st.just(""),
        st.just(" cat"),
        st.just("x" * 257),
        st.text(st.characters(whitelist_categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=3).map(
            lambda bad: f"ca{bad}t"
        ),
    ),
)
def test_every_key_of_the_per_label_thresholds_is_checked(raw: dict[str, Any], key: str) -> None:
    # GIVEN per-label thresholds whose key cannot be a label name (empty, padded, too long, invisible
    # characters), with a valid threshold
    raw = {**raw, "minConfidence": 0, "autoAcceptConfidenceByLabel": {key: 90}}
    # THEN the input is refused, naming the field
    with pytest.raises(InvalidInput) as caught:
        validate(raw)
    assert names_field(str(caught.value), "autoAcceptConfidenceByLabel"), str(caught.value)


def test_a_project_and_version_named_version_are_one_model() -> None:
    # Hypothesis drew a project named "version": the test's stack then granted ".../project/*"
    # instead of the project, and a valid input read as refused.
    raw = {
        "projectVersionArn": "arn:aws:rekognition:us-east-1:123456789012:project/version/version/version/1",
        "images": "s3://images-bucket/in/",
        "output": "s3://output-bucket/out/",
        "workteamArn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
    }
    assert validate(raw).projectVersionArn == raw["projectVersionArn"]
