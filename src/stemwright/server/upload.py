"""Streaming multipart upload: the file part goes straight to disk, the size limit is enforced while streaming,
and the client's file name is kept only as a display title (never as a path)."""
from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

from python_multipart.multipart import MultipartParser, parse_options_header

from stemwright.errors import StemwrightError

MAX_FIELD_BYTES = 4096
# What browsers escape in a multipart file name (the HTML form-data encoding: '"', CR, LF as %22, %0D, %0A);
# curl does the same for '"'. Only these are decoded: any other '%xx' is part of the user's name.
FORM_DATA_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n", "%0d": "\r", "%0a": "\n"}
_ESCAPE = re.compile("|".join(map(re.escape, FORM_DATA_ESCAPES)))


def decode_filename(raw: bytes) -> str:
    """The user's file name from a multipart ``filename`` parameter (UTF-8, form-data escapes undone)."""
    return _ESCAPE.sub(lambda m: FORM_DATA_ESCAPES[m.group(0)], raw.decode("utf-8", "replace"))


class UploadError(StemwrightError):
    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass
class UploadResult:
    path: Path
    size: int
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


def _make_part(target_dir: Path) -> tuple[int, str]:
    target_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(dir=target_dir, prefix=".upload.", suffix=".part")


async def receive_upload(
    content_type: str, body: AsyncIterator[bytes], target_dir: Path, max_bytes: int
) -> UploadResult:
    """Parse a multipart body with one file field named ``file`` (plus small text fields)."""
    ctype, params = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(415, "upload must be multipart/form-data with a 'file' field")
    fd, tmp_name = await asyncio.to_thread(_make_part, target_dir)
    out = os.fdopen(fd, "wb")
    tmp = Path(tmp_name)
    state = {"header_field": b"", "header_value": b"", "disposition": b"", "name": "", "filename": None,
             "size": 0, "file_name": None, "buf": bytearray()}
    fields: dict[str, str] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["header_field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["header_value"] += data[start:end]

    def on_header_end() -> None:
        if state["header_field"].lower() == b"content-disposition":
            state["disposition"] = state["header_value"]
        state["header_field"], state["header_value"] = b"", b""

    def on_headers_finished() -> None:
        _, p = parse_options_header(state["disposition"])
        state["name"] = p.get(b"name", b"").decode("utf-8", "replace")
        fn = p.get(b"filename")
        state["filename"] = decode_filename(fn) if fn is not None else None
        if state["name"] == "file" and state["filename"] is not None:
            state["file_name"] = state["filename"]  # kept: a text field after the file resets "filename"
        state["buf"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if state["name"] == "file" and state["filename"] is not None:
            state["size"] += len(chunk)
            if state["size"] > max_bytes:
                raise UploadError(413, f"file is larger than the upload limit of {max_bytes // (1024 * 1024)} MB")
            out.write(chunk)
        else:
            state["buf"] += chunk
            if len(state["buf"]) > MAX_FIELD_BYTES:
                raise UploadError(413, f"form field {state['name']!r} is too large")

    def on_part_end() -> None:
        if not (state["name"] == "file" and state["filename"] is not None):
            fields[state["name"]] = bytes(state["buf"]).decode("utf-8", "replace")
        state["disposition"] = b""

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end,
        },
    )
    try:
        # the parser's callbacks write to disk: run it in a worker thread so the event loop never waits on I/O
        async for chunk in body:
            await asyncio.to_thread(parser.write, chunk)
        parser.finalize()
        await asyncio.to_thread(out.close)
    except UploadError:
        out.close()
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:  # noqa: BLE001 - malformed multipart
        out.close()
        tmp.unlink(missing_ok=True)
        raise UploadError(400, f"malformed upload ({type(e).__name__})") from None
    if state["file_name"] is None:
        tmp.unlink(missing_ok=True)
        raise UploadError(400, "the upload has no file in the 'file' field")
    if state["size"] == 0:
        tmp.unlink(missing_ok=True)
        shown = Path(state["file_name"]).name[:120] or "the file"
        raise UploadError(400, f"{shown}: the file is empty (0 bytes)")
    return UploadResult(tmp, state["size"], state["file_name"] or "upload", fields)
