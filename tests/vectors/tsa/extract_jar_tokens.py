"""Extract the RFC 3161 tokens of signed JARs into vectors: NAME.tst, NAME.msg.

Usage: python extract_jar_tokens.py OUT_DIR JAR...

jarsigner signs ``META-INF/*.SF`` with a CMS SignedData in
``META-INF/NAME.RSA`` (or ``.DSA``, ``.EC``) and, with ``-tsa``, puts a
TimeStampToken in the SignerInfo's unsigned attribute
id-smime-aa-timeStampToken (1.2.840.113549.1.9.16.2.14). The stamped
message is that SignerInfo's signature value. Each token is written as sent
(``NAME.tst``) with its message (``NAME.msg``); NAME is the first 16 hex
digits of SHA-256 of the token. One line per token goes to stdout:
``NAME<TAB>jar path<TAB>entry``.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[3]))

from verifier import der  # noqa: E402

TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"
SIGNATURE_FILE = re.compile(r"META-INF/[^/]+\.(RSA|DSA|EC)")


def tokens(pkcs7: bytes) -> list[tuple[bytes, bytes]]:
    """(token, message) pairs of every SignerInfo with a timestamp token."""
    top = der.decode(pkcs7, "jar signature", ber=True)
    signed_data = top.children[1].children[0]
    out = []
    for si in signed_data.children[-1].children:
        fields = si.children
        unsigned = fields[-1]
        if not unsigned.is_(der.CONTEXT, 1, True):
            continue
        signature = next(f for f in fields if f.is_(der.UNIVERSAL, der.OCTET_STRING))
        for attr in unsigned.children:
            if der.oid_text(attr.children[0], "attribute") == TIMESTAMP_TOKEN:
                for value in attr.children[1].children:
                    out.append((value.raw, signature.value))
    return out


def main() -> None:
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for jar in sys.argv[2:]:
        with zipfile.ZipFile(jar) as z:
            for entry in z.namelist():
                if not SIGNATURE_FILE.fullmatch(entry):
                    continue
                for token, message in tokens(z.read(entry)):
                    name = hashlib.sha256(token).hexdigest()[:16]
                    (out_dir / f"{name}.tst").write_bytes(token)
                    (out_dir / f"{name}.msg").write_bytes(message)
                    print(f"{name}\t{jar}\t{entry}")


if __name__ == "__main__":
    main()
