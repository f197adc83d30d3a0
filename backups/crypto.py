"""Packing a local backup archive for storage and unpacking it again: optional zstd
compression and optional authenticated encryption (libsodium's secretstream,
XChaCha20-Poly1305), both streamed in chunks of about 1 MiB, never the whole file in memory.

Settings: BACKUP_COMPRESSION and BACKUP_COMPRESSION_LEVEL (zstd, on at level 3 by default),
BACKUP_ENCRYPTION_KEY (32 bytes in standard base64; unset: no encryption). See
docs/configuration.md.

The packed file (format version 1), all integers big-endian:

    header   "LGBK", version (1 byte), flags (1 byte: 1 compressed, 2 encrypted), 2 zero bytes;
             encrypted only: the key id (8 bytes) and the secretstream header (24 bytes)
    records  each a 4-byte length and that many bytes: the (compressed) archive in pieces
    end      encrypted: a last record tagged FINAL whose plaintext is the trailer;
             plain: a zero length, the trailer, and the SHA-256 of every byte before it
    trailer  the archive's size (8 bytes) and SHA-256 (32 bytes), checked after unpacking

Encrypted, every record is authenticated (the first one with the header as additional data)
and the FINAL tag marks the end, so an altered byte, a dropped, reordered or repeated record
and a cut-off file all fail. Plain, the closing SHA-256 catches accidents (a flipped bit, a
truncated upload), not an attacker, who could recompute it: encrypt backups that leave the
machine. The key id (a BLAKE2b MAC of nothing under the key) tells a wrong key from an altered
file; it reveals nothing about the key.
"""

import base64
import binascii
import hashlib
import os
import struct
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard
from django.conf import settings
from nacl import bindings as sodium
from nacl import exceptions as sodium_errors

from backups.exceptions import (
    BackupCorrupt,
    BackupKeyInvalid,
    BackupKeyMismatch,
    BackupKeyMissing,
    BackupMisconfigured,
)

MAGIC = b"LGBK"
VERSION = 1
FLAG_COMPRESSED = 0x01
FLAG_ENCRYPTED = 0x02
CHUNK = 1 << 20
KEY_BYTES = sodium.crypto_secretstream_xchacha20poly1305_KEYBYTES
KEY_ID_BYTES = 8
COMPRESSION_LEVELS = range(1, 20)  # zstd's ordinary levels; 20-22 need far more memory

_KNOWN_FLAGS = FLAG_COMPRESSED | FLAG_ENCRYPTED
_PREFIX = struct.Struct(">4sBBH")  # magic, version, flags, reserved
_LENGTH = struct.Struct(">I")
_TRAILER = struct.Struct(">Q32s")  # the archive's size and SHA-256
_DIGEST_BYTES = 32
_ABYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_STREAM_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL
_KEY_ID_PERSON = b"ledgerguard-bkid"


@dataclass(frozen=True)
class PackOptions:
    """How to pack: zstd at `compression_level` (None: no compression), encrypted under `key`
    (32 bytes; None: no encryption)."""

    compression_level: int | None = 3
    key: bytes | None = None

    @classmethod
    def from_settings(cls) -> "PackOptions":
        level: int | None = None
        if settings.BACKUP_COMPRESSION:
            level = settings.BACKUP_COMPRESSION_LEVEL
            if level not in COMPRESSION_LEVELS:
                raise BackupMisconfigured(
                    f"BACKUP_COMPRESSION_LEVEL must be a zstd level from 1 to 19, not {level}"
                )
        return cls(compression_level=level, key=encryption_key())


@dataclass(frozen=True)
class PackInfo:
    """What pack() wrote: `size` and `sha256` are of the packed file (what gets stored),
    `source_size` and `source_sha256` of the archive it holds."""

    compressed: bool
    encrypted: bool
    size: int
    sha256: str
    source_size: int
    source_sha256: str


@dataclass(frozen=True)
class Header:
    """A packed file's header: how it was packed, and the id of the key it needs (hex)."""

    version: int
    compressed: bool
    encrypted: bool
    key_id: str = ""


def decode_key(text: str) -> bytes:
    """A key from its standard base64 form (44 characters); refuses anything but 32 bytes.
    The messages never repeat the key."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BackupKeyInvalid(
            "BACKUP_ENCRYPTION_KEY is not standard base64: generate one with "
            "`openssl rand -base64 32`"
        ) from None
    if len(key) != KEY_BYTES:
        raise BackupKeyInvalid(
            f"BACKUP_ENCRYPTION_KEY must be {KEY_BYTES} bytes in base64 (44 characters); it "
            f"decodes to {len(key)} bytes. Generate one with `openssl rand -base64 32`"
        )
    return key


def encryption_key() -> bytes | None:
    """BACKUP_ENCRYPTION_KEY decoded, or None when it is not set (no encryption)."""
    text = settings.BACKUP_ENCRYPTION_KEY.strip()
    return decode_key(text) if text else None


def generate_key() -> str:
    """A new random key in the form BACKUP_ENCRYPTION_KEY takes."""
    return base64.b64encode(sodium.crypto_secretstream_xchacha20poly1305_keygen()).decode()


def key_id(key: bytes) -> str:
    """The id a packed file records for its key (hex): tells a wrong key from damage."""
    return _key_id(key).hex()


def pack(src: Path, dst: Path, options: PackOptions | None = None) -> PackInfo:
    """Pack the archive `src` into `dst` (written whole or not at all) as the options say,
    or as the settings say when none are given."""
    options = options or PackOptions.from_settings()
    if options.key is not None and len(options.key) != KEY_BYTES:
        raise BackupKeyInvalid(f"an encryption key must be {KEY_BYTES} bytes")
    level = options.compression_level
    if level is not None and level not in COMPRESSION_LEVELS:
        raise BackupMisconfigured(f"zstd compression level {level} is not from 1 to 19")
    source_tally = _Tally()
    with src.open("rb") as source, _atomic_output(dst) as out:
        output = _TallyWriter(out)
        sealer = _Sealer(output, compressed=level is not None, key=options.key)
        for piece in _payload(source, source_tally, level):
            sealer.add(piece)
        sealer.finish(_TRAILER.pack(source_tally.size, source_tally.digest()))
    return PackInfo(
        compressed=level is not None,
        encrypted=options.key is not None,
        size=output.tally.size,
        sha256=output.tally.hexdigest(),
        source_size=source_tally.size,
        source_sha256=source_tally.hexdigest(),
    )


def unpack(src: Path, dst: Path, key: bytes | None = None, *, refuse_plain: bool = False) -> None:
    """Unpack `src` into `dst`, proving on the way that it is exactly what pack() wrote.
    `key`: None takes BACKUP_ENCRYPTION_KEY (needed only for an encrypted file). `dst` is
    written whole, or not at all: any failure leaves nothing behind.

    `refuse_plain`: refuse a file that is not encrypted (the services do, once a key is set).
    Raises BackupCorrupt (altered, truncated, not a backup), BackupKeyMissing (encrypted and
    no key), BackupKeyMismatch (encrypted under another key), BackupKeyInvalid."""
    with src.open("rb") as packed, _atomic_output(dst) as out:
        opener = _Opener(packed, key)
        if refuse_plain and not opener.header.encrypted:
            # Where backups are encrypted, a plain file is what someone with write access to
            # the storage could put there: nothing authenticates it.
            raise BackupCorrupt(
                f"{src.name} is not encrypted, but BACKUP_ENCRYPTION_KEY is set: it is not "
                "restored (unset the key to restore a backup taken before encryption)"
            )
        sink = _Sink(out, compressed=opener.header.compressed)
        for piece in opener.payload():
            sink.write(piece)
        sink.close()
        size, digest = _TRAILER.unpack(opener.trailer)
        if sink.tally.size != size or sink.tally.digest() != digest:
            raise BackupCorrupt(
                f"{src.name}: the unpacked archive is not the one packed "
                f"({sink.tally.size} bytes, expected {size}, or another SHA-256)"
            )


def read_header(src: Path) -> Header:
    """How `src` was packed, without unpacking it (no key needed)."""
    with src.open("rb") as packed:
        header, _raw = _read_header(_Reader(packed))
    return header


# --- packing -------------------------------------------------------------------------------


class _Tally:
    """The SHA-256 and length of the bytes that pass."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def digest(self) -> bytes:
        return self._hash.digest()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class _TallyWriter:
    """Writes to a file and tallies what it wrote."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.tally = _Tally()

    def write(self, data: bytes) -> int:
        self._out.write(data)
        self.tally.update(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


def _key_id(key: bytes) -> bytes:
    return hashlib.blake2b(b"", key=key, digest_size=KEY_ID_BYTES, person=_KEY_ID_PERSON).digest()


def _payload(source: BinaryIO, tally: _Tally, level: int | None) -> Iterator[bytes]:
    """The archive in pieces of at most CHUNK bytes, compressed when `level` is set."""
    chunker = None
    if level is not None:
        compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
        chunker = compressor.chunker(chunk_size=CHUNK)
    while chunk := source.read(CHUNK):
        tally.update(chunk)
        if chunker is None:
            yield chunk
        else:
            yield from chunker.compress(chunk)
    if chunker is not None:
        yield from chunker.finish()


class _Sealer:
    """Writes the header, then each piece as a record, then the end."""

    def __init__(self, out: _TallyWriter, *, compressed: bool, key: bytes | None) -> None:
        self._out = out
        flags = (FLAG_COMPRESSED if compressed else 0) | (FLAG_ENCRYPTED if key else 0)
        header = _PREFIX.pack(MAGIC, VERSION, flags, 0)
        self._state = None
        if key is not None:
            self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
            stream_header = sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key)
            header += _key_id(key) + stream_header
        out.write(header)
        # The first record authenticates the header (flags, key id) along with itself.
        self._ad: bytes | None = header

    def add(self, data: bytes) -> None:
        if data:
            self._record(data, _TAG_MESSAGE)

    def finish(self, trailer: bytes) -> None:
        if self._state is not None:
            self._record(trailer, _TAG_FINAL)
            return
        self._out.write(_LENGTH.pack(0))
        self._out.write(trailer)
        self._out.write(self._out.tally.digest())

    def _record(self, data: bytes, tag: int) -> None:
        if self._state is not None:
            data = sodium.crypto_secretstream_xchacha20poly1305_push(
                self._state, data, self._ad, tag
            )
            self._ad = None
        self._out.write(_LENGTH.pack(len(data)))
        self._out.write(data)


# --- unpacking -----------------------------------------------------------------------------


class _Reader:
    """Exact reads from the packed file, tallied; running short is a truncated file."""

    def __init__(self, packed: BinaryIO) -> None:
        self._packed = packed
        self.tally = _Tally()
        self.name = Path(getattr(packed, "name", "backup")).name

    def read(self, size: int, what: str, *, tally: bool = True) -> bytes:
        data = self._packed.read(size)
        if len(data) != size:
            raise BackupCorrupt(f"{self.name}: truncated ({what} cut off)")
        if tally:
            self.tally.update(data)
        return data

    def expect_end(self) -> None:
        if self._packed.read(1):
            raise BackupCorrupt(f"{self.name}: unexpected data after the end of the backup")


def _read_header(reader: _Reader) -> tuple[Header, bytes]:
    raw = reader.read(_PREFIX.size, "header")
    magic, version, flags, reserved = _PREFIX.unpack(raw)
    if magic != MAGIC:
        raise BackupCorrupt(f"{reader.name}: not a packed Ledgerguard backup")
    if version != VERSION:
        raise BackupCorrupt(
            f"{reader.name}: format version {version}; this version reads {VERSION}"
        )
    if flags & ~_KNOWN_FLAGS or reserved:
        raise BackupCorrupt(f"{reader.name}: unknown flags in the header")
    encrypted = bool(flags & FLAG_ENCRYPTED)
    found_key_id = ""
    if encrypted:
        rest = reader.read(KEY_ID_BYTES + _STREAM_HEADER_BYTES, "header")
        raw += rest
        found_key_id = rest[:KEY_ID_BYTES].hex()
    header = Header(
        version=version,
        compressed=bool(flags & FLAG_COMPRESSED),
        encrypted=encrypted,
        key_id=found_key_id,
    )
    return header, raw


class _Opener:
    """Reads the header, then yields the records' payload; `trailer` once they are done."""

    def __init__(self, packed: BinaryIO, key: bytes | None) -> None:
        self._reader = _Reader(packed)
        self.header, raw_header = _read_header(self._reader)
        self.trailer = b""
        self._state = None
        if self.header.encrypted:
            key = key if key is not None else encryption_key()
            self._state = self._open_stream(key, raw_header[-_STREAM_HEADER_BYTES:])
        # The first record authenticates the header along with itself (see _Sealer).
        self._ad: bytes | None = raw_header

    def _open_stream(
        self, key: bytes | None, stream_header: bytes
    ) -> sodium.crypto_secretstream_xchacha20poly1305_state:
        name = self._reader.name
        if key is None:
            raise BackupKeyMissing(
                f"{name} is encrypted and BACKUP_ENCRYPTION_KEY is not set "
                f"(it needs the key with id {self.header.key_id})"
            )
        if len(key) != KEY_BYTES:
            raise BackupKeyInvalid(f"an encryption key must be {KEY_BYTES} bytes")
        if key_id(key) != self.header.key_id:
            raise BackupKeyMismatch(
                f"{name} was encrypted with another key (key id {self.header.key_id}, the "
                f"given key's is {key_id(key)}), or its header was altered"
            )
        state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(state, stream_header, key)
        return state

    def payload(self) -> Iterator[bytes]:
        reader, number = self._reader, 0
        while True:
            number += 1
            (length,) = _LENGTH.unpack(reader.read(_LENGTH.size, f"record {number}"))
            if self._state is None:
                if length == 0:
                    self.trailer = reader.read(_TRAILER.size, "trailer")
                    expected = reader.tally.digest()
                    if reader.read(_DIGEST_BYTES, "checksum", tally=False) != expected:
                        raise BackupCorrupt(f"{reader.name}: checksum mismatch (altered)")
                    reader.expect_end()
                    return
                if length > CHUNK:
                    raise BackupCorrupt(f"{reader.name}: record {number} has a bad length")
                yield reader.read(length, f"record {number}")
                continue
            if not _ABYTES <= length <= CHUNK + _ABYTES:
                raise BackupCorrupt(f"{reader.name}: record {number} has a bad length")
            record = reader.read(length, f"record {number}")
            message, tag = self._pull(self._state, record, number)
            if tag == _TAG_FINAL:
                if len(message) != _TRAILER.size:
                    raise BackupCorrupt(f"{reader.name}: the closing record is malformed")
                self.trailer = message
                reader.expect_end()
                return
            if tag != _TAG_MESSAGE:
                raise BackupCorrupt(f"{reader.name}: record {number} has an unknown tag")
            yield message

    def _pull(
        self, state: sodium.crypto_secretstream_xchacha20poly1305_state, record: bytes, number: int
    ) -> tuple[bytes, int]:
        ad, self._ad = self._ad, None
        try:
            return sodium.crypto_secretstream_xchacha20poly1305_pull(state, record, ad)
        except sodium_errors.CryptoError:
            raise BackupCorrupt(
                f"{self._reader.name}: record {number} fails authentication (altered, "
                "reordered or from another backup)"
            ) from None


class _Sink:
    """Writes the payload to the output, decompressing in pieces of at most CHUNK bytes."""

    def __init__(self, out: BinaryIO, *, compressed: bool) -> None:
        self._target = _TallyWriter(out)
        self.tally = self._target.tally
        self._decompressor = None
        if compressed:
            self._decompressor = zstandard.ZstdDecompressor().stream_writer(
                cast(IO[bytes], self._target), write_size=CHUNK, closefd=False
            )

    def write(self, data: bytes) -> None:
        if self._decompressor is None:
            self._target.write(data)
            return
        try:
            self._decompressor.write(data)
        except zstandard.ZstdError as exc:
            raise BackupCorrupt(f"the compressed archive does not decompress: {exc}") from None

    def close(self) -> None:
        if self._decompressor is not None:
            try:
                self._decompressor.flush()
            except zstandard.ZstdError as exc:
                raise BackupCorrupt(f"the compressed archive does not decompress: {exc}") from None


@contextmanager
def _atomic_output(dst: Path) -> Iterator[BinaryIO]:
    """A file that becomes `dst` when the block succeeds and is removed when it fails (mode
    0600: a backup is as secret as the database)."""
    fd, partial = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
        os.replace(partial, dst)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
