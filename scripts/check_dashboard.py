#!/usr/bin/env python3
"""Checks dashboards/feedgate.json, statically and against a live Prometheus.

Static checks (always): the dashboard is importable as is, through the UI
and by provisioning: current schema, a `datasource` template variable and no
hard-coded data source UID anywhere, multi-value `transport`, `protocol`
and `tls` variables with All, every selector of a series that carries the
`protocol` and `tls` labels filtered by both variables, unique panel ids,
sane grid positions, a unit on every panel, a refId, an expression and a
legend on every target, and no Grafana variable that the dashboard does not
define.

Live checks (with --prometheus): every panel target's PromQL, with Grafana's
variables substituted the way Grafana would, is evaluated through
Prometheus' HTTP API (/api/v1/query) and must return data:
  * at least one series, no NaN or infinite value;
  * every label the legend names ({{transport}}, {{result}} …) is present,
    and no two series render the same legend;
  * a per-transport target (its legend names {{transport}}) returns exactly
    one series per expected transport: the transports selected in the
    variable, narrowed by a literal transport matcher in the expression, and
    by a result matcher that only polls can produce.
  * a target whose legend names {{protocol}} or {{tls}} returns only
    series of the selected protocols and tls values.
--narrow repeats the live checks with the transport variable set to a
subset, which proves that every panel honours the variable. --link
PROTOCOL:TLS:TRANSPORTS repeats them with the protocol and tls variables
set to one link (and the transport variable to the transports that
carried traffic on it), so the per-protocol panels must show that link.
--rules additionally checks Prometheus' loaded rules: every group healthy,
every recording rule returning data (per transport where it keeps the label).

Only the Python standard library is used. Exit status 0 when every check
passed, 1 otherwise (each failure is printed).
"""

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SUBSCRIBER_TRANSPORTS = ["poll", "longpoll", "sse", "ws"]
# Results only short and long polls produce (see src/metrics.rs, Outcome).
POLL_ONLY_RESULTS = {"empty", "not_modified", "timeout"}
POLL_TRANSPORTS = {"poll", "longpoll"}
PROTOCOLS = ["h1", "h2"]
TLS_VALUES = ["false", "true"]
# The series labelled by protocol and tls (docs/operations.md, "HTTPS and
# HTTP/2"): every selector of one must filter by both variables.
LINKED_RE = re.compile(
    r"(feedgate_(?:wire_bytes_total|payload_bytes_total|events_delivered_total"
    r"|delivery_latency_seconds(?:_bucket|_sum|_count)?|connections))\{([^}]*)\}")
# Variables Grafana defines itself; the values are substituted by --rate-interval etc.
BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
            "__range_ms"}
# Grafana unit ids this dashboard may use (a typo renders as a literal
# suffix, silently); "suffix:…" and "prefix:…" are Grafana's custom units.
UNITS = {"none", "short", "percent", "percentunit", "bytes", "decbytes", "Bps", "binBps",
         "s", "ms", "us", "ops", "reqps", "eps", "cps", "mps"}
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
GRAFANA_BUILTIN_DS = {"type": "grafana", "uid": "-- Grafana --"}
VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
LEGEND_RE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class Report:
    """Collects failures; prints each as it is found."""

    def __init__(self):
        self.failures = 0
        self.passes = 0

    def fail(self, where, msg):
        self.failures += 1
        print(f"FAIL {where}: {msg}")

    def ok(self, where, msg):
        self.passes += 1
        print(f"ok   {where}: {msg}")


def all_panels(dash):
    """Every panel, including those nested in collapsed rows."""
    for p in dash.get("panels", []):
        yield p
        for q in p.get("panels", []) or []:
            yield q


def walk(obj, path=""):
    """Yields (path, key, value) for every dict entry in a JSON tree."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield path, k, v
            yield from walk(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from walk(v, f"{path}[{i}]")


def static_checks(dash, rep):
    where = "dashboard"
    if not isinstance(dash.get("schemaVersion"), int) or dash["schemaVersion"] < 36:
        rep.fail(where, f"schemaVersion {dash.get('schemaVersion')!r}: expected >= 36")
    uid = dash.get("uid")
    if not isinstance(uid, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
        rep.fail(where, f"uid {uid!r}: expected 1-40 of [A-Za-z0-9_-] (stable for provisioning)")
    if not dash.get("title"):
        rep.fail(where, "no title")
    if dash.get("id") is not None:
        rep.fail(where, "id must be null: Grafana assigns it on import")
    if "__inputs" in dash:
        rep.fail(where, "__inputs makes the JSON UI-import-only; use the datasource variable")

    # Data sources: only the template variable (and Grafana's built-in
    # annotation source) may be referenced. No UID is hard-coded.
    for path, k, v in walk(dash):
        if k == "datasource" and v not in (DS_REF, GRAFANA_BUILTIN_DS) and not path.startswith(".templating"):
            rep.fail(f"dashboard{path}", f"datasource {v!r}: expected {DS_REF}")
        if isinstance(v, str) and "${DS_" in v:
            rep.fail(f"dashboard{path}.{k}", "export placeholder ${DS_…} left in")

    variables = {}
    for v in dash.get("templating", {}).get("list", []):
        variables[v.get("name")] = v
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        rep.fail(where, "needs a template variable 'datasource' of type datasource, query prometheus")
    for name in ("transport", "protocol", "tls"):
        tv = variables.get(name)
        if not tv or not tv.get("multi") or not tv.get("includeAll"):
            rep.fail(where, f"needs a multi-value template variable '{name}' with All")
    for name, v in variables.items():
        if v.get("type") == "query" and v.get("datasource") != DS_REF:
            rep.fail(f"variable {name}", f"datasource {v.get('datasource')!r}: expected {DS_REF}")

    known = set(variables) | BUILTINS
    ids = set()
    boxes = []
    n_targets = 0
    for p in all_panels(dash):
        pw = f"panel {p.get('id')} {p.get('title')!r}"
        pid = p.get("id")
        if not isinstance(pid, int) or pid in ids:
            rep.fail(pw, "panel id missing or duplicated")
        ids.add(pid)
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) or g["x"] + g["w"] > 24:
            rep.fail(pw, f"gridPos {g!r}: needs integer h, w, x, y within 24 columns")
        else:
            for other_id, o in boxes:
                if (g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"]
                        and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]):
                    rep.fail(pw, f"overlaps panel {other_id}")
            boxes.append((pid, g))
        if p.get("type") == "row":
            continue
        if p.get("type") not in ("timeseries", "stat"):
            rep.fail(pw, f"panel type {p.get('type')!r}: expected timeseries or stat")
        if not p.get("title"):
            rep.fail(pw, "no title")
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit")
        if not unit:
            rep.fail(pw, "no unit in fieldConfig.defaults")
        elif unit not in UNITS and not re.match(r"(suffix|prefix):.", unit):
            rep.fail(pw, f"unit {unit!r} is not a Grafana unit id this check knows")
        refs = set()
        targets = p.get("targets") or []
        if not targets:
            rep.fail(pw, "no targets")
        for t in targets:
            n_targets += 1
            ref = t.get("refId")
            if not ref or ref in refs:
                rep.fail(pw, f"refId {ref!r} missing or duplicated")
            refs.add(ref)
            if not t.get("expr", "").strip():
                rep.fail(pw, f"target {ref}: empty expr")
            if not t.get("legendFormat"):
                rep.fail(pw, f"target {ref}: no legendFormat")
            for m in VAR_RE.finditer(t.get("expr", "")):
                name = next(g for g in m.groups() if g)
                if name not in known:
                    rep.fail(pw, f"target {ref}: variable ${name} is not defined")
            if "$transport" in t.get("expr", "") and 'transport=~"$transport"' not in t["expr"]:
                rep.fail(pw, f"target {ref}: use $transport only as transport=~\"$transport\"")
            for m in LINKED_RE.finditer(t.get("expr", "")):
                for want in ('protocol=~"$protocol"', 'tls=~"$tls"'):
                    if want not in m.group(2):
                        rep.fail(pw, f"target {ref}: {m.group(1)} is not filtered by {want}")
    if rep.failures == 0:
        rep.ok(where, f"static checks: {len(ids)} panels, {n_targets} targets, "
                      f"variables {sorted(variables)}")


def substitute(expr, values):
    def repl(m):
        name = next(g for g in m.groups() if g)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return VAR_RE.sub(repl, expr)


def prom_get(base, path, params=None, timeout=10):
    url = base.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(base, expr):
    data = prom_get(base, "/api/v1/query", {"query": expr, "time": f"{time.time():.3f}"})
    if data["resultType"] == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    if data["resultType"] != "vector":
        raise RuntimeError(f"result type {data['resultType']}, expected vector")
    return data["result"]


def wait_ready(base, timeout, min_samples, wait_for):
    """Polls until every target is up, has min_samples scrapes in the last
    minute, and every wait_for expression returns data. Bounded by timeout."""
    deadline = time.monotonic() + timeout
    last = "nothing asked yet"
    while time.monotonic() < deadline:
        try:
            active = prom_get(base, "/api/v1/targets")["activeTargets"]
            down = [t["scrapeUrl"] for t in active if t["health"] != "up"]
            if not active or down:
                last = f"targets not up: {down or 'none discovered yet'}"
            else:
                counts = query(base, "min(count_over_time(up[1m]))")
                n = float(counts[0]["value"][1]) if counts else 0
                missing = [e for e in wait_for if not query(base, e)]
                if n < min_samples:
                    last = f"{n:.0f} of {min_samples} scrapes"
                elif missing:
                    last = f"no data yet for {missing}"
                else:
                    print(f"prometheus ready: {len(active)} target(s) up, {n:.0f} scrapes in the last minute")
                    return True
        except (OSError, RuntimeError, KeyError) as e:
            last = str(e)
        time.sleep(0.5)
    print(f"FAIL prometheus not ready after {timeout}s: {last}")
    return False


def expected_transports(expr, selected):
    """The transports a per-transport target must return, derived from its
    expression and the variable selection."""
    want = set(selected)
    for m in re.finditer(r'transport=~"([^"$]*)"', expr):
        want = set(m.group(1).split("|")) if "$" not in m.group(1) else want
    for m in re.finditer(r'result=~"([^"]*)"', expr):
        results = set(m.group(1).split("|"))
        if results <= POLL_ONLY_RESULTS:
            want &= POLL_TRANSPORTS
    return want


def fmt_value(v):
    if abs(v) >= 100 or v == int(v):
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def live_checks(dash, base, values, selected, link, rep, label):
    """`selected`: the transport variable's values; `link`: the protocol
    and tls variables' ([protocols], [tls values])."""
    for p in all_panels(dash):
        if p.get("type") == "row":
            continue
        for t in p.get("targets", []):
            where = f"[{label}] {p['title']!r} {t['refId']}"
            try:
                expr = substitute(t["expr"], values)
            except KeyError as e:
                rep.fail(where, f"no value for variable ${e.args[0]}")
                continue
            try:
                result = query(base, expr)
            except (OSError, RuntimeError) as e:
                rep.fail(where, f"query failed: {e}\n    {expr}")
                continue
            legend_labels = LEGEND_RE.findall(t.get("legendFormat", ""))
            per_transport = "transport" in legend_labels
            # Judged on the dashboard's own text, before substitution.
            want = expected_transports(t["expr"], selected) if per_transport else None
            if not result:
                if want == set():
                    rep.ok(where, "no series, as expected for this selection")
                else:
                    rep.fail(where, f"no data\n    {expr}")
                continue
            bad = False
            legends = []
            for s in result:
                v = float(s["value"][1])
                if math.isnan(v) or math.isinf(v):
                    rep.fail(where, f"value {v} for {s['metric']}")
                    bad = True
                missing = [lab for lab in legend_labels if not s["metric"].get(lab)]
                if missing:
                    rep.fail(where, f"series {s['metric']} lacks legend label(s) {missing}")
                    bad = True
                legends.append(LEGEND_RE.sub(lambda m: s["metric"].get(m.group(1), ""),
                                             t["legendFormat"]))
            if len(set(legends)) != len(legends):
                rep.fail(where, f"series render the same legend: {sorted(legends)}")
                bad = True
            if per_transport:
                got = {s["metric"].get("transport") for s in result}
                if got != want:
                    rep.fail(where, f"transports {sorted(got)}, expected {sorted(want)}")
                    bad = True
            for lab, allowed in (("protocol", link[0]), ("tls", link[1])):
                if lab not in legend_labels:
                    continue
                got = {s["metric"].get(lab) for s in result}
                if not got <= set(allowed):
                    rep.fail(where, f"{lab} {sorted(got)}, but only {allowed} selected")
                    bad = True
            if not bad:
                shown = ", ".join(
                    f"{leg}={fmt_value(float(s['value'][1]))}"
                    for leg, s in sorted(zip(legends, result), key=lambda x: x[0]))
                rep.ok(where, shown)


def rule_checks(base, selected, rep):
    groups = prom_get(base, "/api/v1/rules")["groups"]
    n_rec = n_alert = 0
    for g in groups:
        for r in g["rules"]:
            where = f"[rules] {g['name']}/{r['name']}"
            if r.get("health") != "ok":
                rep.fail(where, f"health {r.get('health')}: {r.get('lastError')}")
                continue
            if r["type"] == "alerting":
                n_alert += 1
                rep.ok(where, f"alert evaluates ({r.get('state')})")
                continue
            n_rec += 1
            result = query(base, r["name"])
            if not result:
                rep.fail(where, "recorded series has no data")
                continue
            if r["name"].split(":")[0].split("_")[0] == "transport":
                got = {s["metric"].get("transport") for s in result}
                if not set(selected) <= got:
                    rep.fail(where, f"transports {sorted(got)}, expected at least {sorted(selected)}")
                    continue
            rep.ok(where, f"{len(result)} series")
    if n_rec + n_alert == 0:
        rep.fail("[rules]", "Prometheus has no rules loaded")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dashboard")
    ap.add_argument("--prometheus", help="base URL of a Prometheus scraping feedgate")
    ap.add_argument("--rate-interval", default="15s", help="value of $__rate_interval")
    ap.add_argument("--interval", default="5s", help="value of $__interval")
    ap.add_argument("--range", default="1m", help="value of $__range")
    ap.add_argument("--transports", default=",".join(SUBSCRIBER_TRANSPORTS),
                    help="the transport variable's selection (default: All)")
    ap.add_argument("--narrow", help="also check with only these transports selected, e.g. sse,ws")
    ap.add_argument("--link", action="append", default=[],
                    help="also check with protocol and tls set to one link and the transport "
                         "variable to the transports it carried, e.g. h2:true:poll,longpoll,sse "
                         "(repeatable)")
    ap.add_argument("--rules", action="store_true", help="also check Prometheus' loaded rules")
    ap.add_argument("--wait", type=float, default=0,
                    help="first wait up to this many seconds for targets up and samples")
    ap.add_argument("--min-samples", type=int, default=10,
                    help="scrapes in the last minute that --wait waits for")
    ap.add_argument("--wait-for", action="append", default=[],
                    help="an expression --wait waits to return data (repeatable)")
    args = ap.parse_args()

    with open(args.dashboard, encoding="utf-8") as f:
        dash = json.load(f)
    rep = Report()
    static_checks(dash, rep)

    if args.prometheus:
        if args.wait and not wait_ready(args.prometheus, args.wait, args.min_samples, args.wait_for):
            return 1
        range_s = substitute_seconds(args.range)
        base_values = {
            "__rate_interval": args.rate_interval, "__interval": args.interval,
            "__interval_ms": str(int(substitute_seconds(args.interval) * 1000)),
            "__range": args.range, "__range_s": str(int(range_s)),
            "__range_ms": str(int(range_s * 1000)),
            # instance's All value (allValue in the dashboard).
            "instance": ".+",
        }
        every_link = (PROTOCOLS, TLS_VALUES)
        passes = [("all transports", args.transports.split(","), every_link)]
        if args.narrow:
            passes.append((f"transport={args.narrow}", args.narrow.split(","), every_link))
        for spec in args.link:
            try:
                protocol, tls, transports = spec.split(":")
            except ValueError:
                raise SystemExit(f"--link {spec!r}: expected PROTOCOL:TLS:TRANSPORTS")
            passes.append((f"protocol={protocol} tls={tls} transport={transports}",
                           transports.split(","), ([protocol], [tls])))
        for label, sel, link in passes:
            values = dict(base_values, transport=alternation(sel), protocol=alternation(link[0]),
                          tls=alternation(link[1]))
            live_checks(dash, args.prometheus, values, sel, link, rep, label)
        if args.rules:
            rule_checks(args.prometheus, args.transports.split(","), rep)

    print(f"{rep.passes} passed, {rep.failures} failed")
    return 1 if rep.failures else 0


def alternation(sel):
    """A multi-value selection as Grafana's Prometheus data source formats
    it: a regex alternation, (a|b|c)."""
    return "(" + "|".join(sel) + ")" if len(sel) > 1 else sel[0]


def substitute_seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not m:
        raise SystemExit(f"{text!r}: expected a duration like 15s or 1m")
    return float(m.group(1)) * units[m.group(2)]


if __name__ == "__main__":
    sys.exit(main())
