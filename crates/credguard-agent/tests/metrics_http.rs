//! `--metrics-listen`: the agent's metrics and health scraped over HTTP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Fake, World, round};
use credguard_agent::agent::{Agent, AgentOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// One HTTP/1.1 GET: the status line and the body.
async fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("no answer within 60 s")
    .unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_health_are_served() {
    let w = World::new();
    w.owned("live");
    w.owned("orphan");
    w.foreign("stranger");
    let source = Fake::listing("fake:/run/x.sock", &["live"]);
    let opts = AgentOptions::new(vec![source.boxed()])
        .with_interval(Duration::from_secs(3600))
        .with_metrics_listen("127.0.0.1:0".parse::<SocketAddr>().unwrap());
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let addr = agent.metrics_addr().unwrap();
    let mut rounds = agent.rounds();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    round(&mut rounds, 1).await;

    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for line in [
        "# TYPE credguard_agent_instances gauge",
        "credguard_agent_instances{owner=\"credguard\",state=\"active\"} 1",
        "credguard_agent_instances{owner=\"foreign\",state=\"none\"} 1",
        "# TYPE credguard_agent_removals_total counter",
        "credguard_agent_removals_total{reason=\"remove_not_alive\",owner=\"credguard\"} 1",
        "# TYPE credguard_agent_rounds_total counter",
        "credguard_agent_rounds_total 1",
        "# TYPE credguard_agent_failed_rounds_total counter",
        "# TYPE credguard_agent_last_successful_round_timestamp_seconds gauge",
        "# HELP credguard_agent_last_successful_round_timestamp_seconds ",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(line)),
            "no `{line}` in:\n{body}"
        );
    }
    let stamp: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("credguard_agent_last_successful_round_timestamp_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(stamp > 1.0e9, "{stamp}");
    // Every metric line has a HELP and a TYPE line before it.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "{name} has no TYPE"
        );
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "{name} has no HELP"
        );
    }

    assert_eq!(
        get(addr, "/healthz").await,
        ("HTTP/1.1 200 OK".to_owned(), "ok\n".to_owned())
    );
    assert_eq!(get(addr, "/nope").await.0, "HTTP/1.1 404 Not Found");

    stop.send(()).unwrap();
    task.await.unwrap();
}

/// A round held in HCS for longer than three intervals makes `/healthz` unhealthy.
#[tokio::test(start_paused = true)]
async fn a_stuck_loop_is_unhealthy() {
    use credguard_emulator::{Api, Fault, FaultAction};
    let w = World::new();
    let source = Fake::listing("fake", &["live"]);
    let opts = AgentOptions::new(vec![source.boxed()]).with_interval(Duration::from_secs(30));
    let agent = Agent::new(opts, w.async_client()).await.unwrap();
    let metrics = agent.metrics();
    let mut rounds = agent.rounds();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    round(&mut rounds, 1).await;
    assert!(metrics.healthy());
    // The next round's first HCS query is held until `end_delays`.
    w.emu
        .inject(Fault::new(Api::GetServiceProperties, FaultAction::None).delay_ms(3_600_000))
        .unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !w.emu.faults().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the round never started"
        );
        tokio::task::yield_now().await;
    }
    assert!(metrics.healthy());
    tokio::time::advance(metrics.stuck_after()).await;
    assert!(!metrics.healthy());
    w.emu.end_delays().unwrap();
    // The held round ends (the next may follow at once: the clock moved past its tick).
    rounds.wait_for(|r| r.number >= 2).await.unwrap();
    assert!(metrics.healthy());
    stop.send(()).unwrap();
    task.await.unwrap();
    assert!(!metrics.healthy(), "a stopped loop is not healthy");
}
