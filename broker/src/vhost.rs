//! A virtual host: its exchanges, queues and the bindings between them, with RabbitMQ's rules
//! for declaring, deleting, binding and routing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::RwLock;
use rmqd_codec::{
    ExchangeBind, ExchangeDeclare, ExchangeDelete, ExchangeUnbind, FieldTable, FieldValue, Method,
    QueueBind, QueueDeclare, QueueUnbind, ShortStr,
};
use rmqd_routing::{BindingTable, ExchangeKind};

use crate::connection::ConnectionId;
use crate::durable::{DiskStore, DurableTopology};
use crate::error::{AmqpError, resource};
use crate::names::{owned, server_named};
use crate::outbox::Event;
use crate::policy::{Policies, Policy};
use crate::queue::arguments::{check_equivalent, render};
use crate::queue::{Consumer, Persisted, Queue, QueueCounts, QueueSettings};

/// Where a binding leads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Destination {
    Queue(ShortStr),
    Exchange(ShortStr),
}

pub struct Exchange {
    pub name: ShortStr,
    pub kind: ExchangeKind,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: FieldTable,
    pub(crate) bindings: BindingTable<Destination>,
}

/// What exchange.declare asks for.
pub struct ExchangeSpec<'a> {
    pub name: &'a ShortStr,
    pub kind: &'a ShortStr,
    pub passive: bool,
    pub durable: bool,
    pub auto_delete: bool,
    pub internal: bool,
    pub arguments: &'a FieldTable,
}

/// What queue.declare asks for.
pub struct QueueSpec<'a> {
    pub name: &'a ShortStr,
    pub passive: bool,
    pub durable: bool,
    pub exclusive: bool,
    pub auto_delete: bool,
    pub arguments: &'a FieldTable,
}

#[derive(Default)]
struct Topology {
    exchanges: HashMap<ShortStr, Exchange>,
    queues: HashMap<ShortStr, Arc<Queue>>,
}

pub struct Vhost {
    pub name: ShortStr,
    topology: RwLock<Topology>,
    /// Where durable changes are recorded; `None` for an in-memory broker. Changes are
    /// recorded under the topology lock, so the log has them in the order they took effect.
    store: Option<Arc<DiskStore>>,
    /// Set when the vhost is deleted: connections still open on it until they take their
    /// connection.close must not record changes that a recreated vhost of the same name
    /// would inherit on restart.
    deleted: AtomicBool,
    policies: Policies,
}

/// Consumers whose queue went away and must be told with basic.cancel.
pub(crate) type Orphans = Vec<Consumer>;

/// Tells each consumer of a deleted queue, through its connection, that it was cancelled.
pub(crate) fn notify_orphans(orphans: Orphans) {
    for orphan in orphans {
        orphan.outbox.push(Event::ConsumerCancelled {
            channel: orphan.channel,
            consumer_tag: orphan.tag,
        });
    }
}

/// The exchanges every vhost has from its creation, besides the default one.
pub(crate) const STANDARD_EXCHANGES: &[(&str, ExchangeKind)] = &[
    ("amq.direct", ExchangeKind::Direct),
    ("amq.fanout", ExchangeKind::Fanout),
    ("amq.topic", ExchangeKind::Topic),
    ("amq.headers", ExchangeKind::Headers),
    ("amq.match", ExchangeKind::Headers),
];

impl Vhost {
    pub fn new(name: ShortStr, store: Option<Arc<DiskStore>>) -> Arc<Vhost> {
        let mut topology = Topology::default();
        let default = ShortStr::from_static("");
        topology.exchanges.insert(
            default.clone(),
            Exchange::new(
                default,
                ExchangeKind::Direct,
                true,
                false,
                false,
                FieldTable::new(),
            ),
        );
        for (name, kind) in STANDARD_EXCHANGES {
            let name = ShortStr::from_static(name);
            topology.exchanges.insert(
                name.clone(),
                Exchange::new(name, *kind, true, false, false, FieldTable::new()),
            );
        }
        Arc::new(Vhost {
            name,
            topology: RwLock::new(topology),
            store,
            deleted: AtomicBool::new(false),
            policies: Policies::default(),
        })
    }

    fn live_store(&self) -> Option<&Arc<DiskStore>> {
        self.store
            .as_ref()
            .filter(|_| !self.deleted.load(Ordering::Acquire))
    }

    /// Deletes every queue (with its stored messages) and exchange, for vhost deletion.
    pub(crate) fn delete_everything(&self) {
        let mut topo = self.topology.write();
        self.deleted.store(true, Ordering::Release);
        self.policies.clear_all();
        let names: Vec<ShortStr> = topo.queues.keys().cloned().collect();
        for name in names {
            // Their consumers' connections are being closed with the vhost.
            topo.remove_queue(&name);
        }
        topo.exchanges.clear();
    }

    /// Records a change to durable topology.
    fn record(&self, method: impl Into<Method>) {
        if let Some(store) = self.live_store() {
            store.topology_changed(&self.name, &method.into());
        }
    }

    fn res(&self, kind: &str, name: &ShortStr) -> String {
        resource(kind, name, &self.name)
    }

    fn no_exchange(&self, name: &ShortStr) -> AmqpError {
        AmqpError::not_found(format!("no {}", self.res("exchange", name)))
    }

    fn no_queue(&self, name: &ShortStr) -> AmqpError {
        AmqpError::not_found(format!("no {}", self.res("queue", name)))
    }

    fn locked(&self, name: &ShortStr) -> AmqpError {
        AmqpError::resource_locked(format!(
            "cannot obtain exclusive access to locked {}. It could be originally declared on another \
             connection or the exclusive property value does not match that of the original declaration.",
            self.res("queue", name)
        ))
    }

    fn default_exchange_refused() -> AmqpError {
        AmqpError::access_refused("operation not permitted on the default exchange")
    }

    // ---- exchanges ----

    pub fn declare_exchange(&self, spec: &ExchangeSpec<'_>) -> Result<(), AmqpError> {
        let mut topo = self.topology.write();
        if spec.name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        if spec.passive {
            return match topo.exchanges.contains_key(spec.name) {
                true => Ok(()),
                false => Err(self.no_exchange(spec.name)),
            };
        }
        let kind = ExchangeKind::from_name(spec.kind.as_bytes()).ok_or_else(|| {
            AmqpError::command_invalid(format!("unknown exchange type '{}'", spec.kind))
        })?;
        match topo.exchanges.get(spec.name) {
            Some(x) => {
                let mismatch = |arg: &str, received: String, current: String| {
                    AmqpError::precondition_failed(format!(
                        "inequivalent arg '{arg}' for {}: received '{received}' but current is '{current}'",
                        self.res("exchange", spec.name)
                    ))
                };
                if x.kind != kind {
                    return Err(mismatch("type", kind.name().into(), x.kind.name().into()));
                }
                if x.durable != spec.durable {
                    return Err(mismatch(
                        "durable",
                        spec.durable.to_string(),
                        x.durable.to_string(),
                    ));
                }
                if x.auto_delete != spec.auto_delete {
                    return Err(mismatch(
                        "auto_delete",
                        spec.auto_delete.to_string(),
                        x.auto_delete.to_string(),
                    ));
                }
                if x.internal != spec.internal {
                    return Err(mismatch(
                        "internal",
                        spec.internal.to_string(),
                        x.internal.to_string(),
                    ));
                }
                let (now, new) = (
                    x.arguments.get("alternate-exchange"),
                    spec.arguments.get("alternate-exchange"),
                );
                if now != new {
                    return Err(mismatch("alternate-exchange", render(new), render(now)));
                }
                Ok(())
            }
            None => {
                check_name("exchange", spec.name)?;
                let name = owned(spec.name);
                let exchange = Exchange::new(
                    name.clone(),
                    kind,
                    spec.durable,
                    spec.auto_delete,
                    spec.internal,
                    spec.arguments.clone(),
                );
                if spec.durable {
                    self.record(ExchangeDeclare {
                        exchange: name.clone(),
                        kind: ShortStr::from_static(kind.name()),
                        durable: true,
                        auto_delete: spec.auto_delete,
                        internal: spec.internal,
                        arguments: spec.arguments.clone(),
                        ..Default::default()
                    });
                }
                topo.exchanges.insert(name, exchange);
                Ok(())
            }
        }
    }

    pub fn delete_exchange(&self, name: &ShortStr, if_unused: bool) -> Result<(), AmqpError> {
        if name.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        if name.as_bytes().starts_with(b"amq.") {
            return Err(AmqpError::access_refused(format!(
                "deletion of system {} not allowed",
                self.res("exchange", name)
            )));
        }
        let mut topo = self.topology.write();
        let Some(exchange) = topo.exchanges.get(name) else {
            // Deleting what is not there succeeds, as in RabbitMQ 3.x.
            return Ok(());
        };
        if if_unused && !exchange.bindings.is_empty() {
            return Err(AmqpError::precondition_failed(format!(
                "{} in use",
                self.res("exchange", name)
            )));
        }
        if exchange.durable {
            self.record(ExchangeDelete {
                exchange: name.clone(),
                ..Default::default()
            });
        }
        topo.remove_exchange(name);
        Ok(())
    }

    pub fn exchange_exists(&self, name: &ShortStr) -> bool {
        self.topology.read().exchanges.contains_key(name)
    }

    // ---- queues ----

    /// Declares (or checks) a queue; returns it with its counts.
    pub(crate) fn declare_queue(
        &self,
        spec: &QueueSpec<'_>,
        owner: ConnectionId,
        now: Instant,
    ) -> Result<(Arc<Queue>, QueueCounts), AmqpError> {
        // Unlike exchanges, RabbitMQ refuses a non-passive declare of any `amq.` queue name, even
        // one that exists (a server-named queue cannot be redeclared by name).
        if !spec.passive {
            check_name("queue", spec.name)?;
        }
        let mut topo = self.topology.write();
        let existing = if spec.name.is_empty() {
            None
        } else {
            topo.queues.get(spec.name).cloned()
        };
        if let Some(queue) = existing {
            if queue.exclusive_owner.is_some_and(|o| o != owner) {
                return Err(self.locked(spec.name));
            }
            if !spec.passive {
                let mismatch = |arg: &str, received: bool, current: bool| {
                    AmqpError::precondition_failed(format!(
                        "inequivalent arg '{arg}' for {}: received '{received}' but current is '{current}'",
                        self.res("queue", spec.name)
                    ))
                };
                if queue.durable != spec.durable {
                    return Err(mismatch("durable", spec.durable, queue.durable));
                }
                if queue.exclusive_owner.is_some() != spec.exclusive {
                    return Err(self.locked(spec.name));
                }
                if queue.auto_delete != spec.auto_delete {
                    return Err(mismatch("auto_delete", spec.auto_delete, queue.auto_delete));
                }
                check_equivalent(
                    &queue.arguments,
                    spec.arguments,
                    &queue.name.to_string_lossy(),
                    &self.name.to_string_lossy(),
                )?;
            }
            queue.touch(now);
            let counts = queue.counts(now);
            return Ok((queue, counts));
        }
        if spec.passive {
            return Err(self.no_queue(spec.name));
        }
        let name = if spec.name.is_empty() {
            server_named("amq.gen-")
        } else {
            owned(spec.name)
        };
        let settings = QueueSettings::from_arguments(
            spec.arguments,
            &name.to_string_lossy(),
            &self.name.to_string_lossy(),
        )?;
        let persisted = match self.live_store() {
            Some(store) if spec.durable && !spec.exclusive => {
                let declare = QueueDeclare {
                    queue: name.clone(),
                    durable: true,
                    auto_delete: spec.auto_delete,
                    arguments: spec.arguments.clone(),
                    ..Default::default()
                };
                let id = store.queue_declared(&self.name, &declare.into());
                Some(Persisted {
                    store: Arc::clone(store),
                    id,
                    memory_limit: store.queue_memory_limit(),
                })
            }
            _ => None,
        };
        let queue = Queue::new(
            name.clone(),
            self.name.clone(),
            spec,
            owner,
            settings,
            persisted,
            now,
        );
        queue.apply_policy(self.policies.for_queue(&name.to_string_lossy()));
        topo.queues.insert(name, Arc::clone(&queue));
        let counts = queue.counts(now);
        Ok((queue, counts))
    }

    /// What the topology log must hold to rebuild this vhost's durable part: exchange
    /// declarations, queue declarations with their ids, then bindings.
    pub(crate) fn durable_topology(&self) -> DurableTopology {
        let topo = self.topology.read();
        let standard = |name: &ShortStr| {
            name.is_empty()
                || STANDARD_EXCHANGES
                    .iter()
                    .any(|(n, _)| n.as_bytes() == name.as_bytes())
        };
        let mut methods = Vec::new();
        for x in topo
            .exchanges
            .values()
            .filter(|x| x.durable && !standard(&x.name))
        {
            methods.push(Method::ExchangeDeclare(ExchangeDeclare {
                exchange: x.name.clone(),
                kind: ShortStr::from_static(x.kind.name()),
                durable: true,
                auto_delete: x.auto_delete,
                internal: x.internal,
                arguments: x.arguments.clone(),
                ..Default::default()
            }));
        }
        let mut queues = Vec::new();
        for q in topo.queues.values() {
            if let Some(id) = q.persisted_id() {
                queues.push((
                    id,
                    Method::QueueDeclare(QueueDeclare {
                        queue: q.name.clone(),
                        durable: true,
                        auto_delete: q.auto_delete,
                        arguments: q.arguments.clone(),
                        ..Default::default()
                    }),
                ));
            }
        }
        for x in topo.exchanges.values().filter(|x| x.durable) {
            for (routing_key, arguments, destination) in x.bindings.iter() {
                match destination {
                    Destination::Queue(q)
                        if topo
                            .queues
                            .get(q)
                            .is_some_and(|q| q.persisted_id().is_some()) =>
                    {
                        methods.push(Method::QueueBind(QueueBind {
                            queue: q.clone(),
                            exchange: x.name.clone(),
                            routing_key: routing_key.clone(),
                            arguments: arguments.clone(),
                            ..Default::default()
                        }));
                    }
                    Destination::Exchange(d)
                        if topo.exchanges.get(d).is_some_and(|d| d.durable) =>
                    {
                        methods.push(Method::ExchangeBind(ExchangeBind {
                            destination: d.clone(),
                            source: x.name.clone(),
                            routing_key: routing_key.clone(),
                            arguments: arguments.clone(),
                            ..Default::default()
                        }));
                    }
                    _ => {}
                }
            }
        }
        DurableTopology {
            methods,
            queues,
            policies: self.policies.list(),
        }
    }

    /// Rebuilds a durable queue from the topology log, with the id its messages refer to.
    pub(crate) fn recover_queue(
        &self,
        spec: &QueueSpec<'_>,
        store: Arc<DiskStore>,
        id: u64,
        now: Instant,
    ) -> Result<Arc<Queue>, AmqpError> {
        let name = owned(spec.name);
        let settings = QueueSettings::from_arguments(
            spec.arguments,
            &name.to_string_lossy(),
            &self.name.to_string_lossy(),
        )?;
        let memory_limit = store.queue_memory_limit();
        let persisted = Some(Persisted {
            store,
            id,
            memory_limit,
        });
        let queue = Queue::new(
            name.clone(),
            self.name.clone(),
            spec,
            0,
            settings,
            persisted,
            now,
        );
        queue.apply_policy(self.policies.for_queue(&name.to_string_lossy()));
        self.topology
            .write()
            .queues
            .insert(name, Arc::clone(&queue));
        Ok(queue)
    }

    /// The queue, if this connection may use it.
    pub(crate) fn queue(
        &self,
        name: &ShortStr,
        conn: ConnectionId,
    ) -> Result<Arc<Queue>, AmqpError> {
        let topo = self.topology.read();
        let queue = topo.queues.get(name).ok_or_else(|| self.no_queue(name))?;
        if queue.exclusive_owner.is_some_and(|o| o != conn) {
            return Err(self.locked(name));
        }
        Ok(Arc::clone(queue))
    }

    /// Calls `f` with each exchange, its bindings included, under the topology's read lock:
    /// for listings and definitions export.
    pub(crate) fn for_each_exchange(&self, mut f: impl FnMut(&Exchange)) {
        for exchange in self.topology.read().exchanges.values() {
            f(exchange);
        }
    }

    /// Adds or replaces a policy and applies it to the queues it now governs (and takes it off
    /// those it no longer does).
    pub fn set_policy(&self, policy: Policy) {
        let topo = self.topology.write();
        if !self.policies.set(policy.clone()) {
            return;
        }
        if let Some(store) = self.live_store() {
            store.policy_set(&self.name, &policy);
        }
        self.reapply_policies(&topo);
    }

    /// Removes a policy; false if there was none of that name.
    pub fn clear_policy(&self, name: &str) -> bool {
        let topo = self.topology.write();
        if !self.policies.clear(name) {
            return false;
        }
        if let Some(store) = self.live_store() {
            store.policy_cleared(&self.name, name);
        }
        self.reapply_policies(&topo);
        true
    }

    /// The vhost's policies, by name.
    pub fn policies(&self) -> Vec<Arc<Policy>> {
        self.policies.list()
    }

    /// The policy that applies to an exchange, for listings.
    pub fn exchange_policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.policies.for_exchange(name)
    }

    fn reapply_policies(&self, topo: &Topology) {
        for queue in topo.queues.values() {
            queue.apply_policy(self.policies.for_queue(&queue.name.to_string_lossy()));
        }
    }

    /// The queue, whoever owns it: for operators.
    pub(crate) fn find_queue(&self, name: &ShortStr) -> Option<Arc<Queue>> {
        self.topology.read().queues.get(name).cloned()
    }

    pub fn queues(&self) -> Vec<Arc<Queue>> {
        self.topology.read().queues.values().cloned().collect()
    }

    /// Deletes a queue. Returns its ready count and the consumers to cancel.
    pub(crate) fn delete_queue(
        &self,
        name: &ShortStr,
        if_unused: bool,
        if_empty: bool,
        conn: ConnectionId,
        now: Instant,
    ) -> Result<(u32, Orphans), AmqpError> {
        let mut topo = self.topology.write();
        let Some(queue) = topo.queues.get(name).cloned() else {
            return Ok((0, Vec::new()));
        };
        if queue.exclusive_owner.is_some_and(|o| o != conn) {
            return Err(self.locked(name));
        }
        if if_unused && !queue.is_unused() {
            return Err(AmqpError::precondition_failed(format!(
                "{} in use",
                self.res("queue", name)
            )));
        }
        if if_empty && !queue.is_empty(now) {
            return Err(AmqpError::precondition_failed(format!(
                "{} not empty",
                self.res("queue", name)
            )));
        }
        Ok(topo.remove_queue(name))
    }

    /// Deletes the queue if it is still this exact queue (auto-delete, expiry and exclusive
    /// clean-up race with redeclares).
    pub(crate) fn remove_queue_if_same(&self, queue: &Arc<Queue>) -> Orphans {
        let mut topo = self.topology.write();
        match topo.queues.get(&queue.name) {
            Some(current) if Arc::ptr_eq(current, queue) => topo.remove_queue(&queue.name).1,
            _ => Vec::new(),
        }
    }

    /// Removes queues whose `x-expires` ran out, and expired messages everywhere.
    pub(crate) fn expire(&self, now: Instant) -> Orphans {
        let expired: Vec<Arc<Queue>> = {
            let topo = self.topology.read();
            topo.queues
                .values()
                .filter(|q| {
                    q.expire_messages(now);
                    q.has_expired(now)
                })
                .cloned()
                .collect()
        };
        expired
            .iter()
            .flat_map(|q| {
                tracing::debug!(queue = %q.name, vhost = %self.name, "queue expired (x-expires)");
                self.remove_queue_if_same(q)
            })
            .collect()
    }

    // ---- bindings ----

    pub(crate) fn bind_queue(
        &self,
        queue: &ShortStr,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        arguments: &FieldTable,
        conn: ConnectionId,
    ) -> Result<(), AmqpError> {
        if exchange.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let mut topo = self.topology.write();
        let q = topo.queues.get(queue).ok_or_else(|| self.no_queue(queue))?;
        if q.exclusive_owner.is_some_and(|o| o != conn) {
            return Err(self.locked(queue));
        }
        let queue_durable = q.durable;
        let x = topo
            .exchanges
            .get_mut(exchange)
            .ok_or_else(|| self.no_exchange(exchange))?;
        check_binding_arguments(x.kind, arguments)?;
        let durable = x.durable && queue_durable;
        x.bindings.bind(
            &owned(routing_key),
            &arguments.clone(),
            Destination::Queue(owned(queue)),
        );
        if durable {
            self.record(QueueBind {
                queue: owned(queue),
                exchange: owned(exchange),
                routing_key: owned(routing_key),
                arguments: arguments.clone(),
                ..Default::default()
            });
        }
        Ok(())
    }

    /// Removes a binding from `source` to `destination`. RabbitMQ answers unbind-ok when the
    /// source, the destination or the binding is missing, and lets any connection unbind an
    /// exclusive queue.
    pub(crate) fn unbind(
        &self,
        source: &ShortStr,
        destination: Destination,
        routing_key: &ShortStr,
        arguments: &FieldTable,
    ) -> Result<(), AmqpError> {
        let to_default = matches!(&destination, Destination::Exchange(d) if d.is_empty());
        if source.is_empty() || to_default {
            return Err(Self::default_exchange_refused());
        }
        let mut topo = self.topology.write();
        let durable_destination = match &destination {
            Destination::Queue(q) => topo.queues.get(q).is_some_and(|q| q.durable),
            Destination::Exchange(x) => topo.exchanges.get(x).is_some_and(|x| x.durable),
        };
        let Some(x) = topo.exchanges.get_mut(source) else {
            return Ok(());
        };
        if x.durable && durable_destination {
            self.record(match &destination {
                Destination::Queue(q) => Method::QueueUnbind(QueueUnbind {
                    queue: q.clone(),
                    exchange: owned(source),
                    routing_key: owned(routing_key),
                    arguments: arguments.clone(),
                    ..Default::default()
                }),
                Destination::Exchange(d) => Method::ExchangeUnbind(ExchangeUnbind {
                    destination: d.clone(),
                    source: owned(source),
                    routing_key: owned(routing_key),
                    arguments: arguments.clone(),
                    ..Default::default()
                }),
            });
        }
        if x.bindings.unbind(routing_key, arguments, &destination) {
            topo.auto_delete_exchange(source);
        }
        Ok(())
    }

    pub(crate) fn bind_exchange(
        &self,
        destination: &ShortStr,
        source: &ShortStr,
        routing_key: &ShortStr,
        arguments: &FieldTable,
    ) -> Result<(), AmqpError> {
        if destination.is_empty() || source.is_empty() {
            return Err(Self::default_exchange_refused());
        }
        let mut topo = self.topology.write();
        let Some(destination_durable) = topo.exchanges.get(destination).map(|d| d.durable) else {
            return Err(self.no_exchange(destination));
        };
        let x = topo
            .exchanges
            .get_mut(source)
            .ok_or_else(|| self.no_exchange(source))?;
        check_binding_arguments(x.kind, arguments)?;
        x.bindings.bind(
            &owned(routing_key),
            &arguments.clone(),
            Destination::Exchange(owned(destination)),
        );
        if x.durable && destination_durable {
            self.record(ExchangeBind {
                destination: owned(destination),
                source: owned(source),
                routing_key: owned(routing_key),
                arguments: arguments.clone(),
                ..Default::default()
            });
        }
        Ok(())
    }

    // ---- routing ----

    /// Appends the queues a message published to `exchange` reaches, each once, following
    /// exchange-to-exchange bindings (loops included) as RabbitMQ does.
    pub(crate) fn route(
        &self,
        exchange: &ShortStr,
        routing_key: &ShortStr,
        headers: Option<&FieldTable>,
        out: &mut Vec<Arc<Queue>>,
    ) -> Result<(), AmqpError> {
        let topo = self.topology.read();
        let source = topo
            .exchanges
            .get(exchange)
            .ok_or_else(|| self.no_exchange(exchange))?;
        if source.internal {
            return Err(AmqpError::access_refused(format!(
                "cannot publish to internal {}",
                self.res("exchange", exchange)
            )));
        }
        if exchange.is_empty() {
            if let Some(q) = topo.queues.get(routing_key) {
                out.push(Arc::clone(q));
            }
            return Ok(());
        }
        let mut destinations = Vec::new();
        source
            .bindings
            .route(routing_key.as_bytes(), headers, &mut destinations);
        if destinations
            .iter()
            .all(|d| matches!(d, Destination::Queue(_)))
        {
            // The common case: no exchange-to-exchange hop, and the table already deduplicated.
            for d in &destinations {
                if let Destination::Queue(name) = d
                    && let Some(q) = topo.queues.get(name)
                {
                    out.push(Arc::clone(q));
                }
            }
            return Ok(());
        }
        let mut visited = vec![exchange.clone()];
        let mut queues: Vec<ShortStr> = Vec::new();
        while let Some(d) = destinations.pop() {
            match d {
                Destination::Queue(name) => {
                    if !queues.contains(&name) {
                        queues.push(name);
                    }
                }
                Destination::Exchange(name) => {
                    if visited.contains(&name) {
                        continue;
                    }
                    if let Some(x) = topo.exchanges.get(&name) {
                        x.bindings
                            .route(routing_key.as_bytes(), headers, &mut destinations);
                    }
                    visited.push(name);
                }
            }
        }
        out.extend(queues.iter().filter_map(|n| topo.queues.get(n).cloned()));
        Ok(())
    }
}

impl Exchange {
    fn new(
        name: ShortStr,
        kind: ExchangeKind,
        durable: bool,
        auto_delete: bool,
        internal: bool,
        arguments: FieldTable,
    ) -> Exchange {
        Exchange {
            name,
            kind,
            durable,
            auto_delete,
            internal,
            arguments,
            bindings: BindingTable::new(kind),
        }
    }
}

impl Topology {
    fn remove_exchange(&mut self, name: &ShortStr) {
        self.exchanges.remove(name);
        let destination = Destination::Exchange(name.clone());
        let emptied: Vec<ShortStr> = self
            .exchanges
            .values_mut()
            .filter_map(|x| {
                (x.bindings.remove_destination(&destination) > 0).then(|| x.name.clone())
            })
            .collect();
        for source in emptied {
            self.auto_delete_exchange(&source);
        }
    }

    fn remove_queue(&mut self, name: &ShortStr) -> (u32, Orphans) {
        let Some(queue) = self.queues.remove(name) else {
            return (0, Vec::new());
        };
        queue.record_deleted();
        let destination = Destination::Queue(name.clone());
        let emptied: Vec<ShortStr> = self
            .exchanges
            .values_mut()
            .filter_map(|x| {
                (x.bindings.remove_destination(&destination) > 0).then(|| x.name.clone())
            })
            .collect();
        for source in emptied {
            self.auto_delete_exchange(&source);
        }
        queue.mark_deleted()
    }

    /// An auto-delete exchange goes when its last binding (as source) goes.
    fn auto_delete_exchange(&mut self, name: &ShortStr) {
        if self
            .exchanges
            .get(name)
            .is_some_and(|x| x.auto_delete && x.bindings.is_empty())
        {
            self.remove_exchange(name);
        }
    }
}

/// A headers binding's `x-match` must be one RabbitMQ knows; anything else is refused at bind
/// time rather than silently matching like `all`.
fn check_binding_arguments(kind: ExchangeKind, arguments: &FieldTable) -> Result<(), AmqpError> {
    if kind != ExchangeKind::Headers {
        return Ok(());
    }
    match arguments.get("x-match") {
        None => Ok(()),
        Some(FieldValue::LongStr(v))
            if matches!(&v[..], b"all" | b"any" | b"all-with-x" | b"any-with-x") =>
        {
            Ok(())
        }
        Some(other) => {
            let shown = match other {
                FieldValue::LongStr(v) => format!("<<\"{}\">>", String::from_utf8_lossy(v)),
                v => format!("{v:?}"),
            };
            Err(AmqpError::precondition_failed(format!(
                "Invalid x-match field value {shown}; expected all, any, all-with-x, or any-with-x"
            )))
        }
    }
}

/// New names must not take the reserved `amq.` prefix.
fn check_name(kind: &str, name: &ShortStr) -> Result<(), AmqpError> {
    if name.as_bytes().starts_with(b"amq.") {
        return Err(AmqpError::access_refused(format!(
            "{kind} name '{name}' contains reserved prefix 'amq.*'"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &'static str) -> ShortStr {
        ShortStr::from_static(v)
    }

    fn declare_exchange(vhost: &Vhost, name: &'static str, kind: &'static str, auto_delete: bool) {
        vhost
            .declare_exchange(&ExchangeSpec {
                name: &s(name),
                kind: &s(kind),
                passive: false,
                durable: false,
                auto_delete,
                internal: false,
                arguments: &FieldTable::new(),
            })
            .unwrap();
    }

    fn declare_queue(vhost: &Vhost, name: &'static str) {
        let spec = QueueSpec {
            name: &s(name),
            passive: false,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: &FieldTable::new(),
        };
        vhost.declare_queue(&spec, 1, Instant::now()).unwrap();
    }

    fn routed(vhost: &Vhost, exchange: &'static str, key: &'static str) -> Vec<String> {
        let mut out = Vec::new();
        vhost.route(&s(exchange), &s(key), None, &mut out).unwrap();
        let mut names: Vec<String> = out.iter().map(|q| q.name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn exchange_binding_loop_delivers_once_and_ends() {
        let vhost = Vhost::new(s("/"), None);
        declare_exchange(&vhost, "x1", "fanout", false);
        declare_exchange(&vhost, "x2", "fanout", false);
        declare_queue(&vhost, "q");
        let none = FieldTable::new();
        vhost
            .bind_exchange(&s("x2"), &s("x1"), &s(""), &none)
            .unwrap();
        vhost
            .bind_exchange(&s("x1"), &s("x2"), &s(""), &none)
            .unwrap();
        vhost
            .bind_queue(&s("q"), &s("x2"), &s(""), &none, 1)
            .unwrap();
        vhost
            .bind_queue(&s("q"), &s("x1"), &s(""), &none, 1)
            .unwrap();
        assert_eq!(routed(&vhost, "x1", "k"), vec!["q"]);
    }

    #[test]
    fn auto_delete_exchange_goes_with_its_last_binding() {
        let vhost = Vhost::new(s("/"), None);
        declare_exchange(&vhost, "ad", "direct", true);
        declare_queue(&vhost, "q");
        let none = FieldTable::new();
        vhost
            .bind_queue(&s("q"), &s("ad"), &s("k"), &none, 1)
            .unwrap();
        assert!(vhost.exchange_exists(&s("ad")));
        vhost
            .unbind(&s("ad"), Destination::Queue(s("q")), &s("k"), &none)
            .unwrap();
        assert!(!vhost.exchange_exists(&s("ad")));
    }

    #[test]
    fn headers_binding_with_unknown_x_match_is_406() {
        let vhost = Vhost::new(s("/"), None);
        declare_queue(&vhost, "q");
        let args: FieldTable = [(s("x-match"), FieldValue::from("some"))]
            .into_iter()
            .collect();
        let err = vhost
            .bind_queue(&s("q"), &s("amq.headers"), &s(""), &args, 1)
            .unwrap_err();
        assert_eq!(err.code, 406);
        assert_eq!(
            err.detail,
            "Invalid x-match field value <<\"some\">>; expected all, any, all-with-x, or any-with-x"
        );
    }

    #[test]
    fn default_exchange_routes_by_queue_name_and_refuses_bindings() {
        let vhost = Vhost::new(s("/"), None);
        declare_queue(&vhost, "q");
        assert_eq!(routed(&vhost, "", "q"), vec!["q"]);
        assert!(routed(&vhost, "", "other").is_empty());
        let err = vhost
            .bind_queue(&s("q"), &s(""), &s("q"), &FieldTable::new(), 1)
            .unwrap_err();
        assert_eq!(err.code, 403);
    }

    #[test]
    fn server_named_queue_cannot_be_redeclared_by_name() {
        let vhost = Vhost::new(s("/"), None);
        let none = FieldTable::new();
        let server_named = s("");
        let mut spec = QueueSpec {
            name: &server_named,
            passive: false,
            durable: false,
            exclusive: true,
            auto_delete: false,
            arguments: &none,
        };
        let (queue, _) = vhost.declare_queue(&spec, 1, Instant::now()).unwrap();
        spec.name = &queue.name;
        let Err(err) = vhost.declare_queue(&spec, 1, Instant::now()) else {
            panic!("redeclaring {} by name succeeded", queue.name);
        };
        assert_eq!(err.code, 403);
        assert!(
            err.detail.ends_with("contains reserved prefix 'amq.*'"),
            "{}",
            err.detail
        );
    }

    #[test]
    fn deleting_a_queue_removes_its_bindings() {
        let vhost = Vhost::new(s("/"), None);
        declare_queue(&vhost, "q");
        let none = FieldTable::new();
        vhost
            .bind_queue(&s("q"), &s("amq.topic"), &s("a.#"), &none, 1)
            .unwrap();
        vhost
            .delete_queue(&s("q"), false, false, 1, Instant::now())
            .unwrap();
        declare_queue(&vhost, "q");
        assert!(routed(&vhost, "amq.topic", "a.b").is_empty());
    }
}
