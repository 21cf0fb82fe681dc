"""Content-type detection by magic bytes and the atomic write (no temp file survives)."""

from pathlib import Path

import pytest

from actors.media import detect_extension, relative_path, write_atomically


@pytest.mark.parametrize(("data", "declared", "extension"), [
    (b"\xff\xd8\xff\xe0rest", "application/octet-stream", "jpg"),
    (b"\x89PNG\r\n\x1a\nrest", "image/jpeg", "png"),  # the bytes win over the declared type
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", None, "webp"),  # stickers
    (b"OggS\x00rest", "audio/ogg; codecs=opus", "ogg"),  # voice notes
    (b"\x00\x00\x00\x18ftypmp42", None, "mp4"),
    (b"%PDF-1.7", None, "pdf"),
    (b"plain words", "text/plain", "txt"),
    (b"\x01\x02", None, "bin"),
])
def test_detect_extension(data: bytes, declared: str | None, extension: str) -> None:
    assert detect_extension(data, declared) == extension


def test_relative_path_is_tenant_year_month() -> None:
    assert relative_path("acme", 42, 1_700_000_000.0, "jpg") == Path("acme/2023/11/42.jpg")


def test_write_atomically_leaves_no_temp_file(tmp_path: Path) -> None:
    target = write_atomically(tmp_path, Path("acme/2023/11/1.png"), b"data")
    assert target.read_bytes() == b"data"
    with pytest.raises(TypeError):
        write_atomically(tmp_path, Path("acme/2023/11/2.png"), "not bytes")  # type: ignore[arg-type]
    assert sorted(p.name for p in (tmp_path / "acme/2023/11").iterdir()) == ["1.png"]
