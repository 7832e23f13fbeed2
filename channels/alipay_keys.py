"""Alipay key material for a process: the merchant's app key pair and Alipay's public key.

With no key paths configured, a development pair for the app and one standing in for Alipay
are generated once under ``<var_dir>/alipay`` and shared by every local process (the simulator
reads the same files), so ``quanpai simulate`` and a worker agree without any setup. The four
files appear together: they are written to a temporary directory that is renamed into place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa

from channels.alipay_signature import (
    PrivateKey,
    PublicKey,
    load_private_key,
    load_public_key,
    private_pem,
    public_pem,
)
from channels.errors import ChannelConfigError
from infra.settings import Settings


@dataclass(frozen=True)
class AlipayKeys:
    app_private: PrivateKey
    alipay_public: PublicKey
    alipay_private: PrivateKey | None = None  # the development stand-in (simulator only)

    @property
    def app_public(self) -> PublicKey:
        return self.app_private.public_key()


def ensure_dev_keys(directory: Path) -> Path:
    """Create ``app_private.pem`` and ``alipay_private.pem`` (+ public halves) once."""
    if (directory / "alipay_private.pem").is_file():
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".alipay-", dir=directory.parent))
    for name in ("app", "alipay"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (staging / f"{name}_private.pem").write_bytes(private_pem(key))
        (staging / f"{name}_public.pem").write_bytes(public_pem(key.public_key()))
    try:
        os.rename(staging, directory)
    except OSError:  # another process won the race: use its keys
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def load_keys(settings: Settings) -> AlipayKeys:
    """The keys ``settings`` names, or the development pair under ``var_dir/alipay``."""
    a = settings.alipay
    dev = ensure_dev_keys(settings.var_dir / "alipay")
    app_path = Path(a.private_key_path) if a.private_key_path else dev / "app_private.pem"
    ali_path = (Path(a.alipay_public_key_path) if a.alipay_public_key_path
                else dev / "alipay_public.pem")
    try:
        app_private = load_private_key(app_path.read_bytes())
        alipay_public = load_public_key(ali_path.read_bytes())
        # The simulator signs with the development Alipay key; a worker configured with the
        # real Alipay public key will (rightly) reject what the simulator signs.
        alipay_private = load_private_key((dev / "alipay_private.pem").read_bytes())
    except (OSError, ValueError) as exc:
        raise ChannelConfigError(f"Alipay key file unusable: {exc}; check "
                                 "ALIPAY_PRIVATE_KEY_PATH and ALIPAY_PUBLIC_KEY_PATH") from exc
    return AlipayKeys(app_private, alipay_public, alipay_private)
