"""Running the CLI with its stderr on a pseudo-terminal, as a user at a terminal sees it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def on_a_terminal(*args, columns: int = 100) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal: (exit status, stdout, what the terminal got)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env["TERM"] = "xterm-256color"
    out = tempfile.TemporaryFile()     # not a pipe: nobody reads it while the terminal is drained
    proc = subprocess.Popen([sys.executable, "-m", "tinyadapt", *map(str, args)], cwd=REPO, env=env,
                            stdout=out, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:       # EIO: the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(master)
    out.seek(0)
    return proc.returncode, out.read().decode(), b"".join(chunks).decode(errors="replace")
