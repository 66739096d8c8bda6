#!/usr/bin/env python3
"""Verify a Warden audit log without Warden: an independent re-implementation of
`warden audit verify`, written from docs/audit.md alone.

    python3 scripts/verify_audit.py LOG.db [PUBLIC_KEY_HEX_OR_FILE] [--expect-head SEQ:HASH]

Checks every record's hash (the canonical encoding of format version 1 or 2), that each
record links to the one before, every checkpoint's Ed25519 signature (by the given public
key, when one is given) and that it matches the chain, and that the log's head marker names
the last record. With a key, the last record must be covered by a checkpoint that key
signed. With --expect-head, the log must still hold record SEQ with that hash (a head seen
before: a log cut back to an earlier signed end is otherwise consistent). Exit 0 intact,
1 tampered, 2 error.

Needs Python 3.8+ and the `cryptography` package for Ed25519. BLAKE3 comes from the `blake3`
package when it is installed, else from the small pure-Python implementation below (set
WARDEN_VERIFY_PURE_BLAKE3=1 to use it always).
"""

import os
import sqlite3
import struct
import sys

# ---------------------------------------------------------------------------- BLAKE3 ----
# The hash function only (no keyed mode, no extended output), from the BLAKE3 paper.
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_PERMUTATION = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8
_MASK = 0xFFFFFFFF


def _mix(s, a, b, c, d, x, y):
    # The G function: two half-rounds, rotating by 16, 12 and then by 8, 7.
    for word, r1, r2 in ((x, 16, 12), (y, 8, 7)):
        s[a] = (s[a] + s[b] + word) & _MASK
        v = s[d] ^ s[a]
        s[d] = ((v >> r1) | (v << (32 - r1))) & _MASK
        s[c] = (s[c] + s[d]) & _MASK
        v = s[b] ^ s[c]
        s[b] = ((v >> r2) | (v << (32 - r2))) & _MASK


def _compress(cv, block, counter, length, flags):
    m = list(struct.unpack("<16I", block.ljust(64, b"\0")))
    s = list(cv) + list(_IV[:4]) + [counter & _MASK, counter >> 32, length, flags]
    for round_ in range(7):
        _mix(s, 0, 4, 8, 12, m[0], m[1])
        _mix(s, 1, 5, 9, 13, m[2], m[3])
        _mix(s, 2, 6, 10, 14, m[4], m[5])
        _mix(s, 3, 7, 11, 15, m[6], m[7])
        _mix(s, 0, 5, 10, 15, m[8], m[9])
        _mix(s, 1, 6, 11, 12, m[10], m[11])
        _mix(s, 2, 7, 8, 13, m[12], m[13])
        _mix(s, 3, 4, 9, 14, m[14], m[15])
        if round_ < 6:
            m = [m[i] for i in _PERMUTATION]
    return [s[i] ^ s[i + 8] for i in range(8)]


def _chunk(data, index, root):
    cv = list(_IV)
    blocks = [data[i:i + 64] for i in range(0, len(data), 64)] or [b""]
    for n, block in enumerate(blocks):
        flags = (_CHUNK_START if n == 0 else 0)
        if n == len(blocks) - 1:
            flags |= _CHUNK_END | (_ROOT if root else 0)
        cv = _compress(cv, block, index, len(block), flags)
    return cv


def _subtree(data, first_chunk, root):
    chunks = max(1, -(-len(data) // 1024))
    if chunks == 1:
        return _chunk(data, first_chunk, root)
    left = 1 << ((chunks - 1).bit_length() - 1)  # largest power of two below `chunks`
    lcv = _subtree(data[:left * 1024], first_chunk, False)
    rcv = _subtree(data[left * 1024:], first_chunk + left, False)
    block = struct.pack("<8I", *lcv) + struct.pack("<8I", *rcv)
    return _compress(_IV, block, 0, 64, _PARENT | (_ROOT if root else 0))


def pure_blake3(data):
    return struct.pack("<8I", *_subtree(bytes(data), 0, True))


def _choose_blake3():
    if os.environ.get("WARDEN_VERIFY_PURE_BLAKE3") != "1":
        try:
            from blake3 import blake3 as native
            return lambda data: native(data).digest()
        except ImportError:
            pass
    known = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    if pure_blake3(b"").hex() != known:
        raise SystemExit("error: the built-in BLAKE3 does not match its test vector")
    return pure_blake3


blake3 = _choose_blake3()

# ---------------------------------------------------------------- the log's encodings ----
APPLICATION_ID = 0x57415544


def u64(n):
    return struct.pack("<Q", n & 0xFFFFFFFFFFFFFFFF)  # SQLite integers are signed


def i64(n):
    return struct.pack("<q", n)


def text(b):
    return u64(len(b)) + b


def opt(b):
    return b"\x00" if b is None else b"\x01" + text(b)


def record_encoding(version, row):
    (seq, ts, agent, action, tool, resource, verdict, policy, rule, reason, args, digest,
     context, latency, pversion, prev) = row
    m = (b"warden-audit/record/v%d\x00" % version) + u64(seq) + i64(ts) + opt(agent)
    m += text(action) + opt(tool) + opt(resource) + text(verdict) + opt(policy) + opt(rule)
    m += text(reason) + opt(args) + digest
    if version >= 2:
        m += opt(context)
    m += u64(latency) + (b"\x00" if pversion is None else b"\x01" + u64(pversion)) + prev
    return m


def checkpoint_message(scheme, seq, head, signed_at):
    return b"warden-audit/checkpoint/v1\x00" + text(scheme) + u64(seq) + head + i64(signed_at)


# ------------------------------------------------------------------------- verifying ----
class Tampered(Exception):
    pass


def read_public_key(arg):
    if len(arg) == 64 and all(c in "0123456789abcdefABCDEF" for c in arg):
        return bytes.fromhex(arg)
    if os.path.exists(arg + ".pub") or arg.endswith(".key"):
        raise SystemExit(f"error: {arg}: this is a secret signing key; pass the public key ({arg}.pub)")
    with open(arg) as f:
        return bytes.fromhex(f.read().strip())


def verify(path, pinned, expect=None):
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or header[:16] != b"SQLite format 3\x00":
        raise SystemExit(f"error: {path}: not an SQLite database")
    version, app_id = struct.unpack(">I", header[60:64])[0], struct.unpack(">I", header[68:72])[0]
    if app_id != APPLICATION_ID or version not in (1, 2):
        raise SystemExit(f"error: {path}: not a Warden audit log of format 1 or 2")
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.exceptions import InvalidSignature

    if os.path.exists(path + "-wal"):
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # a writer has it open
    else:
        # Read-write but refusing writes: unlike a read-only connection, it removes the
        # -wal/-shm files it creates when it closes, leaving the directory as it was.
        db = sqlite3.connect(path)
        db.execute("PRAGMA query_only = 1")
    try:
        return check(db, version, pinned, expect, Ed25519PublicKey, InvalidSignature)
    finally:
        db.close()


def check(db, version, pinned, expect, Ed25519PublicKey, InvalidSignature):
    db.text_factory = bytes  # hash the stored bytes exactly
    db.execute("BEGIN")  # one snapshot, even beside a live writer
    context = "context" if version >= 2 else "NULL"
    prev_seq, prev_hash, hashes, gaps = 0, bytes(32), {}, 0
    for row in db.execute(
            "SELECT seq, ts_ns, agent, action, tool, resource, verdict, policy, rule, reason,"
            f" args, args_digest, {context}, latency_ns, policy_version, prev_hash, hash"
            " FROM records ORDER BY seq"):
        seq, stored_prev, stored_hash = row[0], row[15], row[16]
        if blake3(record_encoding(version, row[:16])) != stored_hash:
            raise Tampered(f"record {seq}: does not match its hash")
        if stored_prev != prev_hash:
            raise Tampered(f"record {seq}: does not link to record {prev_seq}")
        if seq != prev_seq + 1:
            if version >= 2:
                raise Tampered(f"records {prev_seq + 1}..={seq - 1} are missing")
            gaps += 1  # format 1: numbers handed out but never committed
        prev_seq, prev_hash, hashes[seq] = seq, stored_hash, stored_hash

    last_cp, keys = 0, set()
    for seq, head, signed_at, scheme, public, sig in db.execute(
            "SELECT seq, head_hash, signed_at_ns, scheme, public_key, signature"
            " FROM checkpoints ORDER BY seq"):
        if pinned is not None and public != pinned:
            raise Tampered(f"checkpoint {seq}: signed by another key than the pinned one")
        if scheme != b"ed25519":
            raise Tampered(f"checkpoint {seq}: unknown signature scheme")
        try:
            Ed25519PublicKey.from_public_bytes(public).verify(
                sig, checkpoint_message(scheme, seq, head, signed_at))
        except (InvalidSignature, ValueError):
            raise Tampered(f"checkpoint {seq}: the signature does not verify")
        if hashes.get(seq) != head:
            raise Tampered(f"checkpoint {seq}: does not match the chain")
        last_cp, keys = seq, keys | {public.hex()}

    if version >= 2:
        marker = db.execute("SELECT value FROM meta WHERE key = 'head'").fetchone()
        expected = f"{prev_seq} {prev_hash.hex()}".encode()
        if (marker[0] if marker else None) != (expected if prev_seq else None):
            raise Tampered(f"the head marker {marker[0] if marker else None!r} does not name "
                           f"the last record {prev_seq}: records were removed or added")
    if expect is not None:
        seq, head = expect
        if seq > prev_seq:
            raise Tampered(f"record {seq} was seen before, but the log ends at record {prev_seq}: "
                           "records were removed")
        if hashes.get(seq) != head:
            raise Tampered(f"record {seq} is not the record seen before (its hash differs)")
    if pinned is not None and (prev_seq == 0 or last_cp != prev_seq):
        raise Tampered(f"records {last_cp + 1}..={prev_seq} are not covered by a checkpoint "
                       "signed by the pinned key")
    return (f"intact: {len(hashes)} records (format {version}), last checkpoint {last_cp}, "
            f"{sum(1 for s in hashes if s > last_cp)} unanchored, {gaps} gaps, "
            f"{len(keys)} signing key(s)")


def read_expected_head(arg):
    seq, _, head = arg.partition(":")
    try:
        seq, head = int(seq), bytes.fromhex(head)
    except ValueError:
        seq, head = 0, b""
    if seq < 1 or len(head) != 32:
        raise SystemExit(f"error: --expect-head: expected SEQ:HASH (64 hex digits), got {arg!r}")
    return seq, head


def main(argv):
    expect = None
    if "--expect-head" in argv:
        i = argv.index("--expect-head")
        if i + 1 >= len(argv):
            raise SystemExit(__doc__.split("\n\n")[1])
        expect = read_expected_head(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    if len(argv) not in (2, 3):
        raise SystemExit(__doc__.split("\n\n")[1])
    pinned = read_public_key(argv[2]) if len(argv) == 3 else None
    try:
        print(verify(argv[1], pinned, expect))
    except Tampered as e:
        print(f"TAMPERED: {e}")
        return 1
    except (OSError, sqlite3.Error) as e:
        print(f"error: {argv[1]}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            sys.exit(2)
        raise
