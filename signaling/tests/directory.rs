//! The hub as one node of a cluster (docs/PROTOCOL.md, "Redirects"), with a scripted
//! directory: which codes it is asked about, when a join is sent elsewhere, and when a room's
//! claim is given up.

mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use parlor_signaling::{
    BoxFuture, Directory, ErrorCode, Hub, HubSettings, OpenAccess, Outbound, Placement, Refusal, Registry,
};
use serde_json::{json, Value};
use wire::{join, Client, Recorder};

/// A directory that answers from a table (codes it does not name are here) and records what
/// it was asked and told.
#[derive(Default)]
struct Scripted {
    answers: Mutex<HashMap<String, Result<Placement, Refusal>>>,
    asked: Mutex<Vec<(String, bool)>>,
    released: Mutex<Vec<String>>,
}

impl Scripted {
    fn answer(&self, code: &str, answer: Result<Placement, Refusal>) {
        self.answers.lock().unwrap().insert(code.to_owned(), answer);
    }
    fn asked(&self) -> Vec<(String, bool)> {
        self.asked.lock().unwrap().clone()
    }
    fn released(&self) -> Vec<String> {
        self.released.lock().unwrap().clone()
    }
}

impl Directory for Scripted {
    fn place(&self, code: &str, may_create: bool) -> BoxFuture<'_, Result<Placement, Refusal>> {
        self.asked.lock().unwrap().push((code.to_owned(), may_create));
        let answer = self.answers.lock().unwrap().get(code).cloned().unwrap_or(Ok(Placement::Here));
        Box::pin(async move { answer })
    }
    fn released(&self, code: &str) {
        self.released.lock().unwrap().push(code.to_owned());
    }
}

fn hub(directory: &Arc<Scripted>, settings: HubSettings) -> Hub {
    Hub::with_directory(
        Arc::new(Recorder::default()),
        settings,
        Arc::new(OpenAccess),
        Registry::builtin(),
        directory.clone(),
    )
}

/// Everything the connection emits until it closes (or is silent for 5 s).
async fn until_close(c: &mut Client) -> (Vec<Value>, Option<u16>) {
    let mut texts = Vec::new();
    loop {
        let out = tokio::time::timeout(Duration::from_secs(5), c.rx.recv()).await.expect("no close within 5 s");
        match out {
            Some(Outbound::Text(t)) => texts.push(serde_json::from_str(&t).unwrap()),
            Some(Outbound::Close { code, .. }) => return (texts, Some(code)),
            None => return (texts, None),
        }
    }
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_room_elsewhere_is_a_redirect_then_close_4002() {
    let dir = Arc::new(Scripted::default());
    dir.answer("far", Ok(Placement::There { url: "http://10.1.2.3:8080".into() }));
    let hub = hub(&dir, HubSettings::default());
    let mut c = Client::new(&hub);
    c.send(json!({"type": "join", "room": "far", "name": "Ann"})).await;
    let (texts, close) = until_close(&mut c).await;
    assert_eq!(texts, vec![json!({"type": "redirect", "url": "http://10.1.2.3:8080"})]);
    assert_eq!(close, Some(4002));
    assert_eq!(dir.asked(), vec![("far".to_owned(), true)], "an open-mode join may create");
    assert_eq!(hub.room_count(), 0, "nothing opened here");
}

#[tokio::test]
async fn a_room_held_here_is_not_asked_about() {
    let dir = Arc::new(Scripted::default());
    let hub = hub(&dir, HubSettings::default());
    let (_a, _) = join(&hub, "near", "Ann", None).await;
    assert_eq!(dir.asked(), vec![("near".to_owned(), true)]);
    // From now on the room is here, whatever the directory would say.
    dir.answer("near", Ok(Placement::There { url: "http://elsewhere".into() }));
    let (_b, _) = join(&hub, "near", "Bob", None).await;
    assert_eq!(dir.asked().len(), 1, "the directory is only asked about codes with no room here");
}

#[tokio::test]
async fn a_resume_elsewhere_is_redirected_and_may_not_create() {
    let dir = Arc::new(Scripted::default());
    dir.answer("far", Ok(Placement::There { url: "https://n2.example".into() }));
    let hub = hub(&dir, HubSettings::default());
    let mut c = Client::new(&hub);
    c.send(json!({"type": "join", "room": "far", "name": "Ann", "resume": "r-123"})).await;
    let (texts, close) = until_close(&mut c).await;
    assert_eq!(texts[0]["type"], "redirect");
    assert_eq!(texts[0]["url"], "https://n2.example");
    assert_eq!(close, Some(4002));
    assert_eq!(dir.asked(), vec![("far".to_owned(), false)]);

    // Here and unknown: the resume fails as on a single server.
    let mut d = Client::new(&hub);
    d.send(json!({"type": "join", "room": "gone", "name": "Ann", "resume": "r-123"})).await;
    assert_eq!(d.error().await, "resume_expired");
    assert_eq!(dir.asked()[1], ("gone".to_owned(), false));
}

#[tokio::test]
async fn an_unreachable_directory_refuses_new_rooms_only() {
    let dir = Arc::new(Scripted::default());
    let hub = hub(&dir, HubSettings::default());
    let (mut a, ann) = join(&hub, "old", "Ann", None).await;
    dir.answer("new", Err(Refusal::new(ErrorCode::ClusterUnavailable, "the cluster directory is unreachable")));
    dir.answer("old", Err(Refusal::new(ErrorCode::ClusterUnavailable, "the cluster directory is unreachable")));
    let mut c = Client::new(&hub);
    c.send(json!({"type": "join", "room": "new", "name": "Cy"})).await;
    assert_eq!(c.error().await, "cluster_unavailable");
    assert_eq!(hub.room_count(), 1);
    // The room in progress is untouched and still takes newcomers.
    let (_b, _) = join(&hub, "old", "Bob", None).await;
    a.send(json!({"type": "chat", "channel": "all", "text": "still here"})).await;
    assert_eq!(a.next_where("chat", |v| v["text"] == "still here").await["from"], ann);
}

#[tokio::test]
async fn a_closed_room_gives_up_its_claim() {
    let dir = Arc::new(Scripted::default());
    let hub = hub(&dir, HubSettings::default());
    let (mut a, _) = join(&hub, "brief", "Ann", None).await;
    assert!(dir.released().is_empty());
    a.send(json!({"type": "leave"})).await;
    eventually("the claim is released", || dir.released() == vec!["brief".to_owned()]).await;
    assert_eq!(hub.room_count(), 0);
}

#[tokio::test]
async fn a_claim_for_a_room_that_could_not_open_is_given_up() {
    let dir = Arc::new(Scripted::default());
    let hub = hub(&dir, HubSettings { max_rooms: 1, ..HubSettings::default() });
    let (_a, _) = join(&hub, "one", "Ann", None).await;
    let mut c = Client::new(&hub);
    c.send(json!({"type": "join", "room": "two", "name": "Bob"})).await;
    assert_eq!(c.error().await, "too_many_rooms");
    assert_eq!(dir.released(), vec!["two".to_owned()]);
}
