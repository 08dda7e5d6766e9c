//! Data planes follow the control-plane leader (docs/leadership.md): real
//! tonic servers over TCP around the in-memory fake, each behind a gate that
//! says whether it leads.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use strata_core::*;
use strata_proto::{ClusterAuth, GrpcControlPlane};
use tokio::sync::oneshot;

#[allow(dead_code)] // the other test binary uses the rest of the fake
mod fake;
use fake::Fake;

const SECRET: &str = "test secret of at least 32 characters";

/// Every call the servers of this binary answered: (method, outcome).
static OBSERVED: Mutex<Vec<(&str, &str)>> = Mutex::new(Vec::new());

fn observe(method: &'static str, outcome: &'static str, _elapsed: Duration) {
    OBSERVED.lock().unwrap().push((method, outcome));
}

fn observed(method: &str, outcome: &str) -> bool {
    OBSERVED.lock().unwrap().contains(&(method, outcome))
}

#[derive(Default)]
struct Gate(Mutex<Option<Result<(), Option<String>>>>);

impl Gate {
    fn set(&self, v: Result<(), Option<String>>) {
        *self.0.lock().unwrap() = Some(v);
    }
}

impl LeaderGate for Gate {
    fn check_leader(&self) -> Result<(), Option<String>> {
        self.0.lock().unwrap().clone().unwrap_or(Ok(()))
    }
}

struct Cp {
    url: String,
    fake: Arc<Fake>,
    gate: Arc<Gate>,
    _stop: oneshot::Sender<()>,
}

impl Cp {
    fn calls(&self) -> usize {
        self.fake.calls.load(Ordering::SeqCst)
    }
}

async fn start() -> Cp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (fake, gate) = (Arc::new(Fake::default()), Arc::new(Gate::default()));
    let (stop, stopped) = oneshot::channel::<()>();
    let (cp, g): (Arc<dyn ControlPlane>, Arc<dyn LeaderGate>) = (fake.clone(), gate.clone());
    tokio::spawn(strata_proto::serve_gated(
        listener,
        cp,
        ClusterAuth::new(SECRET),
        Some(g),
        Some(observe),
        async {
            let _ = stopped.await;
        },
    ));
    Cp {
        url,
        fake,
        gate,
        _stop: stop,
    }
}

fn client(urls: &[&str]) -> GrpcControlPlane {
    let urls: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
    GrpcControlPlane::connect_many(&urls, ClusterAuth::new(SECRET)).unwrap()
}

#[tokio::test]
async fn calls_follow_the_leader_and_followers_touch_nothing() {
    let (a, b) = (start().await, start().await);
    a.gate.set(Err(Some(b.url.clone())));
    let cp = client(&[&a.url, &b.url]);
    cp.create_bucket("one", "o").await.unwrap();
    assert_eq!((a.calls(), b.calls()), (0, 1), "the follower never reaches its service");

    // Leadership moves to A: B names it, the client follows.
    b.gate.set(Err(Some(a.url.clone())));
    a.gate.set(Ok(()));
    cp.create_bucket("two", "o").await.unwrap();
    assert_eq!((a.calls(), b.calls()), (1, 1));
    assert_eq!(a.fake.buckets.lock().unwrap().len(), 1);

    // An error of the leader itself is returned, not retried elsewhere.
    assert_eq!(cp.delete_bucket("two").await, Err(CpError::BucketNotEmpty));
    assert_eq!((a.calls(), b.calls()), (2, 1));

    // Each answer was timed, the refused ones included.
    for (method, outcome) in [
        ("CreateBucket", "unavailable"),
        ("CreateBucket", "ok"),
        ("DeleteBucket", "rejected"),
    ] {
        assert!(observed(method, outcome), "{method} {outcome} not observed");
    }
}

#[tokio::test]
async fn a_leader_named_by_a_follower_is_used_even_if_not_configured() {
    let (a, b) = (start().await, start().await);
    a.gate.set(Err(Some(b.url.clone())));
    let cp = client(&[&a.url]);
    cp.create_bucket("x", "o").await.unwrap();
    assert_eq!((a.calls(), b.calls()), (0, 1));
}

#[tokio::test]
async fn an_unreachable_control_plane_is_skipped() {
    let dead = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let b = start().await;
    let cp = client(&[&dead, &b.url]);
    cp.create_bucket("x", "o").await.unwrap();
    cp.check_ready().await.unwrap();
    assert_eq!(b.calls(), 2);
}

#[tokio::test]
async fn without_a_leader_calls_fail_retryably_and_execute_nowhere() {
    let (a, b) = (start().await, start().await);
    a.gate.set(Err(None));
    b.gate.set(Err(Some(a.url.clone())));
    let cp = client(&[&a.url, &b.url]);
    let t = Instant::now();
    let err = cp.create_bucket("x", "o").await.unwrap_err();
    assert!(
        matches!(&err, CpError::Unavailable(m) if m.contains("no control-plane leader")),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!((a.calls(), b.calls()), (0, 0));
}
