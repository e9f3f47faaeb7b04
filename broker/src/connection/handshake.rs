//! connection.start → start-ok → tune → tune-ok → open: login, limits, vhost.

use rmqd_codec::{
    ConnectionClose, ConnectionOpenOk, ConnectionStart, ConnectionTune, FieldTable, FieldValue,
    Frame, Method, ShortStr, frame, reply_code,
};
use tracing::{info, warn};

use super::{Connection, Phase};
use crate::auth::MECHANISMS;
use crate::error::AmqpError;

/// The capabilities we advertise: each one is implemented.
const CAPABILITIES: &[&str] = &[
    "publisher_confirms",
    "exchange_exchange_bindings",
    "basic.nack",
    "consumer_cancel_notify",
    "connection.blocked",
    "authentication_failure_close",
    "per_consumer_qos",
];

fn text(s: &str) -> FieldValue {
    FieldValue::LongStr(bytes::Bytes::copy_from_slice(s.as_bytes()))
}

impl Connection {
    pub(super) fn send_start(&mut self) {
        let capabilities: FieldTable = CAPABILITIES
            .iter()
            .map(|c| (ShortStr::from_static(c), FieldValue::Bool(true)))
            .collect();
        let server_properties: FieldTable = [
            ("capabilities", FieldValue::Table(capabilities)),
            ("cluster_name", text(&self.session.broker.config.cluster_name)),
            ("copyright", text("Copyright (c) the rmqd authors")),
            ("information", text("Licensed under MIT or Apache-2.0. See https://www.rabbitmq.com/ for the protocol.")),
            ("platform", text("Rust")),
            ("product", text("rmqd")),
            ("version", text(env!("CARGO_PKG_VERSION"))),
        ]
        .into_iter()
        .map(|(k, v)| (ShortStr::from_static(k), v))
        .collect();
        self.send(
            0,
            ConnectionStart {
                version_major: 0,
                version_minor: 9,
                server_properties,
                mechanisms: bytes::Bytes::from_static(MECHANISMS.as_bytes()),
                locales: bytes::Bytes::from_static(b"en_US"),
            },
        );
    }

    pub(super) fn handle_handshake(&mut self, frame: Frame) -> Result<(), AmqpError> {
        let method = match frame {
            Frame::Heartbeat => return Ok(()),
            Frame::Method { channel: 0, method } => method,
            other => {
                return Err(AmqpError::command_invalid(format!(
                    "expected a connection method on channel 0 during the handshake, got a frame on channel {}",
                    other.channel()
                )));
            }
        };
        match (self.phase, method) {
            (Phase::AwaitingStartOk, Method::ConnectionStartOk(ok)) => {
                self.read_capabilities(&ok.client_properties);
                let broker = &self.session.broker;
                match broker
                    .users
                    .login(ok.mechanism.as_bytes(), &ok.response, self.peer.ip())
                {
                    Ok(user) => {
                        self.info.update_handshake(|h| {
                            h.user = user.clone();
                            h.auth_mechanism = ok.mechanism.to_string_lossy().into_owned();
                            h.client_properties = ok.client_properties.clone();
                        });
                        self.session.user = user;
                        self.send(
                            0,
                            ConnectionTune {
                                channel_max: broker.config.channel_max,
                                frame_max: broker.config.frame_max,
                                heartbeat: broker.config.heartbeat,
                            },
                        );
                        self.phase = Phase::AwaitingTuneOk;
                        Ok(())
                    }
                    Err(why) => {
                        warn!(peer = %self.peer, "login refused: {why}");
                        if self.session.capabilities.authentication_failure_close {
                            let text = format!(
                                "ACCESS_REFUSED - Login was refused using authentication mechanism {}. For details see the broker logfile.",
                                ok.mechanism
                            );
                            self.send(
                                0,
                                ConnectionClose {
                                    reply_code: reply_code::ACCESS_REFUSED,
                                    reply_text: ShortStr::truncating(text),
                                    class_id: 10,
                                    method_id: 11,
                                },
                            );
                        }
                        // Clients do not answer this close-ok reliably (pika just drops the
                        // socket): close as soon as the reply is written.
                        self.phase = Phase::Closed;
                        Ok(())
                    }
                }
            }
            (Phase::AwaitingTuneOk, Method::ConnectionTuneOk(tune)) => {
                let config = &self.session.broker.config;
                let too = |field: &str, value: u32, dir: &str, bound: &str, limit: u32| {
                    AmqpError::not_allowed(format!(
                        "negotiated {field} = {value} is {dir} than the {bound} allowed value ({limit})"
                    ))
                    .during(10, 31)
                };
                if tune.frame_max != 0 && tune.frame_max < frame::MIN_SIZE {
                    return Err(too(
                        "frame_max",
                        tune.frame_max,
                        "lower",
                        "minimum",
                        frame::MIN_SIZE,
                    ));
                }
                if config.frame_max != 0
                    && (tune.frame_max == 0 || tune.frame_max > config.frame_max)
                {
                    return Err(too(
                        "frame_max",
                        tune.frame_max,
                        "higher",
                        "maximum",
                        config.frame_max,
                    ));
                }
                self.info.update_handshake(|h| {
                    h.frame_max = tune.frame_max;
                    h.channel_max = tune.channel_max;
                    h.heartbeat = tune.heartbeat;
                });
                self.session.frame_max = tune.frame_max;
                self.decoder.set_frame_max(tune.frame_max);
                // RabbitMQ accepts any channel_max in tune-ok and does not enforce it on
                // channel.open either; neither do we.
                self.heartbeat = (tune.heartbeat > 0)
                    .then(|| std::time::Duration::from_secs(u64::from(tune.heartbeat)));
                self.phase = Phase::AwaitingOpen;
                Ok(())
            }
            (Phase::AwaitingOpen, Method::ConnectionOpen(open)) => {
                let broker = &self.session.broker;
                let Some(vhost) = broker.vhost(open.virtual_host.as_bytes()) else {
                    return Err(AmqpError::not_allowed(format!(
                        "vhost {} not found",
                        open.virtual_host
                    ))
                    .during(10, 40));
                };
                let vhost_name = open.virtual_host.to_string_lossy();
                if !broker.users.may_access(&self.session.user, &vhost_name) {
                    return Err(AmqpError::not_allowed(format!(
                        "access to vhost '{vhost_name}' refused for user '{}'",
                        self.session.user
                    ))
                    .during(10, 40));
                }
                info!(peer = %self.peer, user = %self.session.user, vhost = %vhost_name, "connection opened");
                self.info
                    .update_handshake(|h| h.vhost = Some(vhost.name.clone()));
                self.session.vhost = Some(vhost);
                self.send(0, ConnectionOpenOk::default());
                self.phase = Phase::Open;
                Ok(())
            }
            (_, Method::ConnectionClose(_)) => {
                self.send(0, rmqd_codec::ConnectionCloseOk {});
                self.phase = Phase::Closed;
                Ok(())
            }
            (phase, other) => Err(AmqpError::command_invalid(format!(
                "unexpected {} while {}",
                other.name(),
                match phase {
                    Phase::AwaitingStartOk => "waiting for connection.start-ok",
                    Phase::AwaitingTuneOk => "waiting for connection.tune-ok",
                    _ => "waiting for connection.open",
                }
            ))
            .during(other.class_id(), other.method_id())),
        }
    }

    fn read_capabilities(&mut self, client_properties: &FieldTable) {
        let Some(FieldValue::Table(caps)) = client_properties.get("capabilities") else {
            return;
        };
        let on = |name: &str| matches!(caps.get(name), Some(FieldValue::Bool(true)));
        let c = &mut self.session.capabilities;
        c.consumer_cancel_notify = on("consumer_cancel_notify");
        c.connection_blocked = on("connection.blocked");
        c.authentication_failure_close = on("authentication_failure_close");
    }
}
