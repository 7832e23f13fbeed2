"""Strict local simulators of the provider APIs (WeChat, Aliyun SMS, Alipay) as aiohttp apps."""

from __future__ import annotations

from aiohttp import web

from channels.simulators.common import Faults
from infra.settings import Settings


def build_apps(settings: Settings, *, faults: Faults, callback_base: str = ""
               ) -> dict[str, web.Application]:
    """One application per provider, configured with the credentials in ``settings``;
    callbacks go to ``callback_base`` + the paths ``channels.callbacks`` serves."""
    from channels.simulators import sms, wechat

    s = settings.sms
    w = settings.wechat
    apps = {
        "wechat": wechat.make_app(wechat.WeChatSimConfig(
            appid=w.appid, secret=w.secret, templates=wechat.default_templates(w.template_id),
            card_ids=frozenset({w.card_id}), callback_token=w.callback_token,
            callback_url=f"{callback_base}/callbacks/wechat" if callback_base else "",
            faults=faults)),
        "sms": sms.make_app(sms.SmsSimConfig(
            access_keys={s.access_key_id: s.access_key_secret},
            sign_names=frozenset({s.sign_name}),
            templates={s.template_code: sms.DEFAULT_TEMPLATE_VARIABLES},
            callback_url=f"{callback_base}/callbacks/sms" if callback_base else "",
            faults=faults)),
    }
    return apps
