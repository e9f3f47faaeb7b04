//! The tokio side: accept sockets, and for each one move bytes between the socket and its
//! [`Connection`] state machine. No protocol logic lives here.

use std::collections::VecDeque;
use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

use crate::broker::Broker;
use crate::connection::Connection;
use crate::disk;

/// How often expired queues (`x-expires`) and messages (TTL) are swept.
const SWEEP_INTERVAL: Duration = Duration::from_millis(100);

/// How long shutdown waits for connections to take their connection.close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Bytes reserved for reading when the buffer runs short: enough for many small frames per
/// system call.
const READ_CHUNK: usize = 64 * 1024;

/// Below this much free space the buffer is grown before reading.
const READ_HEADROOM: usize = 4 * 1024;

/// How long a finished connection may take to flush its last bytes to a peer that stopped
/// reading.
const FLUSH_GRACE: Duration = Duration::from_secs(5);

/// Serves AMQP on `listener` until `shutdown` resolves, then closes every connection with
/// 320 CONNECTION_FORCED and waits (briefly) for them to go.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: impl Future<Output = ()>) {
    serve_all(vec![listener], broker, shutdown).await;
}

/// [`serve`] on several listeners at once (RabbitMQ's named `listeners.tcp.*`).
pub async fn serve_all(
    listeners: Vec<TcpListener>,
    broker: Arc<Broker>,
    shutdown: impl Future<Output = ()>,
) {
    let sweeper = tokio::spawn(sweep(Arc::clone(&broker)));
    let disk_watch = broker.store.as_ref().map(|store| {
        let dir = store.dir().to_path_buf();
        let limit = broker.config.disk_free_limit;
        tokio::spawn(disk::watch(dir, limit, Arc::clone(&broker.memory)))
    });
    let acceptors: Vec<_> = listeners
        .into_iter()
        .map(|listener| tokio::spawn(accept(listener, Arc::clone(&broker))))
        .collect();
    shutdown.await;
    // New clients are refused at once rather than accepted and then closed: each listener
    // goes with its acceptor.
    for acceptor in &acceptors {
        acceptor.abort();
    }
    for acceptor in acceptors {
        let _ = acceptor.await;
    }
    info!(
        "shutting down: closing {} connections",
        broker.connection_count()
    );
    broker.close_all("broker shutdown");
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while broker.connection_count() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sweeper.abort();
    if let Some(disk_watch) = disk_watch {
        disk_watch.abort();
    }
}

async fn accept(listener: TcpListener, broker: Arc<Broker>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let span = info_span!("conn", %peer);
                tokio::spawn(drive(stream, peer, Arc::clone(&broker)).instrument(span));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!("accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn sweep(broker: Arc<Broker>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        broker.expire(Instant::now().into_std());
    }
}

async fn drive(mut stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut conn = Connection::new(broker, peer, local, Instant::now().into_std());
    let (reader, mut writer) = stream.split();
    let mut input = BytesMut::new();
    let mut output: VecDeque<Bytes> = VecDeque::new();
    let mut paused = false;
    let mut peer_gone = false;
    let mut flush_deadline = None;
    loop {
        let now = Instant::now().into_std();
        if paused && conn.wants_read() && !input.is_empty() {
            conn.resume_input(&mut input, now);
        }
        paused = !conn.wants_read();
        if let Some(bytes) = conn.poll_transmit(now) {
            output.push_back(bytes);
        }
        if peer_gone || (conn.is_closed() && output.is_empty()) {
            break;
        }
        if conn.is_finished() {
            let deadline = *flush_deadline.get_or_insert_with(|| Instant::now() + FLUSH_GRACE);
            if Instant::now() >= deadline {
                break;
            }
        }
        let timeout = conn
            .poll_timeout()
            .map(Instant::from_std)
            .or(flush_deadline);
        let outbox = conn.outbox_ready();
        tokio::select! {
            readable = reader.readable(), if conn.wants_read() => match readable {
                Err(_) => peer_gone = true,
                Ok(()) => match read_available(&reader, &mut input) {
                    Err(_) | Ok(Some(0)) => peer_gone = true,
                    Ok(Some(_)) => conn.handle_input(&mut input, Instant::now().into_std()),
                    Ok(None) => {}
                },
            },
            written = write_some(&mut writer, &mut output), if !output.is_empty() => {
                if written.is_err() {
                    peer_gone = true;
                }
            }
            _ = outbox => {}
            _ = sleep_until(timeout), if timeout.is_some() => {
                conn.handle_timeout(Instant::now().into_std());
            }
        }
    }
    conn.on_closed(Instant::now().into_std());
}

/// Reads whatever the socket holds: `Some(0)` at end of stream, `None` if it was empty after
/// all. Finding the socket empty with nothing left to decode means the peer went quiet: the
/// buffer is given back then, so that ten thousand idle connections hold no read buffers.
fn read_available(
    reader: &tokio::net::tcp::ReadHalf<'_>,
    input: &mut BytesMut,
) -> std::io::Result<Option<usize>> {
    if input.capacity() - input.len() < READ_HEADROOM {
        input.reserve(READ_CHUNK);
    }
    match reader.try_read_buf(input) {
        Ok(n) => Ok(Some(n)),
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
            if input.is_empty() {
                *input = BytesMut::new();
            }
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// One vectored write of as many pending buffers as fit in one call.
async fn write_some(
    writer: &mut tokio::net::tcp::WriteHalf<'_>,
    output: &mut VecDeque<Bytes>,
) -> std::io::Result<()> {
    let slices: Vec<IoSlice<'_>> = output.iter().take(64).map(|b| IoSlice::new(b)).collect();
    let mut written = writer.write_vectored(&slices).await?;
    if written == 0 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    while written > 0 {
        let Some(front) = output.front_mut() else {
            break;
        };
        if written >= front.len() {
            written -= front.len();
            output.pop_front();
        } else {
            front.advance(written);
            written = 0;
        }
    }
    Ok(())
}
