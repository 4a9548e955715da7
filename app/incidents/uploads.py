"""Evidence files: checked while they stream in, stored write-once, hash-checked on the way out.

`store_upload` reads an upload in 64 KiB chunks, stops as soon as it passes the size limit,
computes its SHA-256 as it goes and writes it to a temporary file inside the evidence folder.
The type is judged from the bytes (the `filetype` package's magic numbers, then Pillow or the
PDF markers), never from the file name or the browser's Content-Type. Only a file that passes
every check is moved into place, under a random name, readable by its owner only (0o400),
refusing to overwrite. A refused upload leaves nothing behind, and neither does one that finds
the disk full.
"""

import contextlib
import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import filetype
from anyio import to_thread
from PIL import Image, JpegImagePlugin, PngImagePlugin, WebPImagePlugin
from starlette.datastructures import UploadFile

from app.core.errors import DomainError, InvalidInput

log = logging.getLogger("haven.evidence")

ALLOWED_TYPES = {"image/png", "image/jpeg", "image/webp", "application/pdf"}

CHUNK_SIZE = 64 * 1024
HEAD_SIZE = 8192  # what `filetype` looks at, and enough to recognise HTML or SVG text
PDF_TAIL_SIZE = 1024  # %%EOF must appear within the last KiB
STORED_MODE = 0o400
TEMP_PREFIX = ".upload-"
_STORAGE_NAME = re.compile(r"^[0-9a-f]{32}$")

_PILLOW_FORMATS = {
    "image/png": ("PNG", PngImagePlugin.PngImageFile),
    "image/jpeg": ("JPEG", JpegImagePlugin.JpegImageFile),
    "image/webp": ("WEBP", WebPImagePlugin.WebPImageFile),
}
_ACCEPTED = "Upload a PNG, JPEG or WebP screenshot, or a PDF."


class UploadRejected(InvalidInput):
    """A file Haven will not store; `detail` tells a member of staff what to do instead.

    `reason` is a short machine-readable code (too_large, empty, html, svg, not_allowed,
    unknown_type, too_many_pixels, damaged_image, damaged_pdf).
    """

    title = "File not accepted"

    def __init__(self, detail: str, *, reason: str = "rejected", status_code: int | None = None):
        super().__init__(detail)
        self.reason = reason
        if status_code is not None:
            self.status_code = status_code


class EvidenceDamaged(DomainError):
    """A stored evidence file is missing or no longer matches the SHA-256 taken at upload."""

    status_code = 409
    title = "Evidence damaged"


class EvidenceStoreFull(DomainError):
    """The disk holding the evidence folder has no room (or the quota is used up)."""

    status_code = 507
    title = "Insufficient storage"


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


@dataclass(frozen=True)
class StoredFile:
    storage_name: str
    sha256: str
    content_type: str
    size: int


def describe_size(size: int) -> str:
    """A size for people: "512 bytes", "48 KB", "2.4 MB" (1 KB = 1024 bytes, as Windows shows)."""
    if size < 1024:
        return "1 byte" if size == 1 else f"{size:,} bytes"
    value = float(size)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        shown = f"{value:.1f}".removesuffix(".0")
        if float(shown) < 1024 or unit == "GB":
            return f"{shown} {unit}"
    raise AssertionError("unreachable")


# Storing --------------------------------------------------------------------------------------


async def store_upload(
    upload: UploadFile, *, evidence_dir: Path, max_bytes: int, max_pixels: int
) -> StoredFile:
    """Check and store one uploaded file, or raise UploadRejected (or EvidenceStoreFull when
    the evidence folder's disk is full) having stored nothing."""
    if upload.size is not None and upload.size > max_bytes:
        raise _too_large(max_bytes)
    evidence_dir = Path(evidence_dir)
    try:
        return await _store(upload, evidence_dir, max_bytes, max_pixels)
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise
        log.error("evidence folder %s is full (%s): an upload was refused", evidence_dir, exc)
        raise EvidenceStoreFull(
            "Haven's evidence store is full, so this file was not saved and nothing was "
            "recorded. Tell your IT technician: the evidence folder needs more space. Meanwhile "
            "you can describe the evidence in words."
        ) from None


async def _store(
    upload: UploadFile, evidence_dir: Path, max_bytes: int, max_pixels: int
) -> StoredFile:
    await to_thread.run_sync(lambda: evidence_dir.mkdir(mode=0o700, parents=True, exist_ok=True))
    fd, temp_name = await to_thread.run_sync(
        lambda: tempfile.mkstemp(dir=evidence_dir, prefix=TEMP_PREFIX, suffix=".part")
    )
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            sha256, size, head, tail = await _receive(upload, out, max_bytes)
            await to_thread.run_sync(_flush, out)
        if size == 0:
            raise UploadRejected(
                "The file is empty (0 bytes). Choose the screenshot or PDF again; if it is still "
                "empty, save a new copy and upload that.",
                reason="empty",
            )
        content_type = await to_thread.run_sync(_judge, temp, head, tail, max_pixels)
        storage_name = await to_thread.run_sync(_place, temp, evidence_dir)
    finally:
        # Whatever happened (refusal, error, a client that went away), no partial file stays.
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return StoredFile(
        storage_name=storage_name, sha256=sha256, content_type=content_type, size=size
    )


async def _receive(
    upload: UploadFile, out: BinaryIO, max_bytes: int
) -> tuple[str, int, bytes, bytes]:
    digest = hashlib.sha256()
    size = 0
    head = b""
    tail = b""

    def write(chunk: bytes) -> None:
        digest.update(chunk)
        out.write(chunk)

    while True:
        # Never ask for more than one byte past the limit.
        chunk = await upload.read(min(CHUNK_SIZE, max_bytes + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        if len(head) < HEAD_SIZE:
            head += chunk[: HEAD_SIZE - len(head)]
        tail = (tail + chunk)[-PDF_TAIL_SIZE:]
        await to_thread.run_sync(write, chunk)
    return digest.hexdigest(), size, head, tail


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def _too_large(max_bytes: int) -> UploadRejected:
    return UploadRejected(
        f"The file is larger than {describe_size(max_bytes)}, the most Haven accepts for one "
        "piece of evidence. Crop the screenshot, or save the PDF at a smaller size, and upload "
        "it again.",
        reason="too_large",
        status_code=413,
    )


def _judge(path: Path, head: bytes, tail: bytes, max_pixels: int) -> str:
    """The file's real type, from its content; raises UploadRejected for anything unacceptable."""
    kind = filetype.guess(head)
    mime = kind.mime if kind else None
    if mime == "image/apng":  # an animated PNG is still a PNG
        mime = "image/png"
    if mime is None:
        raise _unrecognised(head)
    if mime not in ALLOWED_TYPES:
        raise _not_allowed(mime, kind.extension)
    if mime == "application/pdf":
        _check_pdf(head, tail)
    else:
        _check_image(path, mime, max_pixels)
    return mime


_HTML_START = re.compile(rb"^(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.DOTALL)
_HTML_TAG = re.compile(rb"<(html|head|body|script|iframe|meta|form|frameset)[\s>/]")
_SVG_TAG = re.compile(rb"<svg[\s>/]")


def _as_text(head: bytes) -> bytes:
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if head.startswith(bom):
            return head[2:].decode(encoding, errors="ignore").encode("utf-8")
    return head.removeprefix(b"\xef\xbb\xbf")


def _unrecognised(head: bytes) -> UploadRejected:
    text = _as_text(head).lstrip().lower()
    if _HTML_START.match(text) or (_HTML_TAG.search(text) and not _SVG_TAG.search(text)):
        return UploadRejected(
            f"This file is an HTML page, not a picture or PDF. {_ACCEPTED} To keep a web page, "
            "take a screenshot of it or print it to PDF.",
            reason="html",
        )
    if _SVG_TAG.search(text):
        return UploadRejected(
            "SVG images can contain scripts, so Haven does not accept them. Take a screenshot "
            "of the image, or export it as PNG or PDF, and upload that.",
            reason="svg",
        )
    return UploadRejected(
        "Haven cannot tell what kind of file this is, so it will not store it (the name of a "
        f"file does not change what is inside it). {_ACCEPTED}",
        reason="unknown_type",
    )


_TYPE_NAMES = {
    "image/gif": ("a GIF image", "Take a screenshot of it and upload that."),
    "image/heic": (
        "a HEIC photo (the format iPhones use for camera photos)",
        "Take a screenshot instead (screenshots are PNG), or export the photo as JPEG.",
    ),
    "image/avif": ("an AVIF image", "Take a screenshot of it and upload that."),
    "image/bmp": ("a BMP image", "Take a screenshot of it and upload that."),
    "image/tiff": ("a TIFF image", "Save it as PNG or PDF and upload that."),
    "image/x-icon": ("an icon file", "Take a screenshot of it and upload that."),
    "application/msword": ("a Word document", "Save it as a PDF and upload that."),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        "a Word document",
        "Save it as a PDF and upload that.",
    ),
    "application/vnd.ms-excel": ("an Excel spreadsheet", "Save it as a PDF and upload that."),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": (
        "an Excel spreadsheet",
        "Save it as a PDF and upload that.",
    ),
    "application/zip": ("a ZIP archive", "Upload the files inside it one by one."),
}


def _not_allowed(mime: str, extension: str) -> UploadRejected:
    family = mime.split("/")[0]
    if mime in _TYPE_NAMES:
        name, hint = _TYPE_NAMES[mime]
    elif family == "video":
        name, hint = (
            "a video",
            "Take screenshots of the important moments and describe the rest in words.",
        )
    elif family == "audio":
        name, hint = "a sound recording", "Describe what was said in words instead."
    else:
        name, hint = f"a {extension.upper()} file", ""
    hint = f" {hint}" if hint else ""
    return UploadRejected(
        f"This file is {name}, which Haven does not accept. {_ACCEPTED}{hint}",
        reason="not_allowed",
    )


def _check_pdf(head: bytes, tail: bytes) -> None:
    if not head.startswith(b"%PDF-") or b"%%EOF" not in tail:
        raise UploadRejected(
            "The PDF is damaged or incomplete: it does not start and end the way a PDF must. "
            "Save or export it again, and upload the new copy.",
            reason="damaged_pdf",
        )


def _too_many_pixels(width: int, height: int, max_pixels: int) -> UploadRejected:
    return UploadRejected(
        f"The image is {width:,} x {height:,} pixels, more than the {max_pixels:,} pixels Haven "
        "accepts. Take a smaller screenshot, or resize the image, and upload it again.",
        reason="too_many_pixels",
    )


def _allow_pillow_up_to(max_pixels: int) -> None:
    # Our own check (below) is the cap. Pillow's global guard must not be stricter than it, or
    # images Haven accepts would be refused; it is only ever raised, never lowered, here.
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and current < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels


def _check_image(path: Path, mime: str, max_pixels: int) -> None:
    pillow_format, plugin = _PILLOW_FORMATS[mime]
    damaged = UploadRejected(
        "The image file is damaged or incomplete, so Haven cannot open it. Take the screenshot "
        "again, or save a new copy of the image, and upload that.",
        reason="damaged_image",
    )
    _allow_pillow_up_to(max_pixels)
    try:
        # Read the header alone (the plugin class skips Pillow's own bomb check, so we learn the
        # real dimensions), and refuse a decompression bomb before decoding a single pixel.
        with path.open("rb") as fp:
            probe = plugin(fp)
            width, height = probe.size
            probe.close()
        if width * height > max_pixels:
            raise _too_many_pixels(width, height, max_pixels)
        with Image.open(path, formats=[pillow_format]) as image:
            image.verify()  # structure and checksums (PNG chunks' CRCs)
        with Image.open(path, formats=[pillow_format]) as image:
            image.load()  # decodes every pixel: catches truncated JPEG and WebP data
    except UploadRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadRejected(
            f"The image has more pixels than the {max_pixels:,} Haven accepts. Take a smaller "
            "screenshot, or resize the image, and upload it again.",
            reason="too_many_pixels",
        ) from exc
    except Exception as exc:  # anything Pillow raises on bad data means the same to a teacher
        raise damaged from exc


def _place(temp: Path, evidence_dir: Path) -> str:
    """Move a checked file into place under a new random name, read-only, never overwriting."""
    os.chmod(temp, STORED_MODE)
    for _ in range(5):
        storage_name = secrets.token_hex(16)
        final = evidence_dir / storage_name
        try:
            os.link(temp, final)  # fails if the name exists: write-once
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # A filesystem without hard links: rename, having checked the name is free.
            if final.exists():
                continue
            os.rename(temp, final)
        _fsync_dir(evidence_dir)
        return storage_name
    raise RuntimeError("could not find a free evidence file name")  # pragma: no cover


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# Removing and reading -------------------------------------------------------------------------


def _stored_path(evidence_dir: Path, storage_name: str) -> Path | None:
    if not isinstance(storage_name, str) or not _STORAGE_NAME.match(storage_name):
        return None
    return Path(evidence_dir) / storage_name


def discard(*, evidence_dir: Path, storage_name: str) -> None:
    """Remove a file stored by this request (its database transaction failed); quiet if gone."""
    path = _stored_path(evidence_dir, storage_name)
    if path is None:
        log.warning("not discarding %r: not an evidence storage name", storage_name)
        return
    path.unlink(missing_ok=True)


def open_verified(*, evidence_dir: Path, storage_name: str, sha256: str) -> bytes:
    """The stored bytes, provided they still match the SHA-256 recorded at upload."""
    path = _stored_path(evidence_dir, storage_name)
    if path is None:
        log.error("evidence storage name %r is not valid", storage_name)
        raise EvidenceDamaged(
            "This evidence record does not point to a valid file, so Haven cannot serve it. "
            "Tell your IT technician."
        )
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        log.error("evidence file %s is missing", storage_name)
        raise EvidenceDamaged(
            "This evidence file is missing from Haven's evidence folder, so it cannot be "
            "downloaded. Ask your IT technician to restore it from a backup."
        ) from None
    actual = hashlib.sha256(content).hexdigest()
    if not sha256 or not hmac.compare_digest(actual, sha256.lower()):
        log.error(
            "evidence file %s has changed: SHA-256 %s, expected %s", storage_name, actual, sha256
        )
        raise EvidenceDamaged(
            "This evidence file has changed since it was uploaded (its SHA-256 fingerprint no "
            "longer matches), so Haven will not serve it. Ask your IT technician to restore it "
            "from a backup."
        )
    return content
