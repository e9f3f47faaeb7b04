//! The connection state machine, free of sockets and clocks: bytes and the current time go in,
//! bytes to send come out. The tokio driver in `server.rs` only moves bytes and sleeps until
//! [`Connection::poll_timeout`].

mod handshake;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rmqd_codec::{
    ChannelCloseOk, ChannelOpenOk, ConnectionClose, ConnectionCloseOk, DecodeError, Frame,
    FrameDecoder, Method, PROTOCOL_HEADER, ProtocolHeaderCheck, ShortStr, check_protocol_header,
    encode_heartbeat, encode_method,
};
use tracing::{debug, info, warn};

use crate::broker::Broker;
use crate::channel::{Channel, Ctx};
use crate::connections::{ConnectionInfo, ConnectionState};
use crate::durable::DiskWait;
use crate::error::AmqpError;
use crate::outbox::{Event, Outbox};
use crate::queue::Queue;
use crate::vhost::{Vhost, notify_orphans};

pub type ConnectionId = u64;

/// Stop taking deliveries from the outbox while this much is waiting to be written.
const WRITE_BACKLOG_LIMIT: usize = 1 << 20;

/// Output is reserved this much at a time, when a burst of frames is coming.
const OUTPUT_CHUNK: usize = 16 * 1024;

/// Below this much spare room the output buffer is renewed rather than grown frame by frame.
const OUTPUT_HEADROOM: usize = 1024;

/// How long we wait for connection.close-ok after sending connection.close.
const CLOSE_OK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitingProtocolHeader,
    AwaitingStartOk,
    AwaitingTuneOk,
    AwaitingOpen,
    Open,
    /// We sent connection.close and wait for close-ok, ignoring everything else.
    Closing {
        deadline: Instant,
    },
    /// Flush what is queued, then drop the socket.
    Closed,
}

/// What the client said it supports in connection.start-ok's capabilities.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ClientCapabilities {
    pub consumer_cancel_notify: bool,
    pub connection_blocked: bool,
    pub authentication_failure_close: bool,
}

/// The parts of a connection its channels need, split from the channel map so both can be
/// borrowed at once.
pub(crate) struct Session {
    pub id: ConnectionId,
    pub broker: Arc<Broker>,
    pub outbox: Arc<Outbox>,
    pub user: String,
    pub vhost: Option<Arc<Vhost>>,
    pub capabilities: ClientCapabilities,
    pub frame_max: u32,
    pub exclusive_queues: Vec<Arc<Queue>>,
    /// Output waits until the message log has reached this: what this connection published
    /// or acked is on disk before anything it sends afterwards (confirms included).
    pub disk_wait: DiskWait,
}

pub struct Connection {
    session: Session,
    peer: SocketAddr,
    /// What listings show of this connection; see [`Connection::publish_listing`].
    info: Arc<ConnectionInfo>,
    /// Channels changed since their counts were last published.
    listing_stale: bool,
    phase: Phase,
    decoder: FrameDecoder,
    out: BytesMut,
    events: VecDeque<Event>,
    /// Boxed: a channel is large, and a map of them would reserve room for several at once.
    channels: HashMap<u16, Box<Channel>>,
    heartbeat: Option<Duration>,
    started: Instant,
    last_received: Instant,
    last_sent: Instant,
    /// The memory or disk alarm is on: after the next publish, stop reading this socket.
    alarm: bool,
    blocked_sent: bool,
    /// Reading is paused (a publisher under an alarm).
    reading_paused: bool,
    cleaned_up: bool,
    /// What the store was last asked to wake this connection at.
    disk_wake_at: DiskWait,
}

impl Connection {
    /// A connection from `peer` to our address `local`.
    pub fn new(
        broker: Arc<Broker>,
        peer: SocketAddr,
        local: SocketAddr,
        now: Instant,
    ) -> Connection {
        let outbox = Outbox::new();
        let (id, info) = broker
            .connections
            .register(Arc::clone(&outbox), peer, local);
        let alarm = broker.memory.alarm();
        crate::metrics::Metrics::add(&broker.metrics.connections_opened, 1);
        Connection {
            session: Session {
                id,
                broker,
                outbox,
                user: String::new(),
                vhost: None,
                capabilities: ClientCapabilities::default(),
                frame_max: rmqd_codec::frame::MIN_SIZE,
                exclusive_queues: Vec::new(),
                disk_wait: DiskWait::default(),
            },
            peer,
            info,
            listing_stale: false,
            phase: Phase::AwaitingProtocolHeader,
            decoder: FrameDecoder::new(rmqd_codec::frame::MIN_SIZE),
            out: BytesMut::new(),
            events: VecDeque::new(),
            channels: HashMap::new(),
            heartbeat: None,
            started: now,
            last_received: now,
            last_sent: now,
            alarm,
            blocked_sent: false,
            reading_paused: false,
            cleaned_up: false,
            disk_wake_at: DiskWait::default(),
        }
    }

    pub fn id(&self) -> ConnectionId {
        self.session.id
    }

    /// Woken when another part of the broker has something for this connection.
    pub fn outbox_ready(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let outbox = Arc::clone(&self.session.outbox);
        async move { outbox.wait().await }
    }

    /// Whether the driver should read from the socket.
    pub fn wants_read(&self) -> bool {
        !self.reading_paused && !matches!(self.phase, Phase::Closed)
    }

    /// True once everything queued has been handed out and the socket should be closed.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed && self.out.is_empty()
    }

    /// True once the protocol is over: only flushing what is queued remains.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Consumes whatever whole frames `buf` holds, after new bytes arrived in it.
    pub fn handle_input(&mut self, buf: &mut BytesMut, now: Instant) {
        self.last_received = now;
        self.resume_input(buf, now);
    }

    /// Consumes frames left in `buf` while reading was paused (call it once
    /// [`Connection::wants_read`] turns true again).
    pub fn resume_input(&mut self, buf: &mut BytesMut, now: Instant) {
        if self.phase == Phase::AwaitingProtocolHeader {
            match check_protocol_header(buf) {
                ProtocolHeaderCheck::Incomplete => return,
                ProtocolHeaderCheck::Rejected => {
                    debug!(peer = %self.peer, "wrong protocol header; answering with ours");
                    self.out.extend_from_slice(&PROTOCOL_HEADER);
                    self.phase = Phase::Closed;
                    buf.clear();
                    return;
                }
                ProtocolHeaderCheck::Accepted => {
                    let _ = buf.split_to(PROTOCOL_HEADER.len());
                    self.send_start();
                    self.phase = Phase::AwaitingStartOk;
                }
            }
        }
        if !buf.is_empty() {
            self.reserve_output();
        }
        while self.wants_read() {
            match self.decoder.decode(buf) {
                Ok(Some(frame)) => {
                    self.listing_stale = true;
                    self.handle_frame(frame, now);
                }
                Ok(None) => break,
                Err(err) => {
                    self.decode_failed(&err, now);
                    buf.clear();
                    break;
                }
            }
        }
        self.flush_confirms();
    }

    /// Moves pending deliveries and notices into the output and hands out the bytes to write.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.process_events(now);
        self.publish_listing();
        if !self.out.is_empty() && self.held_for_disk() {
            return None;
        }
        if self.out.is_empty() {
            if self.out.capacity() > 0 {
                // Idle connections hold no output buffer.
                self.out = BytesMut::new();
            }
            return None;
        }
        self.last_sent = now;
        let bytes = self.out.split().freeze();
        if self.out.capacity() < OUTPUT_HEADROOM {
            self.out = BytesMut::new();
        }
        Some(bytes)
    }

    /// Whether output must wait for the message log to reach `disk_wait`; if so, the outbox is
    /// woken when it does.
    fn held_for_disk(&mut self) -> bool {
        let Some(store) = &self.session.broker.store else {
            return false;
        };
        let needed = self.session.disk_wait;
        if store.reached(needed) {
            return false;
        }
        if self.disk_wake_at != needed {
            store.wake_when(needed, &self.session.outbox);
            self.disk_wake_at = needed;
        }
        !store.reached(needed)
    }

    /// Makes room for a burst of frames up front, rather than growing the buffer frame by frame.
    fn reserve_output(&mut self) {
        if self.out.capacity() - self.out.len() < OUTPUT_HEADROOM {
            self.out.reserve(OUTPUT_CHUNK);
        }
    }

    /// When [`Connection::handle_timeout`] must next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::Closing { deadline } => Some(deadline),
            Phase::Open => {
                let heartbeat = self
                    .heartbeat
                    .map(|hb| (self.last_sent + hb / 2).min(self.last_received + hb * 2));
                match (heartbeat, self.ack_deadline()) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }
            _ => Some(self.started + self.session.broker.config.handshake_timeout),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::Closing { deadline } if now >= deadline => self.phase = Phase::Closed,
            Phase::Closing { .. } => {}
            Phase::Open => {
                self.close_timed_out_channels(now);
                let Some(hb) = self.heartbeat else { return };
                if now >= self.last_received + hb * 2 {
                    warn!(peer = %self.peer, "missed heartbeats from client, timeout: {}s", hb.as_secs());
                    self.phase = Phase::Closed;
                    self.out.clear();
                } else if now >= self.last_sent + hb / 2 {
                    encode_heartbeat(&mut self.out);
                }
            }
            _ => {
                if now >= self.started + self.session.broker.config.handshake_timeout {
                    info!(peer = %self.peer, "closing connection: handshake timeout");
                    self.phase = Phase::Closed;
                    self.out.clear();
                }
            }
        }
    }

    /// The earliest moment a channel's oldest unacked delivery outlives the consumer timeout.
    fn ack_deadline(&self) -> Option<Instant> {
        let timeout = self.session.broker.config.consumer_timeout?;
        self.channels
            .values()
            .filter_map(|c| c.ack_deadline(timeout))
            .min()
    }

    /// Closes, with 406 as RabbitMQ does, each channel that has held a delivery unacked for
    /// longer than the consumer timeout; its messages go back to their queues.
    fn close_timed_out_channels(&mut self, now: Instant) {
        let Some(timeout) = self.session.broker.config.consumer_timeout else {
            return;
        };
        for (id, channel) in self.channels.iter_mut() {
            if channel
                .ack_deadline(timeout)
                .is_none_or(|deadline| deadline > now)
            {
                continue;
            }
            let ms = timeout.as_millis();
            warn!(
                peer = %self.peer,
                channel = id,
                "consumer on channel {id} has timed out waiting for delivery acknowledgement; timeout used: {ms} ms"
            );
            let err = AmqpError::precondition_failed(format!(
                "delivery acknowledgement on channel {id} timed out. Timeout value used: {ms} ms. \
                 This timeout value can be configured, see consumers doc guide to learn more"
            ));
            let mut ctx = Ctx {
                session: &mut self.session,
                out: &mut self.out,
                now,
            };
            channel.close_with(err, &mut ctx);
        }
    }

    /// The socket is gone (or we are done with it): requeue unacked messages, cancel consumers,
    /// delete exclusive queues. Idempotent; also run on drop.
    pub fn on_closed(&mut self, now: Instant) {
        if self.cleaned_up {
            return;
        }
        self.cleaned_up = true;
        self.info.all_channels_closed();
        for (_, mut channel) in self.channels.drain() {
            channel.release(&mut self.session, now);
        }
        self.events.clear();
        self.session.outbox.drain(&mut self.events);
        for event in self.events.drain(..) {
            if let Event::Deliver(d) = event
                && d.ack_required
            {
                d.queue.requeue([d.entry], now);
            }
        }
        if let Some(vhost) = self.session.vhost.clone() {
            for queue in std::mem::take(&mut self.session.exclusive_queues) {
                notify_orphans(vhost.remove_queue_if_same(&queue));
            }
        }
        self.info.set_state(ConnectionState::Closed);
        self.session.broker.connections.unregister(self.session.id);
        debug!(peer = %self.peer, "connection closed");
    }

    fn handle_frame(&mut self, frame: Frame, now: Instant) {
        match self.phase {
            Phase::Closed => {}
            Phase::Closing { .. } => {
                if let Frame::Method {
                    channel: 0,
                    method: Method::ConnectionCloseOk(_),
                } = frame
                {
                    self.phase = Phase::Closed;
                }
                if let Frame::Method {
                    channel: 0,
                    method: Method::ConnectionClose(_),
                } = frame
                {
                    self.send(0, ConnectionCloseOk {});
                    self.phase = Phase::Closed;
                }
            }
            Phase::Open => {
                let result = match frame {
                    Frame::Heartbeat => Ok(()),
                    Frame::Method { channel: 0, method } => self.handle_connection_method(method),
                    Frame::Method { channel, .. }
                    | Frame::Header { channel, .. }
                    | Frame::Body { channel, .. } => self.handle_channel_frame(channel, frame, now),
                };
                if let Err(err) = result {
                    self.close_with(err, now);
                }
            }
            _ => {
                if let Err(err) = self.handle_handshake(frame) {
                    self.close_with(err, now);
                }
            }
        }
    }

    fn handle_connection_method(&mut self, method: Method) -> Result<(), AmqpError> {
        match method {
            Method::ConnectionClose(close) => {
                debug!(peer = %self.peer, code = close.reply_code, text = %close.reply_text, "client closed connection");
                self.send(0, ConnectionCloseOk {});
                self.phase = Phase::Closed;
                Ok(())
            }
            Method::ConnectionUpdateSecret(_) => {
                self.send(0, rmqd_codec::ConnectionUpdateSecretOk {});
                Ok(())
            }
            // Clients may echo these; nothing to do.
            Method::ConnectionBlocked(_) | Method::ConnectionUnblocked(_) => Ok(()),
            other => Err(
                AmqpError::channel_error("unexpected method in connection state running")
                    .during(other.class_id(), other.method_id()),
            ),
        }
    }

    fn handle_channel_frame(
        &mut self,
        id: u16,
        frame: Frame,
        now: Instant,
    ) -> Result<(), AmqpError> {
        if let Frame::Method {
            method: Method::ChannelOpen(_),
            ..
        } = &frame
        {
            if self.channels.contains_key(&id) {
                return Err(AmqpError::channel_error("second 'channel.open' seen").during(20, 10));
            }
            let channel = Box::new(Channel::new(id));
            self.info.channel_opened(id, Arc::clone(channel.stats()));
            self.channels.insert(id, channel);
            self.send(id, ChannelOpenOk::default());
            return Ok(());
        }
        let Some(channel) = self.channels.get_mut(&id) else {
            let err = AmqpError::channel_error("expected 'channel.open'");
            return Err(match &frame {
                Frame::Method { method, .. } => err.during(method.class_id(), method.method_id()),
                _ => err,
            });
        };
        if channel.is_closing() {
            // After we sent channel.close, only its close-ok (or a crossing close) matters.
            match frame {
                Frame::Method {
                    method: Method::ChannelCloseOk(_),
                    ..
                } => {
                    self.remove_channel(id);
                }
                Frame::Method {
                    method: Method::ChannelClose(_),
                    ..
                } => {
                    self.remove_channel(id);
                    self.send(id, ChannelCloseOk {});
                }
                _ => {}
            }
            return Ok(());
        }
        if let Frame::Method {
            method: Method::ChannelClose(_),
            ..
        } = &frame
        {
            if let Some(mut channel) = self.remove_channel(id) {
                channel.release(&mut self.session, now);
            }
            self.send(id, ChannelCloseOk {});
            return Ok(());
        }
        let publishes_during_alarm = self.alarm
            && matches!(
                frame,
                Frame::Method {
                    method: Method::BasicPublish(_),
                    ..
                }
            );
        let mut ctx = Ctx {
            session: &mut self.session,
            out: &mut self.out,
            now,
        };
        let outcome = match channel.handle_frame(frame, &mut ctx) {
            Ok(()) => Ok(()),
            Err(err) if err.is_connection_error() => Err(err),
            Err(err) => {
                warn!(peer = %self.peer, channel = id, "channel error: {}", err.reply_text());
                let mut ctx = Ctx {
                    session: &mut self.session,
                    out: &mut self.out,
                    now,
                };
                channel.close_with(err, &mut ctx);
                Ok(())
            }
        };
        if publishes_during_alarm {
            self.block_publisher();
        }
        outcome
    }

    /// Sends connection.close for a connection error and waits for close-ok.
    fn close_with(&mut self, err: AmqpError, now: Instant) {
        warn!(peer = %self.peer, user = %self.session.user, "closing connection: {}", err.reply_text());
        self.send(
            0,
            ConnectionClose {
                reply_code: err.code,
                reply_text: ShortStr::truncating(err.reply_text()),
                class_id: err.class_id,
                method_id: err.method_id,
            },
        );
        self.phase = Phase::Closing {
            deadline: now + CLOSE_OK_TIMEOUT,
        };
        self.reading_paused = false;
        self.on_closed(now);
    }

    fn decode_failed(&mut self, err: &DecodeError, now: Instant) {
        let detail = err.to_string();
        self.close_with(AmqpError::new(err.reply_code(), detail), now);
    }

    fn process_events(&mut self, now: Instant) {
        if self.out.len() >= WRITE_BACKLOG_LIMIT {
            return;
        }
        self.session.outbox.drain(&mut self.events);
        if !self.events.is_empty() {
            self.listing_stale = true;
            self.reserve_output();
        }
        let starved = self.session.outbox.take_starved();
        while let Some(event) = self.events.pop_front() {
            match event {
                Event::Deliver(delivery) => match self.channels.get_mut(&delivery.channel) {
                    Some(channel) if !self.cleaned_up => {
                        let mut ctx = Ctx {
                            session: &mut self.session,
                            out: &mut self.out,
                            now,
                        };
                        channel.deliver(delivery, &mut ctx);
                    }
                    _ => {
                        if delivery.ack_required {
                            delivery.queue.requeue([delivery.entry], now);
                        }
                    }
                },
                Event::ConsumerCancelled {
                    channel,
                    consumer_tag,
                } => {
                    if let Some(channel) = self.channels.get_mut(&channel) {
                        let mut ctx = Ctx {
                            session: &mut self.session,
                            out: &mut self.out,
                            now,
                        };
                        channel.consumer_cancelled_by_broker(&consumer_tag, &mut ctx);
                    }
                }
                Event::MemoryAlarmChanged => {
                    let on = self.session.broker.memory.alarm();
                    self.memory_alarm(on);
                }
                Event::ForceClose { code, text } => {
                    if matches!(self.phase, Phase::Open) {
                        let detail = text
                            .split_once(" - ")
                            .map(|(_, d)| d.to_string())
                            .unwrap_or(text);
                        self.close_with(AmqpError::new(code, detail), now);
                    } else {
                        self.phase = Phase::Closed;
                    }
                }
            }
        }
        if starved {
            for channel in self.channels.values() {
                channel.kick_queues(now);
            }
        }
    }

    /// The alarm turned on or off. Like RabbitMQ, only connections that publish while it is on
    /// are blocked: telling a consumer's connection it is blocked makes clients such as lapin
    /// stop using it, and then nothing drains the queues.
    fn memory_alarm(&mut self, on: bool) {
        self.alarm = on;
        if !on {
            self.reading_paused = false;
            if self.blocked_sent {
                self.send(0, rmqd_codec::ConnectionUnblocked {});
                self.blocked_sent = false;
            }
        }
    }

    /// This connection published during the alarm: tell it (if it understands
    /// connection.blocked) and stop reading it until the alarm clears.
    fn block_publisher(&mut self) {
        self.reading_paused = true;
        if self.session.capabilities.connection_blocked && !self.blocked_sent {
            self.send(
                0,
                rmqd_codec::ConnectionBlocked {
                    reason: ShortStr::from_static(self.session.broker.memory.blocked_reason()),
                },
            );
            self.blocked_sent = true;
        }
    }

    fn remove_channel(&mut self, id: u16) -> Option<Box<Channel>> {
        self.info.channel_closed(id);
        self.channels.remove(&id)
    }

    /// Stores what `list_connections` and `list_channels` show: the state every time (one
    /// atomic store), the channels' counts only after a batch that may have changed them.
    fn publish_listing(&mut self) {
        let state = match self.phase {
            Phase::AwaitingProtocolHeader | Phase::AwaitingStartOk => ConnectionState::Starting,
            Phase::AwaitingTuneOk => ConnectionState::Tuning,
            Phase::AwaitingOpen => ConnectionState::Opening,
            Phase::Open if self.reading_paused => ConnectionState::Blocked,
            Phase::Open => ConnectionState::Running,
            Phase::Closing { .. } => ConnectionState::Closing,
            Phase::Closed => ConnectionState::Closed,
        };
        self.info.set_state(state);
        if std::mem::take(&mut self.listing_stale) {
            for channel in self.channels.values() {
                channel.publish_stats();
            }
        }
    }

    fn flush_confirms(&mut self) {
        for (id, channel) in &mut self.channels {
            channel.flush_confirms(*id, &mut self.out);
        }
    }

    fn send(&mut self, channel: u16, method: impl Into<Method>) {
        encode_method(channel, &method.into(), &mut self.out);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.on_closed(Instant::now());
    }
}
