"""A fault-injecting TCP proxy for testing the serial link: host <-> proxy <-> QEMU's UART.

Each byte forwarded is, with probability `rate`, dropped, corrupted (one bit flipped) or
duplicated (the kind drawn uniformly); each complete frame (a 0x00 delimiter passing by) is,
with probability `frame_dup_rate`, sent a second time, which exercises the duplicate filters
on both ends. All randomness comes from one seeded RNG per direction, so a run can be
replayed.

Safety: it listens on and connects to loopback addresses only, serves exactly one client,
and stops by itself when either side closes, when `lifetime` seconds have passed, or when
no client connects within `accept_timeout`. Its threads are daemons; stop() joins them.

    proxy = FaultProxy(("127.0.0.1", qemu_port), FaultConfig(rate=0.01, seed=1))
    proxy.start()                  # connects upstream (retrying while QEMU starts), then listens
    port = serial.serial_for_url(proxy.url)
    ...
    proxy.stop(); print(proxy.stats.as_dict())
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
import time
from dataclasses import asdict, dataclass, field

from tinyadapt.errors import DeviceError

log = logging.getLogger(__name__)

MAX_FRAME_MEMORY = 4096   # bytes of the current frame remembered for frame duplication


@dataclass
class FaultConfig:
    rate: float = 0.01              # per byte: probability of one fault (drop / corrupt / duplicate)
    frame_dup_rate: float | None = None   # per frame: probability of resending it (default: rate)
    seed: int = 0
    to_device: bool = True          # inject on host -> device bytes
    to_host: bool = True            # inject on device -> host bytes
    lifetime: float = 3600.0        # seconds before the proxy stops by itself
    accept_timeout: float = 30.0    # seconds to wait for the client

    def __post_init__(self):
        if not 0.0 <= self.rate <= 0.5:
            raise ValueError(f"fault rate {self.rate} is outside [0, 0.5]")
        if self.frame_dup_rate is None:
            self.frame_dup_rate = self.rate


@dataclass
class DirectionStats:
    bytes_in: int = 0
    bytes_out: int = 0
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0
    frames_duplicated: int = 0


@dataclass
class FaultStats:
    to_device: DirectionStats = field(default_factory=DirectionStats)
    to_host: DirectionStats = field(default_factory=DirectionStats)

    def as_dict(self) -> dict:
        d = asdict(self)
        for key in ("bytes_in", "dropped", "corrupted", "duplicated", "frames_duplicated"):
            d[key] = d["to_device"][key] + d["to_host"][key]
        return d


class FaultInjector:
    """The byte mangler for one direction (pure: bytes in, bytes out; no sockets)."""

    def __init__(self, rate: float, frame_dup_rate: float, rng: random.Random, stats: DirectionStats):
        self.rate = rate
        self.frame_dup_rate = frame_dup_rate
        self.rng = rng
        self.stats = stats
        self._frame = bytearray()

    def process(self, data: bytes) -> bytes:
        out = bytearray()
        rng, st = self.rng, self.stats
        st.bytes_in += len(data)
        for b in data:
            if self.rate and rng.random() < self.rate:
                kind = rng.randrange(3)
                if kind == 0:
                    st.dropped += 1
                    continue
                if kind == 1:
                    st.corrupted += 1
                    b ^= 1 << rng.randrange(8)
                    out.append(b)
                else:
                    st.duplicated += 1
                    out += bytes((b, b))
            else:
                out.append(b)
            if len(self._frame) < MAX_FRAME_MEMORY:
                self._frame.append(b)
            if b == 0:
                if self.frame_dup_rate and len(self._frame) > 1 and rng.random() < self.frame_dup_rate:
                    st.frames_duplicated += 1
                    out += self._frame
                self._frame.clear()
        st.bytes_out += len(out)
        return bytes(out)


def _check_loopback(host: str) -> None:
    try:
        addr = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        raise ValueError(f"fault proxy: cannot resolve {host}") from None
    if not addr.is_loopback:
        raise ValueError(f"fault proxy: {host} is not a loopback address (the proxy stays on this machine)")


class FaultProxy:
    def __init__(self, upstream: tuple[str, int] | socket.socket, config: FaultConfig | None = None,
                 listen_host: str = "127.0.0.1", upstream_alive=None, connect_timeout: float = 10.0):
        """`upstream`: (host, port) to connect to (retrying while it starts listening), or an
        already-connected socket, which the proxy then owns."""
        if isinstance(upstream, socket.socket):
            self._up = upstream
            self.upstream = upstream.getpeername()[:2]
        else:
            self._up = None
            self.upstream = tuple(upstream)
        _check_loopback(self.upstream[0])
        _check_loopback(listen_host)
        self.config = config or FaultConfig()
        self.listen_host = listen_host
        self.upstream_alive = upstream_alive      # callable: False once the upstream process died
        self.connect_timeout = connect_timeout
        self.stats = FaultStats()
        self.port: int | None = None
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"socket://{self.listen_host}:{self.port}"

    def start(self) -> None:
        deadline = time.monotonic() + self.connect_timeout
        while self._up is None:
            if self.upstream_alive is not None and not self.upstream_alive():
                raise DeviceError("fault proxy: the device process exited before accepting a connection")
            try:
                self._up = socket.create_connection(self.upstream, timeout=1.0)
            except OSError:
                if time.monotonic() > deadline:
                    raise DeviceError(f"fault proxy: nothing listens on {self.upstream[0]}:{self.upstream[1]}") from None
                time.sleep(0.02)
        self._up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._up.settimeout(None)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind((self.listen_host, 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        t = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._threads.append(t)
        t.start()
        log.info("fault proxy %s -> %s:%d (rate %.3g, seed %d)", self.url, *self.upstream, self.config.rate,
                 self.config.seed)

    def _serve(self) -> None:
        cfg = self.config
        self._listener.settimeout(0.1)
        give_up = time.monotonic() + cfg.accept_timeout
        client = None
        try:
            while client is None and not self._stop.is_set() and time.monotonic() < give_up:
                try:
                    client, _ = self._listener.accept()
                except socket.timeout:
                    continue
        except OSError:
            pass
        finally:
            self._listener.close()
        if client is None:
            log.info("fault proxy: no client connected; stopping")
            self._close_all()
            return
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.settimeout(None)
        self._client = client
        down = FaultInjector(cfg.rate if cfg.to_device else 0.0, cfg.frame_dup_rate if cfg.to_device else 0.0,
                             random.Random(cfg.seed * 2 + 1), self.stats.to_device)
        up = FaultInjector(cfg.rate if cfg.to_host else 0.0, cfg.frame_dup_rate if cfg.to_host else 0.0,
                           random.Random(cfg.seed * 2 + 2), self.stats.to_host)
        pumps = [threading.Thread(target=self._pump, args=(client, self._up, down), daemon=True,
                                  name="fault-proxy-to-device"),
                 threading.Thread(target=self._pump, args=(self._up, client, up), daemon=True,
                                  name="fault-proxy-to-host")]
        for t in pumps:
            t.start()
        end = time.monotonic() + cfg.lifetime
        while not self._stop.is_set() and any(t.is_alive() for t in pumps):
            if time.monotonic() > end:
                log.warning("fault proxy: lifetime of %.0f s over; stopping", cfg.lifetime)
                break
            self._stop.wait(0.1)
        self._close_all()
        for t in pumps:
            t.join(timeout=2)

    def _pump(self, src: socket.socket, dst: socket.socket, injector: FaultInjector) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(4096)
                if not data:
                    break
                out = injector.process(data)
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        self._stop.set()

    def _close_all(self) -> None:
        self._stop.set()
        for s in (self._client, self._up):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def stop(self) -> None:
        self._stop.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        self._close_all()
        for t in self._threads:
            t.join(timeout=5)
        self._threads.clear()

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
