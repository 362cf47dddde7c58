"""The demo account that `manage.py run` creates on first start, so a call works at once.

Its extensions' passwords are derived from the platform's secret key, so they can be
printed at every start while only their HA1 digests are stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

import psycopg

from provisioning.extensions import set_extension
from store import accounts, bins, extensions, in_call_options, numbers

DEMO_NAME = "Demo"
DEMO_NUMBER = "+15550100"
DEMO_EXTENSIONS = ("101", "102", "103")

WELCOME = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Dial timeout="20">101</Dial>
  <Gather numDigits="1" action="{menu_url}" timeout="5">
    <Say>Nobody is available right now. Press 1 to leave a message.</Say>
  </Gather>
  <Say>We did not hear from you. Goodbye.</Say>
</Response>
"""

MENU = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Say>Please leave a message after the beep. Press the pound key when you are done.</Say>
  <Record maxLength="60" finishOnKey="#"/>
  <Say>Thank you. Goodbye.</Say>
</Response>
"""


@dataclass(frozen=True, slots=True)
class Demo:
    account_sid: str
    auth_token: str
    number: str
    created: bool
    sip_domain: str
    extensions: dict[str, str] = field(default_factory=dict)  # extension -> password


def demo_password(secret_key: str, extension: str) -> str:
    digest = hmac.new(secret_key.encode(), f"demo extension {extension}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:12]


def ensure_demo(
    conn: psycopg.Connection, secret_key: str, public_url: str, sip_domain: str
) -> Demo:
    """Create the demo account, its scripts, number and extensions unless they exist."""
    account = accounts.find_account(conn, DEMO_NAME)
    created = account is None
    if account is None:
        account, _ = accounts.create_account(conn, DEMO_NAME, secret_key)
        extensions.set_sip_domain(conn, account.sid, sip_domain)
        for extension in DEMO_EXTENSIONS:
            set_extension(
                conn,
                account.sid,
                extension,
                demo_password(secret_key, extension),
                display_name=f"Employee {extension}",
            )
        # The headline feature's prerequisite: # transfers, * aborts a consultation.
        in_call_options.set_option(conn, account.sid, "#", "transfer")
        in_call_options.set_option(conn, account.sid, "*", "abort")
        menu = bins.save_bin(conn, account.sid, "demo-menu", MENU)
        welcome = bins.save_bin(
            conn,
            account.sid,
            "demo-welcome",
            WELCOME.format(menu_url=f"{public_url}/bins/{menu.sid}"),
        )
        numbers.set_number(
            conn,
            account.sid,
            DEMO_NUMBER,
            voice_url=f"{public_url}/bins/{welcome.sid}",
            voice_method="POST",
        )
    token = accounts.auth_token(conn, account.sid, secret_key)
    return Demo(
        account.sid,
        token,
        DEMO_NUMBER,
        created,
        extensions.sip_domain(conn, account.sid) or sip_domain,
        {ext: demo_password(secret_key, ext) for ext in DEMO_EXTENSIONS},
    )
