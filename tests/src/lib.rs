//! Test support: a real rmqd server on an ephemeral loopback port, run in this process on its
//! own runtime, for third-party clients to talk to.

use std::net::SocketAddr;
use std::sync::Arc;

use rmqd_broker::{Broker, BrokerConfig, EmbeddedBroker};

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    _embedded: EmbeddedBroker,
}

impl TestBroker {
    /// A broker with the default vhost `/` and guest/guest, as RabbitMQ starts.
    pub fn start() -> TestBroker {
        Self::start_with(BrokerConfig::default(), |_| {})
    }

    /// A broker with `config`, and `setup` run on it before any client connects.
    pub fn start_with(config: BrokerConfig, setup: impl FnOnce(&Broker)) -> TestBroker {
        let embedded = EmbeddedBroker::builder()
            .config(config)
            .start_blocking()
            .expect("start an embedded broker");
        setup(embedded.broker());
        TestBroker {
            addr: embedded.addr(),
            broker: Arc::clone(embedded.broker()),
            _embedded: embedded,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `amqp://guest:guest@127.0.0.1:PORT/%2f`
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port())
    }
}
