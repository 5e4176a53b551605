"""The development mail sink that `make run` starts: an SMTP server (aiosmtpd) on
127.0.0.1:$SMTP_PORT that keeps every message it is given as one `.eml` file under
`$DATA_DIR/mail/`, and sends nothing anywhere.

    .venv/bin/python scripts/mail_sink.py

A file is named by the message's Message-ID, so a message handed over twice (a worker that
died between the server's answer and its own record of it) is kept once. Each is written to
a temporary name first, then renamed: a reader never sees half a message.
"""

import hashlib
import os
import signal
import sys
import threading
import time
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

ROOT = Path(__file__).resolve().parents[1]


class EmlWriter:
    """aiosmtpd's DATA handler: each message to a file of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's name
        content = envelope.original_content or b""
        message_id = message_from_bytes(content, policy=default).get("Message-ID", "")
        key = message_id or f"{time.time_ns()}-{os.getpid()}"
        name = hashlib.sha256(str(key).encode()).hexdigest()[:32]
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        target = self.directory / f"{stamp}-{name}.eml"
        if any(self.directory.glob(f"*-{name}.eml")):
            return "250 Message accepted for delivery (already kept)"
        temporary = self.directory / f".{name}.tmp"
        temporary.write_bytes(content)
        temporary.rename(target)
        print(f"mail-sink: kept {target.name}", flush=True)
        return "250 Message accepted for delivery"


def main() -> int:
    directory = Path(os.environ.get("DATA_DIR") or ROOT / ".data") / "mail"
    directory.mkdir(parents=True, exist_ok=True)
    port = int(os.environ.get("SMTP_PORT", "8025"))
    controller = Controller(EmlWriter(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"mail-sink: smtp://127.0.0.1:{port} -> {directory}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
