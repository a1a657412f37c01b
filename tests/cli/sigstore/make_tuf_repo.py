#!/usr/bin/env python3
"""Fake TUF repositories for `kernels trust-root refresh`, made fresh with new test keys each run.

    make_tuf_repo.py OUT_DIR TARGET_FILE

TARGET_FILE (a Sigstore trusted_root.json) is the target every repository distributes as
`trusted_root.json`. Writes, per case NAME:
  OUT_DIR/served/NAME/   the repository as a static server serves it (consistent snapshots:
                         N.root.json, timestamp.json, N.snapshot.json, N.targets.json,
                         targets/<sha256>.trusted_root.json)
  OUT_DIR/boot/NAME.json the first trusted root.json a client starts from
  OUT_DIR/next/NAME/     (rollback cases) the repository's second state, to copy over served/NAME
                         after a first, good refresh
and OUT_DIR/cases.json: {NAME: expect}, expect "ok" or the check the refusal names ("signature",
"expired", "rollback", "version", "hash", "length", "target_missing"; the C++ client's words,
cli/sigstore/include/kernels/sigstore/tuf.h).

Keys of both types the Sigstore metadata may declare: ecdsa-sha2-nistp256 and ed25519. Metadata
is built and signed with python-tuf's Metadata API (canonical JSON as securesystemslib encodes it).
Needs the `tuf` package (a dependency of `sigstore`).
"""
import copy
import datetime as dt
import hashlib
import json
import os
import shutil
import sys

from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (Metadata, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp)
from tuf.api.serialization.json import JSONSerializer

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
LATER = NOW + dt.timedelta(days=30)
EARLIER = NOW - dt.timedelta(days=1)
SER = JSONSerializer(compact=True)


def ecdsa():
    return CryptoSigner.generate_ecdsa()


def ed25519():
    return CryptoSigner.generate_ed25519()


class Repo:
    """One repository: signers per role, and the metadata it serves."""

    def __init__(self, target_bytes):
        self.target = target_bytes
        self.signers = {"root": [ecdsa(), ed25519()], "timestamp": [ed25519()],
                        "snapshot": [ecdsa()], "targets": [ecdsa(), ed25519()]}
        self.thresholds = {"root": 2, "timestamp": 1, "snapshot": 1, "targets": 2}
        self.root_version = 1
        self.files = {}  # served path -> bytes

    def make_root(self, version, expires=LATER):
        root = Root(version=version, expires=expires, consistent_snapshot=True)
        for role, signers in self.signers.items():
            for s in signers:
                root.add_key(s.public_key, role)
            root.roles[role].threshold = self.thresholds[role]
        return Metadata(root)

    @staticmethod
    def sign(md, signers):
        md.signatures.clear()
        for s in signers:
            md.sign(s, append=True)
        return md.to_bytes(SER)

    def publish(self, ts_version=1, snap_version=1, targets_version=1, target_entry=None,
                targets_signers=None, ts_signers=None, ts_expires=LATER, snapshot_hash=None,
                snapshot_file_version=None, pad_timestamp=0, list_target=True):
        target_name = "trusted_root.json"
        tf = TargetFile.from_data(target_name, self.target, ["sha256"])
        if target_entry:
            tf = target_entry(tf)
        targets = Targets(version=targets_version, expires=LATER)
        if list_target:
            targets.targets[target_name] = tf
        tbytes = self.sign(Metadata(targets), targets_signers or self.signers["targets"])
        snap = Snapshot(version=snapshot_file_version or snap_version, expires=LATER)
        snap.meta["targets.json"] = MetaFile(version=targets_version)
        sbytes = self.sign(Metadata(snap), self.signers["snapshot"])
        ts = Timestamp(version=ts_version, expires=ts_expires)
        ts.snapshot_meta = MetaFile(version=snap_version, length=len(sbytes),
                                    hashes={"sha256": snapshot_hash or hashlib.sha256(sbytes).hexdigest()})
        ts_md = Metadata(ts)
        if pad_timestamp:
            ts_md.unrecognized_fields["x-pad"] = "x" * pad_timestamp
        tsbytes = self.sign(ts_md, ts_signers or self.signers["timestamp"])
        self.files["timestamp.json"] = tsbytes
        self.files[f"{snap_version}.snapshot.json"] = sbytes
        self.files[f"{targets_version}.targets.json"] = tbytes
        self.files[f"targets/{hashlib.sha256(self.target).hexdigest()}.{target_name}"] = self.target

    def write(self, path):
        if os.path.exists(path):
            shutil.rmtree(path)
        for name, data in self.files.items():
            p = os.path.join(path, name)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)


def main():
    out, target_file = sys.argv[1], sys.argv[2]
    with open(target_file, "rb") as f:
        target = f.read()
    cases = {}
    for d in ("served", "boot", "next"):
        os.makedirs(os.path.join(out, d), exist_ok=True)

    def case(name, expect, repo, boot):
        repo.write(os.path.join(out, "served", name))
        with open(os.path.join(out, "boot", name + ".json"), "wb") as f:
            f.write(boot)
        cases[name] = expect

    def fresh():
        r = Repo(target)
        boot = r.sign(r.make_root(1), r.signers["root"])
        r.files["1.root.json"] = boot
        return r, boot

    # A good repository.
    r, boot = fresh()
    r.publish()
    case("good", "ok", r, boot)

    # Root rotation 1 -> 2 -> 3: each new root signed by the old root's keys and its own; the
    # timestamp key rotates with it (the rest of the metadata is signed by the new keys).
    r, boot = fresh()
    old = r.signers["root"]
    r.signers["root"] = [ed25519(), ecdsa(), ecdsa()]
    r.thresholds["root"] = 2
    r.signers["timestamp"] = [ecdsa()]
    r.files["2.root.json"] = r.sign(r.make_root(2), old + r.signers["root"])
    old = r.signers["root"]
    r.signers["root"] = [ecdsa(), ed25519()]
    r.files["3.root.json"] = r.sign(r.make_root(3), old[:2] + r.signers["root"])
    r.publish()
    case("rotation", "ok", r, boot)

    # A new root signed by its own keys only: below the old root's threshold.
    r, boot = fresh()
    r.signers["root"] = [ecdsa(), ed25519()]
    r.files["2.root.json"] = r.sign(r.make_root(2), r.signers["root"])
    r.publish()
    case("rotation_unsigned_by_old", "signature", r, boot)

    # 2.root.json that says version 3.
    r, boot = fresh()
    r.files["2.root.json"] = r.sign(r.make_root(3), r.signers["root"])
    r.publish()
    case("root_version_skip", "version", r, boot)

    # targets signed by one of its two keys (threshold 2).
    r, boot = fresh()
    r.publish(targets_signers=r.signers["targets"][:1])
    case("below_threshold", "signature", r, boot)

    # timestamp signed by a key the root does not name.
    r, boot = fresh()
    r.publish(ts_signers=[ed25519()])
    case("bad_signature", "signature", r, boot)

    # An expired timestamp.
    r, boot = fresh()
    r.publish(ts_expires=EARLIER)
    case("expired", "expired", r, boot)

    # The only root there is has expired.
    r = Repo(target)
    boot = r.sign(r.make_root(1, expires=EARLIER), r.signers["root"])
    r.files["1.root.json"] = boot
    r.publish()
    case("expired_root", "expired", r, boot)

    # timestamp names another snapshot hash.
    r, boot = fresh()
    r.publish(snapshot_hash="0" * 64)
    case("snapshot_hash", "hash", r, boot)

    # N.snapshot.json whose version is not the N timestamp names.
    r, boot = fresh()
    r.publish(snap_version=1, snapshot_file_version=2)
    case("snapshot_version", "version", r, boot)

    # The served trusted_root.json is not the bytes targets.json lists (same length).
    r, boot = fresh()
    r.publish()
    name = f"targets/{hashlib.sha256(target).hexdigest()}.trusted_root.json"
    r.files[name] = target[:-2] + (b"  " if target[-2:] != b"  " else b"\n\n")
    case("target_hash", "hash", r, boot)

    # A trusted_root.json longer than targets.json says.
    r, boot = fresh()
    r.publish()
    r.files[name] = target + b" " * 4096
    case("target_length", "length", r, boot)

    # A timestamp.json far larger than any (16384 bytes at most).
    r, boot = fresh()
    r.publish(pad_timestamp=1 << 20)
    case("oversized_timestamp", "length", r, boot)

    # targets.json lists no trusted_root.json.
    r, boot = fresh()
    r.publish(list_target=False)
    case("target_missing", "target_missing", r, boot)

    # Rollback: first served at timestamp v2 / snapshot v2 / targets v2, then (next/) an older,
    # validly signed timestamp v1.
    r, boot = fresh()
    r.publish(ts_version=2, snap_version=2, targets_version=2)
    case("rollback", "rollback", r, boot)
    r.files = {"1.root.json": boot}
    r.publish(ts_version=1, snap_version=1, targets_version=1)
    r.write(os.path.join(out, "next", "rollback"))

    # Snapshot rollback: the next timestamp (v3) names snapshot v1.
    r, boot = fresh()
    r.publish(ts_version=2, snap_version=2, targets_version=2)
    case("rollback_snapshot", "rollback", r, boot)
    r.files = {"1.root.json": boot}
    r.publish(ts_version=3, snap_version=1, targets_version=1)
    r.write(os.path.join(out, "next", "rollback_snapshot"))

    with open(os.path.join(out, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
