"""One system key per deployment: a shared key file, public keys in the database, init that
never creates a second key, rotation seen by every node."""

from __future__ import annotations

from pathlib import Path

import pytest
from genpon.core.settings import Settings
from genpon.core.signing import (
    KeyProvisioningError,
    SystemKeyring,
    provision,
    recorded_keys,
    signing_state,
)
from genpon.records.access import SYSTEM_ACTOR
from genpon.records.audit.checkpoints import Checkpointer, rotate_key
from genpon.records.audit.export import export_audit
from genpon.records.bootstrap import ensure_keyring
from genpon.storage.context import AppContext
from pydantic import SecretStr

from genpon_verify.verify import verify_export


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


def _node(settings: Settings, tmp_path: Path, name: str, **kw: object) -> Settings:
    return settings.model_copy(update={"data_dir": tmp_path / name, **kw})


def test_a_second_node_never_creates_a_second_key(ctx: AppContext, settings, tmp_path) -> None:
    first = ensure_keyring(_node(settings, tmp_path, "n1"), ctx.engine)
    assert first is not None and list(recorded_keys(ctx.engine)) == [first]
    second = _node(settings, tmp_path, "n2")
    with pytest.raises(KeyProvisioningError, match="--join"):
        ensure_keyring(second, ctx.engine)
    with pytest.raises(KeyProvisioningError, match=first):
        ensure_keyring(second, ctx.engine, join=True)
    assert not (tmp_path / "n2" / "keys").exists()  # nothing made on the way
    assert list(recorded_keys(ctx.engine)) == [first]
    assert ensure_keyring(_node(settings, tmp_path, "n1"), ctx.engine) == first  # init again: ok


def test_nodes_share_a_key_file_and_see_its_rotation(ctx: AppContext, settings, tmp_path) -> None:
    shared = tmp_path / "secret" / "signing.pem"
    a = SystemKeyring.from_settings(
        _node(settings, tmp_path, "a", signing_key_file=shared), ctx.engine
    )
    b_settings = _node(settings, tmp_path, "b", signing_key_file=shared)
    with pytest.raises(KeyProvisioningError):  # joining a deployment that has no key yet
        provision(a, ctx.engine, join=True)
    kid = provision(a, ctx.engine)
    b = SystemKeyring.from_settings(b_settings, ctx.engine)
    assert ensure_keyring(b_settings, ctx.engine, join=True) == kid == b.key_id
    assert signing_state(b, ctx.engine) == (True, None)
    cp_b = Checkpointer(ctx.engine, b, every=1)
    from genpon.core.db import session_scope
    from genpon.records.audit import chain as audit

    with session_scope(ctx.engine) as s:
        audit.record(s, actor="a", action="test.write", target_type="t", target_id=1)
    assert [c.key_id for c in cp_b.run_once()] == [kid]
    r = rotate_key(ctx.engine, a, SYSTEM_ACTOR)
    assert r.old_key_id == kid and b.key_id == r.new_key_id  # b re-read the shared file
    assert set(recorded_keys(ctx.engine)) == {kid, r.new_key_id}
    with session_scope(ctx.engine) as s:
        audit.record(s, actor="a", action="test.write", target_type="t", target_id=2)
    assert {c.key_id for c in cp_b.run_once()} == {r.new_key_id}
    # the verifier trusts both keys: the public keys come from the database, not a key dir
    export_audit(ctx.engine, b, SYSTEM_ACTOR, tmp_path / "x")
    report = verify_export(tmp_path / "x")
    assert report.ok, report.failures
    assert report.keys == sorted([kid, r.new_key_id])


def test_a_node_with_another_key_cannot_sign_and_says_so(
    ctx: AppContext, settings, tmp_path, caplog
) -> None:
    provision(SystemKeyring.from_settings(_node(settings, tmp_path, "a"), ctx.engine), ctx.engine)
    stray = SystemKeyring.from_settings(_node(settings, tmp_path, "b"), ctx.engine)
    stray.ensure()  # a leftover key directory on another machine
    can, why = signing_state(stray, ctx.engine)
    assert not can and why and "GENPON_SIGNING_KEY_FILE" in why
    cp = Checkpointer(ctx.engine, stray, every=1)
    with caplog.at_level("ERROR"):
        assert cp.run_once() == []
    assert "not signed on this node" in caplog.text
    with pytest.raises(KeyProvisioningError, match="一致しません"):
        provision(stray, ctx.engine, join=True)


def test_a_key_from_the_environment_signs_but_is_not_rotated_here(
    ctx: AppContext, settings, tmp_path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from genpon.core.signing import _private_pem

    pem = _private_pem(Ed25519PrivateKey.generate()).decode()
    ring = SystemKeyring.from_settings(
        _node(settings, tmp_path, "e", signing_key=SecretStr(pem)), ctx.engine
    )
    assert ring.source == "env" and provision(ring, ctx.engine) == ring.key_id
    with pytest.raises(KeyProvisioningError, match="GENPON_SIGNING_KEY_FILE"):
        ring.rotate()
