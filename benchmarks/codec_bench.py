"""msgspec vs msgpack-python on a realistic job: ``python -m benchmarks.codec_bench``.

Every codec does what a job's trip through the broker needs: the producer encodes
the arguments, then the envelope around them (the arguments travel as an embedded
blob, so a worker can find the task before decoding them); the worker decodes the
envelope, then the arguments. "msgspec typed" is Conveyor's actual code path
(:class:`conveyor.codec.MsgpackCodec`): the worker decodes into the task's argument
struct, validating every field as it goes, which the untyped codecs don't do at all.

Each number is the best of several timed loops (the usual micro-benchmark practice:
the minimum is the run least disturbed by the rest of the machine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from conveyor.codec import MsgpackCodec
from conveyor.core.job import WIRE_VERSION, Envelope, new_job_id


class Address(msgspec.Struct):
    street: str
    city: str
    postcode: str
    country: str


class WelcomeArgs(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The decoded arguments of ``send_welcome_email`` (what ``TaskDef.args_type`` builds)."""

    user_id: int
    email: str
    name: str
    plan: str
    tags: list[str]
    address: Address
    referrer: str | None
    trial_days: int
    locale: str
    send_at: float | None


ARGS: dict[str, Any] = {
    "user_id": 1_234_567,
    "email": "ada.lovelace@example.com",
    "name": "Ada Lovelace",
    "plan": "pro-annual",
    "tags": ["beta", "newsletter", "eu"],
    "address": {
        "street": "12 St James's Square",
        "city": "London",
        "postcode": "SW1Y 4JH",
        "country": "GB",
    },
    "referrer": None,
    "trial_days": 14,
    "locale": "en-GB",
    "send_at": 1_718_000_000.25,
}


JOB_ID = new_job_id()


def _envelope_fields(args: bytes) -> dict[str, Any]:
    return {
        "v": WIRE_VERSION,
        "id": JOB_ID,
        "task": "myapp.emails.send_welcome_email",
        "queue": "emails",
        "args": args,
        "max_attempts": 5,
        "enqueued_at": 1_718_000_000.123456,
        "timeout": 30.0,
        "result_ttl": 86_400.0,
        "meta": {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "tenant": "acme"},
    }


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    encode: Callable[[], bytes]
    decode: Callable[[bytes], Any]
    note: str


def contenders() -> list[Contender]:
    out: list[Contender] = []

    codec = MsgpackCodec()

    def typed_encode() -> bytes:
        raw = codec.encode(ARGS)
        fields = _envelope_fields(b"")
        fields["args"] = msgspec.Raw(raw)
        return codec.encode_envelope(Envelope(**fields))

    def typed_decode(data: bytes) -> Any:
        env = codec.decode_envelope(data)
        return codec.decode(env.args, WelcomeArgs)

    out.append(
        Contender(
            "msgspec msgpack, typed (Conveyor)",
            typed_encode,
            typed_decode,
            "decodes into Envelope + the task's argument struct, validating",
        )
    )

    ms_enc = msgspec.msgpack.Encoder()
    ms_dec = msgspec.msgpack.Decoder()

    def ms_encode() -> bytes:
        return ms_enc.encode(_envelope_fields(ms_enc.encode(ARGS)))

    def ms_decode(data: bytes) -> Any:
        return ms_dec.decode(ms_dec.decode(data)["args"])

    out.append(Contender("msgspec msgpack, untyped", ms_encode, ms_decode, "dicts and lists"))

    try:
        import msgpack
    except ImportError:
        msgpack = None
    if msgpack is not None:
        packer = msgpack.Packer()
        unpackb = msgpack.unpackb
        c_ext = msgpack.Packer.__module__.endswith("_cmsgpack")

        def mp_encode() -> bytes:
            return packer.pack(_envelope_fields(packer.pack(ARGS)))  # type: ignore[no-any-return]

        def mp_decode(data: bytes) -> Any:
            return unpackb(unpackb(data)["args"])

        out.append(
            Contender(
                "msgpack-python",
                mp_encode,
                mp_decode,
                "dicts and lists; " + ("C extension" if c_ext else "pure-Python fallback"),
            )
        )

    js_enc = msgspec.json.Encoder()
    js_dec = msgspec.json.Decoder()

    def js_encode() -> bytes:
        fields = _envelope_fields(b"")
        fields["args"] = msgspec.Raw(js_enc.encode(ARGS))
        return js_enc.encode(fields)

    def js_decode(data: bytes) -> Any:
        return js_dec.decode(data)["args"]

    out.append(
        Contender("msgspec JSON, untyped", js_encode, js_decode, "the json codec, for reference")
    )

    def std_encode() -> bytes:
        fields = _envelope_fields(b"")
        fields["args"] = ARGS
        return json.dumps(fields, separators=(",", ":")).encode()

    def std_decode(data: bytes) -> Any:
        return json.loads(data)["args"]

    out.append(Contender("stdlib json", std_encode, std_decode, "for reference"))
    return out


def _best_rate(fn: Callable[[], Any], budget: float) -> float:
    """Operations per second: the best of 5 loops, each sized to ``budget / 5`` seconds."""
    number = 1
    while True:
        started = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - started
        if elapsed > budget / 25:
            break
        number *= 4
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, time.perf_counter() - started)
    return number / best


def run(quick: bool = False) -> list[dict[str, Any]]:
    budget = 0.3 if quick else 1.5
    rows: list[dict[str, Any]] = []
    for c in contenders():
        data = c.encode()
        c.decode(data)  # warm up, and check it works
        encode = _best_rate(c.encode, budget)
        decode = _best_rate(lambda c=c, data=data: c.decode(data), budget)
        both = _best_rate(lambda c=c: c.decode(c.encode()), budget)
        rows.append(
            {
                "codec": c.name,
                "bytes": len(data),
                "encode_ops": encode,
                "decode_ops": decode,
                "roundtrip_ops": both,
                "note": c.note,
            }
        )
    return rows


def main() -> None:
    for row in run():
        print(
            f"{row['codec']:<36} {row['bytes']:>5} B  encode {row['encode_ops']:>10,.0f}/s  "
            f"decode {row['decode_ops']:>10,.0f}/s  round trip {row['roundtrip_ops']:>10,.0f}/s"
        )


if __name__ == "__main__":
    main()
