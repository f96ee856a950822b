"""Keeps the router's hold workers registered (runs beside the vLLM Router in its pod).

The vLLM Router (IGW mode) learns a model's replicas from pod discovery,
so a model with zero replicas is unknown to it and gets 404. For each model
that scales to zero, the chart lists one "hold worker" (the KEDA HTTP
add-on's interceptor, under a name of the model's own) in WORKERS_FILE, a
JSON list of {"url": ..., "model_id": ...}. The router keeps workers added
with POST /workers in memory only, so this loop re-adds them whenever they
are missing (router restart, first start) and removes hold workers the file
no longer lists (upgrade). Standard library only: it runs on the router
image's python3.
"""

import json
import os
import signal
import sys
import time
import urllib.parse
import urllib.request

ROUTER = os.environ.get("ROUTER_URL", "http://127.0.0.1:8000")
WORKERS_FILE = os.environ.get("WORKERS_FILE", "/etc/llmops/hold-workers/workers.json")
INTERVAL_S = float(os.environ.get("INTERVAL_SECONDS", "5"))
# Touched every round, whatever the round's outcome: the container's probes check that the loop runs.
ALIVE_FILE = os.environ.get("ALIVE_FILE", "")
MARK = "llmops.io/hold-worker"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(ROUTER + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def wanted():
    try:
        with open(WORKERS_FILE, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return []


def reconcile():
    want = wanted()
    have = call("GET", "/workers")["workers"]
    urls = {w["url"] for w in have}
    for w in want:
        if w["url"] not in urls:
            # every model id of a URL again: the router indexes each one it was given
            for entry in (x for x in want if x["url"] == w["url"]):
                call("POST", "/workers", {"url": entry["url"], "model_id": entry["model_id"], "labels": {MARK: "true"}})
                print(f"registered {entry['model_id']} -> {entry['url']}", flush=True)
            urls.add(w["url"])
    keep = {w["url"] for w in want}
    for w in have:
        if (w.get("metadata") or {}).get(MARK) == "true" and w["url"] not in keep:
            call("DELETE", "/workers/" + urllib.parse.quote(w["url"], safe=""))
            print(f"removed {w['url']} (no longer listed)", flush=True)


def main():
    once = "--once" in sys.argv
    # PID 1 of its container: the kernel drops SIGTERM for a process without a handler, and the pod
    # would wait its whole grace period (minutes) for the SIGKILL on every rollout and uninstall.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        try:
            reconcile()
        except Exception as exc:  # the router may not listen yet, or restart; try again next round
            print(f"hold registrar: {exc}", flush=True)
            if once:
                return 1
        if once:
            return 0
        if ALIVE_FILE:
            with open(ALIVE_FILE, "w", encoding="utf-8") as fh:
                fh.write(str(time.time()))
        time.sleep(INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main())
