//! Test support: a real rmqd server on an ephemeral loopback port, run in this process on its
//! own runtime thread, for third-party clients to talk to.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use rmqd_broker::{Broker, BrokerConfig};
use tokio::sync::oneshot;

pub struct TestBroker {
    pub addr: SocketAddr,
    pub broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// A broker with the default vhost `/` and guest/guest, as RabbitMQ starts.
    pub fn start() -> TestBroker {
        Self::start_with(BrokerConfig::default(), |_| {})
    }

    /// A broker with `config`, and `setup` run on it before it listens (users, vhosts).
    pub fn start_with(config: BrokerConfig, setup: impl FnOnce(&Broker)) -> TestBroker {
        let broker = Broker::new(config);
        broker.add_vhost("/");
        broker.users.add("guest", "guest");
        broker.users.grant("guest", "/");
        broker.users.set_loopback_only(&["guest".to_string()]);
        setup(&broker);
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, bound) = std::sync::mpsc::channel();
        let served = Arc::clone(&broker);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind an ephemeral port");
                ready
                    .send(listener.local_addr().expect("bound address"))
                    .expect("test thread waits for the address");
                rmqd_broker::server::serve(listener, served, async {
                    let _ = stopped.await;
                })
                .await;
            });
        });
        let addr = bound.recv().expect("broker thread reports its address");
        TestBroker {
            addr,
            broker,
            stop: Some(stop),
            thread: Some(thread),
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

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
