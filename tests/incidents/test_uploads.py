"""Evidence files: what is stored, what is refused (and that a refusal leaves nothing behind),
and that a stored file is only handed out while it still matches its SHA-256."""

import functools
import hashlib
import io
import os
import random
import stat
import struct
import zlib
from pathlib import Path

import anyio
import pytest
from PIL import Image
from starlette.datastructures import Headers, UploadFile

from app.core.errors import DomainError, InvalidInput
from app.incidents import uploads
from app.incidents.uploads import (
    ALLOWED_TYPES,
    EvidenceDamaged,
    StoredFile,
    UploadRejected,
    describe_size,
    discard,
    open_verified,
    store_upload,
)

MB = 1024 * 1024
LIMITS = {"max_bytes": 10 * MB, "max_pixels": 40_000_000}


# Making files ---------------------------------------------------------------------------------


def _noise(size=(120, 90)) -> Image.Image:
    rng = random.Random(7)
    return Image.frombytes(
        "RGB", size, bytes(rng.getrandbits(8) for _ in range(size[0] * size[1] * 3))
    )


def image_bytes(pillow_format: str, size=(120, 90)) -> bytes:
    out = io.BytesIO()
    _noise(size).save(out, format=pillow_format)
    return out.getvalue()


def pdf_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (60, 40), (250, 250, 250)).save(out, format="PDF")
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny, well-formed PNG header that claims huge dimensions: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 1024))
        + _png_chunk(b"IEND", b"")
    )


def make_upload(data: bytes, filename="evidence.png", content_type="image/png") -> UploadFile:
    return UploadFile(
        io.BytesIO(data),
        size=len(data),
        filename=filename,
        headers=Headers({"content-type": content_type}),
    )


def store(upload: UploadFile, evidence_dir: Path, **limits) -> StoredFile:
    return anyio.run(
        functools.partial(store_upload, upload, evidence_dir=evidence_dir, **(LIMITS | limits))
    )


def leftovers(evidence_dir: Path) -> list[Path]:
    return list(evidence_dir.rglob("*")) if evidence_dir.exists() else []


@pytest.fixture
def evidence_dir(tmp_path) -> Path:
    return tmp_path / "evidence"


# Storing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        pytest.param(image_bytes("PNG"), "image/png", id="png"),
        pytest.param(image_bytes("JPEG"), "image/jpeg", id="jpeg"),
        pytest.param(image_bytes("WEBP"), "image/webp", id="webp"),
        pytest.param(pdf_bytes(), "application/pdf", id="pdf"),
    ],
)
def test_an_accepted_file_is_stored_read_only_under_a_random_name(evidence_dir, data, content_type):
    stored = store(make_upload(data, filename="../../photo of pupil.png"), evidence_dir)

    assert stored.content_type == content_type in ALLOWED_TYPES
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert stored.size == len(data)
    path = evidence_dir / stored.storage_name
    assert path.read_bytes() == data
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert len(stored.storage_name) == 32 and int(stored.storage_name, 16) >= 0
    assert leftovers(evidence_dir) == [path]  # no temporary file, nothing named after the upload


def test_the_same_file_twice_gets_two_names(evidence_dir):
    data = image_bytes("PNG")
    first = store(make_upload(data), evidence_dir)
    second = store(make_upload(data), evidence_dir)
    assert first.storage_name != second.storage_name and first.sha256 == second.sha256


def test_type_comes_from_the_bytes_not_the_name_or_the_browser(evidence_dir):
    stored = store(
        make_upload(pdf_bytes(), filename="chat.png", content_type="image/png"), evidence_dir
    )
    assert stored.content_type == "application/pdf"
    stored = store(
        make_upload(image_bytes("PNG"), filename="chat.jpg", content_type="image/jpeg"),
        evidence_dir,
    )
    assert stored.content_type == "image/png"


def test_a_stored_file_is_never_overwritten(evidence_dir, monkeypatch):
    first = store(make_upload(image_bytes("PNG")), evidence_dir)
    names = iter([first.storage_name, "f" * 32])
    monkeypatch.setattr(uploads.secrets, "token_hex", lambda n: next(names))

    second = store(make_upload(image_bytes("JPEG")), evidence_dir)

    assert second.storage_name == "f" * 32
    original = (evidence_dir / first.storage_name).read_bytes()
    assert hashlib.sha256(original).hexdigest() == first.sha256


# Refusing -------------------------------------------------------------------------------------

_png = image_bytes("PNG")
_jpeg = image_bytes("JPEG")
_webp = image_bytes("WEBP")

BAD_FILES = [
    pytest.param(
        b"<html><body><script>alert(1)</script></body></html>",
        "html",
        "This file is an HTML page, not a picture or PDF",
        id="html-named-png",
    ),
    pytest.param(
        b"\xef\xbb\xbf\n  <!DOCTYPE html>\n<title>x</title><p>hi",
        "html",
        "HTML page",
        id="html-doctype-with-bom",
    ),
    pytest.param(
        b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        "svg",
        "SVG images can contain scripts, so Haven does not accept them",
        id="svg",
    ),
    pytest.param(
        b'<?xml version="1.0"?>\n<!-- drawn -->\n<svg xmlns="http://www.w3.org/2000/svg">'
        b"<script>alert(1)</script></svg>",
        "svg",
        "SVG images",
        id="svg-with-xml-prolog-and-script",
    ),
    pytest.param(
        _png[: len(_png) // 2], "damaged_image", "damaged or incomplete", id="truncated-png"
    ),
    # Pillow's verify() passes a truncated JPEG: only the full load() catches it.
    pytest.param(
        _jpeg[: len(_jpeg) - 200], "damaged_image", "damaged or incomplete", id="truncated-jpeg"
    ),
    pytest.param(
        _webp[: len(_webp) // 2], "damaged_image", "damaged or incomplete", id="truncated-webp"
    ),
    pytest.param(
        _png[:60] + bytes([_png[60] ^ 0xFF]) + _png[61:],
        "damaged_image",
        "damaged or incomplete",
        id="png-with-a-bad-checksum",
    ),
    pytest.param(
        png_declaring(30_000, 30_000),
        "too_many_pixels",
        "The image is 30,000 x 30,000 pixels, more than the 40,000,000 pixels Haven accepts",
        id="decompression-bomb",
    ),
    pytest.param(b"", "empty", "The file is empty", id="empty"),
    pytest.param(
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n" + b"x" * 3000,
        "damaged_pdf",
        "The PDF is damaged or incomplete",
        id="pdf-without-eof",
    ),
    pytest.param(
        b"%PDF 1.7\n1 0 obj << >> endobj\n%%EOF\n",
        "damaged_pdf",
        "The PDF is damaged or incomplete",
        id="pdf-with-a-bad-header",
    ),
    pytest.param(image_bytes("GIF"), "not_allowed", "This file is a GIF image", id="gif"),
    pytest.param(image_bytes("BMP"), "not_allowed", "This file is a BMP image", id="bmp"),
    pytest.param(
        b"PK\x03\x04" + b"\0" * 200, "not_allowed", "This file is a ZIP archive", id="zip"
    ),
    pytest.param(
        b"Screenshot of the chat, typed out by hand.",
        "unknown_type",
        "Haven cannot tell what kind of file this is",
        id="plain-text",
    ),
]


@pytest.mark.parametrize(("data", "reason", "message"), BAD_FILES)
def test_a_bad_file_is_refused_with_a_specific_message_and_leaves_nothing(
    evidence_dir, data, reason, message
):
    with pytest.raises(UploadRejected) as refused:
        store(make_upload(data, filename="screenshot.png"), evidence_dir)

    assert refused.value.reason == reason
    assert message in refused.value.detail
    assert isinstance(refused.value, InvalidInput) and refused.value.status_code == 422
    assert leftovers(evidence_dir) == []


def test_every_refusal_names_what_to_upload_instead(evidence_dir):
    for case in BAD_FILES:
        data, reason, _ = case.values
        with pytest.raises(UploadRejected) as refused:
            store(make_upload(data), evidence_dir)
        if reason in {"html", "unknown_type", "not_allowed"}:
            assert "Upload a PNG, JPEG or WebP screenshot, or a PDF." in refused.value.detail
        assert refused.value.detail.endswith(".")


def test_an_image_over_the_pixel_cap_is_refused_before_it_is_decoded(evidence_dir):
    out = io.BytesIO()
    Image.new("L", (1_200, 1_000)).save(out, format="PNG")

    with pytest.raises(UploadRejected) as refused:
        store(make_upload(out.getvalue()), evidence_dir, max_pixels=1_000_000)

    assert (
        "The image is 1,200 x 1,000 pixels, more than the 1,000,000 pixels" in refused.value.detail
    )
    assert leftovers(evidence_dir) == []
    # At the cap exactly, it is fine.
    out = io.BytesIO()
    Image.new("L", (1_000, 1_000)).save(out, format="PNG")
    assert store(make_upload(out.getvalue()), evidence_dir, max_pixels=1_000_000).size > 0


class EndlessFile(io.RawIOBase):
    """A never-ending upload that counts how often it is read."""

    def __init__(self):
        self.calls = 0
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        size = size if size > 0 else 1024 * 1024
        self.bytes_read += size
        return b"\0" * size


def test_an_oversized_file_is_refused_as_soon_as_it_passes_the_limit(evidence_dir):
    endless = EndlessFile()
    upload = UploadFile(endless, filename="huge.png")  # no size known: it must be counted

    with pytest.raises(UploadRejected) as refused:
        store(upload, evidence_dir, max_bytes=100_000)

    assert refused.value.reason == "too_large" and refused.value.status_code == 413
    assert refused.value.detail.startswith("The file is larger than 97.7 KB")
    assert endless.calls == 2 and endless.bytes_read == 100_001  # one byte past, then stop
    assert leftovers(evidence_dir) == []


def test_a_file_whose_size_is_known_to_be_too_large_is_not_read_at_all(evidence_dir):
    endless = EndlessFile()
    upload = UploadFile(endless, size=11 * MB, filename="huge.pdf")

    with pytest.raises(UploadRejected) as refused:
        store(upload, evidence_dir)

    assert refused.value.detail.startswith("The file is larger than 10 MB")
    assert endless.calls == 0 and leftovers(evidence_dir) == []


def test_a_file_of_exactly_the_limit_is_accepted(evidence_dir):
    data = image_bytes("PNG")
    assert store(make_upload(data), evidence_dir, max_bytes=len(data)).size == len(data)


class BrokenFile(io.RawIOBase):
    def __init__(self):
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise OSError("connection reset")
        return _png[:size]


def test_an_upload_that_fails_half_way_leaves_no_partial_file(evidence_dir):
    with pytest.raises(OSError, match="connection reset"):
        store(UploadFile(BrokenFile()), evidence_dir, max_bytes=10 * MB)
    assert leftovers(evidence_dir) == []


# Discarding and reading back ------------------------------------------------------------------


def test_discard_removes_a_stored_file_and_is_quiet_when_it_is_gone(evidence_dir):
    stored = store(make_upload(image_bytes("PNG")), evidence_dir)
    discard(evidence_dir=evidence_dir, storage_name=stored.storage_name)
    assert leftovers(evidence_dir) == []
    discard(evidence_dir=evidence_dir, storage_name=stored.storage_name)


def test_discard_ignores_names_that_are_not_storage_names(tmp_path, evidence_dir):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    discard(evidence_dir=evidence_dir, storage_name="../precious.txt")
    assert precious.exists()


def test_open_verified_returns_the_bytes_while_they_match(evidence_dir):
    data = pdf_bytes()
    stored = store(make_upload(data, filename="letter.pdf"), evidence_dir)
    content = open_verified(
        evidence_dir=evidence_dir, storage_name=stored.storage_name, sha256=stored.sha256
    )
    assert content == data


def test_open_verified_refuses_a_file_altered_after_upload(evidence_dir):
    stored = store(make_upload(image_bytes("PNG")), evidence_dir)
    path = evidence_dir / stored.storage_name
    os.chmod(path, 0o640)
    path.write_bytes(path.read_bytes() + b"tampered")

    with pytest.raises(EvidenceDamaged) as damaged:
        open_verified(
            evidence_dir=evidence_dir, storage_name=stored.storage_name, sha256=stored.sha256
        )

    assert isinstance(damaged.value, DomainError)
    assert damaged.value.status_code == 409 and damaged.value.title == "Evidence damaged"
    assert "has changed since it was uploaded" in damaged.value.detail


def test_open_verified_refuses_a_missing_file(evidence_dir):
    stored = store(make_upload(image_bytes("JPEG")), evidence_dir)
    discard(evidence_dir=evidence_dir, storage_name=stored.storage_name)

    with pytest.raises(EvidenceDamaged, match="missing"):
        open_verified(
            evidence_dir=evidence_dir, storage_name=stored.storage_name, sha256=stored.sha256
        )


def test_open_verified_never_follows_a_path_out_of_the_evidence_folder(tmp_path, evidence_dir):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not evidence")
    with pytest.raises(EvidenceDamaged):
        open_verified(
            evidence_dir=evidence_dir,
            storage_name="../secret.txt",
            sha256=hashlib.sha256(b"not evidence").hexdigest(),
        )


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (900, "900 bytes"),
        (1024, "1 KB"),
        (1536, "1.5 KB"),
        (48 * 1024, "48 KB"),
        (int(2.4 * MB), "2.4 MB"),
        (10 * MB, "10 MB"),
        (MB - 1, "1 MB"),
        (3 * 1024 * MB, "3 GB"),
    ],
)
def test_describe_size(size, text):
    assert describe_size(size) == text


def test_pillows_own_bomb_guard_is_raised_to_havens_cap(evidence_dir, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    stored = store(make_upload(image_bytes("PNG")), evidence_dir, max_pixels=40_000_000)
    assert stored.content_type == "image/png" and Image.MAX_IMAGE_PIXELS == 40_000_000


def test_pillows_own_bomb_guard_still_ends_in_a_clear_refusal(evidence_dir, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    monkeypatch.setattr(uploads, "_allow_pillow_up_to", lambda max_pixels: None)
    with pytest.raises(UploadRejected) as refused:
        store(make_upload(image_bytes("PNG")), evidence_dir)
    assert refused.value.reason == "too_many_pixels"
    assert "more pixels than the 40,000,000 Haven accepts" in refused.value.detail
    assert leftovers(evidence_dir) == []
