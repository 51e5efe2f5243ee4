"""An already-flashed board (or the native POSIX port) on a serial device: /dev/ttyACM0, a pty,
or any pyserial URL (socket://host:port, rfc2217://...).

    with SerialBackend("/dev/ttyACM0", baudrate=115200) as b:
        link = Link(b.open_port())
"""

from __future__ import annotations

import logging

from tinyadapt.device.backends import Capability, DeviceBackend
from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)

DEFAULT_BAUDRATE = 115200


class SerialBackend(DeviceBackend):
    name = "serial"
    capabilities = Capability.SERIAL

    def __init__(self, port: str, *, baudrate: int = DEFAULT_BAUDRATE, port_timeout: float = 0.5):
        super().__init__()
        self.port_name = port
        self.baudrate = baudrate
        self.port_timeout = port_timeout
        self._port = None

    def start(self) -> None:
        if self._port is not None:
            return
        import serial

        try:
            if "://" in self.port_name:
                self._port = serial.serial_for_url(self.port_name, baudrate=self.baudrate, timeout=self.port_timeout)
            else:
                self._port = serial.Serial(self.port_name, baudrate=self.baudrate, timeout=self.port_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise DeviceError(f"cannot open serial port {self.port_name}: {reason}") from None
        log.info("opened %s at %d baud", self.port_name, self.baudrate)

    def open_port(self):
        if self._port is None:
            raise DeviceError(f"serial port {self.port_name} is not open (call start() first)")
        port, self._port = self._port, None
        return port

    def stop(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except Exception:
                pass
            self._port = None

    def describe(self) -> str:
        return f"serial port {self.port_name} ({self.baudrate} baud)"
