"""The demo account that `manage.py run` creates on first start, so a call works at once."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from store import accounts, bins, numbers

DEMO_NAME = "Demo"
DEMO_NUMBER = "+15550100"

WELCOME = """<?xml version="1.0" encoding="UTF-8"?>
<Response>
  <Gather numDigits="1" action="{menu_url}" timeout="5">
    <Say>Welcome to the voice platform demo. Press 1 to leave a message.</Say>
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


def ensure_demo(conn: psycopg.Connection, secret_key: str, public_url: str) -> Demo:
    """Create the demo account, its scripts and number unless they exist; return them."""
    account = accounts.find_account(conn, DEMO_NAME)
    created = account is None
    if account is None:
        account, _ = accounts.create_account(conn, DEMO_NAME, secret_key)
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
    return Demo(account.sid, token, DEMO_NUMBER, created)
