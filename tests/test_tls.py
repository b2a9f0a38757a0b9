"""Inbound mutual TLS ([server.tls] with client_ca): only callers with a certificate from
the configured CA reach the gateway at all."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from gateway.app import build_app
from gateway.config import ROOT, ConfigError, load_config
from gateway.tls import server_context
from tests.certs import Pki
from tests.processes import free_port


def _config(tmp_path: Path, pki: Pki, **extra: str) -> Path:
    text = (ROOT / "config" / "gateway.toml").read_text(encoding="utf-8")
    tls = {"cert": pki.server_cert, "key": pki.server_key, "client_ca": pki.ca} | extra
    table = "\n[server.tls]\n" + "".join(f'{k} = "{v}"\n' for k, v in tls.items())
    text = text.replace('url = "sqlite:///var/gateway.db"', f'url = "sqlite:///{tmp_path / "g.db"}"')
    path = tmp_path / "gateway.toml"
    path.write_text(f'base_dir = "{ROOT}"\n' + text.replace("\n[store]", table + "\n[store]", 1), encoding="utf-8")
    return path


def _client(pki: Pki, with_certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.maximum_version = ssl.TLSVersion.TLSv1_2  # the refusal comes in the handshake itself
    if with_certificate:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


async def test_with_a_client_ca_only_certified_callers_get_a_connection(tmp_path: Path, pki: Pki) -> None:
    config = load_config(_config(tmp_path, pki))
    assert config.tls is not None and config.tls.client_ca == pki.ca
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context(config.tls)).start()
    try:
        url = f"https://127.0.0.1:{port}/healthz"
        async with aiohttp.ClientSession() as http:
            async with http.get(url, ssl=_client(pki, with_certificate=True)) as resp:
                assert resp.status == 200
            with pytest.raises(aiohttp.ClientError):
                async with http.get(url, ssl=_client(pki, with_certificate=False)) as resp:
                    await resp.read()
    finally:
        await runner.cleanup()


def test_tls_settings_are_checked_when_the_configuration_loads(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="client_ca: no such file"):
        load_config(_config(tmp_path, pki, client_ca=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="unknown setting"):
        load_config(_config(tmp_path, pki, ciphers="NULL"))
