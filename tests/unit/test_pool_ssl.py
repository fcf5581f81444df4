"""Which database connections skip the TLS upgrade: only those that never leave the machine."""

from __future__ import annotations

import pytest

from db.pool import local_ssl


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("postgresql://127.0.0.1:5432/test", False),
        ("postgresql://localhost/posko", False),
        ("postgresql://[::1]:5432/posko", False),
        ("postgresql:///posko?host=/run/postgresql", False),
        ("postgresql://posko@/posko", False),
        ("postgresql://db.dinsos.go.id:5432/posko", None),
        ("postgresql://10.0.0.5/posko", None),
        ("postgresql://127.0.0.1:5432/test?sslmode=require", None),
        ("postgresql://localhost/posko?ssl=true", None),
    ],
)
def test_loopback_without_a_word_on_tls_skips_it(
    dsn: str, expected: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    assert local_ssl(dsn) is expected


def test_pgsslmode_in_the_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGSSLMODE", "require")
    assert local_ssl("postgresql://127.0.0.1:5432/test") is None
