"""The store printer agent (``quanpai printer-agent``): receives print jobs from the catalog
service over HTTP, spools them durably, and prints points QR codes, redemption slips and coupon
vouchers on ESC/POS receipt printers through python-escpos.

It installs alone (``pip install 'quanpai[printer]'``) and imports nothing from the service side:
no Redis client, pandas, scikit-learn, ClickHouse or Dramatiq.
"""
