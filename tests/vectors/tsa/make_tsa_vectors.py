"""Regenerate the generated RFC 3161 vectors in tests/vectors/tsa/generated/.

Usage: python tests/vectors/tsa/make_tsa_vectors.py [--out DIR]

Builds a fresh PKI with ``openssl`` (root -> intermediate -> TSA, P-256, see
``tests/anchoring/pki.py``), has ``openssl ts -reply`` stamp one message with
the three certificates in its tokens (``certs =``), and derives the forms
real TSAs send and the adversarial ones (``tests/anchoring/token_forms.py``).
Keys are random, so the bytes change on every run; ``generated/manifest.json`` records
what each file is and the verdict it must get, and
``tests/verifier/test_verifier_timestamp_vectors.py`` checks them, also
against ``openssl ts -verify`` where OpenSSL can read the token.

Derived negative controls over the real tokens of ``real/`` (a flipped
signature byte) are written here too.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "anchoring")]

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from pki import issue_tsa, make_ca, make_intermediate, openssl  # noqa: E402
from token_forms import (  # noqa: E402
    attribute_certificate,
    ber_response,
    ber_token,
    certificates,
    ess_v2,
    flip_signature_byte,
    resign,
    with_certificate_choice,
)

from verifier import der  # noqa: E402

MESSAGE = b"evidence-ledger test vector: a checkpoint body\n"
OTHER_MESSAGE = b"evidence-ledger test vector: another checkpoint body\n"
REAL_FOR_FLIP = "2288b640a720fde6"


def _pem_to_der(path: Path) -> bytes:
    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER)


def _stamp(config: Path, tmp: Path, name: str, alg: str = "sha256") -> bytes:
    """A DER TimeStampResp from ``openssl ts -reply`` over MESSAGE."""
    (tmp / "msg").write_bytes(MESSAGE)
    q, r = tmp / f"{name}.tsq", tmp / f"{name}.tsr"
    openssl("ts", "-query", "-data", tmp / "msg", f"-{alg}", "-cert", "-out", q)
    openssl("ts", "-reply", "-config", config, "-queryfile", q, "-out", r)
    return r.read_bytes()


def _token(response: bytes) -> bytes:
    return der.decode(response, "response").children[1].raw


def _unsorted_chain_pki(tmp: Path) -> tuple[Any, Any, Any, bytes]:
    """Root, intermediate and TSA whose tokens' certificate SET is not in DER order."""
    for attempt in range(20):
        d = tmp / f"pki{attempt}"
        root = make_ca(d / "root", "Evidence Vector Root CA")
        inter = make_intermediate(root, d / "inter", "Evidence Vector Issuing CA")
        tsa = issue_tsa(inter, d / "tsa", cn="Evidence Vector TSA", chain=[inter.cert, root.cert])
        response = _stamp(tsa.config, d, "probe")
        certs = certificates(_token(response))
        if len(certs) == 3 and certs != sorted(certs):
            return root, inter, tsa, response
    raise RuntimeError("no PKI with an unsorted certificate set in 20 attempts")


def _entry(name: str, token: str, expect: Any, what: str, **extra: Any) -> dict[str, Any]:
    entry = {
        "name": name,
        "token": token,
        "message": "generated/message.txt",
        "roots": ["generated/root.pem"],
        "expect": expect,
        "what": what,
    }
    entry.update(extra)
    return entry


def _fail(cls: str, message: str) -> dict[str, str]:
    return {"error": cls, "message": message}


def build(out: Path) -> list[dict[str, Any]]:
    """Write every generated vector into ``out``; return the manifest entries."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        root, inter, tsa, response = _unsorted_chain_pki(tmp)
        token = _token(response)
        other = make_ca(tmp / "other", "Someone Else's Root CA")
        shutil.copy(root.cert, out / "root.pem")
        shutil.copy(other.cert, out / "other-root.pem")
        (out / "message.txt").write_bytes(MESSAGE)
        (out / "other-message.txt").write_bytes(OTHER_MESSAGE)
        files: dict[str, bytes] = {}
        tsa_der, inter_der, root_der = (_pem_to_der(p) for p in (tsa.cert, inter.cert, root.cert))
        chain = [inter_der, root_der]

        files["chain3.tsr"] = response
        files["chain3.tst"] = token
        files["chain3-ber.tsr"] = ber_response(response)
        files["chain3-ber.tst"] = ber_token(token)
        acert = attribute_certificate(tsa_der, inter_der, inter.key)
        files["chain3-attrcert.tst"] = with_certificate_choice(token, b"\xa2" + acert[1:])
        files["chain3-ber-attrcert.tst"] = ber_token(files["chain3-attrcert.tst"])
        files["chain3-flipped-signature.tst"] = flip_signature_byte(token)
        files["resigned.tst"] = resign(token, tsa.key, tsa_der, chain=chain)

        # A second certificate for the same key: the ESS attribute names it.
        twin = issue_tsa(inter, tmp / "twin", cn="Evidence Vector TSA (twin)", key=tsa.key)
        twin_der = _pem_to_der(twin.cert)
        files["ess-names-another-certificate.tst"] = resign(
            token, tsa.key, tsa_der, chain=chain, ess=ess_v2(twin_der)
        )
        tbs = der.decode(twin_der, "twin").children[0].children
        wrong_serial = (tbs[3].raw, tbs[1].raw)  # issuer, serial of the twin
        files["ess-issuer-serial-mismatch.tst"] = resign(
            token, tsa.key, tsa_der, chain=chain, ess=ess_v2(tsa_der, issuer_serial=wrong_serial)
        )
        loose = issue_tsa(
            inter, tmp / "loose", cn="Evidence Vector TSA (EKU not critical)", eku="noncritical"
        )
        loose_der = _pem_to_der(loose.cert)
        files["eku-not-critical.tst"] = resign(token, loose.key, loose_der, chain=chain)

        # Forged: a self-signed TSA certificate embedded in the token.
        forged_dir = tmp / "forged"
        forged_dir.mkdir()
        key, crt = forged_dir / "tsa.key", forged_dir / "tsa.crt"
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        for label, subject in (
            ("forged-self-signed.tst", "/CN=Evidence Vector TSA"),
            ("forged-root-name.tst", "/CN=Evidence Vector Root CA"),
        ):
            openssl(
                *("req", "-x509", "-new", "-key", key, "-out", crt, "-subj", subject),
                *("-days", "365", "-addext", "extendedKeyUsage=critical,timeStamping"),
                *("-addext", "keyUsage=critical,digitalSignature"),
            )
            files[label] = resign(token, key, _pem_to_der(crt))

        sha1 = issue_tsa(
            inter,
            tmp / "sha1",
            cn="Evidence Vector TSA (SHA-1)",
            digests="sha1",
            chain=[inter.cert, root.cert],
        )
        files["sha1-imprint.tst"] = _token(_stamp(sha1.config, tmp, "sha1", "sha1"))

        top = der.decode(ber_token(token), "ber", ber=True)
        si = top.children[1].children[0].children[-1].children[0]
        signed = si.children[3]
        ber_signed = b"\xa0\x80" + b"".join(c.raw for c in signed.children) + b"\x00\x00"
        files["ber-signed-attributes.tst"] = top.raw.replace(signed.raw, ber_signed)

        real = (HERE / "real" / f"{REAL_FOR_FLIP}.tst").read_bytes()
        files["digicert-flipped-signature.tst"] = flip_signature_byte(real)
    for name, data in files.items():
        (out / name).write_bytes(data)

    ok = {"valid": True}
    g = "generated/"
    sorted_certs = ["certificates sorted into DER order"]
    ber = "BER lengths or segmented strings re-encoded in DER"
    acert_dropped = "v2 attribute certificate ([2]) dropped"
    return [
        _entry(
            "openssl-chain3",
            g + "chain3.tst",
            ok,
            "openssl ts with certs = (root -> intermediate -> TSA): SET not in DER order",
            normalised=sorted_certs,
            openssl="OK",
        ),
        _entry(
            "openssl-chain3-response",
            g + "chain3.tsr",
            ok,
            "the same as a TimeStampResp",
            normalised=sorted_certs,
        ),
        _entry(
            "openssl-chain3-ber",
            g + "chain3-ber.tst",
            ok,
            "the same token in BER: indefinite lengths, segmented TSTInfo",
            normalised=[ber, *sorted_certs],
            openssl="OK",
        ),
        _entry(
            "openssl-chain3-ber-response",
            g + "chain3-ber.tsr",
            ok,
            "the BER token in a BER TimeStampResp",
            normalised=[ber, *sorted_certs],
        ),
        _entry(
            "openssl-chain3-attribute-certificate",
            g + "chain3-attrcert.tst",
            ok,
            "an RFC 5755 v2 attribute certificate added to the certificate set",
            normalised=[acert_dropped, *sorted_certs],
        ),
        _entry(
            "openssl-chain3-ber-attribute-certificate",
            g + "chain3-ber-attrcert.tst",
            ok,
            "BER and an attribute certificate",
            normalised=[ber, acert_dropped, *sorted_certs],
        ),
        _entry(
            "resigned-control",
            g + "resigned.tst",
            ok,
            "signed again by the same TSA key and certificate (control for the ESS cases)",
            normalised=sorted_certs,
            openssl="OK",
        ),
        _entry(
            "openssl-chain3-wrong-message",
            g + "chain3.tst",
            _fail("VerificationError", "over another message"),
            "a valid token checked against another message",
            message=g + "other-message.txt",
            openssl="FAILED",
        ),
        _entry(
            "openssl-chain3-wrong-root",
            g + "chain3.tst",
            _fail("VerificationError", "does not verify at genTime"),
            "a valid token checked against an unrelated root",
            roots=[g + "other-root.pem"],
            openssl="FAILED",
        ),
        _entry(
            "openssl-chain3-flipped-signature",
            g + "chain3-flipped-signature.tst",
            _fail("VerificationError", "timestamp:"),
            "one byte of the SignerInfo signature changed",
            openssl="FAILED",
        ),
        _entry(
            "ess-names-another-certificate",
            g + "ess-names-another-certificate.tst",
            _fail("VerificationError", "names another certificate"),
            "signed by the TSA key; the ESSCertIDv2 hash names a second certificate for that key",
        ),
        _entry(
            "ess-issuer-serial-mismatch",
            g + "ess-issuer-serial-mismatch.tst",
            _fail("VerificationError", "issuer and serial do not match"),
            "the ESSCertIDv2 hash is right, its issuerSerial names another certificate",
        ),
        _entry(
            "eku-not-critical",
            g + "eku-not-critical.tst",
            _fail("VerificationError", "critical id-kp-timeStamping"),
            "a TSA certificate whose timeStamping extended key usage is not critical",
        ),
        _entry(
            "forged-self-signed",
            g + "forged-self-signed.tst",
            _fail("VerificationError", "does not verify at genTime"),
            "signed by a self-signed certificate embedded in the token",
            openssl="FAILED",
        ),
        _entry(
            "forged-root-name",
            g + "forged-root-name.tst",
            _fail("VerificationError", "does not verify at genTime"),
            "signed by an embedded self-signed certificate bearing the trusted root's name",
            openssl="FAILED",
        ),
        _entry(
            "sha1-imprint",
            g + "sha1-imprint.tst",
            _fail("VerificationError", "SHA-1"),
            "a token over a SHA-1 message imprint",
            openssl="OK",
        ),
        _entry(
            "ber-signed-attributes",
            g + "ber-signed-attributes.tst",
            _fail("MalformedError", "signed attributes are not DER-encoded"),
            "BER with the signed attributes themselves in an indefinite length",
        ),
        _entry(
            "digicert-flipped-signature",
            g + "digicert-flipped-signature.tst",
            _fail("VerificationError", "timestamp:"),
            f"real token {REAL_FOR_FLIP} with one byte of its signature changed",
            message=f"real/{REAL_FOR_FLIP}.msg",
            roots=["roots/digicert_g4.pem"],
            openssl="FAILED",
        ),
        _entry(
            "digicert-wrong-message",
            f"real/{REAL_FOR_FLIP}.tst",
            _fail("VerificationError", "over another message"),
            f"real token {REAL_FOR_FLIP} checked against another message",
            message=g + "other-message.txt",
            roots=["roots/digicert_g4.pem"],
            openssl="FAILED",
        ),
        _entry(
            "digicert-wrong-root",
            f"real/{REAL_FOR_FLIP}.tst",
            _fail("VerificationError", "does not verify at genTime"),
            f"real token {REAL_FOR_FLIP} checked against the VeriSign root",
            message=f"real/{REAL_FOR_FLIP}.msg",
            roots=["roots/verisign_universal.pem"],
            openssl="FAILED",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=HERE / "generated")
    args = ap.parse_args()
    entries = build(args.out)
    (args.out / "manifest.json").write_text(json.dumps({"vectors": entries}, indent=2) + "\n")
    for e in entries:
        print(f"{e['name']}: {e['what']}")


if __name__ == "__main__":
    main()
