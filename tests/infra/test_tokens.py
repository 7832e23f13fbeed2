"""The one signed-token format: bearer tokens with roles, one-purpose tokens, tampering."""

from __future__ import annotations

import pytest

from infra.errors import InvalidInput, Unauthorized
from infra.tokens import mint_bearer, sign, unsign, verify_bearer


def test_bearer_round_trip_for_every_role() -> None:
    for role, store, member in (("operator", "", ""), ("analyst", "", ""),
                                ("cashier", "S1", ""), ("printer", "S1", ""),
                                ("member", "", "M1")):
        token = mint_bearer(secret=b"k", role=role, merchant_id="shop", store_id=store,
                            member_id=member)
        who = verify_bearer(f"Bearer {token}", secret=b"k")
        assert (who.role, who.merchant_id, who.store_id, who.member_id) == (
            role, "shop", store, member)


def test_bearer_refuses_tampering_other_keys_expiry_and_other_purposes() -> None:
    token = mint_bearer(secret=b"k", role="operator", merchant_id="shop")
    with pytest.raises(Unauthorized):
        verify_bearer(f"Bearer {token}", secret=b"other")
    head, _, tag = token.split(".")
    forged = sign({"r": "operator", "m": "rival"}, secret=b"x", purpose="qp1", ttl_seconds=60)
    with pytest.raises(Unauthorized):
        verify_bearer(f"Bearer {head}.{forged.split('.')[1]}.{tag}", secret=b"k")
    with pytest.raises(Unauthorized, match="expired"):
        verify_bearer("Bearer " + mint_bearer(secret=b"k", role="operator", merchant_id="shop",
                                              ttl_seconds=-5), secret=b"k")
    claim = sign({"r": "operator", "m": "shop"}, secret=b"k", purpose="pc1", ttl_seconds=60)
    with pytest.raises(Unauthorized):
        verify_bearer(f"Bearer {claim}", secret=b"k")  # a claim token is not a bearer token
    assert unsign(claim, secret=b"k", purpose="gt1") == (None, "invalid")
    assert unsign(claim, secret=b"k", purpose="pc1")[0]["m"] == "shop"  # type: ignore[index]
    with pytest.raises(Unauthorized):
        verify_bearer("Token abc", secret=b"k")


def test_mint_needs_a_known_role_and_its_binding() -> None:
    with pytest.raises(InvalidInput) as bad:
        mint_bearer(secret=b"k", role="boss", merchant_id="shop")
    assert bad.value.field == "role"
    with pytest.raises(InvalidInput) as bad:
        mint_bearer(secret=b"k", role="cashier", merchant_id="shop")
    assert bad.value.field == "store_id"
