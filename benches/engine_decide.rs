//! Prints how many engine decisions and TC3 signatures one core makes per second.

use std::hint::black_box;
use std::time::Instant;

use dealpay_operator::api::{DealPaymentSpec, DealPaymentStatus};
use dealpay_operator::engine::{Action, CredentialsState, Event, Input, Policy, decide};
use dealpay_operator::tencent::Credentials;
use dealpay_operator::tencent::models::{PayDealsResponse, ResourceIds};
use dealpay_operator::tencent::sign::{SignInput, sign};

fn main() {
    let spec = DealPaymentSpec {
        order_ids: (0..10).map(|i| format!("2026112800000000{i:04}")).collect(),
        ..Default::default()
    };
    let policy = Policy::default();
    let now: jiff::Timestamp = "2026-11-28T10:00:00Z".parse().unwrap();
    fn input<'a>(
        spec: &'a DealPaymentSpec,
        status: Option<&'a DealPaymentStatus>,
        now: jiff::Timestamp,
        event: Event,
    ) -> Input<'a> {
        Input {
            spec,
            status,
            generation: 1,
            now,
            jitter: 0.5,
            attempt_id: "a".into(),
            credentials: CredentialsState::Available {
                version: "1".into(),
            },
            event,
        }
    }
    // `cargo bench` passes --bench; `cargo test --all-targets` runs a short smoke pass instead.
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 200_000 } else { 1_000 };
    let started = Instant::now();
    for _ in 0..n {
        let d = decide(input(&spec, None, now, Event::Observe), &policy);
        let resp = PayDealsResponse {
            order_ids: spec.order_ids.clone(),
            resource_ids: ResourceIds {
                all: vec!["ins-1".into()],
                ..Default::default()
            },
            big_deal_ids: vec![],
            request_id: "r".into(),
        };
        let Action::Pay { attempt, .. } = d.action else {
            panic!("a new payment starts an attempt")
        };
        let event = Event::Paid {
            attempt,
            result: Ok(resp),
        };
        let d = black_box(decide(input(&spec, Some(&d.status), now, event), &policy));
        assert!(matches!(d.action, Action::LookUp { .. }), "{:?}", d.action);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "engine: {:.0} decisions/s ({n} payments of 10 orders, 2 decisions each, {:.2} us/decision)",
        2.0 * n as f64 / secs,
        secs * 1e6 / (2.0 * n as f64)
    );

    let creds = Credentials::new(
        "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
        None,
    );
    let body = br#"{"OrderIds": ["20190225000000000001"], "AutoVoucher": 0}"#;
    let started = Instant::now();
    let m = if full { 200_000 } else { 1_000 };
    for i in 0..m {
        black_box(sign(
            &creds,
            &SignInput {
                service: "billing",
                host: "billing.intl.tencentcloudapi.com",
                content_type: "application/json",
                timestamp: 1551113065 + i,
                body,
            },
        ));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "tc3 signer: {:.0} signatures/s ({:.2} us each)",
        m as f64 / secs,
        secs * 1e6 / m as f64
    );
}
