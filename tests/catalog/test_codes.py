"""Coupon codes stay the same across releases: codes already printed and sent must verify."""

from catalog.codes import make_code, make_codes, verify_code

SECRET = b"codes-test-secret"


def test_codes_are_stable_across_releases() -> None:
    # written by an earlier release (a per-character loop): a change in how codes are spelled
    # or signed would strand every coupon already issued
    assert make_codes(secret=SECRET, merchant_id="m1", template_number=77,
                      serials=[1, 2, 12345]) == [
        "002D000007RN5EWE", "002D000009EXEVMS", "002D001G777JMQGR"]
    assert make_code(secret=SECRET, merchant_id="m2", template_number=(1 << 20) - 1,
                     serial=(1 << 28) - 1) == "ZZZZZZZZZXZ5W6XZ"


def test_batch_codes_match_single_codes_and_verify() -> None:
    serials = [1, 2, 127, 128, 99_999, (1 << 28) - 1]
    batch = make_codes(secret=SECRET, merchant_id="m1", template_number=5, serials=serials)
    assert batch == [make_code(secret=SECRET, merchant_id="m1", template_number=5, serial=s)
                     for s in serials]
    for code, serial in zip(batch, serials, strict=True):
        ref = verify_code(code, secret=SECRET, merchant_id="m1")
        assert ref is not None and (ref.template_number, ref.serial) == (5, serial)
        assert verify_code(code, secret=SECRET, merchant_id="m2") is None
    assert make_codes(secret=SECRET, merchant_id="m1", template_number=5, serials=[]) == []
