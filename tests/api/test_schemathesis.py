"""Property-based run of every operation in the app's OpenAPI (schemathesis, in-process).

The app holds the small data set and a trained model on SQLite; calls carry a logged-in
reader's bearer token. Each operation gets a bounded number of generated requests, and every
answer must be no server error and match the schema the OpenAPI declares for it.
Operations that end the caller's login (logout, account erasure) get a throwaway account.

The run drives Hypothesis directly over `operation.as_strategy()` instead of the
`schemathesis.pytest.from_fixture` plugin, whose node-id rewriting breaks on pytest 9
(`Function` has no `_nodeid`); one test reports every failing operation at once.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.schemas import APIOperation
from tests.api.conftest import make_settings
from tests.api.test_auth import PASSWORD, bearer

from bookrec.api.app import create_app
from bookrec.db.engine import make_engine
from bookrec.importing.importer import import_directory
from bookrec.model_registry.registry import ModelRegistry
from bookrec.schema.migrate import upgrade
from bookrec.training.service import train

#: Operations that end the login they are called with.
ENDS_LOGIN = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me")}
UNLIMITED = "1000000/minute"


class Api:
    """The running app and a way to get a fresh logged-in reader."""

    def __init__(self, app: FastAPI, client: TestClient) -> None:
        self.app = app
        self.client = client
        self.headers = self.new_reader()

    def new_reader(self) -> dict[str, str]:
        email = f"reader-{uuid.uuid4().hex[:12]}@example.org"
        body = {"email": email, "password": PASSWORD}
        assert self.client.post("/api/v1/auth/register", json=body).status_code == 201
        tokens = self.client.post("/api/v1/auth/login", json=body).json()
        return bearer(tokens["access_token"])


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, small_dataset_master: Path) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("schemathesis")
    url = f"sqlite:///{root / 'bookrec.sqlite3'}"
    upgrade(url)
    configured = make_settings(url, root / "var")
    # generated requests come by the hundred from one client: rate limits are tested elsewhere
    configured = configured.model_copy(
        update={
            name: UNLIMITED
            for name in (
                "rate_limit_login_ip",
                "rate_limit_login_email",
                "rate_limit_register_ip",
                "rate_limit_general",
            )
            if name in type(configured).model_fields
        }
    )
    dataset = shutil.copytree(small_dataset_master, root / "goodbooks-small")
    engine = make_engine(url)
    import_directory(engine, dataset)
    train(engine, ModelRegistry(configured.models_dir), "popularity", settings=configured)
    engine.dispose()
    app = create_app(configured)
    with TestClient(app) as client:
        yield Api(app, client)


def run_operation(
    operation: APIOperation, mode: GenerationMode, api: Api, examples: int
) -> str | None:
    """Generated requests against one operation; what failed, or None."""
    ends_login = (operation.method.upper(), operation.path) in ENDS_LOGIN

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def check(case: schemathesis.Case) -> None:
        headers = api.new_reader() if ends_login else api.headers
        case.call_and_validate(
            headers=headers, checks=[not_a_server_error, response_schema_conformance]
        )

    try:
        check()
    except Unsatisfiable:
        return None  # nothing invalid to send (no parameters, no body)
    except (Exception, FailureGroup) as exc:  # FailureGroup is a BaseExceptionGroup
        return f"{type(exc).__name__}: {exc}"
    return None


def test_api_conforms_to_its_openapi(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in ((GenerationMode.POSITIVE, 20), (GenerationMode.NEGATIVE, 10)):
            failure = run_operation(operation, mode, api, examples)
            if failure is not None:
                failures[f"{mode.value} {operation.label}"] = failure
    assert operations >= 10
    assert not failures, "\n\n".join(f"{name}\n{text}" for name, text in failures.items())
