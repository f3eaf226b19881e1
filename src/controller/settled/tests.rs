use kube::runtime::watcher::Event;

use super::*;

fn object(name: &str, ns: &str, status: serde_json::Value) -> DealPayment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "billing.dealpay.dev/v1alpha1",
        "kind": "DealPayment",
        "metadata": {"name": name, "namespace": ns, "uid": format!("{ns}/{name}"), "resourceVersion": "7", "generation": 2},
        "spec": {"orderIds": ["o1"], "credentials": {"secretRef": {"name": "tencent"}}},
        "status": status,
    }))
    .unwrap()
}

/// Paid and delivered for generation 2: settled.
pub(crate) fn paid(name: &str, ns: &str) -> DealPayment {
    object(
        name,
        ns,
        serde_json::json!({
            "observedGeneration": 2,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Paid", "message": "paid and delivered o1 (RequestId r)",
                 "lastTransitionTime": "2026-11-29T10:00:00Z", "observedGeneration": 2},
                {"type": "Paid", "status": "True", "reason": "Paid", "message": "money moved",
                 "lastTransitionTime": "2026-11-29T10:00:00Z", "observedGeneration": 2}
            ],
            "orderIds": ["o1"], "resourceIds": ["ins-1"], "requestId": "r",
            "paidAt": "2026-11-29T10:00:00Z", "attempts": 1,
            "orders": [{"id": "o1", "state": "Paid", "tencentStatus": 4, "requestId": "r", "costCents": 1200}],
            "totalCost": "12.00", "currency": "CNY"
        }),
    )
}

/// Paid, delivery not yet seen: work left.
pub(crate) fn open(name: &str, ns: &str) -> DealPayment {
    let mut dp = paid(name, ns);
    let st = dp.status.as_mut().unwrap();
    st.conditions[0].status = "False".into();
    st.conditions[0].reason = "Delivering".into();
    dp
}

fn names(s: &Settled) -> Vec<String> {
    let mut out = Vec::new();
    s.for_each(None, |ns, name, _| out.push(format!("{ns}/{name}")));
    out.sort();
    out
}

#[test]
fn a_settled_object_leaves_the_store_and_keeps_what_budgets_and_gauges_read() {
    let s = Settled::default();
    let dp = paid("a", "n");
    let routed = s.before_store(Event::Apply(dp.clone()));
    assert!(
        matches!(routed, Some(Event::Delete(_))),
        "the store drops its copy"
    );
    assert_eq!(names(&s), ["n/a"]);
    let mut got = None;
    s.for_each(Some("n"), |_, _, sum| got = Some(sum.clone()));
    let sum = got.unwrap();
    assert_eq!(sum, Summary::of(&dp));
    assert_eq!(
        sum.charge,
        charge(dp.status.as_ref().unwrap()),
        "the budget counts the same money"
    );
    assert!(sum.charge.is_some());
    assert_eq!(sum.spent_cents, Some(1200));
    assert_eq!(sum.ready, Some(("True".into(), "Paid".into())));
    assert!(s.holds(&dp));
    let mut other_uid = dp.clone();
    other_uid.metadata.uid = Some("re-created".into());
    assert!(!s.holds(&other_uid), "a re-created object is another one");
}

#[test]
fn work_left_passes_to_the_store_whole() {
    let s = Settled::default();
    let mut newer_spec = paid("a", "n");
    newer_spec.metadata.generation = Some(3);
    let mut deleting = paid("b", "n");
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::UNIX_EPOCH),
    );
    let mut paying = paid("c", "n");
    paying.status.as_mut().unwrap().in_flight = Some(Box::new(
        serde_json::from_value(serde_json::json!({
            "id": "x", "startedAt": "2026-11-29T10:00:00Z", "kind": "Order", "ids": ["o1"], "generation": 2
        }))
        .unwrap(),
    ));
    for dp in [newer_spec, deleting, paying, open("d", "n")] {
        assert!(!is_settled(&dp), "{}", dp.name_any());
        match s.before_store(Event::Apply(dp.clone())) {
            Some(Event::Apply(got)) => assert_eq!((&got.spec, &got.status), (&dp.spec, &dp.status)),
            other => panic!("{}: {other:?}", dp.name_any()),
        }
    }
    assert!(names(&s).is_empty());
}

#[test]
fn an_object_with_work_again_leaves_the_index_once_the_store_has_it() {
    let s = Settled::default();
    s.before_store(Event::Apply(paid("a", "n")));
    let again = s.before_store(Event::Apply(open("a", "n"))).unwrap();
    assert_eq!(names(&s), ["n/a"], "still read from the index until stored");
    s.after_store(&again);
    assert!(names(&s).is_empty());

    s.before_store(Event::Apply(paid("b", "n")));
    s.before_store(Event::Delete(paid("b", "n")));
    assert!(names(&s).is_empty(), "deleted");
}

#[test]
fn a_relist_replaces_the_index_when_it_is_complete() {
    let s = Settled::default();
    s.before_store(Event::Apply(paid("gone", "n")));
    assert!(matches!(s.before_store(Event::Init), Some(Event::Init)));
    assert!(
        s.before_store(Event::InitApply(paid("a", "n"))).is_none(),
        "never enters the store's buffer"
    );
    assert!(matches!(
        s.before_store(Event::InitApply(open("b", "n"))),
        Some(Event::InitApply(_))
    ));
    assert_eq!(names(&s), ["n/gone"], "the old view until the list is done");
    let done = s.before_store(Event::InitDone).unwrap();
    assert_eq!(names(&s), ["n/gone"], "until the store swapped too");
    s.after_store(&done);
    assert_eq!(names(&s), ["n/a"]);
    assert_eq!(s.len(), 1);
}

#[test]
fn a_list_is_counted_from_what_the_index_kept_and_passed_on() {
    let s = Settled::default();
    let mut listing = Listing::default();
    for event in [
        Event::Init,
        Event::InitApply(paid("a", "n")),
        Event::InitApply(paid("b", "n")),
        Event::InitApply(open("c", "n")),
        Event::InitDone,
    ] {
        listing.note("n", s.before_store(event).as_ref());
    }
    assert_eq!((listing.settled, listing.open), (2, 1));
    listing.note("n", s.before_store(Event::Init).as_ref());
    assert_eq!(
        (listing.settled, listing.open),
        (0, 0),
        "a relist counts anew"
    );
}
