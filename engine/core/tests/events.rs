//! Lifecycle events through the engine: several subscribers, a slow one, replay.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::{Config, Engine, EventKind, Exit, Item, Observation, State};
use common::{count, wait_until, Bundle, CountingLauncher};

#[test]
fn events_reach_every_subscriber_in_order_and_a_slow_one_is_told_it_lagged() {
    let bundle = Bundle::new();
    let config = Config {
        workers: 4,
        event_buffer: 100,
        ..Config::default()
    };
    // Launches take 1 ms, so the readers get CPU time on a small machine; the slow
    // subscriber reads nothing until the end.
    let e = Engine::new(config, CountingLauncher::new(Duration::from_millis(1))).unwrap();
    let fast: Vec<_> = (0..3).map(|_| e.subscribe()).collect();
    let mut slow = e.subscribe();
    let readers: Vec<_> = fast
        .into_iter()
        .map(|mut sub| {
            std::thread::spawn(move || {
                let mut per_id: HashMap<String, Vec<State>> = HashMap::new();
                let mut last_seq = 0;
                while per_id.values().map(Vec::len).sum::<usize>() < 200 {
                    match sub.recv_timeout(Duration::from_secs(10)) {
                        Some(Item::Event(ev)) => {
                            assert!(ev.seq > last_seq);
                            last_seq = ev.seq;
                            assert_eq!(ev.kind, EventKind::State);
                            per_id.entry(ev.id).or_default().push(ev.state);
                        }
                        other => panic!("fast subscriber got {other:?}"),
                    }
                }
                per_id
            })
        })
        .collect();
    for i in 0..50 {
        e.submit(bundle.spec(format!("c{i}"))).unwrap();
    }
    assert!(wait_until(Duration::from_secs(10), || count(
        &e,
        State::Running
    ) == 50));
    for r in readers {
        let per_id = r.join().unwrap();
        assert_eq!(per_id.len(), 50);
        for states in per_id.values() {
            assert_eq!(
                states,
                &[
                    State::Queued,
                    State::Creating,
                    State::Created,
                    State::Running
                ]
            );
        }
    }
    // The slow one kept its first 100 events, then learns how many it lost.
    let items: Vec<_> = std::iter::from_fn(|| slow.try_recv()).collect();
    assert_eq!(items.len(), 101);
    assert!(items[..100].iter().all(|i| matches!(i, Item::Event(_))));
    assert_eq!(items[100], Item::Lagged { missed: 100 });
    e.delete("c0").unwrap_err(); // running: refused, no event
    let r = e.get("c1").unwrap();
    let at = humantime::parse_rfc3339("2026-01-01T00:00:00Z").ok();
    e.observe("c1", Observation::Exited(Exit { code: 0, at }))
        .unwrap();
    match slow.try_recv() {
        Some(Item::Event(ev)) => {
            assert_eq!(
                (ev.id.as_str(), ev.state, ev.previous),
                ("c1", State::Stopped, Some(State::Running))
            );
            assert_eq!(ev.seq, 201);
            assert!(ev.seq > r.seq);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_subscriber_can_start_from_a_sequence_number() {
    let bundle = Bundle::new();
    let e = Engine::new(Config::default(), Arc::new(berth_engine::NoopLauncher)).unwrap();
    let r = e.submit(bundle.spec("a")).unwrap();
    assert!(wait_until(Duration::from_secs(5), || count(
        &e,
        State::Running
    ) == 1));
    let mut from_queued = e.subscribe_from(r.seq);
    let states: Vec<_> = std::iter::from_fn(|| from_queued.try_recv())
        .map(|i| match i {
            Item::Event(ev) => ev.state,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        [
            State::Queued,
            State::Creating,
            State::Created,
            State::Running
        ]
    );
    // Events are JSON the API can stream as they are.
    let mut sub = e.subscribe_from(1);
    let Some(Item::Event(ev)) = sub.try_recv() else {
        panic!()
    };
    let json = serde_json::to_value(&ev).unwrap();
    assert_eq!(json["type"], "state");
    assert_eq!(json["state"], "queued");
    assert_eq!(json["id"], "a");
}
