"""Scenarios that need extra set-up: --workers scaling, the fallback config, the catalog @slug, keys on.

Each returns a JSON-able dict, with "skipped"/"unavailable"/"pending" and a reason when it could
not run, so a result file always says why a figure is absent.
"""

from __future__ import annotations

import json
import subprocess
import time

from bench import launch, scen_http, targets
from bench.context import Bench
from bench.ready import NotReady, probe
from bench.stats import ratio

SUBJECT = "sluicegate"


def scaling(bench: Bench) -> dict:
    """sluicegate --workers N next to the single-worker one; the N-worker process lives only here."""
    if not bench.plan.scaling:
        return {"skipped": f"not part of the {bench.plan.mode} plan"}
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    name = f"{SUBJECT}-w{bench.plan.workers}"
    try:
        running = launch.start_sluicegate(bench.sup, bench.work, bench.ups, bench.shapes, bench.sluicegate_cmd,
                                          bench.plan.workers, name, bench.plan.settle_s, bench.sluicegate_version)
    except NotReady as exc:
        return {"unavailable": f"{name} did not start: {exc}"}
    bench.hops[name] = running
    try:
        scen_http.warm_up_one(bench, name)
        result = scen_http.scaling(bench, SUBJECT, name)
    finally:
        del bench.hops[name]
        bench.sup.stop(running.child)
    result["startup_s"] = running.startup_s
    result["idle_rss_mb"] = running.idle_rss / 2**20 if running.idle_rss else None
    return result


def fallback(bench: Bench) -> dict:
    """A 3-target fallback config (503, 503, ok) on each hop that accepts Portkey's config header.

    The hook lights up by itself: a hop whose probe request does not come back 200 is reported
    as unavailable with its answer, and measured once it answers.
    """
    if not bench.plan.fallback:
        return {"skipped": f"not part of the {bench.plan.mode} plan"}
    ready, result = [], {}
    for name in (SUBJECT, "portkey"):
        if name not in bench.hops:
            continue
        why = probe(bench.hops[name].target.endpoints["fallback3"], launch.EXPECT)
        if why:
            result[name] = {"unavailable": why}
        else:
            ready.append(name)
    if ready:
        result |= scen_http.variant(bench, ready, "fallback3")
    return result


def cache_hit(bench: Bench) -> dict:
    """sluicegate answering from its in-memory response cache, against direct's static upstream, both at c=1
    and c=50, rounds interleaved; ``added_p99_us``: the hit's p99 over direct's (the issue's ≤ 1 ms bar)."""
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    why = probe(bench.hops[SUBJECT].target.endpoints["cache_hit"], launch.EXPECT)  # stores the answer
    if why:
        return {"unavailable": why}
    result = scen_http.variant(bench, ["direct", SUBJECT], "cache_hit")
    ours, direct = result[SUBJECT]["c1"].get("p99_us"), result["direct"]["c1"].get("p99_us")
    if ours is not None and direct is not None:
        result[SUBJECT]["added_p99_us"] = ours - direct
    return result


def catalog_slug(bench: Bench) -> dict:
    """`model: "@bench-static/bench-static"`, resolved by sluicegate's Model Catalog, measured like fallback."""
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    why = create_catalog_provider(bench)
    if why:
        return {"pending": why}
    why = probe(bench.hops[SUBJECT].target.endpoints["catalog"], launch.EXPECT)
    if why:
        return {"unavailable": why}
    return scen_http.variant(bench, [SUBJECT], "catalog")


def create_catalog_provider(bench: Bench) -> str:
    """Create the provider slug targets.CATALOG_SLUG (OpenAI spec, host: the static upstream,
    key: targets.API_KEY) with sluicegate's CLI against the running hop's data dir; '' on success,
    else why not. The running gateway picks it up by its catalog poll (well under a second)."""
    slug = targets.CATALOG_SLUG.lstrip("@")
    argv = [*bench.sluicegate_cmd, "providers", "add", slug, "--spec", "openai",
            "--custom-host", bench.ups.base("static"), "--header", f"Authorization: Bearer {targets.API_KEY}"]
    env = launch.clean_env(SLUICEGATE_DATA_DIR=str(bench.work / f"{SUBJECT}-data"))
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return f"`sluicegate providers add` failed: {done.stderr.strip()[:300]}"
    time.sleep(1.0)  # one catalog poll interval and then some
    return ""


KEYS_HOP = f"{SUBJECT}-keys"
KEYS_OFF_HOP = f"{SUBJECT}-nokeys"
KEYS_BAR = 0.95  # keys on must keep at least 95 % of the throughput with keys off


def keys_on(bench: Bench) -> dict:
    """The same static request through two fresh sluicegates started side by side, alike but for one
    thing: the store of one holds an API key, so every request to it carries the key and is verified
    (x-portkey-api-key, snapshot lookup, scope and permission checks); the other has none (auto mode on
    loopback: open). Fresh both, so neither has the main hop's grown request log; measured interleaved."""
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    data_dir = bench.work / f"{KEYS_HOP}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [*bench.sluicegate_cmd, "keys", "create", "--name", "bench", "--json"]
    done = subprocess.run(argv, env=launch.clean_env(SLUICEGATE_DATA_DIR=str(data_dir)), capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0:
        return {"pending": f"`sluicegate keys create` failed: {done.stderr.strip()[-300:]}"}
    hops = {KEYS_OFF_HOP: None, KEYS_HOP: json.loads(done.stdout)["key"]}
    try:
        for name, secret in hops.items():
            bench.hops[name] = launch.start_sluicegate(bench.sup, bench.work, bench.ups, bench.shapes,
                                                       bench.sluicegate_cmd, 1, name, bench.plan.settle_s,
                                                       bench.sluicegate_version, secret)
            scen_http.warm_up_one(bench, name)
        result = scen_http.variant(bench, list(hops), "keys")
    except NotReady as exc:
        return {"unavailable": f"a keys-on hop did not start: {exc}"}
    finally:
        for name in hops:
            running = bench.hops.pop(name, None)
            if running is not None:
                bench.sup.stop(running.child)
    c = f"c{bench.plan.throughput_c}"
    share = ratio(result[KEYS_HOP][c]["rps"], result[KEYS_OFF_HOP][c]["rps"])
    result["_throughput_ratio"] = share
    result["_within_bar"] = share is not None and share >= KEYS_BAR
    return result


LIMITS_HOP = f"{SUBJECT}-limits"
LIMITS_OFF_HOP = f"{SUBJECT}-nolimits"
LIMITS_REDIS = "redis://127.0.0.1:6379/0"
LIMITS_BAR_US = 1000.0  # the limiter may add at most 1 ms to the p99 at c=1
# Limits far above what a run sends, so every request is checked (and counted) and none refused.
LIMITS_ARGS = ("--rate", "requests:rpm:1000000000", "--rate", "tokens:rpd:1000000000000",
               "--budget", "tokens:1000000000000", "--reset", "monthly")


def _keyed_store(bench: Bench, name: str, limits: bool) -> str:
    """A fresh data dir for hop ``name`` holding an API key (with generous limits when asked): its secret."""
    data_dir = bench.work / f"{name}-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = launch.clean_env(SLUICEGATE_DATA_DIR=str(data_dir))
    done = subprocess.run([*bench.sluicegate_cmd, "keys", "create", "--name", "bench", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise NotReady(f"`sluicegate keys create` failed: {done.stderr.strip()[-300:]}")
    made = json.loads(done.stdout)
    if limits:
        done = subprocess.run([*bench.sluicegate_cmd, "limits", "set", "key", made["id"], *LIMITS_ARGS], env=env,
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise NotReady(f"`sluicegate limits set` failed: {done.stderr.strip()[-300:]}")
    return made["key"]


def limits_on(bench: Bench) -> dict:
    """Two fresh sluicegates side by side, both with an API key on every request; the key of one has rate
    limits and a token budget counted in the local Redis (one script call to admit, one to settle per
    request). Measured interleaved; the figure is the p99 the limiter adds at c=1."""
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    hops = {LIMITS_OFF_HOP: {}, LIMITS_HOP: {"SLUICEGATE_REDIS_URL": LIMITS_REDIS}}
    try:
        for name, env in hops.items():
            secret = _keyed_store(bench, name, limits=bool(env))
            bench.hops[name] = launch.start_sluicegate(bench.sup, bench.work, bench.ups, bench.shapes,
                                                       bench.sluicegate_cmd, 1, name, bench.plan.settle_s,
                                                       bench.sluicegate_version, secret, env=env)
            scen_http.warm_up_one(bench, name)
        result = scen_http.variant(bench, list(hops), "keys")
    except NotReady as exc:
        return {"unavailable": f"a limits-on hop did not start (is Redis on 127.0.0.1:6379?): {exc}"}
    finally:
        for name in hops:
            running = bench.hops.pop(name, None)
            if running is not None:
                bench.sup.stop(running.child)
    base, limited = result[LIMITS_OFF_HOP]["c1"].get("p99_us"), result[LIMITS_HOP]["c1"].get("p99_us")
    added = limited - base if base is not None and limited is not None else None
    result["_p99_added_us"] = added
    result["_within_bar"] = added is not None and added <= LIMITS_BAR_US
    c = f"c{bench.plan.throughput_c}"
    result["_throughput_ratio"] = ratio(result[LIMITS_HOP][c]["rps"], result[LIMITS_OFF_HOP][c]["rps"])
    return result


CLUSTER_HOP = f"{SUBJECT}-cluster"


def cluster_python(sluicegate_cmd: list[str]) -> str | None:
    """The Python sluicegate runs on, when it is started as `python -m sluicegate` (demo/cluster.py needs
    it: the replicas run on the interpreter that runs the cluster)."""
    return sluicegate_cmd[0] if sluicegate_cmd[1:] == ["-m", "sluicegate"] else None


def replicas(bench: Bench) -> dict:
    """`make cluster`'s topology (N replicas on PostgreSQL and Redis, nginx in front) beside the single
    sluicegate process (SQLite), same requests, interleaved. On one machine the replicas, nginx, PostgreSQL
    and wrk share the same cores: this measures what the extra hop and the shared stores cost, not how far
    replicas on separate hosts scale."""
    plan = bench.plan
    if not plan.replicas:
        return {"skipped": f"not part of the {plan.mode} plan"}
    if SUBJECT not in bench.hops:
        return {"skipped": "sluicegate is not running"}
    python = cluster_python(bench.sluicegate_cmd)
    if python is None:
        return {"unavailable": "the cluster needs sluicegate started as `<python> -m sluicegate`"}
    try:
        running = launch.start_cluster(bench.sup, bench.work, bench.ups, bench.shapes, python, plan.replicas,
                                       CLUSTER_HOP, plan.settle_s, bench.sluicegate_version)
    except NotReady as exc:
        return {"unavailable": f"the cluster did not start (PostgreSQL on 127.0.0.1:5432, Redis on 6379?): {exc}"}
    bench.hops[CLUSTER_HOP] = running
    try:
        scen_http.warm_up_one(bench, CLUSTER_HOP)
        result = scen_http.variant(bench, [SUBJECT, CLUSTER_HOP], "static")
    finally:
        del bench.hops[CLUSTER_HOP]
        bench.sup.stop(running.child)
    c = f"c{plan.throughput_c}"
    result["_replicas"] = plan.replicas
    result["_throughput_ratio"] = ratio(result[CLUSTER_HOP][c]["rps"], result[SUBJECT][c]["rps"])
    result["_startup_s"] = running.startup_s
    result["_idle_rss_mb"] = running.idle_rss / 2**20 if running.idle_rss else None
    return result
