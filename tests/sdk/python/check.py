"""The official Python SDK (openrouter, whose API and schema ModelGates follows) as a client of
the ModelGates emulator. Run by tests/tests/e2e/sdks.rs, which starts the emulator and injects
the faults; not meant to be run by hand.

    MODELGATES_BASE_URL=http://127.0.0.1:PORT python check.py 402 403 429

It signs in (an /auth URL with an S256 challenge, the code exchange, a wrong verifier), makes one
chat call per status given, each of which the emulator was told to refuse, and prints the SDK's
error type and message of each, one per line; then chats whole and streamed, with a tool, reads
the key's metadata and the models, and is refused with an unknown key. It prints the key on its
last line (stdout, for the test only). Any mismatch exits 1 with the reason on stderr.
"""

import base64
import hashlib
import json
import os
import secrets
import sys
import urllib.parse

import httpx
from openrouter import OpenRouter, errors
from openrouter.utils import BackoffStrategy, RetryConfig

BASE = os.environ["MODELGATES_BASE_URL"]
MODEL = "openai/gpt-5.2"
NO_RETRIES = RetryConfig("none", BackoffStrategy(1, 1, 1, 1), False)
SAID = f"[{MODEL}] You said: hello there"
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


def check(condition, what):
    if not condition:
        raise AssertionError(f"check failed: {what}")


def client(api_key=None):
    return OpenRouter(api_key=api_key, server_url=f"{BASE}/api/v1", retry_config=NO_RETRIES)


def expect_error(call, error_type, what):
    try:
        call()
    except error_type as error:
        return error
    except Exception as error:  # noqa: BLE001: the wrong type is the failure to report
        raise AssertionError(f"{what}: {error_type.__name__}, not {type(error).__name__}: {error}")
    raise AssertionError(f"{what}: no error")


def approve(challenge):
    query = urllib.parse.urlencode(
        {
            "callback_url": "http://localhost:3000/callback",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "limit": "5",
        }
    )
    answer = httpx.get(f"{BASE}/auth?{query}", follow_redirects=False)
    check(answer.status_code == 302, f"/auth redirects (got {answer.status_code})")
    location = urllib.parse.urlparse(answer.headers["location"])
    code = urllib.parse.parse_qs(location.query).get("code", [None])[0]
    check(code, "the redirect carries a code")
    return code


def sign_in(sdk):
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    wrong = approve(challenge)
    expect_error(
        lambda: sdk.o_auth.exchange_auth_code_for_api_key(
            code=wrong, code_verifier="x" * 43, code_challenge_method="S256"
        ),
        errors.ForbiddenResponseError,
        "a wrong verifier",
    )
    issued = sdk.o_auth.exchange_auth_code_for_api_key(
        code=approve(challenge), code_verifier=verifier, code_challenge_method="S256"
    )
    check(issued.key.startswith("sk-mg-v1-"), "a key")
    check(isinstance(issued.user_id, str), "a user id")
    return issued.key


def chat(sdk):
    hello = [{"role": "user", "content": "hello there"}]
    whole = sdk.chat.send(model=MODEL, messages=hello)
    check(whole.choices[0].message.content == SAID, f"whole reply: {whole.choices[0].message}")
    check(whole.usage.total_tokens > 0, "usage")

    text, finish = "", None
    for chunk in sdk.chat.send(model=MODEL, messages=hello, stream=True):
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    check(text == SAID, f"streamed reply: {text}")
    check(finish == "stop", f"streamed finish reason: {finish}")

    look = [{"role": "user", "content": "look it up"}]
    called = sdk.chat.send(model=MODEL, messages=look, tools=TOOLS)
    call = called.choices[0].message.tool_calls[0]
    check(call.function.name == "lookup", f"tool call: {call}")
    check(json.loads(call.function.arguments)["text"] == "look it up", "tool arguments")

    name, arguments = None, ""
    for chunk in sdk.chat.send(model=MODEL, messages=look, tools=TOOLS, stream=True):
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if piece.function is not None:
                name = piece.function.name or name
                arguments += piece.function.arguments or ""
    check(name == "lookup", "streamed tool name")
    check(json.loads(arguments)["text"] == "look it up", f"streamed tool arguments: {arguments}")


def account(sdk, key):
    metadata = sdk.api_keys.get_current_key_metadata()
    check(metadata.data.limit == 5, f"key limit: {metadata.data.limit}")
    check(metadata.data.usage > 0, "key usage")

    models = sdk.models.list()
    check(len(models.result.data) >= 1, "models")
    check(models.result.total_count == len(models.result.data), "total count")
    mine = sdk.models.list_for_user(security={"bearer": key})
    check(len(mine.result.data) == len(models.result.data), "the user's models")


def flow(statuses):
    key = sign_in(client())
    for status in statuses:
        refused(status, key)
    sdk = client(key)
    chat(sdk)
    account(sdk, key)
    expect_error(
        lambda: client("sk-mg-v1-unknown").chat.send(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        ),
        errors.UnauthorizedResponseError,
        "an unknown key",
    )
    print(key)


REFUSALS = {
    "402": errors.PaymentRequiredResponseError,
    "403": errors.ForbiddenResponseError,
    "429": errors.TooManyRequestsResponseError,
    "503": errors.ServiceUnavailableResponseError,
}


def refused(status, key):
    error_type = REFUSALS[status]
    error = expect_error(
        lambda: client(key).chat.send(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        ),
        error_type,
        f"a {status}",
    )
    check(error.data.error.code == int(status), f"the error's code: {error.data.error}")
    print(f"{error_type.__name__}: {error.data.error.message}")


def main():
    flow(sys.argv[1:])


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001: any failure is reported and fails the test
        import traceback

        traceback.print_exc()
        sys.exit(1)
