//! A loopback TCP fault proxy the test controls: it sits between
//! redlock-run and a `redis-server` and can, at any moment, pass traffic,
//! hold it (a partition: connections stay open, nothing moves, no RST),
//! delay it, or reset every connection. It runs on its own tokio runtime
//! in a background thread, so synchronous tests can drive it; dropping the
//! `Proxy` stops it and closes every connection.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// What the proxy does with traffic, switchable at runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Forward everything at once.
    Pass,
    /// Keep every connection (and accept new ones) but forward nothing in
    /// either direction. Bytes read meanwhile are held, and delivered in
    /// order if the mode goes back to `Pass` or `Delay`, as TCP would after
    /// a partition heals.
    Blackhole,
    /// Forward each chunk this long after it was read.
    Delay(Duration),
    /// Abort every open connection with an RST, and reset new ones as soon
    /// as they are accepted. (Keep it set for a while: a connection that
    /// never sees the mode, because it changed again at once, is spared.)
    Reset,
    /// Forward requests, hold every reply (delivered in order if the mode
    /// changes back): the server executes the requests, the client hears
    /// nothing. A one-way partition.
    HoldReplies,
    /// Forward everything, except the next reply from the server that is
    /// not an error: drop it, reset that one connection (after the server
    /// has executed the request), and go back to `Pass`. A lost reply.
    LoseNextReply,
}

pub struct Proxy {
    port: u16,
    mode: Arc<watch::Sender<Mode>>,
    accepted: Arc<AtomicUsize>,
    hold_from: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Listen on a free loopback port and forward to `127.0.0.1:target_port`.
    pub fn start(target_port: u16) -> Proxy {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, mode_rx) = watch::channel(Mode::Pass);
        let mode = Arc::new(mode);
        let setter = mode.clone();
        let (stop, stop_rx) = oneshot::channel();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let hold_from = Arc::new(AtomicUsize::new(usize::MAX));
        let hold = hold_from.clone();
        let thread = std::thread::Builder::new()
            .name(format!("proxy-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("proxy runtime");
                // Connection tasks run while this block_on runs; dropping the
                // runtime afterwards drops them, closing every socket.
                rt.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("proxy listener");
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = accept_loop(listener, target_port, mode_rx, setter, counter, hold) => {}
                    }
                });
            })
            .expect("spawn the proxy thread");
        Proxy {
            port,
            mode,
            accepted,
            hold_from,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The port to point the client at.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Switch the mode; it applies to open connections at once.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }

    /// Hold every connection accepted after the first `n` (counted from
    /// the proxy's start) for good, as in `Blackhole` whatever the mode
    /// later is; the first `n` go on as the mode says. A server that
    /// answers its first client but hangs any new one.
    pub fn hold_connections_after(&self, n: usize) {
        self.hold_from.store(n, Ordering::SeqCst);
    }

    /// How many connections have been accepted so far (reset ones too).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: u16,
    mode: watch::Receiver<Mode>,
    setter: Arc<watch::Sender<Mode>>,
    accepted: Arc<AtomicUsize>,
    hold_from: Arc<AtomicUsize>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors or the like: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let index = accepted.fetch_add(1, Ordering::SeqCst);
        if *mode.borrow() == Mode::Reset {
            abort(client);
            continue;
        }
        if index >= hold_from.load(Ordering::SeqCst) {
            let (held, rx) = watch::channel(Mode::Blackhole);
            let held = Arc::new(held);
            tokio::spawn(async move {
                // The sender lives as long as the connection does.
                connection(client, target, rx, held).await;
            });
            continue;
        }
        tokio::spawn(connection(client, target, mode.clone(), setter.clone()));
    }
}

/// Close with an RST instead of a FIN.
fn abort(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn connection(
    client: TcpStream,
    target: u16,
    mut mode: watch::Receiver<Mode>,
    setter: Arc<watch::Sender<Mode>>,
) {
    let _ = client.set_nodelay(true);
    let upstream = match TcpStream::connect(("127.0.0.1", target)).await {
        Ok(s) => s,
        Err(_) => return abort(client),
    };
    let _ = upstream.set_nodelay(true);
    let (mut cr, mut cw) = client.into_split();
    let (mut ur, mut uw) = upstream.into_split();
    let (up, down) = (mode.clone(), mode.clone());
    let pumps = async {
        let up = pump(&mut cr, &mut uw, up, None);
        let down = pump(&mut ur, &mut cw, down, Some(&setter));
        tokio::pin!(up, down);
        // Both directions run to their end, unless a reply was lost.
        tokio::select! {
            lost = &mut down => lost || { up.await; false },
            _ = &mut up => down.await,
        }
    };
    let reset = tokio::select! {
        lost = pumps => lost,
        _ = mode.wait_for(|m| *m == Mode::Reset) => true,
    };
    if reset {
        abort(cr.reunite(cw).expect("halves of one stream"));
        abort(ur.reunite(uw).expect("halves of one stream"));
    }
}

/// One direction: read continuously (stamping each chunk), forward as the
/// mode says. The EOF is traffic too: it is passed on (as a write
/// shutdown) when the mode lets it through, after the data before it.
/// Ends at EOF or on an error on either side. `replies` is set for the
/// server-to-client direction: there, `LoseNextReply` drops a reply, and
/// the pump returns true (reset this connection).
async fn pump(
    from: &mut OwnedReadHalf,
    to: &mut OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
    replies: Option<&watch::Sender<Mode>>,
) -> bool {
    // An empty chunk stands for the EOF.
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Instant)>();
    let read = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = from.read(&mut buf).await.unwrap_or(0);
            if tx.send((buf[..n].to_vec(), Instant::now())).is_err() || n == 0 {
                break;
            }
        }
    };
    let write = async move {
        while let Some((chunk, read_at)) = rx.recv().await {
            if !forward_when_allowed(&mut mode, read_at, replies.is_some()).await {
                return false;
            }
            if let Some(setter) = replies {
                if *mode.borrow() == Mode::LoseNextReply
                    && !chunk.is_empty()
                    && !chunk.starts_with(b"-")
                {
                    setter.send_replace(Mode::Pass);
                    return true;
                }
            }
            if chunk.is_empty() {
                let _ = to.shutdown().await;
                return false;
            }
            if to.write_all(&chunk).await.is_err() {
                return false;
            }
        }
        false
    };
    // Reading ends at EOF; forwarding ends after the EOF went through, on
    // an error, or when a reply is lost (then stop reading too).
    tokio::pin!(write);
    tokio::select! {
        lost = &mut write => lost,
        _ = read => write.await,
    }
}

/// Wait until the mode lets a chunk read at `read_at` through. False when
/// it never will (reset, or the proxy is going away).
async fn forward_when_allowed(
    mode: &mut watch::Receiver<Mode>,
    read_at: Instant,
    is_reply: bool,
) -> bool {
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Pass | Mode::LoseNextReply => return true,
            Mode::HoldReplies if !is_reply => return true,
            Mode::Reset => return false,
            Mode::Delay(d) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(read_at + d) => return true,
                    changed = mode.changed() => if changed.is_err() { return false },
                }
            }
            Mode::Blackhole | Mode::HoldReplies => {
                if mode.changed().await.is_err() {
                    return false;
                }
            }
        }
    }
}
