"""What the load generator sends: unique joint applications built from the sandbox's
demo batch, and the same department queries for the bare fan-out floor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.config import ROOT, GatewayConfig
from gateway.domain import prechecks
from gateway.eligibility import precheck_request
from gateway.messages import build_context
from gateway.validation import submitted_date

APPLICATIONS = ROOT / "sandbox" / "applications.json"
EXPECTED = ROOT / "sandbox" / "demo_expected.json"
_PLACEHOLDER = "@@APPLICATION-NO@@"


def accepted_templates() -> list[dict[str, Any]]:
    """The demo applications the sandbox people make acceptable (demo_expected.json)."""
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    apps = json.loads(APPLICATIONS.read_text(encoding="utf-8"))
    return [a for a in apps if expected.get(a["application_no"], {}).get("accepted")]


def needed_departments(body: dict[str, Any]) -> list[str]:
    """The departments the gateway's pre-check asks for this application (3 to 6)."""
    req = precheck_request(body, submitted_date(body))
    return sorted(d.value for d in prechecks.departments_needed(req))


class Bodies:
    """Request bodies with a fresh ``application_no`` each, cycling through the templates.
    Serialised once per template; a request costs one bytes.replace."""

    def __init__(self, templates: list[dict[str, Any]], tag: str) -> None:
        self._tag = tag
        self._raw = [
            json.dumps(t | {"application_no": _PLACEHOLDER}, ensure_ascii=False).encode("utf-8") for t in templates
        ]

    def __len__(self) -> int:
        return len(self._raw)

    def number(self, seq: int) -> str:
        return f"B{self._tag}-{seq:07d}"

    def body(self, seq: int) -> tuple[str, bytes]:
        number = self.number(seq)
        return number, self._raw[seq % len(self._raw)].replace(_PLACEHOLDER.encode(), number.encode())


@dataclass(frozen=True)
class DeptRequest:
    """One department query as a bare client would send it: URL, bytes, headers."""

    department: str
    url: str
    body: bytes
    headers: dict[str, str]


def soap_client(wsdl: Path) -> Any:
    """A zeep client with the adapter's safe-XML settings (local WSDL)."""
    from zeep import Client, Settings

    return Client(str(wsdl), settings=Settings(strict=True, forbid_dtd=True, forbid_entities=True))


def soap_envelope(client: Any, address: str, operation: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The envelope and headers zeep builds for this call, as bytes (a bare client's template)."""
    from lxml import etree

    envelope, headers = client.service._binding._create(operation, (), body, client=client,
                                                        options={"address": address})
    data = etree.tostring(envelope, encoding="utf-8", xml_declaration=True)
    return data, {str(k): str(v) for k, v in headers.items()}


def fanout_requests(config: GatewayConfig, templates: list[dict[str, Any]]) -> list[list[DeptRequest]]:
    """Per template, the query the gateway would send to each department it asks."""
    clients: dict[Path, Any] = {}
    out: list[list[DeptRequest]] = []
    for body in templates:
        requests = []
        for code in needed_departments(body):
            dept = config.departments[code]
            message = dept.mapping.build("query", build_context(body, item=None, delivery_id="Q-bench"), "Q-bench")
            ep = dept.endpoints[message.operation.endpoint]
            if ep.adapter == "rest":
                url = str(ep.settings["base_url"]).rstrip("/") + str(message.operation.options.get("path", ""))
                data = json.dumps(dict(message.body), ensure_ascii=False).encode("utf-8")
                headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": "Q-bench"}
            elif ep.adapter == "soap":
                wsdl = Path(ep.settings["wsdl"])
                wsdl = wsdl if wsdl.is_absolute() else config.base_dir / wsdl
                url = str(ep.settings["address"])
                if wsdl not in clients:
                    clients[wsdl] = soap_client(wsdl)
                op = str(message.operation.options["soap_operation"])
                data, headers = soap_envelope(clients[wsdl], url, op, dict(message.body))
            else:
                raise ValueError(f"{code}: query over {ep.adapter} is not benchmarked")
            requests.append(DeptRequest(code, url, data, headers))
        out.append(requests)
    return out


def submit_adapter_kinds(config: GatewayConfig) -> dict[str, str]:
    """department → the adapter kind its submissions go over (rest, soap, filedrop)."""
    kinds = {}
    for code, dept in config.departments.items():
        op = dept.mapping.operations.get("submit")
        if op is not None:
            kinds[code] = dept.endpoints[op.operation.endpoint].adapter
    return kinds
