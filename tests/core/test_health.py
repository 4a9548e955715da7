def test_healthz_answers_without_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_a_migrated_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_fails_while_migrations_are_pending(app, client):
    app.state.migration_head = "a-newer-revision"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["reason"] == "migrations pending"
