"""Per-user access over HTTP (both stores): the admin token makes users and tokens; a user's token
sees only that user's collections; revoked tokens stop working; user A cannot read, push to,
list or re-create user B's collections."""

import pytest

from clark_hash_web.errors import SyncAuthError, SyncRefusedError
from clark_hash_web.sync.client import AdminClient, SyncClient
from sync_fixtures import COSINE, db_url, puts_for, running_server  # noqa: F401  (db_url: fixture)


@pytest.fixture
def srv(tmp_path, db_url):
    with running_server(tmp_path / "data", None, db=db_url) as (server, token):
        yield server, token


def _refused(fn, status):
    with pytest.raises(SyncRefusedError) as err:
        fn()
    assert err.value.status == status, err.value
    return err.value


def test_users_see_only_their_own_collections(srv):
    server, admin_token = srv
    admin = AdminClient(server.url, admin_token)
    ta, tb = admin.create_user("alice"), admin.create_user("bob")
    a = SyncClient(server.url, ta, "a-notes", "laptop")
    a.ensure_collection(COSINE)
    a.push(puts_for(COSINE, 4))
    b = SyncClient(server.url, tb, "b-notes", "phone")
    b.ensure_collection(COSINE)
    b.push(puts_for(COSINE, 2, seed=5, prefix="b"))

    intruder = SyncClient(server.url, tb, "a-notes", "phone")
    intruder._config = COSINE
    for call in (intruder.info, lambda: intruder.pull(0), lambda: intruder.push(puts_for(COSINE, 1)),
                 lambda: intruder.ensure_collection(COSINE), lambda: intruder.set_key_check(b"x" * 40)):
        assert "another user" in str(_refused(call, 403))
    # an unknown collection looks the same to a user as another user's one (403, no existence leak)
    _refused(SyncClient(server.url, tb, "nothing-here", "phone").info, 403)
    assert SyncClient(server.url, ta, "", "laptop").request("GET", "/api/v1/collections") \
        == b'{"collections": ["a-notes"]}'
    assert SyncClient(server.url, tb, "", "phone").request("GET", "/api/v1/collections") \
        == b'{"collections": ["b-notes"]}'
    # A's data is untouched by B's attempts; the admin sees both collections
    assert a.info()["count"] == 4 and a.info()["last_seq"] == 4
    assert sorted(server.store.collections()) == ["a-notes", "b-notes"]
    assert a.info()["owner"] == "alice"


def test_users_cannot_manage_users_and_revoked_tokens_stop(srv):
    server, admin_token = srv
    admin = AdminClient(server.url, admin_token)
    ta = admin.create_user("alice")
    second = admin.new_token("alice")
    as_user = AdminClient(server.url, ta)
    _refused(lambda: as_user.create_user("mallory"), 403)
    _refused(as_user.users, 403)
    _refused(lambda: as_user.revoke(second), 403)
    c = SyncClient(server.url, ta, "a-notes", "laptop")
    c.ensure_collection(COSINE)
    admin.revoke(ta)
    with pytest.raises(SyncAuthError):
        c.info()
    c2 = SyncClient(server.url, second, "a-notes", "tablet")
    assert c2.info()["name"] == "a-notes"  # the other token of the same user still works
    listed = {u["name"]: u["tokens"] for u in admin.users()}
    assert [t["revoked"] for t in listed["alice"]] == [True, False]
    assert ta not in str(listed) and second not in str(listed)
    _refused(lambda: admin.create_user("alice"), 409)
    _refused(lambda: admin.new_token("nobody"), 404)


def test_admin_creates_collections_for_users(srv):
    server, admin_token = srv
    admin = AdminClient(server.url, admin_token)
    tc = admin.create_user("carol")
    SyncClient(server.url, admin_token, "c-notes", "admin").ensure_collection(COSINE, owner="carol")
    c = SyncClient(server.url, tc, "c-notes", "laptop")
    assert c.info()["owner"] == "carol"
    c.push(puts_for(COSINE, 3))
    user = SyncClient(server.url, tc, "x", "laptop")
    _refused(lambda: user.ensure_collection(COSINE, owner="carol"), 403)  # owner= is admin-only
    _refused(lambda: SyncClient(server.url, admin_token, "d", "admin")
             .ensure_collection(COSINE, owner="nobody"), 404)


def test_user_command(srv, capsys):
    import json

    from clark_hash_web.sync.client import main

    server, admin_token = srv
    common = ["--url", server.url, "--token", admin_token]
    assert main(["user", "add", "dora", *common]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert SyncClient(server.url, token, "", "x").request("GET", "/api/v1/collections") == \
        b'{"collections": []}'
    assert main(["user", "revoke", token, *common]) == 0
    capsys.readouterr()
    assert main(["user", "list", *common]) == 0
    assert json.loads(capsys.readouterr().out)["users"][0]["tokens"][0]["revoked"] is True
    with pytest.raises(SyncAuthError):
        SyncClient(server.url, token, "", "x").request("GET", "/api/v1/collections")
    assert main(["user", "add", "eve", "--url", server.url, "--token", token]) == 2
    assert "token" in capsys.readouterr().err
