"""The OpenAPI document of the daemon-compatible API (served at /openapi.json)."""

from __future__ import annotations

from typing import Any, Final

_U64: Final = {"type": "integer", "format": "int64", "minimum": 0}
_ERROR: Final = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"error": {"type": "string"}}}
        }
    },
}
_DIGESTS: Final = {
    "description": "One transaction digest per stack (settlement) or attestation",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"tx_digests": {"type": "array", "items": {"type": "string"}}},
            }
        }
    },
}
_ACCEPTED: Final = {
    "description": "Resource created; digests not there yet. Poll the named resource.",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def _body(extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["stack_small_ids", *required],
                    "properties": {
                        "stack_small_ids": {"type": "array", "items": _U64, "minItems": 1},
                        "node_small_id": _U64,
                        "gas": {"type": "string", "description": "Gas coin object id"},
                        "gas_budget": _U64,
                        "gas_price": _U64,
                        **extra,
                    },
                }
            }
        },
    }


_CLAIMED: Final = {
    "description": "Claimed stacks",
    "content": {
        "application/json": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "stack_small_id": _U64,
                        "stack_id": {"type": "string"},
                        "selected_node_id": _U64,
                        "num_claimed_compute_units": _U64,
                        "settlement_time": {"type": "string", "format": "date-time"},
                        "attestation_status": {
                            "type": "string",
                            "enum": ["Pending", "Complete", "Failed"],
                        },
                        "requested_attestation_nodes": {
                            "type": "string",
                            "description": "JSON-encoded array of node ids",
                        },
                        "received_attestations": {"type": "integer"},
                        "required_attestations": {"type": "integer"},
                        "settlement_complete": {"type": "boolean"},
                    },
                },
            }
        }
    },
}
_AUTH: Final[list[dict[str, list[str]]]] = [{"bearer": []}]
_POST_ERRORS: Final = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "500": _ERROR}

OPENAPI: Final[dict[str, Any]] = {
    "openapi": "3.0.3",
    "info": {"title": "Atoma settlement operator: daemon-compatible API", "version": "1"},
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    "paths": {
        "/health": {"get": {"responses": {"200": {"description": "Serving"}}}},
        "/try_settle_stack_ids": {
            "post": {
                "security": _AUTH,
                "requestBody": _body(
                    {"num_claimed_compute_units": _U64}, ["num_claimed_compute_units"]
                ),
                "responses": {"200": _DIGESTS, "202": _ACCEPTED, **_POST_ERRORS},
            }
        },
        "/submit_stack_settlement_attestations": {
            "post": {
                "security": _AUTH,
                "requestBody": _body({}, []),
                "responses": {"200": _DIGESTS, "202": _ACCEPTED, **_POST_ERRORS},
            }
        },
        "/claimed_stacks": {
            "get": {"security": _AUTH, "responses": {"200": _CLAIMED, "500": _ERROR}}
        },
        "/claimed_stacks/{id}": {
            "get": {
                "security": _AUTH,
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": _U64}],
                "responses": {"200": _CLAIMED, "400": _ERROR, "500": _ERROR},
            }
        },
    },
}
