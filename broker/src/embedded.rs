//! A broker for test suites: in memory, on an ephemeral loopback port, stopped when its handle
//! is dropped, with a fresh vhost per test on request.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! let broker = rmqd_broker::EmbeddedBroker::start().await?;
//! let url = broker.amqp_url(); // amqp://guest:guest@127.0.0.1:PORT
//! let vhost = broker.isolated_vhost(); // a vhost of its own, deleted when dropped
//! println!("{url} {}", vhost.amqp_url());
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::broker::{Broker, BrokerConfig};
use crate::definitions::{self, Definitions};
use crate::server;
use crate::setup::{Setup, amqp_url};

/// A running broker; dropping it closes its connections (320 CONNECTION_FORCED) and stops it.
pub struct EmbeddedBroker {
    broker: Arc<Broker>,
    addr: SocketAddr,
    user: String,
    password: String,
    next_vhost: AtomicU64,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
    /// Set by [`EmbeddedBrokerBuilder::start_blocking`]: the runtime the broker runs on.
    runtime: Option<tokio::runtime::Runtime>,
}

/// Options for [`EmbeddedBroker`]; every one has the default a test wants.
#[derive(Default)]
pub struct EmbeddedBrokerBuilder {
    config: BrokerConfig,
    setup: Setup,
    port: u16,
    data_dir: Option<PathBuf>,
    definitions: Vec<Definitions>,
    definition_files: Vec<PathBuf>,
}

impl EmbeddedBroker {
    /// An in-memory broker on 127.0.0.1 and a free port, with guest/guest and vhost "/".
    pub async fn start() -> io::Result<EmbeddedBroker> {
        Self::builder().start().await
    }

    pub fn builder() -> EmbeddedBrokerBuilder {
        EmbeddedBrokerBuilder::default()
    }

    /// `amqp://guest:guest@127.0.0.1:PORT`: the default user on the default vhost.
    pub fn amqp_url(&self) -> String {
        self.vhost_url("/")
    }

    /// The URL of `vhost` for the default user.
    pub fn vhost_url(&self, vhost: &str) -> String {
        amqp_url(
            &self.addr.ip().to_string(),
            self.addr.port(),
            &self.user,
            &self.password,
            vhost,
        )
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker itself, for inspecting queues or adding users and vhosts directly.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// A new vhost that only this caller uses, with full permissions for the default user.
    /// Tests that each take one can run in parallel without seeing each other's queues; it is
    /// deleted (its connections closed, its queues gone) when the returned value is dropped.
    pub fn isolated_vhost(&self) -> IsolatedVhost {
        let n = self.next_vhost.fetch_add(1, Ordering::Relaxed);
        let name = format!("isolated-{n}");
        self.broker.add_vhost(&name);
        self.broker.users.grant(&self.user, &name);
        IsolatedVhost {
            url: self.vhost_url(&name),
            name,
            broker: Arc::clone(&self.broker),
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            // Let connections take their connection.close, as on the async path. A thread of
            // its own may block even when this drop runs inside an async test.
            let served = self.served.take();
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    if let Some(served) = served {
                        let _ = runtime.block_on(served);
                    }
                    runtime.shutdown_background();
                });
            });
        }
    }
}

/// A vhost of one's own; see [`EmbeddedBroker::isolated_vhost`].
pub struct IsolatedVhost {
    name: String,
    url: String,
    broker: Arc<Broker>,
}

impl IsolatedVhost {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn amqp_url(&self) -> &str {
        &self.url
    }
}

impl Drop for IsolatedVhost {
    fn drop(&mut self) {
        self.broker.delete_vhost(&self.name);
    }
}

impl EmbeddedBrokerBuilder {
    /// Broker limits and defaults (frame_max, heartbeat, memory watermark, ...).
    pub fn config(mut self, config: BrokerConfig) -> Self {
        self.config = config;
        self
    }

    /// The default user's credentials instead of guest/guest.
    pub fn default_user(mut self, name: &str, password: &str) -> Self {
        self.setup.default_user = name.to_string();
        self.setup.default_pass = password.to_string();
        self
    }

    /// Another user, with full permissions on every vhost the builder creates.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.setup
            .users
            .push((name.to_string(), password.to_string()));
        self
    }

    /// Another vhost, besides "/".
    pub fn vhost(mut self, name: &str) -> Self {
        self.setup.vhosts.push(name.to_string());
        self
    }

    /// A fixed port instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Keep durable things in `dir`, recovering what is there, instead of only in memory.
    pub fn data_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.data_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Users, vhosts, permissions, exchanges, queues and bindings to load at start, in
    /// RabbitMQ's definitions format.
    pub fn definitions(mut self, definitions: Definitions) -> Self {
        self.definitions.push(definitions);
        self
    }

    /// A RabbitMQ definitions file (`rabbitmqctl export_definitions`) to load at start.
    pub fn definitions_file(mut self, path: impl AsRef<Path>) -> Self {
        self.definition_files.push(path.as_ref().to_path_buf());
        self
    }

    /// Starts the broker on the caller's tokio runtime.
    pub async fn start(self) -> io::Result<EmbeddedBroker> {
        let user = self.setup.default_user.clone();
        let password = self.setup.default_pass.clone();
        let broker = self.open()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server::serve(listener, Arc::clone(&broker), async {
            let _ = stopped.await;
        }));
        Ok(EmbeddedBroker {
            broker,
            addr,
            user,
            password,
            next_vhost: AtomicU64::new(1),
            stop: Some(stop),
            served: Some(served),
            runtime: None,
        })
    }

    /// Starts the broker on a runtime of its own: for tests that are not async, or that want
    /// the broker off their own runtime. Callable from anywhere, async code included.
    pub fn start_blocking(self) -> io::Result<EmbeddedBroker> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rmqd-embedded")
            .enable_all()
            .build()?;
        // block_on panics on a thread that already drives a runtime; a fresh thread never does.
        let started = std::thread::scope(|scope| {
            scope
                .spawn(|| runtime.block_on(self.start()))
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the broker's start panicked")))
        });
        let mut embedded = started?;
        embedded.runtime = Some(runtime);
        Ok(embedded)
    }

    fn open(&self) -> io::Result<Arc<Broker>> {
        let broker = match &self.data_dir {
            None => Broker::new(self.config.clone()),
            Some(dir) => Broker::open(self.config.clone(), dir).map_err(io::Error::other)?,
        };
        self.setup.apply(&broker);
        for defs in &self.definitions {
            definitions::import(&broker, defs).map_err(io::Error::other)?;
        }
        for path in &self.definition_files {
            definitions::load_file(&broker, path).map_err(io::Error::other)?;
        }
        Ok(broker)
    }
}
