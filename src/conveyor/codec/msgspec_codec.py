"""msgpack (default) and JSON codecs on msgspec.

msgspec was measured against msgpack-python (see ``docs/performance.md``): it
encodes and decodes faster, and it decodes straight into annotated types,
validating as it goes, which is how a worker refuses arguments of the wrong type.

Types that round-trip when the parameter is annotated with them: the JSON types,
bytes, datetime/date/time/timedelta, Decimal, UUID, set, frozenset, tuple, Enum,
dataclasses, msgspec Structs, TypedDict/NamedTuple, and pydantic models.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from conveyor.core.job import Envelope
from conveyor.exceptions import DecodeError


def _enc_hook(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is not None and hasattr(type(value), "model_validate"):
        return dump(mode="json")
    raise NotImplementedError(f"cannot encode a {type(value).__qualname__}: not a supported type")


def _dec_hook(type_: type[Any], value: Any) -> Any:
    validate = getattr(type_, "model_validate", None)
    if validate is not None:
        return validate(value)
    raise NotImplementedError(f"cannot decode into {type_!r}")


class _MsgspecCodec:
    name = "?"

    def __init__(self, module: Any) -> None:
        self._module = module
        self._encoder = module.Encoder(enc_hook=_enc_hook)
        self._untyped = module.Decoder(dec_hook=_dec_hook)
        self._envelope = module.Decoder(Envelope)
        self._decoder_for = functools.lru_cache(maxsize=4096)(self._make_decoder)

    def _make_decoder(self, type_: Any) -> Any:
        return self._module.Decoder(type_, dec_hook=_dec_hook)

    def encode(self, value: Any) -> bytes:
        try:
            return self._encoder.encode(value)  # type: ignore[no-any-return]
        except (TypeError, NotImplementedError, OverflowError) as exc:
            # OverflowError: ints beyond 64 bits (msgpack), datetimes out of range
            raise TypeError(str(exc)) from None

    def decode(self, data: bytes, type: Any = Any) -> Any:
        if type is Any:
            return self._untyped.decode(data)
        try:
            decoder = self._decoder_for(type)
        except TypeError:  # unhashable type expression
            decoder = self._make_decoder(type)
        return decoder.decode(data)

    def encode_envelope(self, envelope: Envelope) -> bytes:
        return self._encoder.encode(envelope)  # type: ignore[no-any-return]

    def decode_envelope(self, data: bytes) -> Envelope:
        try:
            env: Envelope = self._envelope.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise DecodeError(f"not a Conveyor envelope: {exc}") from None
        if env.v != 1:
            raise DecodeError(f"unsupported envelope version {env.v} (this worker reads 1)")
        return env


class MsgpackCodec(_MsgspecCodec):
    """MessagePack via msgspec: compact and fast. The default."""

    name = "msgpack"

    def __init__(self) -> None:
        super().__init__(msgspec.msgpack)


class JsonCodec(_MsgspecCodec):
    """JSON via msgspec: readable in the broker, for producers without msgpack."""

    name = "json"

    def __init__(self) -> None:
        super().__init__(msgspec.json)
