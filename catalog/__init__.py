"""Coupon catalog: templates, the compact Redis store, codes, pricing (到手价), redemption (核销),
cards, stored value, points, post-payment rules and the HTTP API (``quanpai serve``).

For the campaign worker: ``catalog.templates.CouponTemplate`` / ``save_template`` and
``catalog.issuance.issue_batch`` (one atomic script per batch, exactly once per campaign and
member). Importing the package imports nothing else.
"""
