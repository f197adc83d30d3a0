"""Packing backups for storage (backups/crypto.py): compression, encryption, and proof on
unpacking that nothing was altered, cut off or read with the wrong key."""

import base64
import hashlib
import os
import stat
import struct
import tracemalloc
from pathlib import Path

import pytest

from backups import crypto
from backups.crypto import PackOptions
from backups.exceptions import (
    BackupCorrupt,
    BackupKeyInvalid,
    BackupKeyMismatch,
    BackupKeyMissing,
    BackupMisconfigured,
)

MiB = 1 << 20
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
COMBINATIONS = {
    "plain": PackOptions(compression_level=None, key=None),
    "compressed": PackOptions(compression_level=3, key=None),
    "encrypted": PackOptions(compression_level=None, key=KEY),
    "compressed+encrypted": PackOptions(compression_level=3, key=KEY),
}
# The header's key id: a change there reads as another key, not as damage.
KEY_ID_RANGE = range(8, 8 + crypto.KEY_ID_BYTES)


def archive_bytes(size: int) -> bytes:
    """Half random, half repetitive: something for the compressor to do either way."""
    half = size // 2
    return os.urandom(half) + (b"ledger line 0042; " * (size // 18 + 1))[: size - half]


def write_archive(path: Path, size: int) -> bytes:
    data = archive_bytes(size)
    path.write_bytes(data)
    return data


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def positions(length: int) -> list[int]:
    """Every position in the header, the first records and the end (trailer, checksum, final
    record), and every 7th in between: each part of the format, without a file per byte (the
    test machine's file system makes those slow)."""
    edges = set(range(min(length, 96))) | set(range(max(0, length - 120), length))
    return sorted(edges | set(range(0, length, 7)))


@pytest.fixture
def small_chunks(monkeypatch):
    """Records of 512 bytes, so that small files have many and every byte can be tried."""
    monkeypatch.setattr(crypto, "CHUNK", 512)


@pytest.mark.parametrize("combination", COMBINATIONS)
@pytest.mark.parametrize("size", [0, 1, MiB, 3 * MiB + 12345])
def test_round_trip(tmp_path, combination, size):
    options = COMBINATIONS[combination]
    data = write_archive(tmp_path / "archive", size)

    info = crypto.pack(tmp_path / "archive", tmp_path / "packed", options)
    crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=options.key)

    assert (tmp_path / "unpacked").read_bytes() == data
    packed = (tmp_path / "packed").read_bytes()
    assert info.compressed is (options.compression_level is not None)
    assert info.encrypted is (options.key is not None)
    assert info.size == len(packed)
    assert info.sha256 == hashlib.sha256(packed).hexdigest()
    assert info.source_size == size
    assert info.source_sha256 == hashlib.sha256(data).hexdigest()
    header = crypto.read_header(tmp_path / "packed")
    assert (header.compressed, header.encrypted) == (info.compressed, info.encrypted)
    assert header.key_id == (crypto.key_id(KEY) if options.key else "")
    if options.key is not None and size >= 64:
        assert data[:64] not in packed  # the archive is not readable in the packed file
    assert leftovers(tmp_path) == []


def test_compression_makes_a_repetitive_archive_smaller(tmp_path):
    (tmp_path / "archive").write_bytes(b"INSERT INTO ledger VALUES (1, 'x');\n" * 100_000)
    info = crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["compressed"])
    assert info.size < info.source_size / 20


def test_packed_and_unpacked_files_are_for_the_owner_only(tmp_path):
    write_archive(tmp_path / "archive", 1000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["encrypted"])
    crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=KEY)
    for name in ("packed", "unpacked"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_a_flipped_byte_anywhere_fails_unpacking(tmp_path, small_chunks, combination):
    options = COMBINATIONS[combination]
    write_archive(tmp_path / "archive", 2600)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", options)
    packed = (tmp_path / "packed").read_bytes()

    for position in positions(len(packed)):
        damaged = bytearray(packed)
        damaged[position] ^= 0x01
        (tmp_path / "damaged").write_bytes(damaged)
        expected = BackupKeyMismatch if options.key and position in KEY_ID_RANGE else BackupCorrupt
        with pytest.raises(expected):
            crypto.unpack(tmp_path / "damaged", tmp_path / "unpacked", key=options.key)
        assert not (tmp_path / "unpacked").exists(), position
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_truncation_fails_unpacking(tmp_path, small_chunks, combination):
    options = COMBINATIONS[combination]
    write_archive(tmp_path / "archive", 2600)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", options)
    packed = (tmp_path / "packed").read_bytes()

    for length in positions(len(packed)):
        (tmp_path / "cut").write_bytes(packed[:length])
        with pytest.raises(BackupCorrupt) as caught:
            crypto.unpack(tmp_path / "cut", tmp_path / "unpacked", key=options.key)
        assert caught.value.code == "backup.corrupt"
        assert not (tmp_path / "unpacked").exists(), length


@pytest.mark.parametrize("combination", COMBINATIONS)
def test_data_after_the_end_fails_unpacking(tmp_path, combination):
    options = COMBINATIONS[combination]
    write_archive(tmp_path / "archive", 5000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", options)
    with (tmp_path / "packed").open("ab") as packed:
        packed.write(b"\x00")
    with pytest.raises(BackupCorrupt):
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=options.key)


def records(packed: bytes, header_size: int) -> tuple[bytes, list[bytes]]:
    """The header and the length-prefixed records of an encrypted packed file."""
    header, rest, found = packed[:header_size], packed[header_size:], []
    while rest:
        (length,) = struct.unpack(">I", rest[:4])
        found.append(rest[: 4 + length])
        rest = rest[4 + length :]
    return header, found


def test_reordered_dropped_or_repeated_records_fail_unpacking(tmp_path, small_chunks):
    write_archive(tmp_path / "archive", 3000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["encrypted"])
    header, parts = records((tmp_path / "packed").read_bytes(), 8 + 8 + 24)
    assert len(parts) >= 5
    variants = {
        "swapped": [parts[0], parts[2], parts[1], *parts[3:]],
        "dropped": [parts[0], *parts[2:]],
        "repeated": [parts[0], parts[1], *parts[1:]],
        "final dropped": parts[:-1],
        "final moved up": [parts[0], parts[-1]],
    }
    for name, variant in variants.items():
        (tmp_path / "tampered").write_bytes(header + b"".join(variant))
        with pytest.raises(BackupCorrupt):
            crypto.unpack(tmp_path / "tampered", tmp_path / "unpacked", key=KEY)
        assert not (tmp_path / "unpacked").exists(), name


def test_another_backups_header_does_not_fit(tmp_path):
    """Two packings under the same key have different stream headers: one's records do not
    decrypt under the other's header."""
    write_archive(tmp_path / "archive", 5000)
    crypto.pack(tmp_path / "archive", tmp_path / "one", COMBINATIONS["encrypted"])
    crypto.pack(tmp_path / "archive", tmp_path / "two", COMBINATIONS["encrypted"])
    one, two = (tmp_path / "one").read_bytes(), (tmp_path / "two").read_bytes()
    (tmp_path / "mixed").write_bytes(one[:40] + two[40:])
    with pytest.raises(BackupCorrupt):
        crypto.unpack(tmp_path / "mixed", tmp_path / "unpacked", key=KEY)


@pytest.mark.parametrize("combination", ["encrypted", "compressed+encrypted"])
def test_the_wrong_key_fails(tmp_path, combination):
    write_archive(tmp_path / "archive", 5000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS[combination])

    with pytest.raises(BackupKeyMismatch) as caught:
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=OTHER_KEY)

    assert caught.value.code == "backup.key_mismatch"
    assert crypto.key_id(KEY) in caught.value.message
    assert not (tmp_path / "unpacked").exists()
    assert leftovers(tmp_path) == []


def test_an_encrypted_backup_without_a_key_fails(tmp_path, settings):
    settings.BACKUP_ENCRYPTION_KEY = ""
    write_archive(tmp_path / "archive", 5000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["encrypted"])

    with pytest.raises(BackupKeyMissing) as caught:
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked")

    assert caught.value.code == "backup.key_missing"
    assert "BACKUP_ENCRYPTION_KEY" in caught.value.message
    assert not (tmp_path / "unpacked").exists()


def test_the_settings_choose_compression_and_the_key(tmp_path, settings):
    settings.BACKUP_COMPRESSION = True
    settings.BACKUP_COMPRESSION_LEVEL = 5
    settings.BACKUP_ENCRYPTION_KEY = base64.b64encode(KEY).decode()
    data = write_archive(tmp_path / "archive", 50_000)

    info = crypto.pack(tmp_path / "archive", tmp_path / "packed")
    crypto.unpack(tmp_path / "packed", tmp_path / "unpacked")

    assert (info.compressed, info.encrypted) == (True, True)
    assert crypto.read_header(tmp_path / "packed").key_id == crypto.key_id(KEY)
    assert (tmp_path / "unpacked").read_bytes() == data
    with pytest.raises(BackupKeyMismatch):
        crypto.unpack(tmp_path / "packed", tmp_path / "other", key=OTHER_KEY)


def test_without_a_key_or_compression_the_settings_pack_plain(tmp_path, settings):
    settings.BACKUP_COMPRESSION = False
    settings.BACKUP_ENCRYPTION_KEY = ""
    write_archive(tmp_path / "archive", 5000)
    info = crypto.pack(tmp_path / "archive", tmp_path / "packed")
    assert (info.compressed, info.encrypted) == (False, False)
    crypto.unpack(tmp_path / "packed", tmp_path / "unpacked")


def test_an_unencrypted_backup_unpacks_whatever_the_key_setting(tmp_path, settings):
    write_archive(tmp_path / "archive", 5000)
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["compressed"])
    settings.BACKUP_ENCRYPTION_KEY = "not a key at all"
    crypto.unpack(tmp_path / "packed", tmp_path / "unpacked")


@pytest.mark.parametrize(
    "value",
    [
        "not base64!",
        base64.b64encode(bytes(16)).decode(),  # 16 bytes
        base64.b64encode(bytes(33)).decode(),
        bytes(32).hex(),  # hex is not the form: it decodes to 48 bytes of base64
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),  # URL-safe alphabet
    ],
)
def test_a_key_that_is_not_32_bytes_of_base64_is_refused(tmp_path, settings, value):
    settings.BACKUP_ENCRYPTION_KEY = value
    write_archive(tmp_path / "archive", 100)

    with pytest.raises(BackupKeyInvalid) as caught:
        crypto.pack(tmp_path / "archive", tmp_path / "packed")

    assert caught.value.code == "backup.key_invalid"
    assert "BACKUP_ENCRYPTION_KEY" in caught.value.message
    assert value not in caught.value.message
    assert not (tmp_path / "packed").exists()


def test_a_key_of_the_wrong_length_in_the_options_is_refused(tmp_path):
    write_archive(tmp_path / "archive", 100)
    with pytest.raises(BackupKeyInvalid):
        crypto.pack(tmp_path / "archive", tmp_path / "packed", PackOptions(key=bytes(16)))
    crypto.pack(tmp_path / "archive", tmp_path / "packed", COMBINATIONS["encrypted"])
    with pytest.raises(BackupKeyInvalid):
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=bytes(31))


def test_generated_keys_decode_to_32_bytes():
    key = crypto.generate_key()
    assert len(key) == 44
    assert len(crypto.decode_key(key)) == 32
    assert crypto.decode_key(f"  {key}\n") == crypto.decode_key(key)
    assert crypto.generate_key() != key


@pytest.mark.parametrize("level", [0, 20, -1])
def test_a_compression_level_out_of_range_is_refused(tmp_path, settings, level):
    settings.BACKUP_COMPRESSION = True
    settings.BACKUP_COMPRESSION_LEVEL = level
    write_archive(tmp_path / "archive", 100)
    with pytest.raises(BackupMisconfigured) as caught:
        crypto.pack(tmp_path / "archive", tmp_path / "packed")
    assert caught.value.code == "backup.misconfigured"
    assert "BACKUP_COMPRESSION_LEVEL" in caught.value.message


@pytest.mark.parametrize(
    "content",
    [b"", b"LGB", b"PGDMP\x01\x0e\x00" + bytes(100), b"LGBK\x02\x00\x00\x00" + bytes(100)],
    ids=["empty", "short", "not-ours", "future-version"],
)
def test_a_file_that_is_not_a_packed_backup_is_refused(tmp_path, content):
    (tmp_path / "packed").write_bytes(content)
    with pytest.raises(BackupCorrupt):
        crypto.read_header(tmp_path / "packed")
    with pytest.raises(BackupCorrupt):
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=KEY)
    assert not (tmp_path / "unpacked").exists()


def test_a_failed_unpack_keeps_an_existing_destination(tmp_path):
    """The destination is replaced only by a fully verified archive."""
    (tmp_path / "unpacked").write_bytes(b"an earlier restore")
    (tmp_path / "packed").write_bytes(b"garbage")
    with pytest.raises(BackupCorrupt):
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=KEY)
    assert (tmp_path / "unpacked").read_bytes() == b"an earlier restore"


def test_memory_stays_flat_for_a_50_mib_archive(tmp_path):
    """Peak Python allocations while packing and unpacking 50 MiB stay within a few chunks."""
    source = tmp_path / "archive"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for number in range(50):
            piece = os.urandom(MiB // 2) + bytes([number]) * (MiB // 2)
            digest.update(piece)
            out.write(piece)
    options = COMBINATIONS["compressed+encrypted"]

    tracemalloc.start()
    try:
        info = crypto.pack(source, tmp_path / "packed", options)
        _, pack_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        crypto.unpack(tmp_path / "packed", tmp_path / "unpacked", key=options.key)
        _, unpack_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info.source_size == 50 * MiB
    assert info.source_sha256 == digest.hexdigest()
    assert pack_peak < 6 * MiB, pack_peak
    assert unpack_peak < 6 * MiB, unpack_peak
    with (tmp_path / "unpacked").open("rb") as unpacked:
        assert hashlib.file_digest(unpacked, "sha256").hexdigest() == digest.hexdigest()
