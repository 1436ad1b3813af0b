"""What a Flight client may ask for: the JSON of a `do_get` ticket and of an action's body.

Decoding is strict: an unknown key, a value of the wrong type or an unknown kind is refused with
one sentence that names it, before anything is read.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypeVar

import msgspec

from ticktape.messages.errors import TicktapeError
from ticktape.messages.events import EVENT_TYPES


class BadRequest(TicktapeError):
    """A ticket or action body that cannot be served; the message is one sentence."""


class Ticket(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`log` is the log's name relative to the served folder; `from`/`to` are simulated times in
    the exchange's time zone (or with an offset), as `log export` takes them; `follow` streams a
    live log until its run ends; `speed` paces by simulated time (0: as fast as it is read);
    `compression` of the record batches ("none" for a client without LZ4; most columns of a table of
    several kinds are null, and LZ4 sends them for almost nothing)."""

    log: str
    kinds: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    start: str | None = msgspec.field(default=None, name="from")
    end: str | None = msgspec.field(default=None, name="to")
    start_seq: Annotated[int, msgspec.Meta(ge=1)] = 1
    follow: bool = False
    speed: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    compression: Literal["lz4", "zstd", "none"] = "lz4"


class ActionBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    log: str


T = TypeVar("T")
KEYS = ("log", "kinds", "symbols", "from", "to", "start_seq", "follow", "speed", "compression")


def _decode(raw: bytes, kind: type[T], what: str) -> T:
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as e:
        hint = f" (keys: {', '.join(KEYS)})" if "unknown field" in str(e) and kind is Ticket else ""
        raise BadRequest(f"bad {what}: {e}{hint}") from None
    except msgspec.DecodeError as e:
        raise BadRequest(f"bad {what}: not a JSON object ({e})") from None


def parse_ticket(raw: bytes) -> Ticket:
    ticket = _decode(raw, Ticket, "ticket")
    unknown = [k for k in ticket.kinds if k not in EVENT_TYPES]
    if unknown:
        raise BadRequest(
            f"bad ticket: unknown kind {unknown[0]!r} (kinds: {', '.join(EVENT_TYPES)})"
        )
    return ticket


def parse_action(raw: bytes) -> ActionBody:
    return _decode(raw, ActionBody, "action body")
