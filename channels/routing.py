"""Which channel reaches each member, and falling back when one cannot.

A member is reachable on a channel when they have its address and consent: WeChat needs an
openid of a follower, Alipay a user id, SMS a phone with SMS consent. ``Router.deliver`` sends
each member on the first reachable channel of the campaign's order (or the automatic order
WeChat -> Alipay -> SMS), and moves a member to the next reachable channel when the send fails
permanently for them (WeChat 43004 unsubscribed -> SMS) or the channel's quota is exhausted.
Retryable failures stay on their channel: the caller retries them after ``retry_at``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import msgspec

from channels.base import Channel, Message, SendResult

AUTOMATIC_ORDER = ("wechat", "alipay", "sms")


class Member(msgspec.Struct, frozen=True, gc=False):
    """What routing needs to know about a member (the dispatcher fills it from its data; a
    ``msgspec.Struct`` like the other per-member value objects of the send path)."""

    member_id: str
    openid: str = ""
    subscribed: bool = False  # follows the official account
    alipay_user_id: str = ""
    phone: str = ""
    sms_consent: bool = False


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """The outcome for one member: the channel that answered last and its result."""

    member_id: str
    channel: str
    result: SendResult
    tried: tuple[str, ...]


def address(member: Member, channel: str) -> str | None:
    """The member's address on ``channel``, or None when it cannot reach them."""
    kind = channel.split("_", 1)[0]
    if kind == "wechat":
        return member.openid if member.openid and member.subscribed else None
    if kind == "alipay":
        return member.alipay_user_id or None
    if kind == "sms":
        return member.phone if member.phone and member.sms_consent else None
    return None


MessageFactory = Callable[[Member, str, str], Message]  # (member, channel, address) -> Message


class SendHooks(Protocol):
    """Called around every provider request, so a caller can record it before it leaves
    (write-ahead) and its outcome right after, not once per batch."""

    async def before(self, channel: str, messages: Sequence[Message]) -> bool:
        """Record the request; False holds it back (the campaign was paused or cancelled)."""
        ...

    async def after(self, channel: str, messages: Sequence[Message],
                    results: Sequence[SendResult]) -> None:
        """Record the request's outcome."""
        ...


HELD = "held"  # code of results the hooks held back (nothing was sent)


class Router:
    def __init__(self, *, channels: Mapping[str, Channel],
                 order: Sequence[str] | None = None) -> None:
        self._channels = channels
        self.order = tuple(c for c in (order or AUTOMATIC_ORDER) if c in channels)

    def first_reachable(self, member: Member, skip: set[str]) -> str | None:
        return next((c for c in self.order if c not in skip and address(member, c)), None)

    async def deliver(self, members: Sequence[Member], make: MessageFactory,
                      hooks: SendHooks | None = None) -> list[Delivery]:
        """Send to every member; one ``Delivery`` per member, in order.

        Every channel's requests run to the end even when one channel raises: their outcomes
        are recorded by ``hooks.after`` as they come, then the first error is raised."""
        tried: dict[str, list[str]] = {m.member_id: [] for m in members}
        final: dict[str, Delivery] = {}
        exhausted: set[str] = set()
        pending = list(members)
        while pending:
            groups: dict[str, list[Member]] = {}
            for member in pending:
                channel = self.first_reachable(member, set(tried[member.member_id]) | exhausted)
                if channel is None:
                    final.setdefault(member.member_id, Delivery(
                        member.member_id, "", SendResult(member.member_id, "failed_permanent",
                                                         code="unreachable"),
                        tuple(tried[member.member_id])))
                    continue
                tried[member.member_id].append(channel)
                groups.setdefault(channel, []).append(member)
            outcomes = await asyncio.gather(*(self._send(name, group, make, hooks)
                                              for name, group in groups.items()),
                                            return_exceptions=True)
            errors = [o for o in outcomes if isinstance(o, BaseException)]
            if errors:
                raise errors[0]
            pending = []
            for name, pairs in zip(groups, outcomes, strict=True):
                assert not isinstance(pairs, BaseException)
                for member, result in pairs:
                    final[member.member_id] = Delivery(member.member_id, name, result,
                                                       tuple(tried[member.member_id]))
                    if result.status == "quota_exhausted":
                        exhausted.add(name)
                    if result.status in ("failed_permanent", "quota_exhausted"):
                        pending.append(member)
        return [final[m.member_id] for m in members]

    async def _send(self, name: str, members: list[Member], make: MessageFactory,
                    hooks: SendHooks | None) -> list[tuple[Member, SendResult]]:
        channel = self._channels[name]
        pairs: list[tuple[Member, SendResult]] = []
        for start in range(0, len(members), channel.max_batch):
            chunk = members[start:start + channel.max_batch]
            messages = [make(m, name, address(m, name) or "") for m in chunk]
            if hooks is not None and not await hooks.before(name, messages):
                pairs += ((m, SendResult(m.member_id, "failed_retryable", code=HELD))
                          for m in chunk)
                continue
            results = await channel.send(messages)
            if hooks is not None:
                await hooks.after(name, messages, results)
            pairs += zip(chunk, results, strict=True)
        return pairs
