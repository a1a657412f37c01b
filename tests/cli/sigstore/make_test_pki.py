#!/usr/bin/env python3
"""A test Sigstore PKI, made fresh on every run, and bundles signed by it.

    make_test_pki.py OUT_DIR
    make_test_pki.py OUT_DIR --sign FILE...

Writes OUT_DIR/trusted_root.json (a test Fulcio CA, CT log key and Rekor key, in the public-good
trusted root's format), OUT_DIR/metadata.json (the signed bytes), and one folder per case under
OUT_DIR/cases/<name>/ holding metadata.json, metadata.json.sigstore and `expect`: "ok", or the
check (cli/sigstore/include/kernels/sigstore/verify.h, check_name) our verifier must refuse it at.
The identity in every certificate but the wrong-identity cases is the kernels-community default.
With --sign, it writes OUT_DIR/trusted_root.json and, for each FILE, FILE.sigstore: a good v0.3
bundle over FILE's bytes (the CLI tests sign variants' metadata.json this way).

Everything is built by hand from RFC 6962 (SCTs, Merkle trees), the Rekor hashedrekord 0.0.1 body,
the signed-note checkpoint format and the SET's canonical JSON, so that both verifiers (ours and
sigstore-python) are tested against the same independent bytes. Needs `cryptography`.
"""
import base64
import datetime as dt
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

ISSUER = "https://token.actions.githubusercontent.com"
REPO = "https://github.com/huggingface/kernels-community"
WORKFLOW = REPO + "/.github/workflows/build.yaml@refs/heads/main"
SCT_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
FULCIO = "1.3.6.1.4.1.57264.1."

b64 = lambda b: base64.b64encode(b).decode()
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def spki(key):
    return key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key):
    return hashlib.sha256(spki(key)).digest()


def sign(key, data):
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def der_utf8(s):
    b = s.encode()
    assert len(b) < 128
    return bytes([0x0C, len(b)]) + b


def der_octets(b):
    n = len(b)
    if n < 128:
        return bytes([0x04, n]) + b
    if n < 256:
        return bytes([0x04, 0x81, n]) + b
    return bytes([0x04, 0x82]) + struct.pack(">H", n) + b


def make_ca(name, not_before, not_after):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kernels-test"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_tsa(name):
    """A TSA: its own root and a timeStamping leaf, valid around now."""
    start, end = NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=365)
    root_key, root = make_ca(name + "-root", start, end)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(root.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    return key, leaf, root


def rfc3161(tsa, data):
    """A DER TimeStampResp over `data` (SHA-256 imprint), made by `openssl ts -reply`."""
    key, leaf, root = tsa
    with tempfile.TemporaryDirectory() as d:
        j = lambda n: os.path.join(d, n)
        with open(j("data"), "wb") as f:
            f.write(data)
        with open(j("tsa.pem"), "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(j("tsa.key"), "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        with open(j("serial"), "w") as f:
            f.write("01\n")
        with open(j("ts.cnf"), "w") as f:
            f.write(f"[ tsa ]\ndefault_tsa = t\n[ t ]\nserial = {j('serial')}\n"
                    "signer_digest = sha256\ndefault_policy = 1.3.6.1.4.1.57264.2\n"
                    "digests = sha256\naccuracy = secs:1\nordering = no\ntsa_name = no\n"
                    "ess_cert_id_chain = no\ness_cert_id_alg = sha256\n")
        run = lambda *a: subprocess.run(["openssl", "ts", *a], check=True, capture_output=True)
        run("-query", "-data", j("data"), "-sha256", "-cert", "-no_nonce", "-out", j("q.tsq"))
        # Only the TSA's own certificate goes in (-cert): with -chain, OpenSSL writes the SET OF
        # certificates unsorted, which is not DER and which sigstore-python rejects.
        run("-reply", "-queryfile", j("q.tsq"), "-signer", j("tsa.pem"), "-inkey", j("tsa.key"),
            "-config", j("ts.cnf"), "-out", j("r.tsr"))
        with open(j("r.tsr"), "rb") as f:
            return f.read()


def sct_list(ct_key, issuer_cert, tbs, when):
    ts = int(when.timestamp() * 1000)
    issuer_hash = hashlib.sha256(issuer_cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()
    signed = (struct.pack(">BBQH", 0, 0, ts, 1) + issuer_hash +
              struct.pack(">I", len(tbs))[1:] + tbs + struct.pack(">H", 0))
    sig = sign(ct_key, signed)
    sct = (bytes([0]) + key_id(ct_key) + struct.pack(">QH", ts, 0) + bytes([4, 3]) +
           struct.pack(">H", len(sig)) + sig)
    lst = struct.pack(">H", len(sct)) + sct
    return der_octets(struct.pack(">H", len(lst)) + lst)


def make_leaf(ca_key, ca_cert, ct_key, not_before, not_after, repo=REPO, workflow=WORKFLOW,
              issuer=ISSUER, eku=ExtendedKeyUsageOID.CODE_SIGNING):
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(x509.Name([])).issuer_name(ca_cert.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                              critical=True)
               .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False)
               .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(workflow)]),
                              critical=True)
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier(FULCIO + "1"), issuer.encode()),
                              critical=False)
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier(FULCIO + "8"), der_utf8(issuer)),
                              critical=False)
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier(FULCIO + "9"), der_utf8(workflow)),
                              critical=False)
               .add_extension(x509.UnrecognizedExtension(ObjectIdentifier(FULCIO + "12"), der_utf8(repo)),
                              critical=False))
    # The precertificate's TBS is the final one without the SCT extension (RFC 6962 §3.2): build
    # it once without, log it, then again with the SCT list as the last extension.
    pre = builder.sign(ca_key, hashes.SHA256())
    scts = sct_list(ct_key, ca_cert, pre.tbs_certificate_bytes, not_before)
    cert = builder.add_extension(x509.UnrecognizedExtension(SCT_OID, scts), critical=False).sign(
        ca_key, hashes.SHA256())
    return key, cert


def leaf_hash(b):
    return hashlib.sha256(b"\x00" + b).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def mth(leaves):
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def path(m, leaves):
    # RFC 6962 §2.1.1 audit path, leaf to root.
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


def canonical(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class Pki:
    def __init__(self):
        start = NOW - dt.timedelta(days=1)
        end = NOW + dt.timedelta(days=365)
        self.ca_key, self.ca = make_ca("kernels-test-fulcio", start, end)
        self.ct_key = ec.generate_private_key(ec.SECP256R1())
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        self.origin = "rekor.kernels.test - 1234567890"
        self.tsa = make_tsa("kernels-test-tsa")

    def trusted_root(self):
        t = lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
        start = NOW - dt.timedelta(days=1)
        pub = lambda k: {"rawBytes": b64(spki(k)), "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                         "validFor": {"start": t(start)}}
        return {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{"baseUrl": "https://rekor.kernels.test", "hashAlgorithm": "SHA2_256",
                       "publicKey": pub(self.rekor_key), "logId": {"keyId": b64(key_id(self.rekor_key))}}],
            "certificateAuthorities": [{
                "subject": {"organization": "kernels-test", "commonName": "kernels-test-fulcio"},
                "uri": "https://fulcio.kernels.test",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca.public_bytes(serialization.Encoding.DER))}]},
                "validFor": {"start": t(start)}}],
            "ctlogs": [{"baseUrl": "https://ctfe.kernels.test", "hashAlgorithm": "SHA2_256",
                        "publicKey": pub(self.ct_key), "logId": {"keyId": b64(key_id(self.ct_key))}}],
            "timestampAuthorities": [{
                "subject": {"organization": "kernels-test", "commonName": "kernels-test-tsa"},
                "uri": "https://tsa.kernels.test",
                "certChain": {"certificates": [{"rawBytes": b64(c.public_bytes(serialization.Encoding.DER))}
                                               for c in (self.tsa[1], self.tsa[2])]},
                "validFor": {"start": t(start)}}],
        }


def checkpoint(key, origin, size, root, name=None):
    note = f"{origin}\n{size}\n{b64(root)}\n"
    sig = key_id(key)[:4] + sign(key, note.encode())
    return note + "\n" + f"\u2014 {name or origin.split(' ')[0]} {b64(sig)}\n"


def make_bundle(pki, metadata, *, leaf=None, leaf_key=None, media="v0.3", integrated=None,
                body_override=None, rekor_key=None, checkpoint_key=None, set_key=None,
                tamper=None, timestamp_by=None, timestamp_over=None):
    """One bundle; `tamper` is a function that edits the finished JSON dict."""
    if leaf is None:
        leaf_key, leaf = make_leaf(pki.ca_key, pki.ca, pki.ct_key, NOW - dt.timedelta(minutes=5),
                                   NOW + dt.timedelta(minutes=5))
    sig = sign(leaf_key, metadata)
    digest = hashlib.sha256(metadata).digest()
    pem = leaf.public_bytes(serialization.Encoding.PEM)
    body = body_override or {
        "apiVersion": "0.0.1", "kind": "hashedrekord",
        "spec": {"data": {"hash": {"algorithm": "sha256", "value": digest.hex()}},
                 "signature": {"content": b64(sig), "publicKey": {"content": b64(pem)}}}}
    body_bytes = canonical(body)
    # The entry sits at index 5 of an 11-leaf log, so the proof has inner and border parts.
    leaves = [os.urandom(40) for _ in range(11)]
    index = 5
    leaves[index] = body_bytes
    root = mth(leaves)
    proof = path(index, leaves)
    rekor_key = rekor_key or pki.rekor_key
    log_id = key_id(pki.rekor_key)
    when = integrated or (NOW - dt.timedelta(minutes=1))
    integrated_time = int(when.timestamp())
    set_payload = canonical({"body": b64(body_bytes), "integratedTime": integrated_time,
                             "logID": log_id.hex(), "logIndex": index})
    entry = {
        "logIndex": str(index),
        "logId": {"keyId": b64(log_id)},
        "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
        "integratedTime": str(integrated_time),
        "inclusionPromise": {"signedEntryTimestamp": b64(sign(set_key or rekor_key, set_payload))},
        "inclusionProof": {"logIndex": str(index), "rootHash": b64(root), "treeSize": str(len(leaves)),
                           "hashes": [b64(h) for h in proof],
                           "checkpoint": {"envelope": checkpoint(checkpoint_key or rekor_key, pki.origin,
                                                                 len(leaves), root)}},
        "canonicalizedBody": b64(body_bytes),
    }
    der = leaf.public_bytes(serialization.Encoding.DER)
    if media == "v0.3":
        material = {"certificate": {"rawBytes": b64(der)}}
        media_type = "application/vnd.dev.sigstore.bundle.v0.3+json"
    else:
        material = {"x509CertificateChain": {"certificates": [{"rawBytes": b64(der)}]}}
        media_type = "application/vnd.dev.sigstore.bundle+json;version=" + media[1:]
    material["tlogEntries"] = [entry]
    bundle = {"mediaType": media_type, "verificationMaterial": material,
              "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": b64(digest)},
                                   "signature": b64(sig)}}
    if timestamp_by:
        # An RFC 3161 timestamp over the signature (or, to tamper, other bytes).
        stamp = rfc3161(timestamp_by, timestamp_over or sig)
        material["timestampVerificationData"] = {"rfc3161Timestamps": [{"signedTimestamp": b64(stamp)}]}
    if tamper:
        tamper(bundle)
    return bundle


def flip_b64(s, at=10):
    raw = bytearray(base64.b64decode(s))
    raw[at % len(raw)] ^= 0x01
    return b64(bytes(raw))


def sign_files(out, files):
    pki = Pki()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "trusted_root.json"), "w") as f:
        json.dump(pki.trusted_root(), f, indent=2)
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        with open(path + ".sigstore", "w") as f:
            json.dump(make_bundle(pki, data), f)


def main():
    out = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "--sign":
        return sign_files(out, sys.argv[3:])
    pki = Pki()
    metadata = json.dumps({"name": "relu", "id": "_relu_test", "version": 1, "license": "MIT",
                           "python-depends": [], "backend": {"type": "cuda"},
                           "digest": {"algorithm": "sha256", "files": {}}}, indent=2).encode() + b"\n"
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "trusted_root.json"), "w") as f:
        json.dump(pki.trusted_root(), f, indent=2)
    with open(os.path.join(out, "metadata.json"), "wb") as f:
        f.write(metadata)

    other_ca_key, other_ca = make_ca("untrusted-ca", NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=1))
    other_key = ec.generate_private_key(ec.SECP256R1())
    window = (NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(minutes=5))

    def leaf(**kw):
        return make_leaf(pki.ca_key, pki.ca, pki.ct_key, *window, **kw)

    cases = {}
    cases["ok_v0.3"] = ("ok", make_bundle(pki, metadata), metadata)
    cases["ok_v0.2"] = ("ok", make_bundle(pki, metadata, media="v0.2"), metadata)
    cases["ok_v0.1"] = ("ok", make_bundle(pki, metadata, media="v0.1"), metadata)
    alt = make_bundle(pki, metadata)
    alt["mediaType"] = "application/vnd.dev.sigstore.bundle+json;version=0.3"
    cases["ok_v0.3_alt_media_type"] = ("ok", alt, metadata)
    cases["metadata_byte"] = ("signature", make_bundle(pki, metadata), metadata[:-2] + b" \n")
    cases["signature_byte"] = ("signature", make_bundle(
        pki, metadata, tamper=lambda b: b["messageSignature"].update(
            signature=flip_b64(b["messageSignature"]["signature"], 20))), metadata)

    def cert_byte(b):
        m = b["verificationMaterial"]["certificate"]
        m["rawBytes"] = flip_b64(m["rawBytes"], 200)
    cases["certificate_byte"] = ("certificate_chain", make_bundle(pki, metadata, tamper=cert_byte), metadata)
    k, c = make_leaf(other_ca_key, other_ca, pki.ct_key, *window)
    cases["certificate_untrusted_ca"] = ("certificate_chain", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    k, c = make_leaf(pki.ca_key, pki.ca, other_key, *window)
    cases["sct_untrusted_log"] = ("sct", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    k, c = leaf(eku=ExtendedKeyUsageOID.SERVER_AUTH)
    cases["eku_not_code_signing"] = ("key_usage", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    k, c = leaf(repo="https://github.com/evil/kernels-community")
    cases["identity_repository"] = ("identity", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    k, c = leaf(workflow=REPO + "/.github/workflows/evil.yaml@refs/heads/main")
    cases["identity_workflow"] = ("identity", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    k, c = leaf(issuer="https://accounts.google.com")
    cases["identity_issuer"] = ("identity", make_bundle(pki, metadata, leaf=c, leaf_key=k), metadata)
    cases["expired_at_integrated_time"] = ("certificate_chain", make_bundle(
        pki, metadata, integrated=NOW + dt.timedelta(minutes=30)), metadata)

    def proof_hash(b):
        p = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        p["hashes"][1] = flip_b64(p["hashes"][1], 3)
    cases["inclusion_proof_hash"] = ("inclusion_proof", make_bundle(pki, metadata, tamper=proof_hash), metadata)

    def proof_short(b):
        b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"].pop()
    cases["inclusion_proof_short"] = ("inclusion_proof", make_bundle(pki, metadata, tamper=proof_short), metadata)
    cases["checkpoint_wrong_key"] = ("checkpoint", make_bundle(pki, metadata, checkpoint_key=other_key), metadata)

    def checkpoint_root(b):
        p = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
        env = p["checkpoint"]["envelope"].split("\n")
        env[1] = str(int(env[1]) + 1)
        p["checkpoint"]["envelope"] = "\n".join(env)
    cases["checkpoint_edited"] = ("checkpoint", make_bundle(pki, metadata, tamper=checkpoint_root), metadata)
    cases["set_wrong_key"] = ("set", make_bundle(pki, metadata, set_key=other_key), metadata)

    def set_time(b):
        e = b["verificationMaterial"]["tlogEntries"][0]
        e["integratedTime"] = str(int(e["integratedTime"]) - 1)
    cases["set_integrated_time_edited"] = ("set", make_bundle(pki, metadata, tamper=set_time), metadata)

    wrong_body = {"apiVersion": "0.0.1", "kind": "hashedrekord",
                  "spec": {"data": {"hash": {"algorithm": "sha256", "value": "00" * 32}},
                           "signature": {"content": b64(b"x"), "publicKey": {"content": b64(b"y")}}}}
    cases["tlog_body_mismatch"] = ("tlog_body", make_bundle(pki, metadata, body_override=wrong_body), metadata)

    def version(v):
        return lambda b: b.update(mediaType="application/vnd.dev.sigstore.bundle+json;version=" + v)
    cases["bundle_version_0.4"] = ("bundle_format", make_bundle(pki, metadata, tamper=version("0.4")), metadata)

    def drop(*keys):
        def f(b):
            o = b
            for k in keys[:-1]:
                o = o[k] if not isinstance(o, list) else o[int(k)]
            del o[keys[-1]]
        return f
    missing = {
        "missing_certificate": drop("verificationMaterial", "certificate"),
        "missing_tlog_entries": drop("verificationMaterial", "tlogEntries"),
        "missing_inclusion_proof": drop("verificationMaterial", "tlogEntries", "0", "inclusionProof"),
        "missing_checkpoint": drop("verificationMaterial", "tlogEntries", "0", "inclusionProof", "checkpoint"),
        "missing_promise_and_timestamp": drop("verificationMaterial", "tlogEntries", "0", "inclusionPromise"),
        "missing_message_signature": drop("messageSignature"),
    }
    for name, f in missing.items():
        cases[name] = ("bundle_format", make_bundle(pki, metadata, tamper=f), metadata)
    cases["missing_promise_v0.1"] = ("bundle_format", make_bundle(
        pki, metadata, media="v0.1", tamper=drop("verificationMaterial", "tlogEntries", "0", "inclusionPromise")),
        metadata)
    cases["not_json"] = ("bundle_format", None, metadata)

    # RFC 3161: a good timestamp beside the SET; one alone (no inclusion promise); alone and made
    # by an untrusted TSA, or over other bytes: then there is no verified time.
    no_promise = drop("verificationMaterial", "tlogEntries", "0", "inclusionPromise")
    cases["ok_timestamp_and_set"] = ("ok", make_bundle(pki, metadata, timestamp_by=pki.tsa), metadata)
    cases["ok_timestamp_only"] = ("ok", make_bundle(pki, metadata, timestamp_by=pki.tsa,
                                                    tamper=no_promise), metadata)
    cases["timestamp_untrusted_tsa"] = ("verified_time", make_bundle(
        pki, metadata, timestamp_by=make_tsa("untrusted-tsa"), tamper=no_promise), metadata)
    cases["timestamp_over_other_bytes"] = ("verified_time", make_bundle(
        pki, metadata, timestamp_by=pki.tsa, timestamp_over=b"other", tamper=no_promise), metadata)

    for name, (expect, bundle, meta) in cases.items():
        d = os.path.join(out, "cases", name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "metadata.json"), "wb") as f:
            f.write(meta)
        with open(os.path.join(d, "metadata.json.sigstore"), "w") as f:
            f.write(json.dumps(bundle) if bundle is not None else "{not json")
        with open(os.path.join(d, "expect"), "w") as f:
            f.write(expect + "\n")


if __name__ == "__main__":
    main()
