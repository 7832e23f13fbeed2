"""Message templates per channel, filled from a member's variables, and the checks a campaign's
content must pass when the campaign is created (not when a million sends are under way).

Variables are strings named ``name`` (member), ``coupon`` (title), ``code`` (the coupon code),
``value`` (e.g. ``20元``),
``expiry`` (``2026-12-31``), ``store``, ``link`` (deep link) and ``value_fen`` (integer fen as
text, for Alipay cash amounts). WeChat keyword limits follow
spec §1.4 (thing ≤ 20 characters, character_string ≤ 32, number ≤ 32 digits ...); SMS limits
follow the Aliyun rules (string values, variable ≤ 35 characters, no URL in a variable, no
signature brackets); lengths are configuration.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from channels.errors import ContentError

VARIABLES = ("name", "coupon", "code", "value", "expiry", "store", "link", "value_fen")
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
_URL = re.compile(r"https?://|www\.", re.IGNORECASE)
_TIME = re.compile(r"^\d{4}[-年/]\d{1,2}[-月/]\d{1,2}日?( \d{1,2}:\d{2}(:\d{2})?)?$")
_AMOUNT = re.compile(r"^[¥￥]?\d+(\.\d{1,2})?元?$")


@dataclass(frozen=True)
class SmsTemplate:
    """An approved Aliyun template: its code and text with ``${variable}`` placeholders."""

    code: str
    text: str
    signature: str = "券派"
    max_length: int = 500  # whole message incl. 【signature】; billed per 67 after 70
    max_variable_length: int = 35
    forbidden: tuple[str, ...] = ("【", "】", "[", "]")

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(self.text)))

    def render(self, variables: Mapping[str, str]) -> str:
        """The message a member's phone shows."""
        body = _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), ""), self.text)
        return f"【{self.signature}】{body}"


@dataclass(frozen=True)
class WeChatTemplate:
    """A template-message template: keyword -> (keyword kind, variable that fills it)."""

    template_id: str
    keywords: Mapping[str, tuple[str, str]]
    url_variable: str = "link"

    def data(self, variables: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """The ``data`` object of a template/send body."""
        return {kw: {"value": variables.get(var, "")} for kw, (_, var) in self.keywords.items()}


# Keyword kind -> (check, what it allows); spec §1.4.
KEYWORD_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "thing": (re.compile(r"^.{1,20}$", re.S), "at most 20 characters"),
    "character_string": (re.compile(r"^[\x21-\x7e]{1,32}$"), "at most 32 letters/digits/symbols"),
    "number": (re.compile(r"^\d{1,32}(\.\d+)?$"), "a number of at most 32 digits"),
    "amount": (_AMOUNT, "an amount such as 20元 or 20.00"),
    "time": (_TIME, "a date such as 2026-12-31 or 2026-12-31 23:59"),
    "date": (_TIME, "a date such as 2026-12-31"),
    "phrase": (re.compile(r"^[\u4e00-\u9fff]{1,5}$"), "at most 5 Chinese characters"),
    "name": (re.compile(r"^.{1,10}$", re.S), "at most 10 characters"),
    "symbol": (re.compile(r"^.{1,5}$", re.S), "at most 5 symbols"),
}

DEFAULT_SMS = SmsTemplate(
    code="SMS_100000001",
    text="${name}您好，您的${coupon}已到账，${expiry}前到${store}使用有效。回T退订",
)
# 券到账通知: coupon, its code, valid until, member. Only variables every campaign has, so the
# default template never fails a member for a value the campaign did not set.
DEFAULT_WECHAT = WeChatTemplate(
    template_id="TPL_COUPON_ISSUED",
    keywords={"thing1": ("thing", "coupon"), "character_string2": ("character_string", "code"),
              "time3": ("time", "expiry"), "thing4": ("thing", "name")},
)


@dataclass(frozen=True)
class CampaignContent:
    """The templates a campaign uses, checked together by ``validate``."""

    sms: SmsTemplate | None = None
    wechat: WeChatTemplate | None = None
    alipay_memo: str = ""  # shown with an Alipay voucher; ${variable} placeholders allowed
    required: tuple[str, ...] = field(default=())  # variables the campaign promises to fill


def check_sms(template: SmsTemplate, variables: Mapping[str, str]) -> list[tuple[str, str]]:
    problems = [(f"sms.variables.{v}", "missing") for v in template.variables
                if not variables.get(v)]
    for name in template.variables:
        value = variables.get(name, "")
        if len(value) > template.max_variable_length:
            problems.append((f"sms.variables.{name}",
                             f"longer than {template.max_variable_length} characters"))
        if _URL.search(value):
            problems.append((f"sms.variables.{name}", "a URL is not allowed in a variable"))
        if any(ch in value for ch in template.forbidden):
            problems.append((f"sms.variables.{name}", "contains 【】 or [] (signature brackets)"))
    if len(template.render(variables)) > template.max_length:
        problems.append(("sms.text", f"message longer than {template.max_length} characters"))
    return problems


def check_wechat(template: WeChatTemplate, variables: Mapping[str, str]) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for keyword, (kind, variable) in template.keywords.items():
        rule = KEYWORD_RULES.get(kind)
        value = variables.get(variable, "")
        if rule is None:
            problems.append((f"wechat.keywords.{keyword}", f"unknown keyword kind {kind!r}"))
        elif not value:
            problems.append((f"wechat.variables.{variable}", "missing"))
        elif not rule[0].match(value):
            problems.append((f"wechat.variables.{variable}", f"{keyword} ({kind}) must be "
                             f"{rule[1]}"))
    return problems


def validate(content: CampaignContent, sample: Mapping[str, str]) -> None:
    """Check ``content`` with a sample member's ``sample`` variables (use the longest values
    the campaign will produce); raises ``ContentError`` listing every problem at once."""
    problems = [(f"variables.{v}", "unknown variable") for v in sample if v not in VARIABLES]
    problems += [(f"variables.{v}", "missing") for v in content.required if not sample.get(v)]
    if content.sms is not None:
        problems += check_sms(content.sms, sample)
    if content.wechat is not None:
        problems += check_wechat(content.wechat, sample)
    for name in _PLACEHOLDER.findall(content.alipay_memo):
        if not sample.get(name):
            problems.append((f"alipay.variables.{name}", "missing"))
    if problems:
        raise ContentError(problems)
