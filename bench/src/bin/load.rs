//! The load test (issue 11, acceptance 6): the real server (the build this binary belongs to) on
//! loopback with a temp data dir, N real agent processes, each its own user with its own home
//! tree, backing up and restoring repeatedly for a bounded time, plus M clients sending 256 MiB
//! uploads in parallel (expected: 413, or 503 `busy`; never a crash), plus probes that time
//! `check` and `commit` under that load. Prints agent errors, the server's peak RSS (sampled from
//! /proc) and the p50/p99 latency of `check` and `commit`. Run it through `bench/load.sh`.
//!
//! Options (all optional): `--agents 50 --seconds 120 --big-clients 8 --big-mib 256 --probes 4
//! --config-extra 'KEY: VALUE'` (a YAML line appended to the server's config; repeatable, e.g.
//! `--config-extra 'limits: {login_burst: 100}'`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asgard_core::{ChunkId, stored};
use asgard_e2e::{Agent, Api, Server, multipart, random_bytes, snapshot};
use serde_json::json;

struct Options {
    agents: usize,
    seconds: u64,
    big_clients: usize,
    big_mib: u64,
    probes: usize,
    config_extra: Vec<String>,
}

fn options() -> Options {
    let mut o = Options {
        agents: 50,
        seconds: 120,
        big_clients: 8,
        big_mib: 256,
        probes: 4,
        config_extra: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let num = || {
            value
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{}: a number", args[i]))
        };
        match args[i].as_str() {
            "--agents" => o.agents = num() as usize,
            "--seconds" => o.seconds = num(),
            "--big-clients" => o.big_clients = num() as usize,
            "--big-mib" => o.big_mib = num(),
            "--probes" => o.probes = num() as usize,
            "--config-extra" => o.config_extra.push(value),
            other => {
                panic!("unknown option {other} (see the doc comment of bench/src/bin/load.rs)")
            }
        }
        i += 2;
    }
    o
}

/// `VmRSS` of a process, in bytes (0 when it is gone).
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

/// A home tree of a few files of varied sizes (about 1.5 MiB).
fn write_tree(root: &Path, seed: u64) {
    std::fs::create_dir_all(root.join("Dokumente/alt")).unwrap();
    for i in 0..12u64 {
        let size = [900, 4_000, 60_000, 300_000][(i % 4) as usize] + i as usize * 7;
        let dir = if i % 3 == 0 {
            "Dokumente/alt"
        } else {
            "Dokumente"
        };
        std::fs::write(
            root.join(dir).join(format!("datei-{i}.bin")),
            random_bytes(size, seed * 100 + i),
        )
        .unwrap();
    }
}

#[derive(Default)]
struct AgentStats {
    backups: u64,
    restores: u64,
    errors: Vec<String>,
}

/// One agent: back up, change a file, restore and compare, until the deadline.
fn run_agent(server: &Server, i: usize, deadline: Instant) -> AgentStats {
    let agent = Agent::new(&format!("last{i}"), server);
    let home = tempfile::tempdir().unwrap();
    let tree = home.path().join("home");
    write_tree(&tree, i as u64);
    let mut stats = AgentStats::default();
    let mut round = 0u64;
    while Instant::now() < deadline && stats.errors.len() < 5 {
        round += 1;
        // A changed file each round (new content, new chunks).
        std::fs::write(
            tree.join(format!("Dokumente/neu-{}.bin", round % 3)),
            random_bytes(50_000 + round as usize, 1_000_000 + i as u64 * 1000 + round),
        )
        .unwrap();
        let out = agent.run(["backup".as_ref(), "--json".as_ref(), tree.as_os_str()]);
        if !out.status.success() {
            stats.errors.push(format!(
                "agent {i} backup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        stats.backups += 1;
        let to = home.path().join(format!("zurück-{round}"));
        let out = agent.restore_to(&tree, &to, &[]);
        if !out.status.success() {
            stats.errors.push(format!(
                "agent {i} restore: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let (want, got) = (snapshot(&tree), snapshot(&to.join("home")));
        let same = want.len() == got.len()
            && want
                .iter()
                .all(|(p, (d, _))| got.get(p).is_some_and(|(g, _)| g == d));
        if same {
            stats.restores += 1;
        } else {
            stats
                .errors
                .push(format!("agent {i}: restored tree differs"));
        }
        let _ = std::fs::remove_dir_all(&to);
    }
    stats
}

/// One client sending uploads of `mib` MiB (streamed, never held) until the deadline, at most
/// 20 of them; their statuses (or `error: …` for a connection that ended without an answer).
fn run_big_client(server: &Server, token: &str, mib: u64, deadline: Instant) -> Vec<String> {
    let api = Api::new(server);
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        if Instant::now() >= deadline {
            break;
        }
        let piece = vec![0x5a_u8; 1 << 20];
        let stream = futures_util::stream::iter(
            (0..mib).map(move |_| Ok::<_, std::io::Error>(piece.clone())),
        );
        let req = api
            .client()
            .post(format!("{}/api/upload", api.base))
            .bearer_auth(token)
            .header("content-type", "multipart/form-data; boundary=x")
            .header("content-length", mib << 20)
            .body(reqwest::Body::wrap_stream(stream));
        outcomes.push(match api.send_full(req) {
            Ok((status, _, _)) => status.to_string(),
            Err(e) => format!("error: {}", e.chars().take(120).collect::<String>()),
        });
        std::thread::sleep(Duration::from_secs(2));
    }
    outcomes
}

/// One probe: a check of 200 ids, an upload of one small chunk and a commit of one file, timed,
/// until the deadline. Returns (check latencies, commit latencies, errors).
fn run_probe(
    server: &Server,
    p: usize,
    deadline: Instant,
) -> (Vec<Duration>, Vec<Duration>, Vec<String>) {
    let agent = Agent::new(&format!("sonde{p}"), server);
    let out = agent.run(["login"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = agent.token();
    let api = Api::new(server);
    let (mut checks, mut commits, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut n = 0u64;
    while Instant::now() < deadline && errors.len() < 5 {
        n += 1;
        let data = random_bytes(4096, 9_000_000 + p as u64 * 100_000 + n);
        let id = ChunkId::of(&data);
        let ids: Vec<ChunkId> = (0..200u64)
            .map(|k| ChunkId::of(&(n * 1000 + k).to_le_bytes()))
            .chain([id])
            .collect();
        let t = Instant::now();
        let (st, _) = api.post_json("/api/check", Some(&token), &json!({ "chunks": ids }));
        checks.push(t.elapsed());
        if st != 200 {
            errors.push(format!("probe {p} check: {st}"));
        }
        let (ct, body) = multipart(&[(id.to_hex(), stored::encode(&data, 3))]);
        let up = api.send_full(
            api.client()
                .post(format!("{}/api/upload", api.base))
                .bearer_auth(&token)
                .header("content-type", ct)
                .body(body),
        );
        if !matches!(up, Ok((200, _, _))) {
            // Busy is fine for a probe: it is the upload that waits, not check or commit.
            std::thread::sleep(Duration::from_millis(500));
            continue;
        }
        let entry = json!({ "entries": [{ "kind": "file", "path": format!("/sonde/datei-{}", n % 50),
            "meta": { "size": 4096, "mtime_ns": n, "mode": 420, "attributes": 0, "hash": id,
                      "params": { "min": 32768, "avg": 131072, "max": 1048576 },
                      "chunks": [{ "id": id, "len": 4096 }] } }] });
        let t = Instant::now();
        let (st, body) = api.post_json("/api/commit", Some(&token), &entry);
        commits.push(t.elapsed());
        if st != 200 {
            errors.push(format!("probe {p} commit: {st} {body}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    (checks, commits, errors)
}

fn percentile(v: &mut [Duration], q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v[i]
}

fn main() {
    let o = options();
    let mut yaml =
        String::from("# the load test's server; defaults otherwise\nregistration: open\n");
    // All agents register from 127.0.0.1: raise the per-address registration limits (a
    // `--config-extra 'limits: ...'` replaces this line).
    if !o
        .config_extra
        .iter()
        .any(|l| l.trim_start().starts_with("limits:"))
    {
        yaml.push_str(
            "limits: {login_burst: 200, new_users_per_hour: 200, registrations_per_hour: 400}\n",
        );
    }
    for line in &o.config_extra {
        yaml.push_str(line);
        yaml.push('\n');
    }
    let server = Server::start_with_config(Some(&yaml));
    let pid = server.child.as_ref().expect("server process").id();
    println!(
        "load: server pid {pid} at {}; {} agents, {} × {} MiB uploads, {} probes, {} s",
        server.url, o.agents, o.big_clients, o.big_mib, o.probes, o.seconds
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(o.seconds);
    let peak = Arc::new(AtomicU64::new(rss(pid)));
    let start_rss = peak.load(Ordering::Relaxed);
    let done = Arc::new(AtomicBool::new(false));

    let big_agent = Agent::new("grosskunde", &server);
    assert!(big_agent.run(["login"]).status.success());
    let big_token = big_agent.token();

    let results = Mutex::new((AgentStats::default(), BTreeMap::<String, u64>::new()));
    let probes = Mutex::new((Vec::new(), Vec::new(), Vec::new()));
    std::thread::scope(|s| {
        {
            let (peak, done) = (peak.clone(), done.clone());
            s.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        }
        let mut workers = Vec::new();
        for i in 0..o.agents {
            let (server, results) = (&server, &results);
            workers.push(s.spawn(move || {
                let st = run_agent(server, i, deadline);
                let mut r = results.lock().unwrap();
                r.0.backups += st.backups;
                r.0.restores += st.restores;
                r.0.errors.extend(st.errors);
            }));
        }
        for _ in 0..o.big_clients {
            let (server, results, token) = (&server, &results, &big_token);
            workers.push(s.spawn(move || {
                for outcome in run_big_client(server, token, o.big_mib, deadline) {
                    *results.lock().unwrap().1.entry(outcome).or_default() += 1;
                }
            }));
        }
        for p in 0..o.probes {
            let (server, probes) = (&server, &probes);
            workers.push(s.spawn(move || {
                let (c, m, e) = run_probe(server, p, deadline);
                let mut all = probes.lock().unwrap();
                all.0.extend(c);
                all.1.extend(m);
                all.2.extend(e);
            }));
        }
        for w in workers {
            w.join().unwrap();
        }
        done.store(true, Ordering::Relaxed);
    });
    let alive = rss(pid) > 0;
    let (agents, big) = results.into_inner().unwrap();
    let (mut checks, mut commits, probe_errors) = probes.into_inner().unwrap();
    let peak = peak.load(Ordering::Relaxed);
    println!(
        "load: finished after {:.0} s; server still running: {alive}",
        started.elapsed().as_secs_f64()
    );
    println!(
        "agents: {} backups and {} restores (compared) by {} agents, {} errors",
        agents.backups,
        agents.restores,
        o.agents,
        agents.errors.len()
    );
    for e in agents.errors.iter().take(10) {
        println!("  {e}");
    }
    println!("{} MiB uploads by status: {big:?}", o.big_mib);
    println!(
        "server RSS: {} MiB at the start, peak {} MiB",
        start_rss >> 20,
        peak >> 20
    );
    println!(
        "check  ({} calls, 201 ids each): p50 {:?}, p99 {:?}",
        checks.len(),
        percentile(&mut checks, 0.5),
        percentile(&mut checks, 0.99)
    );
    println!(
        "commit ({} calls, 1 entry each):  p50 {:?}, p99 {:?}",
        commits.len(),
        percentile(&mut commits, 0.5),
        percentile(&mut commits, 0.99)
    );
    println!("probe errors: {}", probe_errors.len());
    for e in probe_errors.iter().take(5) {
        println!("  {e}");
    }
    let bad_big = big
        .keys()
        .filter(|k| !matches!(k.as_str(), "413" | "503"))
        .count();
    let ok = alive && agents.errors.is_empty() && probe_errors.is_empty() && peak < 400 << 20;
    println!(
        "result: {} (agent errors 0, server alive, peak RSS < 400 MiB; other answers to the big uploads: {bad_big})",
        if ok { "PASS" } else { "FAIL" }
    );
    std::process::exit(if ok { 0 } else { 1 });
}
