"""Running the C engine: in-process on the host (ctypes); devices live in tinyadapt.device."""
