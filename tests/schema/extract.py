#!/usr/bin/env python3
"""Cuts the part of OpenRouter's OpenAPI document that ModelGates' emulator answers.

ModelGates follows OpenRouter's API. This script reads `openapi/openapi.yaml` of the
OpenRouterTeam/docs repository and writes `openrouter-openapi-subset.json`: the responses of
the routes the emulator serves, every component schema they reach, and the amendments below.
It needs PyYAML; CI does not run it (the output is committed).

    python3 tests/schema/extract.py path/to/openapi.yaml COMMIT DATE > tests/schema/openrouter-openapi-subset.json
"""
import json
import sys

import yaml

ROUTES = ["/auth/keys", "/key", "/models", "/models/user", "/chat/completions"]

# One budget layer of a key, as the official Python SDK (openrouter 1.3.84,
# components/keybudget.py) has it.
KEY_BUDGET = {
    "type": "object",
    "properties": {
        "budget_id": {"type": ["string", "null"]},
        "guardrail_id": {"type": ["string", "null"]},
        "include_byok": {"type": "boolean"},
        "limit_usd": {"type": "number"},
        "remaining_usd": {"type": "number"},
        "reset_interval": {"type": ["string", "null"]},
        "resets_at": {"type": ["string", "null"], "format": "date-time"},
        "scope": {"type": "string"},
        "spend_usd": {"type": "number"},
    },
    "required": [
        "budget_id",
        "guardrail_id",
        "include_byok",
        "limit_usd",
        "remaining_usd",
        "reset_interval",
        "resets_at",
        "scope",
        "spend_usd",
    ],
}

# Fields the official SDKs, generated from newer revisions of the document, require in
# `GET /key`'s `data`, which the docs revision above lacks: the TypeScript SDK
# (@openrouter/sdk 1.3.19, models/operations/getcurrentkey.js) the first four, the Python SDK
# (openrouter 1.3.84, operations/getcurrentkey.py) also `budgets` and `effective_budget`.
KEY_AMENDMENTS = {
    "budgets": {"type": "array", "items": KEY_BUDGET},
    "effective_budget": {"anyOf": [KEY_BUDGET, {"type": "null"}]},
    "allowed_data_regions": {
        "type": "array",
        "items": {"type": "string", "enum": ["global", "europe", "us"]},
    },
    "free_model_daily_requests": {
        "type": "object",
        "properties": {
            "limit": {"type": "integer"},
            "remaining": {"type": "integer"},
            "used": {"type": "integer"},
        },
        "required": ["limit", "remaining", "used"],
    },
    "organization_id": {"type": ["string", "null"]},
    "workspace_id": {"type": ["string", "null"]},
}


def refs(node, found):
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "$ref" and isinstance(value, str):
                found.add(value.rsplit("/", 1)[-1])
            else:
                refs(value, found)
    elif isinstance(node, list):
        for value in node:
            refs(value, found)


def main():
    source, commit, date = sys.argv[1:4]
    with open(source, encoding="utf-8") as file:
        document = yaml.safe_load(file)
    schemas = document["components"]["schemas"]
    paths = {}
    pending = set()
    for route in ROUTES:
        operations = {
            method: {"operationId": operation.get("operationId"), "responses": operation["responses"]}
            for method, operation in document["paths"][route].items()
            if isinstance(operation, dict) and "responses" in operation
        }
        paths[route] = operations
        refs(operations, pending)
    kept = {}
    while pending:
        name = pending.pop()
        if name in kept:
            continue
        kept[name] = schemas[name]
        refs(schemas[name], pending)
    key_data = paths["/key"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"
    ]["data"]
    key_data["properties"].update(KEY_AMENDMENTS)
    key_data["required"] = sorted(set(key_data["required"]) | set(KEY_AMENDMENTS))
    subset = {
        "x-source": {
            "repository": "https://github.com/OpenRouterTeam/docs",
            "path": "openapi/openapi.yaml",
            "commit": commit,
            "date": date,
            "info": document["info"],
            "amendments": "GET /key data: " + ", ".join(sorted(KEY_AMENDMENTS))
            + " required, as @openrouter/sdk 1.3.19 and openrouter (Python) 1.3.84 require them",
        },
        "openapi": document["openapi"],
        "paths": paths,
        "components": {"schemas": dict(sorted(kept.items()))},
    }
    json.dump(subset, sys.stdout, indent=1, sort_keys=False, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
