"""Who may do what: one table of actions and the roles that may perform them.

Every service method that acts for a caller checks the caller here, so the
JSON API, the web pages and any other edge obey the same rules. Routes name
the action they perform (``api.auth.permit``) only to answer 403 before
reading a body; the service checks again, so a route that forgot cannot
widen access.

Visibility is the other half: a rights holder sees only their own evidence,
captures and certificates; ``SEE_ALL`` roles see every account's. Something
not visible answers *not found*, never *forbidden*, so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.errors import Forbidden

__all__ = [
    "ACTIONS",
    "OPERATOR",
    "READERS",
    "ROLES",
    "SEE_ALL",
    "Actor",
    "Forbidden",
    "authorize",
    "sees_all",
]

ROLES = ("rights_holder", "notary", "auditor", "admin")
# Roles that read every account's evidence, certificates and captures.
SEE_ALL = ("notary", "auditor", "admin")
# Every role: who may read evidence, proofs, certificates and captures at all.
READERS = ("rights_holder", *SEE_ALL)

# action -> roles admitted. The operator (the command line on the ledger's own
# host, holding its keys) may do everything and is not listed.
ACTIONS: dict[str, tuple[str, ...]] = {
    "evidence.deposit": ("rights_holder",),
    "evidence.read": READERS,
    "capture.create": ("rights_holder",),
    "capture.read": READERS,
    "capture.interactive": ("rights_holder",),
    "certificate.request": ("rights_holder",),
    "certificate.review": ("notary",),
    "certificate.issue": ("notary",),
    "certificate.revoke": ("notary", "admin"),
    "certificate.read": READERS,
    "account.manage": ("admin",),
    "ledger.inspect": ("auditor", "admin"),
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: an authenticated account, or the local operator."""

    account_id: str
    role: str
    name: str

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


OPERATOR = Actor(account_id="", role="operator", name="operator")


def authorize(actor: Actor, action: str) -> None:
    """Raise :class:`Forbidden` unless ``actor`` may perform ``action``."""
    roles = ACTIONS[action]
    if actor.is_operator or actor.role in roles:
        return
    raise Forbidden(f"{action}: this is for {' or '.join(roles)} accounts")


def sees_all(actor: Actor) -> bool:
    """Whether ``actor`` reads every account's records (not only their own)."""
    return actor.is_operator or actor.role in SEE_ALL
