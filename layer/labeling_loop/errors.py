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


class TransientServiceError(LabelingLoopError):
    """A dependency answered with a transient error after the client's own retries."""


class ReviewBackendError(LabelingLoopError):
    """The review backend rejected the request (bad token, unreachable, misconfigured)."""


class ReviewFailedError(LabelingLoopError):
    """No review produced any label (every labeling job failed)."""


class ManifestValidationError(LabelingLoopError):
    """The manifest breaks a Custom Labels rule that would make training fail."""


class ModelTransitionError(LabelingLoopError):
    """The model is between states (starting/stopping) and cannot be stopped yet; retry later."""
