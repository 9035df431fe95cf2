"""An SMTP server for the alert tests (aiosmtpd): STARTTLS required, AUTH (PLAIN, LOGIN) over
TLS only, checked against --user and --password. Each message taken is parsed with Python's
own e-mail parser and written to --out as NNN.json: the envelope, the headers, and each part's
content type and decoded text, so the test checks what a mail client would show. Prints
"listening" once it accepts connections; runs until killed.

    python3 server.py --port P --cert C --key K --user U --password W --out DIR
"""
import argparse
import asyncio
import email
import email.policy
import json
import logging
import os
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Save:
    def __init__(self, out):
        self.out = out
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        parts = []
        for part in message.walk():
            if part.is_multipart():
                continue
            parts.append({"type": part.get_content_type(), "text": part.get_content()})
        self.n += 1
        doc = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "user": session.auth_data.login.decode() if session.auth_data else None,
            "content_type": message.get_content_type(),
            "headers": {k: str(v) for k, v in message.items()},
            "parts": parts,
        }
        tmp = os.path.join(self.out, f".{self.n:03}.json")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, os.path.join(self.out, f"{self.n:03}.json"))
        return "250 2.0.0 queued as autoflow-test-%03d" % self.n


def main():
    p = argparse.ArgumentParser()
    for a in ("--port", "--cert", "--key", "--user", "--password", "--out"):
        p.add_argument(a, required=True)
    args = p.parse_args()

    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == args.user
            and auth_data.password.decode() == args.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    # A client that refuses the certificate (a test's point) is one line, not a traceback.
    loop = asyncio.new_event_loop()

    def quiet(loop, context):
        error = context.get("exception")
        if isinstance(error, (ssl.SSLError, ConnectionError)):
            print(f"tls: {error}", flush=True)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(quiet)
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)
    controller = Controller(
        Save(args.out),
        hostname="127.0.0.1",
        port=int(args.port),
        tls_context=tls,
        require_starttls=True,
        authenticator=check,
        auth_required=True,
        auth_require_tls=True,
        server_hostname="localhost",
        loop=loop,
    )
    controller.start()
    print("listening", flush=True)
    while True:
        time.sleep(3600)


main()
