"""Domain exceptions. The class name is what the state machine's Retry/Catch `ErrorEquals` matches,
so names are part of the workflow's contract: never start them with `States.`."""


class LabelingLoopError(Exception):
    """Base class: every error the workflow raises on purpose."""


class InvalidInput(LabelingLoopError):
    """The execution input is wrong; the message names the field. Raised by the first state."""


class ModelNotFoundError(LabelingLoopError):
    """The project version ARN does not name an existing Custom Labels model."""


class ModelStartFailedError(LabelingLoopError):
    """The model went to FAILED (or could not be started) while this run waited for RUNNING."""


class ModelStartTimeoutError(LabelingLoopError):
    """The model did not reach RUNNING before the run's deadline."""


class ModelNotRunningError(LabelingLoopError):
    """The model stopped under a running inference (retryable by the state machine)."""


class ModelStartingError(LabelingLoopError):
    """A redriven run's fan-out batch found the model stopped by the run's own cleanup and (re)started
    it: the batch waits for RUNNING (retried by the state machine, within modelStartTimeoutMinutes)."""


class TransientServiceError(LabelingLoopError):
    """A dependency answered with a transient error (throttling, 5xx, a dropped connection, a
    timeout) after the client's own retries. The state machine retries it with backoff."""


class LabelStudioUnavailableError(TransientServiceError):
    """Label Studio could not be reached or answered 5xx; a review poll waits for it to come back."""


class InferenceFailedError(LabelingLoopError):
    """Too many images could not be inferred for reasons that are not the images' own (Rekognition
    cannot read the bucket, the service refused); the message names the cause and the fix."""


class ReviewBackendError(LabelingLoopError):
    """The review backend rejected the request (bad token, unreachable, misconfigured)."""


class ManifestValidationError(LabelingLoopError):
    """The manifest breaks a Custom Labels rule that would make training fail."""


class ModelTransitionError(LabelingLoopError):
    """The model is between states (starting/stopping) and cannot be stopped yet; retry later."""


class InvalidEvent(LabelingLoopError):
    """A function was sent an event its model does not read (kernel/handler_events.py): the sender
    (the definition, a rule, a person invoking it) and the function disagree. The message names the
    function and the field, never the value."""
