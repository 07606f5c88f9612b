"""The OpenAPI 3.1 description of ``/api/v1`` (tests check every route is described and every
response validates against its schema)."""

from __future__ import annotations

from typing import Any

_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
_NULLABLE_NUM = {"type": ["number", "null"]}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props,
            "required": required if required is not None else list(props)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PERIOD_PARAMS = [
    {"name": "period", "in": "query", "required": False,
     "description": "week | stat_month (15th → 14th, default) | month | half | stat_half | "
                    "year | stat_year | custom",
     "schema": {"type": "string", "enum": ["week", "stat_month", "month", "half", "stat_half",
                                           "year", "stat_year", "custom"]}},
    {"name": "date", "in": "query", "required": False,
     "description": "A day inside the period (Vietnam time); default today",
     "schema": {"type": "string", "format": "date"}},
    {"name": "from", "in": "query", "required": False, "description": "custom: first day",
     "schema": {"type": "string", "format": "date"}},
    {"name": "to", "in": "query", "required": False, "description": "custom: last day",
     "schema": {"type": "string", "format": "date"}},
]
_SITE_PARAM = {"name": "site", "in": "query", "required": False,
               "description": "One site id (must be in scope)", "schema": {"type": "string"}}
_UNIT_PARAM = {"name": "unit", "in": "query", "required": False,
               "description": "A unit id: its whole subtree (must be in scope)",
               "schema": {"type": "integer"}}
_ERRORS = {
    "400": {"description": "Invalid parameter", "content": {
        "application/json": {"schema": _ref("Error")}}},
    "401": {"description": "No valid token or session", "content": {
        "application/json": {"schema": _ref("Error")}}},
    "403": {"description": "Outside the principal's scope", "content": {
        "application/json": {"schema": _ref("Error")}}},
}


def _get(summary: str, schema: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    return {"get": {"summary": summary, "parameters": params,
                    "responses": {"200": {"description": "OK", "content": {
                        "application/json": {"schema": _ref(schema)}}}, **_ERRORS}}}


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "CCCD check-in collector API", "version": "1.0.0",
             "description": "Read-only counts, occupancy, sites, devices and reports. Counts "
                            "come from hourly rollups; times are UTC (RFC 3339, Z); periods "
                            "are Vietnam-time dates (UTC+07:00)."},
    "servers": [{"url": "/"}],
    "security": [{"bearerToken": []}, {"session": []}],
    "paths": {
        "/api/v1/sites": _get("Sites in scope", "SitesResponse", [_SITE_PARAM, _UNIT_PARAM]),
        "/api/v1/occupancy": _get("Occupancy now", "OccupancyResponse",
                                  [_SITE_PARAM, _UNIT_PARAM]),
        "/api/v1/counts": _get("Counts over a period", "CountsResponse", [
            _SITE_PARAM, _UNIT_PARAM, *_PERIOD_PARAMS,
            {"name": "group_by", "in": "query", "required": False,
             "description": "Comma-separated: hour, day, site, kind, method, age_band, sex, "
                            "birth_province",
             "schema": {"type": "string"}},
            {"name": "kind", "in": "query", "required": False,
             "description": "Comma-separated rollup kinds to include (default all)",
             "schema": {"type": "string"}}]),
        "/api/v1/devices": _get("Device health", "DevicesResponse", [_SITE_PARAM]),
        "/api/v1/reports": _get("Ratio tables by period and unit", "ReportResponse",
                                [_UNIT_PARAM, *_PERIOD_PARAMS]),
        "/api/v1/openapi.json": {"get": {
            "summary": "This document", "security": [],
            "responses": {"200": {"description": "OK", "content": {
                "application/json": {"schema": {"type": "object"}}}}}}},
    },
    "components": {
        "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "Read-only API token scoped to a unit"},
            "session": {"type": "apiKey", "in": "cookie", "name": "central_session"},
        },
        "schemas": {
            "Error": _obj({"error": {"type": "string"}, "message": {"type": "string"}}),
            "Site": _obj({"id": {"type": "string"}, "name": {"type": "string"},
                          "kind": {"enum": ["heritage", "hospital", "accommodation"]},
                          "unit_id": {"type": "integer"}, "unit_code": _NULLABLE_STR,
                          "capacity": _NULLABLE_INT, "occupancy": {"type": "integer"}}),
            "SitesResponse": _obj({"sites": {"type": "array", "items": _ref("Site")}}),
            "Occupancy": _obj({"site_id": {"type": "string"}, "occupancy": {"type": "integer"},
                               "capacity": _NULLABLE_INT, "ratio": _NULLABLE_NUM,
                               "updated_at": _NULLABLE_STR}),
            "OccupancyResponse": _obj({"sites": {"type": "array", "items": _ref("Occupancy")},
                                       "total": {"type": "integer"}}),
            "Period": _obj({"kind": {"type": "string"},
                            "first": {"type": "string", "format": "date"},
                            "last": {"type": "string", "format": "date"},
                            "start": {"type": "string", "format": "date-time"},
                            "end": {"type": "string", "format": "date-time"}}),
            "CountRow": {"type": "object", "required": ["people", "events"],
                         "properties": {"people": {"type": "integer"},
                                        "events": {"type": "integer"},
                                        "hour": {"type": "string", "format": "date-time"},
                                        "day": {"type": "string", "format": "date"},
                                        "site": {"type": "string"},
                                        "kind": {"type": "string"},
                                        "method": {"type": "string"},
                                        "age_band": {"type": "string"},
                                        "sex": {"type": "string"},
                                        "birth_province": {"type": "string"},
                                        "insurance": {"type": "string"}},
                         "additionalProperties": False},
            "CountsResponse": _obj({
                "period": _ref("Period"),
                "group_by": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": _ref("CountRow")},
                "total": _obj({"people": {"type": "integer"}, "events": {"type": "integer"}})}),
            "Device": _obj({
                "id": {"type": "string"}, "site_id": {"type": "string"},
                "name": {"type": "string"}, "state": {"type": "string"},
                "revoked": {"type": "boolean"}, "last_seen": _NULLABLE_STR,
                "last_seq": {"type": "integer"}, "contiguous_seq": {"type": "integer"},
                "version": _NULLABLE_STR, "outbox_depth": _NULLABLE_INT,
                "oldest_undelivered_at": _NULLABLE_STR, "open_seq_gaps": {"type": "integer"},
                "rejections": {"type": "object",
                               "additionalProperties": {"type": "integer"}},
                "components": {"type": "array", "items": _obj({
                    "group": {"enum": ["readers", "scanners"]}, "uri": {"type": "string"},
                    "state": {"type": "string"}, "detail": {"type": "string"}})},
                "faults": {"type": "array", "items": {"type": "string"}},
                "backlog_age_s": _NULLABLE_INT, "clock_skew_s": _NULLABLE_NUM,
                "needs_attention": {"type": "boolean"}}),
            "DevicesResponse": _obj({"devices": {"type": "array", "items": _ref("Device")}}),
            "RatioRow": _obj({
                "kind": {"enum": ["unit", "site", "total"]},
                "unit_id": _NULLABLE_INT, "site_id": _NULLABLE_STR,
                "code": {"type": "string"}, "name": {"type": "string"},
                "unit_name": {"type": "string"}, "site_kind": {"type": "string"},
                "total": {"type": "integer"}, "via": {"type": "integer"},
                "ratio": _NULLABLE_NUM, "target": _NULLABLE_NUM,
                "met": {"type": ["boolean", "null"]}, "is_total": {"type": "boolean"},
                "late": {"type": "integer"}, "overdue": {"type": "integer"}},
                required=["kind", "unit_id", "site_id", "code", "name", "total", "via",
                          "ratio", "target", "met", "is_total"]),
            "RatioTable": _obj({
                "metric": {"enum": ["hospital_cccd", "heritage_cccd", "sites_equipped",
                                    "stays_notified"]},
                "rows": {"type": "array", "items": _ref("RatioRow")},
                "site_rows": {"type": "array", "items": _ref("RatioRow")}}),
            "ReportResponse": _obj({
                "period": _ref("Period"),
                "unit": {"oneOf": [{"type": "null"}, _obj({
                    "id": {"type": "integer"}, "code": {"type": "string"},
                    "name": {"type": "string"}, "level": {"type": "string"}})]},
                "tables": {"type": "array", "items": _ref("RatioTable")}}),
        },
    },
}
