//! A namespace budget on the real apiserver: the operator's reflector cache, its status writes and a
//! restart, with the sandbox's ledger as the truth of what was charged.

use super::harness::*;

/// Two DealPayments created together, the budget enough for one: exactly one is charged, the other
/// says OverBudget with the figures; a restarted operator (memory gone) counts the same spend from
/// status; a larger budget lets the second pay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn budget_window_exhaustion_across_two_deal_payments_in_one_namespace() {
    let s = setup("e2e-budget", &[]).await;
    let orders = s.sb.add_orders("4700000000000", 2).await; // 1.00 each
    secret(&s.client, &s.ns, "creds", DEMO_ID, DEMO_KEY).await;
    let budget = format!("{}=1.50/24h", s.ns);
    let op = s
        .operator_with("", &s.ns, &["--namespace-budget", &budget], &[])
        .await;
    for (i, o) in orders.iter().enumerate() {
        payment(
            &s.client,
            &s.ns,
            &format!("p{i}"),
            std::slice::from_ref(o),
            Some("creds"),
        )
        .await;
    }
    let reason = |dp: &dealpay_operator::api::DealPayment| {
        let st = dp.status.as_ref()?;
        dealpay_operator::engine::conditions::find(&st.conditions, "Ready")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    let api = kube::Api::<dealpay_operator::api::DealPayment>::namespaced(s.client.clone(), &s.ns);
    let settled = || async {
        let (a, b) = (api.get("p0").await.unwrap(), api.get("p1").await.unwrap());
        let (ra, rb) = (reason(&a), reason(&b));
        let names = [ra.clone(), rb.clone()].map(|r| r.map(|r| r.0).unwrap_or_default());
        let mut sorted = names.clone();
        sorted.sort();
        (sorted == ["OverBudget", "Paid"]).then(|| {
            let over = if names[0] == "OverBudget" { ra } else { rb };
            over.unwrap().1
        })
    };
    wait_until("one Paid, one OverBudget", 90, || async {
        settled().await.is_some()
    })
    .await;
    let msg = settled().await.unwrap();
    for figure in [
        "1.00",
        "1.50 per 1d",
        "1.00 spent in the window",
        "0.50 left",
    ] {
        assert!(msg.contains(figure), "{figure} in {msg}");
    }
    assert_eq!(s.sb.charges().await.len(), 1, "exactly one order charged");

    // A new operator process knows nothing but the statuses: the spend is the same.
    op.kill().await;
    let op = s
        .operator_with("-2", &s.ns, &["--namespace-budget", &budget], &[])
        .await;
    let over = if reason(&api.get("p0").await.unwrap()).unwrap().0 == "OverBudget" {
        "p0"
    } else {
        "p1"
    };
    // Both objects seen by the new process (its first list): the waiting one decided again ("ok"),
    // the paid one kept as settled (counted by the gauge, never reconciled); and still only one charge.
    wait_until("the restarted operator sees both", 60, || async {
        let m = op.scrape().await;
        let count = |result: &str| {
            let prefix = format!("dealpay_reconciles_total{{result=\"{result}\"}} ");
            m.lines()
                .filter_map(|l| l.strip_prefix(prefix.as_str()))
                .filter_map(|n| n.parse::<f64>().ok())
                .sum::<f64>()
        };
        let paid = m
            .lines()
            .any(|l| l == r#"dealpay_dealpayments{ready="True",reason="Paid",dry_run="false"} 1"#);
        count("ok") >= 1.0 && paid
    })
    .await;
    let dp = api.get(over).await.unwrap();
    assert_eq!(reason(&dp).unwrap().0, "OverBudget");
    assert_eq!(
        s.sb.charges().await.len(),
        1,
        "still one charge after a restart"
    );

    // A budget with room for both: the waiting one is priced again and pays.
    op.kill().await;
    let budget = format!("{}=2.00/24h", s.ns);
    let op = s
        .operator_with("-3", &s.ns, &["--namespace-budget", &budget], &[])
        .await;
    wait_ready(&s.client, &s.ns, over, "True", "Paid", 90).await;
    assert_eq!(s.sb.charges().await.len(), 2);
    finish([op], s.sb).await;
}

/// Issue 21 defect 4 / issue 22: a paid DealPayment deleted (an Argo CD prune) and re-created, and the
/// operator restarted (memory gone): the namespace budget still counts the money that moved, from the
/// PaymentReceipt that outlived the DealPayment; the re-created one, refused as already paid, adds
/// nothing; the receipts say what was paid, for how much, and by which account (never the SecretId).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "end to end: needs scripts/local-cluster; scripts/test runs it with --include-ignored"]
async fn a_deleted_payment_still_counts_after_a_restart_from_its_receipt() {
    use dealpay_operator::api::{DealPayment, PaymentReceipt, ReceiptState};
    use kube::api::{DeleteParams, ListParams};
    let s = setup("e2e-receipt", &[]).await;
    let orders = s.sb.add_orders("4710000000000", 2).await; // 1.00 each
    secret(&s.client, &s.ns, "creds", DEMO_ID, DEMO_KEY).await;
    let budget = format!("{}=1.50/24h", s.ns);
    let flags = ["--namespace-budget", budget.as_str()];
    let op = s.operator_with("", &s.ns, &flags, &[]).await;
    payment(&s.client, &s.ns, "p0", &orders[..1], Some("creds")).await;
    wait_ready(&s.client, &s.ns, "p0", "True", "Paid", 90).await;
    let receipts = kube::Api::<PaymentReceipt>::namespaced(s.client.clone(), &s.ns);
    let charged = || async {
        receipts
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|st| st.state == ReceiptState::Charged)
            })
            .collect::<Vec<_>>()
    };
    wait_until("p0's receipt settles Charged", 30, || async {
        !charged().await.is_empty()
    })
    .await;
    let r = charged().await.remove(0);
    let st = r.status.clone().unwrap();
    assert_eq!(r.spec.deal_payment.name, "p0");
    assert_eq!(r.spec.ids, orders[..1]);
    assert_eq!(st.amount.as_deref(), Some("1.00"), "{st:?}");
    assert!(!st.request_ids.is_empty(), "{st:?}");
    assert!(
        r.metadata.owner_references.is_none(),
        "not owned: it outlives p0"
    );
    assert!(!r.spec.account.is_empty() && !r.spec.account.contains(DEMO_ID));

    // Pruned, then the operator restarts with no memory of it.
    let dps = kube::Api::<DealPayment>::namespaced(s.client.clone(), &s.ns);
    dps.delete("p0", &DeleteParams::default()).await.unwrap();
    wait_until("p0 is gone", 60, || async {
        dps.get_opt("p0").await.unwrap().is_none()
    })
    .await;
    op.kill().await;
    let op = s.operator_with("-2", &s.ns, &flags, &[]).await;
    // Re-created by a sync: its order is paid already, so nothing is charged and, once its attempt is
    // settled (its reservation counts while it is in flight), nothing more counts.
    payment(&s.client, &s.ns, "p0", &orders[..1], Some("creds")).await;
    wait_ready(&s.client, &s.ns, "p0", "True", "Paid", 90).await;
    payment(&s.client, &s.ns, "p1", &orders[1..], Some("creds")).await;
    wait_ready(&s.client, &s.ns, "p1", "False", "OverBudget", 90).await;
    let p1 = dps.get("p1").await.unwrap();
    let msg = dealpay_operator::engine::conditions::find(&p1.status.unwrap().conditions, "Ready")
        .unwrap()
        .message
        .clone();
    assert!(
        msg.contains("1.00 spent in the window") && msg.contains("0.50 left"),
        "{msg}"
    );
    assert_eq!(s.sb.charges().await.len(), 1, "one charge in all");
    assert_eq!(charged().await.len(), 1, "one Charged receipt");
    finish([op], s.sb).await;
}
