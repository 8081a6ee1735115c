//! The clients: keep-alive HTTP/1.1 connections from this process to the variant's server,
//! closed-loop for throughput at saturation, open-loop at a fixed rate for latency.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;

use crate::app::{CpuTime, RecordingNow};

type Sender = SendRequest<Empty<bytes::Bytes>>;

/// One keep-alive connection to the server.
pub struct Connection {
    sender: Sender,
    addr: SocketAddr,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> anyhow::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Connection { sender, addr })
    }

    /// GETs `path`; the body, checked to be a success.
    pub async fn get(&mut self, path: &str) -> anyhow::Result<bytes::Bytes> {
        self.sender.ready().await?;
        let req = hyper::Request::get(path)
            .header("host", self.addr.to_string())
            .body(Empty::new())?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "GET {path}: {status}");
        Ok(body)
    }

    /// Where the server keeps what it records, and dial9's bytes so far.
    pub async fn recording(&mut self) -> anyhow::Result<RecordingNow> {
        let body = self.get("/recording").await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// The server process's CPU time so far.
    pub async fn cpu(&mut self) -> anyhow::Result<CpuTime> {
        let body = self.get("/cpu").await?;
        Ok(serde_json::from_slice(&body)?)
    }
}

/// Requests completed by `connections` clients, each sending its next request as soon as
/// the last is answered, for `duration`.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<u64> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..connections {
        let mut conn = Connection::open(addr).await?;
        let (done, stop) = (done.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut n = c as u64 * 1_000_003;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                conn.get(&format!("/order/{n}")).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let total = done.load(Ordering::Relaxed);
    for c in clients {
        c.await??;
    }
    Ok(total)
}

/// Latencies of requests sent at `rate` per second for `duration`, spread over
/// `connections` connections. A request's latency runs from the moment it was due to be
/// sent, so a request waiting for a free connection (the server is slow) counts its wait.
pub async fn open_loop(
    addr: SocketAddr,
    connections: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let (due_tx, due_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let due_rx = Arc::new(tokio::sync::Mutex::new(due_rx));
    let mut clients = Vec::new();
    for _ in 0..connections {
        let mut conn = Connection::open(addr).await?;
        let due_rx = due_rx.clone();
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let next = due_rx.lock().await.recv().await;
                let Some((n, due)) = next else { break };
                conn.get(&format!("/order/{n}")).await?;
                latencies.push(due.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    // The pacer sleeps on a thread of its own: tokio's timer ticks in milliseconds, which
    // would send requests in bursts.
    let interval = Duration::from_secs_f64(1.0 / rate);
    let pacer = tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let mut n = 0u64;
        loop {
            let due = start + interval * n as u32;
            if due - start >= duration {
                break;
            }
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // Stamped when actually sent: the pacer's own lateness is the client's, not the
            // server's.
            if due_tx.send((n, Instant::now())).is_err() {
                break;
            }
            n += 1;
        }
    });
    pacer.await?;
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await??);
    }
    Ok(all)
}
