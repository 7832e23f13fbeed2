"""Receipt printers through python-escpos: network (raw TCP 9100), USB, serial and file, behind
one small interface (``PrinterSink``): send a job's bytes, read the status.

A device is named by a URL in the settings (``PRINTER_DEVICE``)::

    tcp://192.168.1.50:9100         network printer (port defaults to 9100)
    usb://0x0416:0x5011             USB vendor:product id (needs pyusb and libusb)
    serial:///dev/ttyUSB0?baudrate=115200   or serial://COM3 on Windows
    file:///dev/usb/lp0             a device file (or any file: bytes are appended)

The connection is opened for each job and closed after it: a network printer accepts one client
at a time, and a printer switched off or unplugged between jobs is found again by the next one.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from printer_agent.errors import PrinterUnavailable
from printer_agent.status import PrinterStatus, read_status

STATUS_TIMEOUT = 2.0  # seconds to wait for a DLE EOT answer; many printers never answer


class PrinterSink(Protocol):
    """Where receipts go."""

    target: str

    def print_job(self, data: bytes) -> PrinterStatus:
        """Send one job; ``PrinterUnavailable`` when the printer cannot take it (``sent`` says
        whether bytes may have reached it). Returns the status read after the job."""

    def status(self) -> PrinterStatus:
        """The printer's status now (``unknown`` when it does not answer DLE EOT)."""


@dataclass(frozen=True)
class DeviceSpec:
    kind: str  # network, usb, serial, file
    target: str  # what the URL named, for status reports
    options: dict[str, Any]


def parse_device(url: str) -> DeviceSpec:
    """A ``DeviceSpec`` from a device URL; ``ValueError`` saying what is expected."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "tcp":
        if not parts.hostname:
            raise ValueError("expected tcp://host:9100")
        return DeviceSpec("network", url, {"host": parts.hostname, "port": parts.port or 9100})
    if parts.scheme == "usb":
        vendor, _, product = (parts.netloc or parts.path.strip("/")).partition(":")
        try:
            return DeviceSpec("usb", url, {"idVendor": int(vendor, 16),
                                           "idProduct": int(product, 16)})
        except ValueError:
            raise ValueError("expected usb://0xVENDOR:0xPRODUCT") from None
    if parts.scheme == "serial":
        device = parts.path if parts.path not in ("", "/") else parts.netloc
        if not device:
            raise ValueError("expected serial:///dev/ttyUSB0?baudrate=9600 or serial://COM3")
        device = parts.netloc + parts.path if parts.netloc and parts.path else device
        try:
            baud = int(query.get("baudrate", "9600"))
        except ValueError:
            raise ValueError("baudrate must be a number such as 9600 or 115200") from None
        return DeviceSpec("serial", url, {"devfile": device, "baudrate": baud})
    if parts.scheme == "file":
        path = parts.path if parts.netloc in ("", "localhost") else parts.netloc + parts.path
        if not path:
            raise ValueError("expected file:///path")
        return DeviceSpec("file", url, {"devfile": path})
    raise ValueError("expected tcp://, usb://, serial:// or file:// (see docs/printer.md)")


class EscposDevice:
    """A python-escpos printer opened for each job."""

    def __init__(self, spec: DeviceSpec, *, timeout: float = 10.0) -> None:
        self.spec = spec
        self.target = spec.target
        self._timeout = timeout

    def _open(self) -> Any:
        from escpos import printer

        kind, options = self.spec.kind, self.spec.options
        try:
            if kind == "network":
                device: Any = printer.Network(options["host"], port=options["port"],
                                              timeout=self._timeout)
            elif kind == "usb":
                device = printer.Usb(options["idVendor"], options["idProduct"],
                                     timeout=int(self._timeout * 1000))
            elif kind == "serial":
                device = printer.Serial(devfile=options["devfile"],
                                        baudrate=options["baudrate"], timeout=STATUS_TIMEOUT)
            else:
                path = Path(options["devfile"])
                if not path.exists():  # a plain file as the printer (the embedded default)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                device = printer.File(str(path), auto_flush=True)
                # python-escpos 3.1 opens the file "wb", which would drop every receipt printed
                # before: the same file, appended to
                device.device = open(path, "ab")  # noqa: SIM115
                return device
            device.open()
            return device
        except Exception as exc:  # escpos raises its own types per transport
            raise PrinterUnavailable(f"printer {self.target} cannot be opened: {exc}") from None

    def _status(self, device: Any) -> PrinterStatus:
        if self.spec.kind == "file":
            return PrinterStatus(state="unknown", detail="a file answers no status")
        if self.spec.kind == "network":
            device.device.settimeout(STATUS_TIMEOUT)
        return read_status(device)

    def status(self) -> PrinterStatus:
        try:
            device = self._open()
        except PrinterUnavailable as exc:
            return PrinterStatus(state="offline", detail=str(exc))
        try:
            return self._status(device)
        finally:
            _close(device)

    def print_job(self, data: bytes) -> PrinterStatus:
        device = self._open()
        try:
            before = self._status(device)
            if not before.can_print:
                raise PrinterUnavailable(f"printer {self.target}: {before.describe()}",
                                         state=before.state)
            try:
                device._raw(data)
            except Exception as exc:  # OSError, socket and USB errors: the head may have started
                raise PrinterUnavailable(f"printer {self.target} failed mid-job: {exc}",
                                         sent=True) from None
            after = self._status(device)
            if after.state in ("offline", "paper_out", "cover_open", "error"):
                # the head stopped while or after printing: this job may be incomplete
                raise PrinterUnavailable(f"printer {self.target}: {after.describe()}",
                                         sent=True, state=after.state)
            return after
        finally:
            _close(device)


def _close(device: Any) -> None:
    # closing a dead connection has nothing left to report
    with contextlib.suppress(Exception):
        device.close()


def open_device(url: str) -> EscposDevice:
    """The printer a device URL names."""
    return EscposDevice(parse_device(url))
