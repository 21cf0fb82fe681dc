"""What whatsmeow's send errors mean for the outbox: nothing sent, WhatsApp said no, or unknown."""

import pytest
from neonize.exc import SendMessageError

from actors.drivers import NotConnectedError, RequestError, RequestInterruptedError, RequestTimeoutError
from actors.drivers.neonize._host import _ffi_error
from actors.drivers.neonize._wire import decode_error, encode_error


@pytest.mark.parametrize("message, meaning", [
    ("websocket not connected", NotConnectedError),  # refused before anything went out
    ("timed out waiting for message send response", RequestTimeoutError),  # sent, no answer
    ("websocket disconnected before info query returned response", RequestInterruptedError),  # sent, link gone
    ("server returned error 479", RequestError),  # WhatsApp answered no
])
def test_whatsmeow_send_errors_keep_their_meaning_across_the_pipe(message, meaning):
    mapped = _ffi_error(SendMessageError(message))
    assert type(mapped) is meaning
    assert type(decode_error(encode_error(mapped))) is meaning  # what the outbox sees by name
