"""jwtkit across fork(): the parent is never affected, a child gets its own
runtime, and objects made before the fork refuse use in the child.

Each scenario runs in a subprocess (with a timeout), since fork() in the
pytest process itself would fork pytest. Under the old behaviour (one
tokio runtime for the life of the library, inherited by the child without
its threads and sharing its epoll instance with the parent) the child hung
and the parent could abort; these scripts then fail (a child killed by its
alarm, or a parent that does not exit 0).

On the memory refresh store and on real Redis / Redis Cluster (`. .services/
env.sh`); with JWTKIT_REQUIRE_SERVICES=1 a missing server is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

BACKENDS = ["memory", "redis", "redis-cluster"]


def _spec(backend: str) -> str:
    if backend == "memory":
        return ""
    var = "JWTKIT_TEST_REDIS_URL" if backend == "redis" else "JWTKIT_TEST_REDIS_CLUSTER"
    value = os.environ.get(var, "").strip()
    if value:
        return value
    message = f"{backend} is not available: {var} is not set (run scripts/test.sh, or . .services/env.sh)"
    if os.environ.get("JWTKIT_REQUIRE_SERVICES") == "1":
        pytest.fail(message + "; JWTKIT_REQUIRE_SERVICES=1, so this is a failure, not a skip")
    pytest.skip(message)


# What both scripts share: a token service on the given refresh store.
_PRELUDE = textwrap.dedent(
    """
    import asyncio, gc, os, signal, sys, uuid
    import jwtkit

    SPEC, DIR = sys.argv[1], sys.argv[2]

    def make_service(store, **kwargs):
        if not SPEC:
            return jwtkit.TokenService(store, issuer="i", audience="a", **kwargs)
        return jwtkit.TokenService(store, issuer="i", audience="a", refresh_store=SPEC,
                                   refresh_key=b"k" * 32,
                                   refresh_prefix="jwtkit-py-fork:" + uuid.uuid4().hex + ":", **kwargs)

    def exercise(svc, who):
        pair = svc.issue(who)
        assert svc.verify(pair["access_token"])["sub"] == who
        again = svc.refresh(pair["refresh_token"])
        assert svc.verify(again["access_token"])["sub"] == who

        async def main():
            p = await svc.issue_async(who + "-async")
            claims = await svc.verify_async(p["access_token"])
            assert claims["sub"] == who + "-async", claims
            await svc.refresh_async(p["refresh_token"])
        asyncio.run(main())

    def wait_children(pids):
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status):
                print(f"parent: child {pid} killed by signal {os.WTERMSIG(status)} (hung)", flush=True)
                sys.exit(3)
            if os.WEXITSTATUS(status) != 0:
                print(f"parent: child {pid} exited {os.WEXITSTATUS(status)}", flush=True)
                sys.exit(4)
    """
)

# The parent uses everything (sync, async, a running maintenance task, a
# store verifier, a JWKS client) and forks three children while all of it
# is live. Each child builds its own objects (they work, sync and async),
# finds the parent's objects refused with the fork error, drops them; the
# parent then keeps working on its own objects.
_PARENT_USED_EVERYTHING = _PRELUDE + textwrap.dedent(
    """
    store = jwtkit.KeyStore.open(f"file:{DIR}/k")
    svc = make_service(store, init_algorithm="ES256")
    exercise(svc, "parent")
    maintenance = svc.start_maintenance(1)
    verifier = store.verifier(audience="a", issuer="i")
    token = store.sign({"sub": "s", "aud": "a", "iss": "i"})
    assert verifier.verify(token)["sub"] == "s"
    jwks = jwtkit.PyJWKClient("http://127.0.0.1:9/jwks")

    pids = []
    for n in range(3):
        pid = os.fork()
        if pid == 0:
            signal.alarm(30)          # a hung child is killed, and the parent says so
            try:
                child_store = jwtkit.KeyStore.open(f"file:{DIR}/k")
                exercise(make_service(child_store), f"child{n}")
                print("child: own objects work", flush=True)
                refusals = [
                    lambda: svc.issue("x"),
                    lambda: svc.verify("a.b.c"),
                    lambda: svc.issue_async("x"),
                    lambda: store.sign({"sub": "x"}),
                    lambda: store.jwks(),
                    lambda: store.verifier(),
                    lambda: verifier.verify(token),
                    lambda: jwtkit.TokenService(store, issuer="i", audience="a"),
                    lambda: jwks.get_signing_keys(),
                ]
                for call in refusals:
                    try:
                        call()
                    except jwtkit.ConfigurationError as e:
                        assert e.kind == "forked", e.kind
                        assert "after the fork" in str(e) and "gunicorn --preload" in str(e), str(e)
                    else:
                        raise AssertionError("a pre-fork object was usable in the child")
                print("child: pre-fork objects refused", flush=True)
                assert not maintenance.running   # the parent's task: not running here
                maintenance.stop()               # and nothing to stop
                repr(svc), repr(store), repr(verifier), repr(maintenance)
                del svc, store, verifier, maintenance, jwks
                gc.collect()                     # dropped in the child: leaked, the parent untouched
            except BaseException as e:
                print("child failed:", type(e).__name__, e, flush=True)
                os._exit(1)
            if n == 2:
                sys.exit(0)                      # a normal interpreter exit, finalizers and all
            os._exit(0)
        pids.append(pid)
    wait_children(pids)
    exercise(svc, "parent-after")
    assert verifier.verify(token)["sub"] == "s"
    assert maintenance.running
    maintenance.stop()
    print("parent: ok", flush=True)
    """
)

# f1b: the parent only used a file KeyStore; the child builds a service.
_PARENT_USED_A_FILE_STORE = _PRELUDE + textwrap.dedent(
    """
    store = jwtkit.KeyStore.open(f"file:{DIR}/k")
    store.init("ES256")
    store.sign({"sub": "a"})
    pid = os.fork()
    if pid == 0:
        signal.alarm(30)
        try:
            exercise(make_service(jwtkit.KeyStore.open(f"file:{DIR}/k")), "child")
            print("child: own objects work", flush=True)
        except BaseException as e:
            print("child failed:", type(e).__name__, e, flush=True)
            os._exit(1)
        os._exit(0)
    wait_children([pid])
    store.sign({"sub": "b"})
    exercise(make_service(store), "parent-after")
    print("parent: ok", flush=True)
    """
)


def _run(script: str, backend: str, tmp_path) -> str:
    spec = _spec(backend)
    try:
        done = subprocess.run([sys.executable, "-c", script, spec, str(tmp_path)],
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the fork scenario hung: {e.stdout!r} {e.stderr!r}")
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_child_gets_its_own_runtime_and_the_parent_is_never_affected(backend, tmp_path):
    out = _run(_PARENT_USED_EVERYTHING, backend, tmp_path)
    assert out.count("child: own objects work") == 3, out
    assert out.count("child: pre-fork objects refused") == 3, out
    assert out.rstrip().endswith("parent: ok"), out


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_child_of_a_process_that_only_used_a_file_store_does_not_hang(backend, tmp_path):
    out = _run(_PARENT_USED_A_FILE_STORE, backend, tmp_path)
    assert "child: own objects work" in out, out
    assert out.rstrip().endswith("parent: ok"), out


# An asyncio program that exits right after its last awaitable: the thread
# that handed the result to asyncio may still hold Python objects when the
# interpreter finalizes. It used to crash at exit now and then (SIGSEGV in
# a runtime thread ended by CPython while it held the GIL); the package's
# atexit hook now lets it finish first.
_ASYNC_THEN_EXIT = _PRELUDE + textwrap.dedent(
    """
    store = jwtkit.KeyStore.open(f"file:{DIR}/k")
    svc = make_service(store, init_algorithm="ES256")

    async def main():
        for _ in range(3):
            p = await svc.issue_async("a")
            await svc.refresh_async(p["refresh_token"])
            await svc.verify_async(p["access_token"])
    asyncio.run(main())
    print("ok", flush=True)
    """
)


@pytest.mark.parametrize("backend", ["redis", "redis-cluster"])
def test_an_asyncio_program_exits_cleanly_after_its_last_awaitable(backend, tmp_path):
    crashes = []
    for n in range(25):
        d = tmp_path / str(n)
        d.mkdir()
        spec = _spec(backend)
        done = subprocess.run([sys.executable, "-c", _ASYNC_THEN_EXIT, spec, str(d)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0 or done.stdout.strip() != "ok":
            crashes.append((done.returncode, done.stdout[-200:], done.stderr[-500:]))
    assert not crashes, crashes
