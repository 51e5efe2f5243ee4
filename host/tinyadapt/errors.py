"""One exception tree: the CLI prints any TinyAdaptError as one line and exits 1."""


class TinyAdaptError(Exception):
    """Base of every error tinyadapt reports to a user."""


class ModelFileError(TinyAdaptError):
    """The .tflite file is missing, truncated or not a valid flatbuffer."""


class UnsupportedModelError(TinyAdaptError):
    """The model is valid but uses an op, dtype or option tinyadapt does not implement."""


class PlanError(TinyAdaptError):
    """Memory could not be planned (e.g. the model does not fit a budget)."""


class BlobError(TinyAdaptError):
    """A model blob is corrupt or from an incompatible format version."""


class EngineError(TinyAdaptError):
    """The C engine returned an error status."""


class InputError(TinyAdaptError):
    """User data (an input array) does not match what the model expects."""
