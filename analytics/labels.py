"""Report labels, Chinese first (zh-CN default, English with ``QUANPAI_LANG=en`` or ``--lang``):
headers, notes and chart labels of the ROI report, as an ``infra.i18n.Words`` table.
"""

from __future__ import annotations

from infra.i18n import DEFAULT_LANG, LANGS, Words

__all__ = ["DEFAULT_LANG", "LANGS", "label", "note_text"]

WORDS = Words({
    "title": ("活动 ROI", "Campaign ROI"),
    "campaign": ("活动", "campaign"),
    "value": ("分组", "group"),
    "targeted": ("目标人数", "targeted"),
    "held_out": ("对照组", "held out"),
    "issued": ("已发券", "issued"),
    "sent": ("已发送", "sent"),
    "delivered": ("已送达", "delivered"),
    "failed_send": ("发送失败", "send failed"),
    "unreachable": ("无法触达", "unreachable"),
    "in_doubt": ("状态未知", "in doubt"),
    "redeemed": ("核销人数", "redeemed"),
    "redemption_rate": ("核销率", "redemption rate"),
    "days_to_redeem": ("平均核销天数", "days to redeem"),
    "coupon_cost": ("券成本 ¥", "coupon cost ¥"),
    "send_cost": ("发送成本 ¥", "send cost ¥"),
    "revenue_treated": ("人均收入·实验组 ¥", "revenue/treated ¥"),
    "revenue_held": ("人均收入·对照组 ¥", "revenue/held out ¥"),
    "incremental": ("增量收入 ¥ (95% 区间)", "incremental revenue ¥ (95% CI)"),
    "roi": ("ROI (95% 区间)", "ROI (95% CI)"),
    "method": ("方法：Welch t 检验，以活动前消费做 CUPED 方差缩减；"
               "毛利率 {margin}‰，归因窗口 {days} 天",
               "method: Welch t, CUPED on pre-campaign spend; margin {margin}‰, "
               "attribution window {days} days"),
    "holdout_too_small": ("对照组仅 {n} 人（至少需要 {m} 人），不给出增量与区间",
                          "holdout of {n} members (needs {m}): no uplift or interval claimed"),
    "treated_too_small": ("实验组仅 {n} 人，不给出增量与区间",
                          "only {n} treated members: no uplift or interval claimed"),
    "funnel": ("转化漏斗", "funnel"),
    "uplift_chart": ("人均增量收入（元，95% 区间）", "uplift per member (yuan, 95% CI)"),
    "members": ("人数", "members"),
    "movement": ("RFM 分群迁移", "RFM segment movement"),
    "treated": ("实验组", "treated"),
    "no_purchase": ("无消费", "no purchase"),
    "loyal": ("忠诚", "loyal"),
    "active": ("活跃", "active"),
    "lapsing": ("流失风险", "lapsing"),
    "dormant": ("沉睡", "dormant"),
})


def label(key: str, lang: str = DEFAULT_LANG, **values: object) -> str:
    """The label of ``key`` in ``lang`` (zh-CN or en), formatted with ``values``."""
    text = WORDS.get(key, lang)
    return text.format(**values) if values else text


def note_text(note: str, lang: str = DEFAULT_LANG) -> str:
    """A report row's note (``holdout_too_small:12:100``) as a sentence."""
    if not note:
        return ""
    kind, n, m = [*note.split(":"), "", ""][:3]
    return label(kind, lang, n=n, m=m)
