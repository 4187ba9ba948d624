"""PDF certificates (存证证书 PDF): rendering, fonts, signing, notaries' X.509 credentials.

The page itself is defined by :mod:`verifier.pdflayout`; this package draws it
(:mod:`.render`, :mod:`.fonts`, :mod:`.icc`, :mod:`.writer`), signs it
(:mod:`.sign`, :mod:`.x509`) and offers it to the CLI and the API
(:mod:`.service`).
"""

__all__: list[str] = []
