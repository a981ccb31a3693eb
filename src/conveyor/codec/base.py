"""The codec contract, and the lookup of a codec by name."""

from __future__ import annotations

from typing import Any, Protocol

from conveyor.core.job import Envelope
from conveyor.exceptions import ConfigurationError


class Codec(Protocol):
    """Encodes values and envelopes; decodes them, validating against a type."""

    name: str

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes, type: Any = Any) -> Any:
        """Decode ``data`` as ``type``; raises ``msgspec.ValidationError``/``DecodeError``."""
        ...

    def encode_envelope(self, envelope: Envelope) -> bytes: ...

    def decode_envelope(self, data: bytes) -> Envelope: ...


def get_codec(name: str) -> Codec:
    """``"msgpack"`` (the default) or ``"json"``."""
    from conveyor.codec.msgspec_codec import JsonCodec, MsgpackCodec

    if name == "msgpack":
        return MsgpackCodec()
    if name == "json":
        return JsonCodec()
    raise ConfigurationError(f"unknown codec {name!r}: use 'msgpack' or 'json'")
