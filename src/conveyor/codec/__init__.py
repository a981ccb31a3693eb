"""Turning values into bytes and back. Never pickle; decode into the annotated types."""

from conveyor.codec.base import Codec, get_codec
from conveyor.codec.msgspec_codec import JsonCodec, MsgpackCodec

__all__ = ["Codec", "JsonCodec", "MsgpackCodec", "get_codec"]
