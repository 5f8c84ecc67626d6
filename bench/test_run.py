"""Tests of bench/run's arithmetic and parsing (no servers):
.venv/bin/python -m pytest -q bench/test_run.py"""

import csv
import importlib.machinery
import importlib.util
import io
import os
import subprocess
from pathlib import Path

import pytest

_loader = importlib.machinery.SourceFileLoader("bench_run", str(Path(__file__).with_name("run")))
_spec = importlib.util.spec_from_loader("bench_run", _loader)
run = importlib.util.module_from_spec(_spec)
_loader.exec_module(run)

WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:40001/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  420.11us   9.87ms   81.02%
    Req/Sec    21.10k     1.02k   22.87k    70.00%
  Latency Distribution
     50%    1.46ms
     75%    1.70ms
     90%    1.98ms
     99%    3.12ms
  104981 requests in 5.00s, 12.02MB read
  Socket errors: connect 0, read 17, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec:  20994.31
Transfer/sec:      2.40MB
"""


def test_parse_wrk():
    res = run.parse_wrk(WRK_OUTPUT)
    assert res["rps"] == pytest.approx(20994.31)
    assert res["p99_ms"] == pytest.approx(3.12)
    assert res["requests"] == 104981
    assert res["socket_errors"] == {"read": 17, "timeout": 2}
    assert res["non_2xx"] == 5


def test_parse_wrk_units():
    out = WRK_OUTPUT.replace("     99%    3.12ms", "     99%  850.00us")
    assert run.parse_wrk(out)["p99_ms"] == pytest.approx(0.85)
    out = WRK_OUTPUT.replace("     99%    3.12ms", "     99%    1.20s")
    assert run.parse_wrk(out)["p99_ms"] == pytest.approx(1200.0)


def test_percentile_is_nearest_rank():
    values = list(range(1, 1001))  # 1..1000
    assert run.percentile(values, 50) == 500
    assert run.percentile(values, 99) == 990
    assert run.percentile(values, 99.9) == 999
    assert run.percentile([7], 99.9) == 7
    assert run.percentile([1, 2], 50) == 1


def vegeta_row(sent_ns, status, latency_ns, error=""):
    # As Go's encoding/csv writes it (vegeta encode -to csv): quoted when needed.
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(
        [sent_ns, status, latency_ns, 0, 0, error, "", "", 0, "GET", "http://127.0.0.1:1/", ""])
    return out.getvalue()


def test_parse_vegeta_csv():
    # 1,001 requests sent over 1 s: 1,000 a second; latencies 1..1001 ms.
    text = "".join(vegeta_row(1_000_000_000 + i * 1_000_000, 200, (i + 1) * 1_000_000) for i in range(1000))
    text += vegeta_row(2_000_000_000, 0, 30_000_000_000, 'Get "http://x/": timeout, really')
    res = run.parse_vegeta_csv(text)
    assert res["requests"] == 1001
    assert res["rate"] == pytest.approx(1000.0)
    assert res["status"] == {"200": 1000, "0": 1}
    assert res["errors"] == {'Get "http://x/": timeout, really': 1}
    assert res["p50_ms"] == pytest.approx(501.0)
    assert res["p99_ms"] == pytest.approx(991.0)
    assert res["p999_ms"] == pytest.approx(1000.0)
    assert res["max_ms"] == pytest.approx(30000.0)


def test_front_split():
    before = {1: (100, "caddy run"), 2: (50, "python worker")}
    after = {1: (130, "caddy run"), 2: (70, "python worker"), 3: (5, "python worker")}
    assert run.front_split(before, after, lambda pid, cmd: pid == 1) == (30, 25)
    assert run.front_split(before, after, None) == (0, 55)
    assert run.front_split({}, after, lambda pid, cmd: pid == 1) == (130, 75)  # totals: memory
    assert run.us_per_request(run.CLK_TCK, 1000) == pytest.approx(1000.0)  # 1 s over 1,000 requests


def result(workload, server, rnd, rps, **extra):
    r = {"workload": workload, "server": server, "round": rnd, "ok": rps is not None, "flags": [],
         "rps": rps, "p99_ms": 1.0}
    if rps is None:
        r["error"] = "did not start"
    r.update(extra)
    return r


def test_pss_of_a_process_tree():
    values = run.subtree_values([os.getpid()], run.read_pss_kib)
    kib, cmd = values[os.getpid()]
    assert kib > 1024 and "pytest" in cmd  # this interpreter takes more than a MiB
    assert run.subtree_values([2 ** 22 + 1], run.read_pss_kib) == {}  # no such process


def test_memory_table():
    results = [result("hello", "caddy-wsgi", 1, 100.0, mem_front_mib=40.0, mem_workers_mib=20.4),
               result("hello", "caddy-wsgi", 2, 100.0, mem_front_mib=44.0, mem_workers_mib=22.4),
               result("hello", "granian", 1, 100.0, mem_workers_mib=30.0)]
    summaries = {"hello": run.summarize(results, "hello", ["caddy-wsgi", "granian"])}
    assert run.front_workers_md(summaries, [run.WORKLOAD_BY_NAME["hello"]], ["caddy-wsgi", "granian"],
                                "mem_front_mib", "mem_workers_mib").splitlines()[2:] == [
        "| caddy-wsgi | 42 / 21 |", "| granian | – / 30 |"]


def test_summarize_ratios_are_per_round():
    results = [
        result("hello", "caddy-wsgi", 1, 100.0, cpu_front_us=40.0),
        result("hello", "granian", 1, 200.0),
        result("hello", "caddy-wsgi", 2, 150.0, cpu_front_us=50.0),
        result("hello", "granian", 2, 100.0),
        result("hello", "caddy-wsgi", 3, 120.0, cpu_front_us=60.0),
        result("hello", "granian", 3, None),  # failed: no ratio for round 3
        result("flask", "granian", 1, 1.0),
    ]
    rows = {r["server"]: r for r in run.summarize(results, "hello", ["caddy-wsgi", "granian", "mod_wsgi"])}
    assert set(rows) == {"caddy-wsgi", "granian"}  # mod_wsgi did not run hello
    assert rows["caddy-wsgi"]["rps"] == (120.0, 100.0, 150.0)
    assert rows["caddy-wsgi"]["cpu_front_us"] == 50.0
    assert rows["granian"]["ratio"] == (pytest.approx(1.0), 0.5, 1.5)
    assert rows["granian"]["measured"] == 2 and rows["granian"]["of"] == 3
    assert rows["granian"]["notes"][0] == "2/3 rounds measured"
    assert "round 3: FAILED: did not start" in rows["granian"]["notes"]


def test_latency_tables_half_peak_and_common_rate():
    def lat(rate, p99):
        return {"target_rate": rate, "p50_ms": 1.0, "p99_ms": p99, "p999_ms": 2 * p99}

    results = [
        result("hello", "caddy-wsgi", 1, 100.0, latency=lat(50, 4.0), latency_common=lat(20, 1.0)),
        result("hello", "caddy-wsgi", 2, 120.0, latency=lat(60, 6.0), latency_common=lat(20, 3.0)),
        result("hello", "granian", 1, 400.0, latency=lat(200, 8.0), latency_common=lat(20, 2.0)),
    ]
    summaries = {"hello": run.summarize(results, "hello", ["caddy-wsgi", "granian"])}
    rows = {r["server"]: r for r in summaries["hello"]}
    assert rows["caddy-wsgi"]["latency"]["p99_ms"] == 5.0
    assert rows["caddy-wsgi"]["latency_common"]["p99_ms"] == 2.0
    assert run.latency_md(summaries, "latency_common").splitlines()[2:] == [
        "| hello | caddy-wsgi | 20 | 1.00 ms | 2.00 ms | 4.00 ms |",
        "| hello | granian | 20 | 1.00 ms | 2.00 ms | 4.00 ms |"]
    cfg = run.parse_args(["--workloads", "hello,file"])
    workloads = [run.WORKLOAD_BY_NAME["hello"], run.WORKLOAD_BY_NAME["file"]]
    machine = {"nproc": 2, "cpu": "?", "kernel": "?", "python": "?"}
    text = run.tables_md(cfg, machine, summaries, workloads, ["caddy-wsgi", "granian"])
    assert text.index("at half of each server's peak:") < text.index("at the same rate for every server:")
    assert "the same for every server (hello 1,000 req/s)" in text


def test_overview_shows_skipped_workloads_as_dash():
    results = [result("hello", "caddy-wsgi", 1, 100.0), result("hello", "caddy-respond", 1, 400.0),
               result("file", "caddy-wsgi", 1, 8.0), result("file", "caddy-file_server", 1, 10.0)]
    workloads = [run.WORKLOAD_BY_NAME["hello"], run.WORKLOAD_BY_NAME["file"]]
    servers = ["caddy-wsgi", "caddy-respond", "caddy-file_server"]
    summaries = {w.name: run.summarize(results, w.name, servers) for w in workloads}
    lines = run.overview_md(summaries, workloads, servers).splitlines()
    assert lines[2] == "| caddy-wsgi | **100** | **8.0** |"
    assert lines[3] == "| caddy-respond | 400 · 0.25 (0.25–0.25) | – |"
    assert lines[4] == "| caddy-file_server | – | 10.0 · 0.80 (0.80–0.80) |"


def test_plan_keeps_only_servers_that_fit_the_workload():
    cfg = run.parse_args(["--workloads", "hello,file", "--servers", "caddy-respond,caddy-wsgi,caddy-file_server"])
    assert [(w.name, s) for w, s in cfg.plan] == [
        ("hello", ["caddy-respond", "caddy-wsgi"]), ("file", ["caddy-wsgi", "caddy-file_server"])]
    smoke = run.parse_args(["--smoke"])
    plan = {w.name: servers for w, servers in smoke.plan}
    assert plan["hello"] == [s for s in run.ALL_SERVERS if s not in {*run.EXTRA_SERVERS, "caddy-file_server"}]
    assert plan["flask"] == run.PYTHON_SERVERS
    assert plan["django"] == plan["upload"] == plan["stream"] == ["caddy-wsgi"]
    assert plan["file"] == ["caddy-wsgi", "caddy-file_server"]
    assert (smoke.rounds, smoke.duration, smoke.warmup, smoke.retries) == (1, 1, 0, 0)


def test_update_readme(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{run.README_START}\nold table\n{run.README_END}\nrest\n")
    monkeypatch.setattr(run, "README", readme)
    run.update_readme("new table\n")
    assert readme.read_text() == f"intro\n{run.README_START}\n\nnew table\n\n{run.README_END}\nrest\n"


def test_pin_runs_the_client_on_its_cpu_and_the_servers_on_the_others():
    cfg = run.parse_args(["--pin", "--workloads", "hello"])
    status = ["grep", "Cpus_allowed_list", "/proc/self/status"]
    out = subprocess.run(run.client_argv(cfg, status), capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Cpus_allowed_list:", "0"]
    out = subprocess.run(run.pinned(cfg, status, run.server_cpus()), capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["Cpus_allowed_list:", run.server_cpus()]
    machine = {"nproc": os.cpu_count(), "cpu": "?", "kernel": "?", "python": "?"}
    assert "Pinned (--pin): the clients run on CPU 0" in run.settings_md(cfg, machine, cfg.workloads)
    unpinned = run.parse_args(["--workloads", "hello"])
    assert run.client_argv(unpinned, status) == status
    assert "(nothing pinned)" in run.settings_md(unpinned, machine, unpinned.workloads)
    with pytest.raises(SystemExit):
        run.parse_args(["--pin", "--readme"])
