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


class ProtocolError(TinyAdaptError):
    """Bytes from a device do not follow the serial protocol (bad frame, unexpected answer)."""


class DeviceError(TinyAdaptError):
    """A device (emulated or real) is unreachable, stopped answering, or refused a command."""


class DeviceCommandError(DeviceError):
    """The device answered a command with an error status (`status` holds the ta_status_t)."""

    def __init__(self, message: str, status: int = 0, command: str = ""):
        super().__init__(message)
        self.status = status
        self.command = command


class FlashError(TinyAdaptError):
    """An image could not be written to a board (no probe, no pyOCD, flashing failed)."""


class BuildError(TinyAdaptError):
    """A firmware image could not be built, or the model does not fit the board's budget."""
