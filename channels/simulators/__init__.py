"""Strict local simulators of the provider APIs (WeChat, Aliyun SMS, Alipay) as aiohttp apps."""

from __future__ import annotations

from aiohttp import web

from channels.simulators.common import Faults
from infra.settings import Settings


def build_apps(settings: Settings, *, faults: Faults, callback_base: str = ""
               ) -> dict[str, web.Application]:
    """One application per provider, configured with the credentials in ``settings``;
    callbacks go to ``callback_base`` + the paths ``channels.callbacks`` serves."""
    from channels.alipay_keys import load_keys
    from channels.simulators import alipay, sms, wechat

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
    keys = load_keys(settings)
    assert keys.alipay_private is not None
    a = settings.alipay
    apps["alipay"] = alipay.make_app(alipay.AlipaySimConfig(
        apps={a.app_id: keys.app_public}, alipay_private_key=keys.alipay_private,
        voucher_templates=frozenset({a.voucher_template_id}),
        crowd_nos=frozenset({a.crowd_no}),
        callback_url=f"{callback_base}/callbacks/alipay" if callback_base else "",
        faults=faults))
    return apps
