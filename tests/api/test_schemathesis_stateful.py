"""Admin actions in random order against a real daemon: it never answers a 5xx and is still up at the end.

``zapvisor run`` is a subprocess on SQLite with the simulated driver and a real simulator process
(auto-pairing, so connect and logout do something), webhooks aimed at a real local receiver.
The OpenAPI document declares no links (schemathesis' inferred ones almost never find a live
resource: random ids), so a hypothesis ``RuleBasedStateMachine`` drives the real operations with
the admin token, each step one request with values the state machine knows to exist (or not): the
supervision tree (restart/stop/start any actor, breaker reset/open/close), sessions
(create/connect/logout/restart/delete), queues (pause/resume/retry/clean), webhooks, tenants,
users, and contacts writing in through the simulator. No answer may be a 5xx other than the documented
503, and none is an error outside the JSON error shape. After each program it starts what is stopped
and resets the breakers, as an operator would (the programs' own sessions excepted); at the end the
daemon process is alive, ``/healthz`` is 200, the root supervisor never exited, and a bystander
session (never logged out or deleted by the machine) still delivers an inbound message and an
outbound one.
"""

from __future__ import annotations

import collections
import functools
from pathlib import Path
from typing import Any

import httpx
import trio
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, rule, run_state_machine_as_test

from actors.simulator import ControlError, SimulatorControl
from tests.fixtures.simulator import open_simulator

from .conftest import ADMIN_TOKEN, HTTP_TIMEOUT, Daemon

RUNS = 12
"""Independent random programs (state machines) against the same daemon."""
STEPS = 50
"""Steps per program (at most): RUNS x STEPS = 600 steps, under a minute on a loaded 2-core machine."""
RUN_TIMEOUT = 240.0
"""Real-time bound for the whole machine run (far above the minute it takes)."""
SETTLE_TIMEOUT = 60.0
"""Real seconds for the tree to be running again and the bystander to deliver after the storm."""
RESTORE_POLL = 0.2
"""Seconds between looks at the tree while restoring."""
MISSING_ID = 999_999
"""An id no job or webhook of the run has (its requests are 404s)."""
PICK_RANGE = 10_000
"""Bound of the index drawn to pick an actor or a job (see :func:`_pick`)."""
DOCUMENTED_5XX = {503: "unavailable"}
"""The only server error the API documents (api/_errors.py ``Unavailable``: a component did not
answer in time, or it waits at a gate); anything else 5xx is a bug."""
TENANT, BYSTANDER, CONTACT = "t1", "bystander", "5511988887777@s.whatsapp.net"
BYSTANDER_PATH = f"/tenants/{TENANT}/sessions/{BYSTANDER}"
QUEUES = ("outbox", "media", "webhooks")
SESSION_TENANTS = ("t2", "t3")
"""Where the machine makes sessions: the bystander's tenant keeps its one session (and ticket list)."""
FRIEND = "5511977776666@s.whatsapp.net"
"""The bystander's contact (the machine's sessions hear from ``CONTACT``)."""


def _violation(response: httpx.Response) -> str | None:
    """What is wrong with an answer: an undocumented 5xx, an error not in the JSON error shape
    (``/readyz`` has its own: 503 ``not_ready`` with the checks, while something is stopped or waits)."""
    status = response.status_code
    if response.url.path == "/readyz":
        return None if status == 200 or (status == 503 and response.json()["status"] == "not_ready") else "readyz"
    if status < 400:
        return None
    error = response.json().get("error", {})
    if not (isinstance(error.get("code"), str) and isinstance(error.get("message"), str)):
        return "not the error shape"
    if status >= 500 and error["code"] != DOCUMENTED_5XX.get(status):
        return "server error"
    return None


def _check(response: httpx.Response, what: str) -> None:
    """Assert :func:`_violation` finds nothing."""
    assert _violation(response) is None, (what, response.status_code, response.text[:1000])


def _actor_paths(node: dict) -> list[str]:
    return [node["path"], *(path for child in node.get("children", ()) for path in _actor_paths(child))]


def _pick(data: st.DataObject, choices: list) -> Any:
    """One of ``choices``, a list read from the daemon: drawn as an index, so that the draw does not
    depend on the list (hypothesis requires a program's draws to be independent of external state)."""
    return choices[data.draw(st.integers(min_value=0, max_value=PICK_RANGE)) % len(choices)]


def _machine(url: str, admin: httpx.AsyncClient, control: SimulatorControl, hook_url: str, statuses: list[int],
             problems: list[tuple[str, str]]) -> type[RuleBasedStateMachine]:
    """The state machine class for a daemon at ``url`` (requests from a worker thread, sync httpx;
    the simulator's control and ``admin``, the async client restoring between programs, are reached
    with ``trio.from_thread.run``)."""
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=HTTP_TIMEOUT)
    counter = iter(range(1_000_000))

    def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; a violation is recorded, not raised (hypothesis would replay the program to
        confirm it, against a daemon whose state has moved on: the report would be its confusion)."""
        what = f"{method} {path} {kwargs.get('json')}"
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TransportError as error:  # the daemon is gone (or hangs): the test fails on it
            problems.append((what, f"{type(error).__name__}: {error}"))
            return httpx.Response(599, json={}, request=error.request)
        statuses.append(response.status_code)
        if (violation := _violation(response)) is not None:
            problems.append((what, f"{violation}: {response.status_code} {response.text[:1000]}"))
        return response

    class AdminStorm(RuleBasedStateMachine):
        sessions = Bundle("sessions")
        webhooks = Bundle("webhooks")

        @initialize()
        def learn_the_tree(self) -> None:
            self.actors = ["/services/webhooks"]
            self._actor(None)

        def _actor(self, data: st.DataObject | None) -> str:
            """An actor of the tree as it is now (not the root); the last known ones if it does not answer."""
            tree = call("GET", "/supervision/tree")
            if tree.status_code == 200:
                self.actors = _actor_paths(tree.json())[1:] or self.actors
            return "" if data is None else _pick(data, self.actors)

        @rule(action=st.sampled_from(["restart", "stop", "start"]), data=st.data())
        def control_an_actor(self, action: str, data: st.DataObject) -> None:
            call("POST", f"/supervision/actor/{action}", json={"path": self._actor(data)})

        @rule(action=st.sampled_from(["reset", "open", "close"]), data=st.data())
        def breaker(self, action: str, data: st.DataObject) -> None:
            call("POST", f"/supervision/breaker/{action}", json={"path": self._actor(data)})

        @rule(target=sessions, tenant=st.sampled_from(SESSION_TENANTS))
        def create_a_session(self, tenant: str) -> tuple[str, str]:
            session = f"s{next(counter)}"
            call("POST", f"/tenants/{tenant}/sessions", json={"id": session, "name": session})
            return tenant, session

        @rule(session=sessions, action=st.sampled_from(["connect", "logout", "restart"]))
        def session_action(self, session: tuple[str, str], action: str) -> None:
            body = {"timeout": 2} if action == "connect" else None
            call("POST", f"/tenants/{session[0]}/sessions/{session[1]}/{action}", json=body)

        @rule(session=consumes(sessions))
        def delete_a_session(self, session: tuple[str, str]) -> None:
            call("DELETE", f"/tenants/{session[0]}/sessions/{session[1]}")

        @rule(session=sessions)
        def a_contact_writes(self, session: tuple[str, str]) -> None:
            try:
                trio.from_thread.run(functools.partial(control.send_message, session[1], "hi", sender=CONTACT))
            except ControlError as error:  # not connected (yet, or any more): the simulator refuses, fine
                assert "not connected" in str(error) or "unknown session" in str(error), error

        @rule(queue=st.sampled_from(QUEUES),
              action=st.sampled_from(["pause", "resume", "clean"]))
        def queue_action(self, queue: str, action: str) -> None:
            call("POST", f"/queues/{queue}/{action}", json={"older_than": 0} if action == "clean" else None)

        @rule(queue=st.sampled_from(QUEUES), data=st.data())
        def retry_or_delete_a_job(self, queue: str, data: st.DataObject) -> None:
            jobs = call("GET", f"/queues/{queue}/jobs")
            job_id = _pick(data, (jobs.json() if jobs.status_code == 200 else []) or [{"id": MISSING_ID}])["id"]
            if data.draw(st.booleans()):
                call("POST", f"/queues/{queue}/jobs/{job_id}/retry")
            else:
                call("DELETE", f"/queues/{queue}/jobs/{job_id}")

        @rule(target=webhooks, tenant=st.sampled_from([TENANT, "t2"]), local=st.booleans())
        def create_a_webhook(self, tenant: str, local: bool) -> tuple[str, int]:
            target = hook_url if local else "https://hooks.invalid/h"
            made = call("POST", f"/tenants/{tenant}/webhooks", json={"url": target, "events": ["*"]})
            return tenant, made.json()["id"] if made.status_code == 201 else MISSING_ID

        @rule(hook=consumes(webhooks))
        def delete_a_webhook(self, hook: tuple[str, int]) -> None:
            call("DELETE", f"/tenants/{hook[0]}/webhooks/{hook[1]}")

        @rule(tenant=st.sampled_from([TENANT, "t2"]))
        def add_a_user_and_token(self, tenant: str) -> None:
            user = call("POST", f"/tenants/{tenant}/users",
                        json={"email": f"u{next(counter)}@example.com", "name": "U"})
            if user.status_code == 201:
                call("POST", f"/tenants/{tenant}/tokens", json={"user_id": user.json()["id"]})

        @rule(path=st.sampled_from(["/tenants", "/queues", "/supervision/pools", "/supervision/events",
                                    "/readyz", f"/tenants/{TENANT}/tickets", "/tenants/t2/sessions"]))
        def read(self, path: str) -> None:
            call("GET", path)

        def teardown(self) -> None:
            """Between programs: the daemon answers, then what the program stopped is started again, so
            that each program begins from a running tree (the last one's restore is checked by the test)."""
            call("GET", "/healthz")
            if not problems:
                trio.from_thread.run(_restore, admin)

    return AdminStorm


def _machine_session(path: str) -> bool:
    parts = path.split("/")  # "", "tenants", tenant, "sessions", session
    return len(parts) == 5 and parts[3] == "sessions" and parts[4] != BYSTANDER


async def _restore(admin: httpx.AsyncClient) -> None:
    """What an operator does after the storm: resume the queues, start what is not running (parents
    first), reset breakers.
    The machine's own sessions are left as they are (logged out, failed: theirs to be); the
    bystander and every other actor must run again."""
    for queue in QUEUES:  # a program may have left one paused
        _check(await admin.post(f"/queues/{queue}/resume"), f"resume {queue}")
    todo: list[str] = []
    with trio.move_on_after(SETTLE_TIMEOUT):
        while True:
            todo = []

            def walk(node: dict) -> None:
                if _machine_session(node["path"]):
                    return
                if node["state"] == "running":
                    for child in node.get("children", ()):
                        walk(child)
                else:
                    todo.append(node["path"])

            tree = (await admin.get("/supervision/tree")).json()
            walk(tree)
            if not todo and BYSTANDER_PATH not in _actor_paths(tree):
                # A stop and start of /tenants or /tenants/t1 leaves its sessions' actors out (dynamic
                # children, as in OTP; the status board still shows the last status): the operator
                # restarts the session itself.
                _check(await admin.post(f"/tenants/{TENANT}/sessions/{BYSTANDER}/restart"), "restart the bystander")
                continue
            if not todo:
                return
            for path in todo:
                for action in ("breaker/reset", "actor/start"):
                    _check(await admin.post(f"/supervision/{action}", json={"path": path}), f"{action} {path}")
            await trio.sleep(RESTORE_POLL)
    raise AssertionError(f"still not running {SETTLE_TIMEOUT} s after the operator's starts: {todo}")


async def _delivers(admin: httpx.AsyncClient, control: SimulatorControl, text: str) -> None:
    """The bystander's inbound reaches its ticket, and the ticket's outbound reaches the contact."""
    session: dict = {}
    with trio.move_on_after(SETTLE_TIMEOUT) as waiting:
        while True:
            session = (await admin.get(f"/tenants/{TENANT}/sessions/{BYSTANDER}")).json()
            if session.get("status") == "connected":
                try:
                    await control.send_message(BYSTANDER, text, sender=FRIEND)
                    break
                except ControlError:  # disconnected again meanwhile: wait for it
                    pass
            await trio.sleep(0.1)
    assert not waiting.cancelled_caught, f"the bystander is not connected: {session}"
    ticket = None
    with trio.move_on_after(SETTLE_TIMEOUT) as waiting:
        while ticket is None:
            for candidate in (await admin.get(f"/tenants/{TENANT}/tickets")).json():
                page = (await admin.get(f"/tenants/{TENANT}/tickets/{candidate['id']}/messages")).json()
                if any(m["body"] == text for m in page["messages"]):
                    ticket = candidate
            await trio.sleep(0.1)
    assert ticket is not None, f"{text!r} never reached a ticket"
    reply = f"re: {text}"
    sent = await admin.post(f"/tenants/{TENANT}/tickets/{ticket['id']}/messages", json={"text": reply},
                            headers={"Idempotency-Key": reply})
    assert sent.status_code == 202, sent.text
    with trio.move_on_after(SETTLE_TIMEOUT) as waiting:
        while not any(m.get("text") == reply for m in await control.sent(BYSTANDER)):
            await trio.sleep(0.1)
    outbox = (await admin.get("/queues/outbox/jobs")).json()
    assert not waiting.cancelled_caught, f"{reply!r} never reached the contact; outbox: {outbox[-5:]}"


async def test_admin_actions_in_random_order_leave_the_daemon_up(tmp_path: Path, webhook_receiver) -> None:
    async with open_simulator(tmp_path / "simulator", "--auto-pair") as simulator, simulator.control() as control:
        daemon = Daemon(tmp_path, simulator.url, "daemon")
        daemon.env.update({"ZAPVISOR_WEBHOOKS__ALLOW_TARGETS": "127.0.0.1/32",
                           "ZAPVISOR_SUPERVISION__BACKOFF_MIN": "0.1", "ZAPVISOR_SUPERVISION__BACKOFF_MAX": "0.5"})
        try:
            url = await daemon.start()
            async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                                         timeout=HTTP_TIMEOUT) as admin:
                for tenant in (TENANT, *SESSION_TENANTS):
                    assert (await admin.post("/tenants", json={"id": tenant, "name": tenant})).status_code == 201
                made = await admin.post(f"/tenants/{TENANT}/sessions", json={"id": BYSTANDER, "name": "B"})
                assert made.status_code == 201, made.text
                assert (await admin.post(f"/tenants/{TENANT}/sessions/{BYSTANDER}/connect")).status_code == 200
                await _delivers(admin, control, "before the storm")
                root_before = (await admin.get("/supervision/tree")).json()

                statuses: list[int] = []
                problems: list[tuple[str, str]] = []
                machine = _machine(url, admin, control, webhook_receiver.url, statuses, problems)
                run = functools.partial(run_state_machine_as_test, machine, settings=settings(
                    max_examples=RUNS, stateful_step_count=STEPS, deadline=None, database=None, derandomize=True,
                    phases=(Phase.generate,),  # no shrinking: replays against a daemon whose state moved on
                    suppress_health_check=list(HealthCheck)))
                with trio.fail_after(RUN_TIMEOUT):
                    await trio.to_thread.run_sync(run)
                assert problems == [], problems[:20]
                counts = collections.Counter(status // 100 for status in statuses)
                # The programs did run (most steps are one or two requests), reached the operations
                # (2xx) as well as their refusals (4xx), and webhooks were delivered meanwhile.
                assert len(statuses) >= RUNS * STEPS // 2 and counts[2] > counts[4] > 0, counts
                assert webhook_receiver.calls

                assert daemon.process.poll() is None, daemon.log.read_text()[-5000:]
                assert (await admin.get("/healthz")).status_code == 200
                tree = (await admin.get("/supervision/tree")).json()
                # The root supervisor never exited (its uptime kept counting from before the storm).
                assert tree["state"] == "running" and tree["uptime"] > root_before["uptime"], tree
                await _delivers(admin, control, "after the storm")
                assert daemon.process.poll() is None, daemon.log.read_text()[-5000:]
        finally:
            daemon.kill()
