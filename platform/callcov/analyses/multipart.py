"""A streaming multipart/form-data reader: yields events as the body arrives, so an uploaded file
goes straight to storage (with its size limit checked while streaming) and is never held whole in
memory. Text fields are small and collected whole (at most ``MAX_FIELD_BYTES`` each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from callcov.errors import BadRequest

MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 50


class InvalidMultipart(BadRequest):
    code = "validation_error"
    default_message = "Malformed multipart/form-data body"


@dataclass
class Event:
    kind: str  # "field", "file_start", "file_data", "file_end"
    name: str = ""
    value: str = ""
    data: bytes = b""
    filename: str | None = None


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)


class _Collector:
    """python-multipart callbacks, turned into a list of events drained after each chunk."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.part = _Part()
        self.header_field = b""
        self.header_value = b""
        self.parts = 0

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": lambda d, s, e: setattr(self, "header_field", self.header_field + d[s:e]),
            "on_header_value": lambda d, s, e: setattr(self, "header_value", self.header_value + d[s:e]),
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidMultipart(f"At most {MAX_PARTS} form parts")
        self.part = _Part()

    def on_header_end(self) -> None:
        self.part.headers[self.header_field.lower()] = self.header_value
        self.header_field = self.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.part.filename = filename.decode("utf-8", "replace") if filename is not None else None
        if self.part.filename is not None:
            self.events.append(Event("file_start", name=self.part.name, filename=self.part.filename))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.filename is not None:
            self.events.append(Event("file_data", name=self.part.name, data=bytes(data[start:end])))
            return
        self.part.data.extend(data[start:end])
        if len(self.part.data) > MAX_FIELD_BYTES:
            raise InvalidMultipart(f"Form field '{self.part.name}' is over {MAX_FIELD_BYTES // 1024} KiB")

    def on_part_end(self) -> None:
        if self.part.filename is not None:
            self.events.append(Event("file_end", name=self.part.name))
        else:
            value = self.part.data.decode("utf-8", "replace")
            self.events.append(Event("field", name=self.part.name, value=value))


async def multipart_events(content_type: str, stream: AsyncIterator[bytes]) -> AsyncIterator[Event]:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidMultipart("multipart/form-data without a boundary")
    collector = _Collector()
    parser = MultipartParser(boundary, collector.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in stream:
            parser.write(chunk)
            events, collector.events = collector.events, []
            for event in events:
                yield event
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidMultipart(f"Malformed multipart/form-data body: {exc}") from exc
    for event in collector.events:
        yield event
