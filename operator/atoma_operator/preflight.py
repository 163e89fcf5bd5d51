"""Start-up checks that run before kopf: a bad configuration exits at once, with one line.

Inside kopf a failing start-up activity is retried every minute with a traceback; a
setting that cannot work (two key sources, a malformed key, no package id) is better
refused before anything connects. Every message names the setting and the rule, never
its value: the value may be the signing key.
"""

from __future__ import annotations

from atoma_operator.settings import Settings, SettingsInvalid
from atoma_operator.sui.keys import KeyLoadError, Signer, load_signer, parse_signer


class StartupRefused(Exception):
    """The operator cannot start with these settings; the message says which and why."""


def signer_from(settings: Settings) -> Signer:
    """The signing key from the one configured source (file or, for dev, the variable)."""
    if settings.key_file is not None:
        return load_signer(path=settings.key_file, derivation_path=settings.key_derivation_path)
    if settings.signing_key is not None:
        return parse_signer(
            settings.signing_key.get_secret_value(),
            derivation_path=settings.key_derivation_path,
        )
    raise KeyLoadError("no signing key: set ATOMA_KEY_FILE (or ATOMA_SIGNING_KEY)")


def checked_settings() -> Settings:
    """Settings from the environment, with the chain ids present and the key loadable."""
    message: str | None = None
    try:
        settings = Settings()
        if settings.package_id is None or settings.atoma_db_id is None:
            message = "ATOMA_PACKAGE_ID and ATOMA_ATOMA_DB_ID must be set"
        else:
            signer_from(settings)
    except (SettingsInvalid, KeyLoadError) as exc:
        message = str(exc)
    if message is not None:  # raised outside `except`: nothing is chained to it
        raise StartupRefused(message)
    return settings
