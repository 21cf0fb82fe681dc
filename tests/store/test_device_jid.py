"""A session remembers its WhatsApp device's full JID (schema: sessions.device_jid), on both backends."""

import pytest

from actors.store import InvalidInput, NotFound


async def test_the_device_jid_is_kept_refused_without_its_device_part_and_forgotten(store):
    await store.upsert_tenant("acme", "Acme")
    created = await store.upsert_session("s1", "acme", "main")
    assert created.device_jid is None

    saved = await store.set_session_device("s1", "5511999990000:12@s.whatsapp.net")
    assert saved.device_jid == "5511999990000:12@s.whatsapp.net"
    await store.upsert_session("s1", "acme", "renamed")  # other updates leave it alone
    assert (await store.get_session("s1")).device_jid == "5511999990000:12@s.whatsapp.net"

    for bare in ("5511999990000@s.whatsapp.net", "5511999990000:0@s.whatsapp.net", "no-at-sign", ""):
        with pytest.raises(InvalidInput, match="device_jid"):
            await store.set_session_device("s1", bare)
    with pytest.raises(NotFound):
        await store.set_session_device("nope", "5511999990000:3@s.whatsapp.net")

    await store.set_session_device("s1", None)  # logged out: the device is gone
    assert (await store.get_session("s1")).device_jid is None
