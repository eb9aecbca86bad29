"""Scenarios that need extra set-up: --workers scaling, the fallback config, the catalog @slug.

Each returns a JSON-able dict, with "skipped"/"unavailable"/"pending" and a reason when it could
not run, so a result file always says why a figure is absent.
"""

from __future__ import annotations

from bench import launch, scen_http
from bench.context import Bench
from bench.ready import NotReady, probe

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
        result |= scen_http.fallback(bench, ready)
    return result


def catalog_slug(bench: Bench) -> dict:
    """Hook for the Model Catalog scenario: `model: "@slug/m"` resolved by sluicegate's catalog.

    To light it up: create a provider slug pointing at the static upstream in the sluicegate data
    dir before start (via sluicegate's CLI or admin API), add a `catalog` endpoint to its Target
    (body model "@bench/bench-static", no x-portkey-provider header), and measure it like
    `fallback` does. Until the catalog exists it reports itself as pending.
    """
    return {"pending": "sluicegate has no Model Catalog yet; see bench/steps.py:catalog_slug"}
