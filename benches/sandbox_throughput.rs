//! Sandbox throughput on loopback: N concurrent keep-alive clients send signed PayDeals and
//! DescribeDealsByCond requests through the project's client for a few seconds (rate limit off),
//! then requests/second and latency percentiles are printed. Bounded in time and count.
//!
//! `cargo bench --bench sandbox_throughput`; tune with SANDBOX_BENCH_SECS (default 5),
//! SANDBOX_BENCH_CLIENTS (default 32) and SANDBOX_BENCH_MAX_REQUESTS (default 200000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use dealpay_operator::sandbox::{DEMO_UIN, Order, Sandbox, SandboxConfig, World};
use dealpay_operator::tencent::models::{DescribeDealsRequest, PayDealsRequest, status};
use dealpay_operator::tencent::{Client, ClientConfig, Credentials};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Samples {
    pay: Vec<Duration>,
    describe: Vec<Duration>,
    errors: u64,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut v: Vec<Duration>, secs: f64) {
    v.sort();
    println!(
        "{name:<20} {:>8} req  {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        v.len(),
        v.len() as f64 / secs,
        percentile(&v, 0.50).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

async fn run(smoke: bool) {
    let (secs, clients, max_requests) = if smoke {
        (1, 4, 200)
    } else {
        (
            env_u64("SANDBOX_BENCH_SECS", 5).clamp(1, 60),
            env_u64("SANDBOX_BENCH_CLIENTS", 32).clamp(1, 512),
            env_u64("SANDBOX_BENCH_MAX_REQUESTS", 200_000).clamp(1, 2_000_000),
        )
    };

    // Enough unpaid orders that every PayDeals charges a fresh one.
    let pay_orders = max_requests / 2 + 1;
    let mut world = World::demo();
    for i in 0..pay_orders {
        let id = format!("bench{i:09}");
        world.orders.insert(id.clone(), Order::new(id, DEMO_UIN, 1));
    }
    let sb = Sandbox::start(SandboxConfig {
        state: world,
        rate_limit: 0,
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox starts");
    let client = Client::new(&ClientConfig {
        endpoint: sb.url(),
        rate_per_second: 0,
        timeout: Duration::from_secs(10),
        ..ClientConfig::default()
    })
    .expect("client");
    let creds = Arc::new(Credentials::new(
        dealpay_operator::sandbox::DEMO_SECRET_ID,
        dealpay_operator::sandbox::DEMO_SECRET_KEY,
        None,
    ));
    println!(
        "sandbox {} | {clients} keep-alive clients | {secs} s | at most {max_requests} requests | rate limit off",
        sb.url()
    );

    let issued = Arc::new(AtomicU64::new(0));
    let next_order = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for w in 0..clients {
        let (client, creds, issued, next_order) = (
            client.clone(),
            creds.clone(),
            issued.clone(),
            next_order.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut s = Samples::default();
            let mut n = w;
            while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max_requests
            {
                n += 1;
                let t = Instant::now();
                if n % 2 == 0 {
                    let i = next_order.fetch_add(1, Ordering::Relaxed);
                    let req = PayDealsRequest {
                        order_ids: vec![format!("bench{i:09}")],
                        ..Default::default()
                    };
                    let ok = client.pay_deals(&creds, None, &req).await.is_ok();
                    s.pay.push(t.elapsed());
                    s.errors += u64::from(!ok);
                } else {
                    let req = DescribeDealsRequest {
                        start_time: "2000-01-01 00:00:00".into(),
                        end_time: "2099-01-01 00:00:00".into(),
                        limit: 10,
                        status_set: status::ALL.to_vec(),
                        order_id: Some(format!("bench{:09}", n % pay_orders)),
                        ..Default::default()
                    };
                    let ok = client.describe_deals(&creds, None, &req).await.is_ok();
                    s.describe.push(t.elapsed());
                    s.errors += u64::from(!ok);
                }
            }
            s
        }));
    }
    let mut all = Samples::default();
    for t in tasks {
        let s = t.await.expect("worker");
        all.pay.extend(s.pay);
        all.describe.extend(s.describe);
        all.errors += s.errors;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut both = all.pay.clone();
    both.extend(all.describe.iter().copied());
    report("PayDeals", all.pay, elapsed);
    report("DescribeDealsByCond", all.describe, elapsed);
    report("all", both, elapsed);
    println!(
        "errors {} | ledger {} charges",
        all.errors,
        sb.ledger().len()
    );
    sb.shutdown().await;
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, and
    // then a short smoke run only proves the bench still works.
    let smoke = !args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    if !filters.is_empty()
        && !filters
            .iter()
            .any(|a| "sandbox_throughput".contains(a.as_str()))
    {
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run(smoke));
}
