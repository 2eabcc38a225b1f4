//! The webhook under load on loopback: reviews per second and p50/p99 latency at 1, 16 and 64
//! concurrent keep-alive HTTP/1.1 connections, each sending one review after the other (the
//! Pod CREATE fixture with inline contents, as the API server sends it), in a closed loop (each
//! connection sends again as soon as it is answered) and at a paced 1,000 reviews/s. Client and server
//! share the process and the machine's cores, so the numbers are a floor for the server.
//!
//! `cargo bench -p credguard-k8s --bench webhook_load` (`CREDGUARD_LOAD_SECS`, default 5: the
//! measuring time per level, after one second of warm-up). Under `cargo test --benches` it
//! runs each level for a moment only, as a smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use credguard_k8s::webhook::Limits;
use hyper::StatusCode;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64) * p).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `connections` keep-alive connections, each sending its next review as soon as the last is
/// answered (`pace: None`: the most the machine does, latency mostly queueing), or at a fixed
/// total rate spread over the connections (`pace: Some(reviews per second)`: latency at a
/// load below saturation, as an API server sends).
async fn level(
    server: &support::Running,
    connections: usize,
    pace: Option<f64>,
    warmup: Duration,
    measure: Duration,
) {
    let body = support::fixture("review_pod_create.json")
        .to_string()
        .into_bytes();
    // Every connection made (TLS handshake included) before the clock starts.
    let mut clients = Vec::new();
    for _ in 0..connections {
        clients.push(support::connect(server.addr, server.client()).await.0);
    }
    let start = Instant::now();
    let warm_until = start + warmup;
    let stop_at = warm_until + measure;
    let mut tasks = Vec::new();
    for mut client in clients {
        let body = body.clone();
        let period = pace.map(|rate| Duration::from_secs_f64(connections as f64 / rate));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut ticks = period.map(|p| {
                let mut t = tokio::time::interval(p);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            loop {
                if let Some(ticks) = ticks.as_mut() {
                    ticks.tick().await;
                }
                let sent = Instant::now();
                if sent >= stop_at {
                    break;
                }
                let (status, reply) = client.post(body.clone()).await;
                let took = sent.elapsed();
                assert_eq!(status, StatusCode::OK);
                assert!(reply.len() > 50);
                if sent >= warm_until {
                    latencies.push(took);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort();
    println!(
        "webhook_load connections={connections:>2}  load={:>13}  reviews={:>7}  reviews/s={:>8.0}  p50={:>7.3} ms  p99={:>7.3} ms  max={:>7.3} ms",
        pace.map_or("closed loop".to_owned(), |r| format!("{r} reviews/s")),
        all.len(),
        all.len() as f64 / measure.as_secs_f64(),
        percentile(&all, 0.50).as_secs_f64() * 1e3,
        percentile(&all, 0.99).as_secs_f64() * 1e3,
        all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: a short smoke run then.
    let benching = std::env::args().any(|a| a == "--bench");
    let secs: f64 = std::env::var("CREDGUARD_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5.0);
    let (warmup, measure) = if benching {
        (Duration::from_secs(1), Duration::from_secs_f64(secs))
    } else {
        (Duration::from_millis(50), Duration::from_millis(200))
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = support::start(Limits::default()).await;
        println!(
            "webhook_load: {} CPUs available (client and server share them)",
            std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        );
        for connections in [1, 16, 64] {
            level(&server, connections, None, warmup, measure).await;
        }
        for connections in [16, 64] {
            level(&server, connections, Some(1000.0), warmup, measure).await;
        }
        server.stop().await;
    });
}
