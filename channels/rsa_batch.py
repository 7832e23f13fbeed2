"""Checking many SHA256withRSA (PKCS#1 v1.5) signatures by one key at once: the Alipay client
verifies every gateway reply, a few hundred per batch, and one RSA public operation each
(about 17 µs) is the largest cost of a voucher after its own request signature.

RSA is multiplicative: if every ``s_i`` is a valid signature of ``m_i`` (the padded digest,
``s_i ** e ≡ m_i (mod n)``), then ``(∏ s_i) ** e ≡ ∏ m_i (mod n)``. So a batch is checked with
two products (about 1.4 µs a term with GMP) and one exponentiation for all of them. This is
the "screening" test of Bellare, Garay and Rabin (*Fast batch verification for modular
exponentiation and digital signatures*, EUROCRYPT 1998): they prove for full-domain-hash RSA
that passing it means every message in the batch was signed by the key holder. PKCS#1 v1.5's
encoding is not a full-domain hash, but it is deterministic and as wide as the modulus, and the
known multiplicative forgeries need encodings far shorter than the modulus; passing the test
without the key would mean finding padded digests whose product is an e-th power one knows
the root of, which no attack is known to do. What screening does not promise is that each
*signature string* is the one the signer produced (``s·x`` and ``s'·x⁻¹`` pass together); the
client does not keep or forward reply signatures, it only needs to know that Alipay wrote the
replies.

When the products disagree, each signature is checked on its own with OpenSSL, so a forged or
damaged reply is rejected alone and the others still count. Signatures that are malformed
(not canonical base64, the wrong length, not below the modulus) are rejected before the
products, exactly as a single verification would reject them.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Sequence

import gmpy2

from channels.alipay_signature import SHA256_DIGEST_INFO, PublicKey, rsa2_verify


class BatchVerifier:
    """Batch checks of base64 SHA256withRSA signatures made with ``key``'s private half."""

    def __init__(self, key: PublicKey) -> None:
        numbers = key.public_numbers()
        self._key = key
        self._n = gmpy2.mpz(numbers.n)
        self._e = numbers.e
        self._size = (numbers.n.bit_length() + 7) // 8
        # EMSA-PKCS1-v1_5 (RFC 8017 §9.2): 00 01 FF..FF 00 DigestInfo digest. Everything but
        # the 32 digest bytes is the same for every message: kept as one number to add to.
        pad = self._size - 3 - len(SHA256_DIGEST_INFO) - 32
        self._prefix = gmpy2.mpz(int.from_bytes(
            b"\x00\x01" + b"\xff" * pad + b"\x00" + SHA256_DIGEST_INFO + bytes(32), "big"))

    def verify_many(self, items: Sequence[tuple[bytes, bytes] | None]) -> list[bool]:
        """For each ``(content, base64 signature)``, whether the signature is valid (None
        items are False). The answers ``rsa2_verify`` gives item by item, except that
        signatures of signed messages altered to cancel each other out pass together (what
        screening allows, above)."""
        ok = [False] * len(items)
        candidates: list[tuple[int, bytes, bytes]] = []
        n, size, prefix = self._n, self._size, self._prefix
        signatures = messages = gmpy2.mpz(1)
        for i, item in enumerate(items):
            if item is None:
                continue
            content, signature = item
            try:
                raw = binascii.a2b_base64(signature, strict_mode=True)
            except (binascii.Error, ValueError):
                continue
            if len(raw) != size:
                continue
            s = gmpy2.mpz(int.from_bytes(raw, "big"))
            if not 0 < s < n:
                continue
            signatures = signatures * s % n
            digest = int.from_bytes(hashlib.sha256(content).digest(), "big")
            messages = messages * (prefix + digest) % n
            candidates.append((i, content, signature))
        if not candidates:
            return ok
        batch_holds = gmpy2.powmod(signatures, self._e, n) == messages
        for i, content, signature in candidates:
            # When the batch fails, find which reply is bad, one by one (only forged or
            # damaged replies get here).
            ok[i] = batch_holds or rsa2_verify(self._key, content, signature)
        return ok
