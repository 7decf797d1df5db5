//! The tunnel without a fleet: a host on one end of an in-memory stream,
//! and the test reading the report queue in the fleet's place.

use std::collections::BTreeMap;
use std::sync::Weak;

use tokio::io::{AsyncReadExt, DuplexStream};
use tokio::task::JoinHandle;

use super::*;

const SOON: Duration = Duration::from_secs(5);

/// The host's end of a tunnel.
struct Host {
    io: DuplexStream,
    frames: FrameReader,
}

impl Host {
    async fn send(&mut self, m: &HostMsg) {
        let mut b = Vec::new();
        tunnel::encode_msg(m, &mut b);
        self.io.write_all(&b).await.unwrap();
    }

    async fn recv(&mut self) -> GatewayMsg {
        let f = tokio::time::timeout(SOON, self.frames.next(&mut self.io))
            .await
            .expect("a message from the gateway")
            .unwrap()
            .expect("a frame, not the end");
        match tunnel::decode::<GatewayMsg>(f).unwrap() {
            Incoming::Msg(m) => m,
            _ => panic!("expected a message"),
        }
    }

    /// Whether the gateway closed the stream (every tunnel task let go of it).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        tokio::time::timeout(SOON, self.io.read_to_end(&mut rest))
            .await
            .is_ok()
    }
}

struct Gateway {
    reports: mpsc::UnboundedReceiver<Report>,
    shutdown: watch::Sender<bool>,
    tunnel: JoinHandle<()>,
}

impl Gateway {
    async fn report(&mut self) -> HostReport {
        tokio::time::timeout(SOON, self.reports.recv())
            .await
            .expect("a report")
            .expect("the queue open")
            .what
    }

    /// Shuts the gateway down; the tunnel's reader returns.
    async fn shut_down(self) -> mpsc::UnboundedReceiver<Report> {
        self.shutdown.send_replace(true);
        tokio::time::timeout(SOON, self.tunnel)
            .await
            .expect("the tunnel ends on shutdown")
            .unwrap();
        self.reports
    }
}

/// A tunnel served over an in-memory stream; artifacts are read from `dir`.
fn start(dir: PathBuf) -> (Host, Gateway) {
    let (host, gateway) = tokio::io::duplex(64 * 1024);
    let (tx, reports) = mpsc::unbounded_channel();
    let (shutdown, down) = watch::channel(false);
    let link = Link {
        gateway: "gw".into(),
        reports: tx,
        artifacts: Arc::new(move |d: &str| Some(dir.join(format!("{d}.wasm")))),
    };
    let tunnel = tokio::spawn(serve(link, down, "h1-key".into(), gateway));
    let host = Host {
        io: host,
        frames: FrameReader::default(),
    };
    let gateway = Gateway {
        reports,
        shutdown,
        tunnel,
    };
    (host, gateway)
}

fn hello() -> HostMsg {
    HostMsg::Hello(Hello {
        version: TUNNEL_PROTOCOL_VERSION,
        name: "h1".into(),
        arch: "x86_64".into(),
        engine: "e".into(),
        cpus: 1,
        memory_bytes: 0,
        labels: BTreeMap::new(),
        apps: Vec::new(),
        local_actions: Vec::new(),
    })
}

fn heartbeat() -> HostMsg {
    HostMsg::Heartbeat(Heartbeat {
        apps: Vec::new(),
        ps: Vec::new(),
        instance_rows: Vec::new(),
        instances: 0,
        memory_bytes: 0,
    })
}

/// Says hello and waits for the report; the fleet's side answers with
/// `verdict` after sending the host `early` (if any).
async fn join(
    host: &mut Host,
    gw: &mut Gateway,
    verdict: Result<(), String>,
    early: Option<GatewayMsg>,
) -> Arc<HostConn> {
    host.send(&hello()).await;
    let HostReport::Connected {
        conn,
        hello,
        accepted,
    } = gw.report().await
    else {
        panic!("expected the hello first");
    };
    assert_eq!((conn.name.as_str(), conn.key.as_str()), ("h1", "h1-key"));
    assert_eq!(hello.name, "h1");
    if let Some(m) = early {
        conn.send(&m).await.unwrap();
    }
    accepted.send(verdict).unwrap();
    conn
}

/// Waits until nothing but the test holds the connection.
async fn released(conn: Weak<HostConn>) -> bool {
    tokio::time::timeout(SOON, async {
        while conn.strong_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn reports_go_into_the_queue_and_replies_pass_while_it_is_not_drained() {
    let (mut host, mut gw) = start(PathBuf::from("/nonexistent"));
    // What the fleet sends once it accepted the host leaves after the welcome.
    let early = GatewayMsg::Cancel { id: 7 };
    let conn = join(&mut host, &mut gw, Ok(()), Some(early.clone())).await;
    assert_eq!(
        host.recv().await,
        GatewayMsg::Welcome {
            version: TUNNEL_PROTOCOL_VERSION,
            gateway: "gw".into()
        }
    );
    assert_eq!(host.recv().await, early);

    // Heartbeats queue up unread (more than a tunnel's share would block
    // only this tunnel): a reply still reaches its request.
    for _ in 0..3 {
        host.send(&heartbeat()).await;
    }
    let c = conn.clone();
    let request = tokio::spawn(async move {
        c.request(
            |id| GatewayMsg::Remove {
                id,
                app: "api".into(),
                by: "test".into(),
            },
            None,
        )
        .await
    });
    let GatewayMsg::Remove { id, .. } = host.recv().await else {
        panic!("expected the request");
    };
    host.send(&HostMsg::Reply {
        id,
        ok: true,
        message: String::new(),
        compile_ms: Some(5),
    })
    .await;
    let r = tokio::time::timeout(SOON, request).await.unwrap().unwrap();
    assert_eq!(r, Ok(Some(5)));
    for _ in 0..3 {
        let HostReport::Heartbeat { host, .. } = gw.report().await else {
            panic!("expected heartbeats");
        };
        assert_eq!(host, "h1");
    }

    let mut reports = gw.shut_down().await;
    let Some(Report {
        what: HostReport::Disconnected { conn: gone },
        ..
    }) = reports.recv().await
    else {
        panic!("expected the end of the tunnel");
    };
    assert!(Arc::ptr_eq(&gone, &conn) && conn.is_closed());
    assert!(host.closed().await, "the writer let go of the stream");
    let weak = Arc::downgrade(&conn);
    drop((conn, gone));
    assert!(released(weak).await, "no tunnel task holds the connection");
}

#[tokio::test]
async fn a_fetch_the_host_does_not_read_ends_on_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let digest = "ab".repeat(32);
    std::fs::write(
        dir.path().join(format!("{digest}.wasm")),
        vec![7u8; 8 << 20],
    )
    .unwrap();
    let (mut host, mut gw) = start(dir.path().to_path_buf());
    let conn = join(&mut host, &mut gw, Ok(()), None).await;
    assert!(matches!(host.recv().await, GatewayMsg::Welcome { .. }));
    // The host asks and reads nothing: the fetch waits on the full queue.
    host.send(&HostMsg::Fetch {
        digest: digest.clone(),
        offset: 0,
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        conn.fetches.available_permits() < MAX_FETCHES_PER_HOST,
        "the fetch is in flight"
    );
    drop(gw.shut_down().await);
    let fetches = conn.fetches.clone();
    let ended = tokio::time::timeout(SOON, async {
        while fetches.available_permits() < MAX_FETCHES_PER_HOST {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(ended.await.is_ok(), "the fetch ended");
    let weak = Arc::downgrade(&conn);
    drop(conn);
    assert!(released(weak).await, "the fetch let go of the connection");
}

#[tokio::test]
async fn a_refused_host_is_told_why_and_the_tunnel_ends() {
    let (mut host, mut gw) = start(PathBuf::from("/nonexistent"));
    let conn = join(&mut host, &mut gw, Err("not today".into()), None).await;
    assert_eq!(
        host.recv().await,
        GatewayMsg::Refused {
            reason: "not today".into()
        }
    );
    tokio::time::timeout(SOON, &mut gw.tunnel)
        .await
        .expect("a refused tunnel ends by itself")
        .unwrap();
    assert!(host.closed().await);
    let weak = Arc::downgrade(&conn);
    drop(conn);
    assert!(released(weak).await);
    assert!(
        gw.reports.try_recv().is_err(),
        "a refused host never joined"
    );
}

#[tokio::test]
async fn a_tunnel_waiting_for_a_hello_ends_on_shutdown() {
    let (mut host, gw) = start(PathBuf::from("/nonexistent"));
    drop(gw.shut_down().await);
    assert!(host.closed().await);
}
