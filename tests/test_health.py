def test_healthz_reports_every_dependency(client, runtime):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["queue"] == {"ok": True}
    assert body["checks"]["engineHosts"] == {"ok": True, "alive": ["embedded"]}


def test_healthz_is_503_without_a_live_engine_host(app):
    # No runtime: web only, as a web replica sees it when every engine host is down.
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["engineHosts"] == {"ok": False, "alive": []}


def test_the_landing_page_is_html(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Your WhatsApp, over HTTP" in response.data
    missing = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert missing.status_code == 404 and b"<html" in missing.data
