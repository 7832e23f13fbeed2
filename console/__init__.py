"""The operators' web console (会员分群, 优惠券, 营销活动, 周期任务, 效果分析, 门店): static pages
served by ``quanpai serve`` under ``/console/``, a pure client of the ``/v1`` JSON API."""
